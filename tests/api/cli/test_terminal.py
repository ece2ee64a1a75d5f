"""At a terminal: ``status --watch`` draws progress moving, a purge asks, colour follows NO_COLOR."""

from __future__ import annotations

import json
import re

import pytest

from tests.api.cli.conftest import COLOUR_CODE
from tests.support.terminal import run_in_terminal

pytestmark = pytest.mark.slow


def test_status_watch_shows_the_progress_of_a_long_running_task_moving(jobdeck, environment, start_worker):
    start_worker()
    sent = jobdeck("send", "long_running_task", "--kwargs", '{"seconds": 8, "steps": 8}', "--json")
    task_id = json.loads(sent.stdout)["task_id"]

    watched = run_in_terminal(environment, "status", task_id, "--watch")

    percentages = [int(value) for value in re.findall(r"(\d+)%", watched.text)]
    assert watched.exit_code == 0, watched.text
    assert len(set(percentages)) >= 3, f"the bar should move: {percentages}"
    assert percentages == sorted(percentages), "progress only moves forward"
    assert percentages[-1] == 100
    assert "long_running_task" in watched.text and "step 8 of 8" in watched.text
    assert re.search(COLOUR_CODE, watched.raw), "a terminal shows states in colour"
    assert "SUCCESS" in watched.text


def test_a_purge_asks_at_a_terminal_and_a_no_keeps_the_messages(jobdeck, environment, runtime):
    waiting = [json.loads(jobdeck("send", "test_task", "--json").stdout)["task_id"] for _ in range(2)]
    question = "Remove every ready message of queue default? [y/N]"

    declined = run_in_terminal(environment, "queues", "--purge", "default", answers={question: "n\n"})
    still_waiting = [runtime.monitor.get_task_status(task_id).status for task_id in waiting]
    accepted = run_in_terminal(environment, "queues", "--purge", "default", answers={question: "y\n"})

    assert declined.exit_code == 1 and "Aborted" in declined.text
    assert still_waiting == ["PENDING", "PENDING"]
    assert accepted.exit_code == 0, accepted.text
    assert "Removed 2 ready messages from default; their tasks are REVOKED." in accepted.text
    assert [entry.action for entry in runtime.audit.entries().entries] == ["queue.purge"]


def test_no_color_turns_colour_off_at_a_terminal(jobdeck, environment):
    task_id = json.loads(jobdeck("send", "test_task", "--json").stdout)["task_id"]

    coloured = run_in_terminal(environment, "status", task_id)
    plain = run_in_terminal({**environment, "NO_COLOR": "1"}, "status", task_id)

    assert coloured.exit_code == plain.exit_code == 0
    assert re.search(COLOUR_CODE, coloured.raw)
    assert not re.search(COLOUR_CODE, plain.raw)
    assert "PENDING" in plain.text
