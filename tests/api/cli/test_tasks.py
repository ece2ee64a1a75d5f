"""``jobdeck send``, ``tasks``, ``status``, ``result``, ``revoke`` and ``chain`` against the real Redis.

No worker runs here, so what is sent stays waiting: the JSON of every command is compared field by
field with the API's answer for the same task.
"""

from __future__ import annotations

import getpass
import json
import re
from datetime import datetime, timedelta

import pytest

from tests.api.cli.conftest import COLOUR_CODE, assert_red_line


def send(jobdeck, *arguments: str) -> dict:
    result = jobdeck("send", *arguments, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_send_prints_the_task_as_the_api_shows_it(jobdeck, api):
    sent = send(jobdeck, "test_task", "--args", '["hello"]', "--kwargs", '{"note": "x"}')

    assert sent == api(f"/api/core/tasks/{sent['task_id']}/")
    assert (sent["task_name"], sent["status"], sent["queue"]) == ("test_task", "PENDING", "default")
    assert (sent["args"], sent["kwargs"]) == (["hello"], {"note": "x"})


def test_send_with_a_delay_an_eta_or_another_queue(jobdeck, api, settings):
    local = (datetime.now(settings.timezone) + timedelta(days=1)).replace(second=0, microsecond=0)

    delayed = send(jobdeck, "test_task", "--delay", "600")
    timed = send(jobdeck, "test_task", "--eta", local.strftime("%Y-%m-%dT%H:%M"))
    elsewhere = send(jobdeck, "test_task", "--queue", "reports")

    assert delayed["status"] == timed["status"] == "SCHEDULED"
    # Without an offset the time is read in the configured zone (Asia/Shanghai, +08:00).
    # The eta travels as a delay in milliseconds: it comes back within a second.
    assert abs(datetime.fromisoformat(timed["eta"]) - local) < timedelta(seconds=1)
    assert timed["eta"].endswith("+00:00")
    assert elsewhere["queue"] == "reports"
    assert api(f"/api/core/tasks/{timed['task_id']}/")["eta"] == timed["eta"]


def test_send_waiting_for_a_task_no_worker_runs_exits_1(jobdeck):
    result = jobdeck("send", "test_task", "--wait", "0.5", "--json")

    assert result.exit_code == 1
    assert json.loads(result.stdout)["status"] == "PENDING"
    assert "Not finished within 0.5 s; it is PENDING." in result.stderr


def test_tasks_lists_the_active_ones_as_the_api_does(jobdeck, api):
    sent = [send(jobdeck, "test_task", "--args", f"[{number}]")["task_id"] for number in range(3)]

    listed = json.loads(jobdeck("tasks", "--json").stdout)
    table = jobdeck("tasks").stdout
    cut = jobdeck("tasks", "--limit", "2").stdout

    assert listed == api("/api/core/tasks/")["tasks"]
    assert [task["task_id"] for task in listed] == sent[::-1]
    assert all(task_id in table for task_id in sent)
    assert "PENDING" in table and "times in Asia/Shanghai" in table
    assert sent[0] not in cut
    assert "2 tasks shown; more with --limit 4" in cut
    assert "\x1b[" not in table, "no colour or cursor codes when the output is not a terminal"


def test_status_shows_one_task_and_its_json_is_the_apis(jobdeck, api):
    task_id = send(jobdeck, "long_running_task", "--kwargs", '{"seconds": 1}')["task_id"]

    as_json = json.loads(jobdeck("status", task_id, "--json").stdout)
    shown = jobdeck("status", task_id)

    assert as_json == api(f"/api/core/tasks/{task_id}/")
    assert shown.exit_code == 0
    assert task_id in shown.stdout and "long_running_task on default" in shown.stdout
    assert 'Arguments  {"seconds": 1}' in shown.stdout
    assert "+0800 (" in shown.stdout, "absolute times in the configured zone, with how long ago"
    assert not re.search(COLOUR_CODE, shown.stdout), "no colour when the output is not a terminal"


def test_result_of_a_waiting_task_is_its_state(jobdeck, api):
    task_id = send(jobdeck, "test_task")["task_id"]

    result = jobdeck("result", task_id, "--json")

    assert result.exit_code == 0
    assert json.loads(result.stdout) == api(f"/api/core/tasks/{task_id}/result/", status=202)
    assert json.loads(result.stdout)["status"] == "PENDING"


def test_revoke_is_audited_and_a_finished_task_is_not_revoked_again(jobdeck, api, runtime):
    task_id = send(jobdeck, "test_task", "--delay", "600")["task_id"]

    first = jobdeck("revoke", task_id, "--json")
    again = jobdeck("revoke", task_id)

    assert first.exit_code == 0
    assert json.loads(first.stdout) == {
        "task_id": task_id,
        "revoked": True,
        "status": "REVOKED",
        "reason": "revoked while SCHEDULED; it will not run",
    }
    assert api(f"/api/core/tasks/{task_id}/")["status"] == "REVOKED"
    assert again.exit_code == 1
    assert "not revoked: already REVOKED" in again.stdout
    entries = runtime.audit.entries(action="task.revoke").entries
    assert [(entry.actor, entry.source, entry.target) for entry in entries] == [
        (getpass.getuser(), "cli", task_id)
    ] * 2


def test_bulk_revoke_by_filters_needs_yes_without_a_terminal(jobdeck, runtime):
    waiting = [send(jobdeck, "test_task", "--delay", "600")["task_id"] for _ in range(2)]
    other = send(jobdeck, "long_running_task", "--delay", "600")["task_id"]

    dry = json.loads(jobdeck("revoke", "--actor", "test_task", "--dry-run", "--json").stdout)
    refused = jobdeck("revoke", "--actor", "test_task")
    done = json.loads(jobdeck("revoke", "--actor", "test_task", "--yes", "--json").stdout)

    assert (dry["dry_run"], dry["matched"], dry["done"], sorted(dry["task_ids"])) == (
        True,
        2,
        0,
        sorted(waiting),
    )
    assert_red_line(refused, "Standard input is not a terminal: add --yes to confirm.", 2)
    assert (done["action"], done["matched"], done["done"]) == ("revoke", 2, 2)
    assert runtime.monitor.get_task_status(other).status == "SCHEDULED"
    [entry] = runtime.audit.entries(action="tasks.bulk_revoke", limit=1).entries
    assert (entry.target, entry.details["done"], entry.source) == ("actor=test_task", 2, "cli")


def test_chain_sends_the_steps_in_order(jobdeck, api):
    result = jobdeck("chain", "test_task:[1]", "test_task", 'test_task:{"note": "last"}', "--json")

    task_ids = json.loads(result.stdout)["task_ids"]
    first = api(f"/api/core/tasks/{task_ids[0]}/")

    assert result.exit_code == 0
    assert len(task_ids) == 3
    assert (first["task_name"], first["args"], first["status"]) == ("test_task", [1], "PENDING")
    assert first["pipeline"] == ["test_task", "test_task"]


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["send", "test_task", "--args", "[1,"], "args is not valid JSON: Expecting value at position 3"),
        (["send", "no_such_job"], "no job is called 'no_such_job'"),
        (["send", "test_task", "--queue", "nowhere"], "no queue is called 'nowhere'"),
        (["send", "test_task", "--eta", "tomorrow"], "a time is ISO 8601"),
        (["send", "test_task", "--eta", "2001-01-01T00:00"], "eta is in the past"),
        (["status", "no-such-id"], "no task 'no-such-id' is known"),
        (["result", "no-such-id"], "no task 'no-such-id' is known"),
        (["revoke", "no-such-id"], "no task 'no-such-id' is known"),
        (["retry", "no-such-id"], "no task 'no-such-id' is known"),
        (["revoke"], "give a fingerprint or at least one history filter"),
        (["revoke", "some-id", "--actor", "test_task"], "give a task id or a selection (actor), not both"),
        (["retry", "--fingerprint", "f", "--actor", "x"], "give a fingerprint or history filters, not both"),
        (["revoke", "--status", "LOST"], "--status: Must be one of: PENDING"),
        (["chain", "test_task"], "--steps: Length must be between 2 and 50"),
        (["chain", "test_task:[1", "test_task"], "the arguments of test_task is not valid JSON"),
        (["chain", "test_task:7", "test_task"], "are a JSON array (args) or object (kwargs)"),
        (["status", "x", "--watch", "--json"], "--watch draws a live display"),
    ],
)
def test_bad_input_exits_2_with_one_red_line(jobdeck, arguments, expected):
    assert_red_line(jobdeck(*arguments), expected, 2)


def test_a_refused_retry_exits_1(jobdeck, runtime):
    task_id = send(jobdeck, "test_task")["task_id"]

    result = jobdeck("retry", task_id)

    assert_red_line(result, f"only a failed task can be retried; {task_id} is PENDING", 1)
    [entry] = runtime.audit.entries(action="task.retry").entries
    assert (entry.outcome, entry.actor) == ("refused", getpass.getuser())
