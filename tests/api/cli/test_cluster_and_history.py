"""``jobdeck queues`` (and purging), ``actors``, ``history`` and ``stats`` against the real Redis."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.api.cli.conftest import assert_red_line


def send(jobdeck, *arguments: str) -> str:
    result = jobdeck("send", *arguments, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["task_id"]


def test_queues_match_the_api_and_a_purge_is_confirmed_and_audited(jobdeck, api, runtime):
    waiting = [send(jobdeck, "test_task") for _ in range(2)]

    queues = json.loads(jobdeck("queues", "--json").stdout)
    from_api = api("/api/core/workers/queues/")["queues"]
    table = jobdeck("queues").stdout
    refused = jobdeck("queues", "--purge", "default")
    declined = jobdeck("queues", "--purge", "default", "--yes", "--purge-dead", "default")
    purged = jobdeck("queues", "--purge", "default", "--yes", "--json")

    # The oldest message's age grows between the two reads; every other figure is the same.
    assert [{**queue, "latency": 0} for queue in queues] == [{**queue, "latency": 0} for queue in from_api]
    assert [(queue["name"], queue["ready"]) for queue in queues] == [
        ("default", 2),
        ("email", 0),
        ("finance", 0),
        ("reports", 0),
    ]
    assert "default" in table and "Consumers" in table
    assert_red_line(refused, "Standard input is not a terminal: add --yes to confirm.", 2)
    assert_red_line(declined, "give --purge or --purge-dead, not both", 2)
    assert json.loads(purged.stdout) == {"queue": "default", "purged": 2}
    assert [runtime.monitor.get_task_status(task_id).status for task_id in waiting] == ["REVOKED"] * 2
    [entry] = runtime.audit.entries(action="queue.purge").entries
    assert (entry.actor, entry.source, entry.target, entry.details) == (
        getpass.getuser(),
        "cli",
        "default",
        {"purged": 2},
    )


def test_purging_dead_letters_and_an_unknown_queue(jobdeck, runtime):
    dead = jobdeck("queues", "--purge-dead", "email", "--yes")
    unknown = jobdeck("queues", "--purge", "nowhere", "--yes")

    assert dead.exit_code == 0
    assert "Removed 0 dead-lettered messages from email." in dead.stdout
    assert_red_line(
        unknown, "no queue is called 'nowhere'; the queues are: finance, reports, email, default", 2
    )
    assert [entry.action for entry in runtime.audit.entries().entries] == ["queue.purge_dead"]


def test_actors_match_the_api(jobdeck, api):
    actors = json.loads(jobdeck("actors", "--json").stdout)
    table = jobdeck("actors").stdout

    assert actors == api("/api/core/actors/")["actors"]
    names = [actor["name"] for actor in actors]
    assert {"check_pending_bills", "test_task", "long_running_task"} <= set(names)
    assert "check_pending_bills" in table and "30 min" in table


def test_history_filters_match_the_apis(jobdeck, api):
    kept = send(jobdeck, "test_task", "--args", '["invoice-42"]')
    send(jobdeck, "test_task", "--args", '["other"]')
    long_one = send(jobdeck, "long_running_task", "--delay", "600")
    jobdeck("revoke", long_one)
    since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()

    everything = json.loads(jobdeck("history", "--json").stdout)
    revoked = json.loads(jobdeck("history", "--status", "revoked", "--since", "5m", "--json").stdout)
    found = json.loads(jobdeck("history", "--grep", "invoice-42", "--json").stdout)
    by_actor = json.loads(
        jobdeck("history", "--actor", "test_task", "--until", "2099-01-01", "--json").stdout
    )
    none_yet = json.loads(jobdeck("history", "--since", "2099-01-01T00:00+08:00", "--json").stdout)
    table = jobdeck("history", "--limit", "2")

    assert everything == api("/api/core/tasks/history/")["tasks"]
    assert len(everything) == 3
    assert (
        revoked == api(f"/api/core/tasks/history/?status=REVOKED&since={since.replace('+', '%2B')}")["tasks"]
    )
    assert [task["task_id"] for task in revoked] == [long_one]
    assert [task["task_id"] for task in found] == [kept]
    assert {task["task_name"] for task in by_actor} == {"test_task"} and len(by_actor) == 2
    assert none_yet == []
    assert "2 tasks shown; more with --limit 4" in table.stdout


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (
            ["history", "--since", "yesterday"],
            "a time is ISO 8601 (2026-01-31T08:00, with or without an offset)",
        ),
        (["history", "--since", "0m"], "a duration is a whole number and a unit"),
        (["history", "--status", "LOST"], "--status: Must be one of: PENDING, SCHEDULED"),
        (["history", "--queue", "nowhere"], "--queue: Must be one of: finance, reports, email, default"),
        (["history", "--grep", "x" * 201], "--grep: Length must be between 1 and 200"),
        (["stats", "--window", "30"], "--window: Must be greater than or equal to 60"),
        (["stats", "--window", "soon"], "a duration is a whole number and a unit"),
    ],
)
def test_bad_filters_exit_2_with_one_red_line(jobdeck, arguments, expected):
    assert_red_line(jobdeck(*arguments), expected, 2)


def test_a_limit_out_of_range_is_a_usage_error(jobdeck):
    result = jobdeck("history", "--limit", "0")

    assert result.exit_code == 2
    assert "Invalid value for '--limit'" in result.stderr


def test_stats_match_the_api(jobdeck, api):
    for _ in range(3):
        send(jobdeck, "test_task")

    stats = json.loads(jobdeck("stats", "--window", "2h", "--json").stdout)
    table = jobdeck("stats", "--window", "2h").stdout

    assert stats == api("/api/core/tasks/stats/?window=7200")["actors"]
    assert [(figures["actor"], figures["enqueued"]) for figures in stats] == [("test_task", 3)]
    assert "Last 2 h" in table and "test_task" in table and "0.0%" in table
