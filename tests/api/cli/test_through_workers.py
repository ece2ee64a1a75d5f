"""``send --wait``, ``ping``, ``result``, ``workers``, ``failures``, ``retry`` through real workers."""

from __future__ import annotations

import getpass
import json

import pytest

from tests.api.cli.conftest import assert_red_line

pytestmark = pytest.mark.slow


def test_send_wait_ping_result_and_workers_round_trip_through_a_worker(jobdeck, api, start_worker):
    start_worker()

    sent = jobdeck("send", "test_task", "--args", '["hello"]', "--wait", "30", "--json")
    task = json.loads(sent.stdout)
    result = jobdeck("result", task["task_id"], "--json")
    ping = jobdeck("ping", "--timeout", "30")
    workers = json.loads(jobdeck("workers", "--json").stdout)
    table = jobdeck("workers").stdout

    assert sent.exit_code == 0, sent.output
    assert (task["status"], task["result"]) == ("SUCCESS", {"echo": ["hello"], "kwargs": {}})
    assert task == api(f"/api/core/tasks/{task['task_id']}/")
    assert json.loads(result.stdout) == api(f"/api/core/tasks/{task['task_id']}/result/")
    assert ping.exit_code == 0, ping.output
    assert ping.stdout.startswith("pong from ") and "round trip" in ping.stdout
    from_api = api("/api/core/workers/")["workers"]
    # The heartbeat moves on between the two reads; every other field is the same.
    assert [{**worker, "last_heartbeat": None} for worker in workers] == [
        {**worker, "last_heartbeat": None} for worker in from_api
    ]
    assert [(worker["alive"], worker["queues"]) for worker in workers] == [
        (True, ["default", "email", "finance", "reports"])
    ]
    assert workers[0]["worker_id"] in table and "alive" in table


def test_ping_without_a_worker_exits_1_and_revokes_the_ping(jobdeck, runtime):
    result = jobdeck("ping", "--timeout", "0.5")

    assert_red_line(
        result, "no answer from the workers within 0.5 s (0 live workers); the ping was revoked", 1
    )
    [ping] = runtime.monitor.get_task_history(actor="test_task").tasks
    assert (ping.status, ping.args) == ("REVOKED", ["ping"])


def test_a_failure_is_grouped_retried_once_and_retried_in_bulk(jobdeck, api, runtime, start_worker):
    start_worker(JOBDECK_MAX_RETRIES="0")
    # Each fails its first attempt only: a retry succeeds, so the group stays as it was.
    failed = [
        json.loads(
            jobdeck(
                "send",
                "flaky",
                "--args",
                f'["{key}"]',
                "--kwargs",
                '{"failures": 1}',
                "--wait",
                "30",
                "--json",
            ).stdout
        )
        for key in ("first", "second")
    ]

    groups = json.loads(jobdeck("failures", "--json").stdout)
    groups_from_api = api("/api/core/tasks/failures/")["groups"]
    table = jobdeck("failures").stdout
    first = json.loads(jobdeck("retry", failed[0]["task_id"], "--json").stdout)
    again = jobdeck("retry", failed[0]["task_id"])
    dry = json.loads(
        jobdeck("retry", "--fingerprint", groups[0]["fingerprint"], "--dry-run", "--json").stdout
    )
    bulk = json.loads(jobdeck("retry", "--fingerprint", groups[0]["fingerprint"], "--yes", "--json").stdout)

    assert [task["status"] for task in failed] == ["FAILURE", "FAILURE"]
    assert groups == groups_from_api
    assert (groups[0]["error_type"], groups[0]["count"]) == ("RuntimeError", 2)
    assert groups[0]["fingerprint"] in table and "attempt 1 failed on purpose" in table
    assert (first["task_id"], first["retried"]) == (failed[0]["task_id"], True)
    assert api(f"/api/core/tasks/{first['new_task_id']}/")["retry_of"] == failed[0]["task_id"]
    assert_red_line(again, f"{failed[0]['task_id']} was retried already, as {first['new_task_id']}", 1)
    assert (dry["matched"], dry["task_ids"]) == (1, [failed[1]["task_id"]])
    assert (bulk["action"], bulk["dry_run"], bulk["done"]) == ("retry", False, 1)
    assert api(f"/api/core/tasks/{failed[1]['task_id']}/")["retried_as"] is not None
    actions = [(entry.action, entry.actor, entry.outcome) for entry in runtime.audit.entries().entries]
    assert actions == [
        ("tasks.bulk_retry", getpass.getuser(), "ok"),
        ("tasks.bulk_retry", getpass.getuser(), "ok"),
        ("task.retry", getpass.getuser(), "refused"),
        ("task.retry", getpass.getuser(), "ok"),
    ]
