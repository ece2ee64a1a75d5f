"""The original API's flows end to end against a real worker process, and the new ones: chains,
bulk actions, report search and download, export download, the audit log."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from jobs.platform.database import make_session_factory
from tests.conftest import wait_for
from tests.support.billing import add_bill, add_customer, add_payment

pytestmark = pytest.mark.slow


def finished(client, headers, task_id: str, timeout: float = 30) -> dict:
    """The task once it has finished (polled through the API; a chain's later step is unknown until sent)."""

    def done():
        response = client.get(f"/api/core/tasks/{task_id}/", headers=headers)
        task = response.get_json()
        return (
            task
            if response.status_code == 200 and task["status"] in ("SUCCESS", "FAILURE", "REVOKED")
            else None
        )

    return wait_for(done, timeout=timeout)


def send(client, headers, task_name: str, **body) -> dict:
    response = client.post("/api/core/tasks/", headers=headers, json={"task_name": task_name, **body})
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def test_the_original_flows(client, tokens, start_worker):
    start_worker()
    admin, viewer = tokens.admin, tokens.viewer

    sent = send(client, admin, "test_task", args=["hello"])
    waiting = send(client, admin, "test_task", args=["later"], delay=600)
    done = finished(client, viewer, sent["task_id"])
    active = client.get("/api/core/tasks/", headers=viewer).get_json()
    result = client.get(f"/api/core/tasks/{sent['task_id']}/result/", headers=viewer)
    not_yet = client.get(f"/api/core/tasks/{waiting['task_id']}/result/", headers=viewer)

    assert sent["status"] == "PENDING"
    assert done["result"] == {"echo": ["hello"], "kwargs": {}}
    assert done["timestamp"].endswith("+00:00")
    assert done["duration"] >= 0
    assert [task["task_id"] for task in active["tasks"]] == [waiting["task_id"]]
    assert active["tasks"][0]["status"] == "SCHEDULED"
    assert (result.status_code, result.get_json()["result"]) == (200, {"echo": ["hello"], "kwargs": {}})
    assert (not_yet.status_code, not_yet.get_json()["status"]) == (202, "SCHEDULED")

    refused = client.post(f"/api/core/tasks/{waiting['task_id']}/revoke/", headers=viewer)
    revoked = client.post(f"/api/core/tasks/{waiting['task_id']}/revoke/", headers=admin)
    finished_one = client.post(f"/api/core/tasks/{sent['task_id']}/revoke/", headers=admin)

    assert refused.status_code == 403
    assert revoked.get_json() == {
        "task_id": waiting["task_id"],
        "revoked": True,
        "status": "REVOKED",
        "reason": "revoked while SCHEDULED; it will not run",
    }
    assert finished_one.status_code == 200
    assert finished_one.get_json()["revoked"] is False
    assert "SUCCESS" in finished_one.get_json()["reason"]

    stats = client.get("/api/core/tasks/stats/?window=600", headers=viewer).get_json()
    history = client.get("/api/core/tasks/history/?actor=test_task&limit=1", headers=viewer)
    second_page = client.get(
        f"/api/core/tasks/history/?actor=test_task&limit=1&cursor={history.get_json()['next_cursor']}",
        headers=viewer,
    ).get_json()
    workers = client.get("/api/core/workers/", headers=viewer).get_json()["workers"]
    queues = {
        queue["name"]: queue
        for queue in client.get("/api/core/workers/queues/", headers=viewer).get_json()["queues"]
    }

    test_task = next(actor for actor in stats["actors"] if actor["actor"] == "test_task")
    assert (test_task["enqueued"], test_task["succeeded"], test_task["revoked"]) == (2, 1, 1)
    assert [task["task_id"] for task in history.get_json()["tasks"] + second_page["tasks"]] == [
        waiting["task_id"],
        sent["task_id"],
    ]
    assert 'rel="next"' in history.headers["Link"]
    assert len(workers) == 1 and workers[0]["alive"] and workers[0]["last_heartbeat"]
    assert queues["default"]["consumers"] == 1
    assert queues["default"]["ready"] == 0


def test_a_chain_runs_its_steps_in_order(client, tokens, start_worker):
    start_worker()

    response = client.post(
        "/api/core/chains/",
        headers=tokens.admin,
        json={"steps": [{"task_name": "test_task", "args": ["first"]}, {"task_name": "test_task"}]},
    )
    first, second = response.get_json()["task_ids"]

    assert response.status_code == 202
    assert finished(client, tokens.viewer, second)["result"] == {
        "echo": [{"echo": ["first"], "kwargs": {}}],
        "kwargs": {},
    }
    assert client.get(f"/api/core/tasks/{first}/", headers=tokens.viewer).get_json()["pipeline"] == [
        "test_task"
    ]


def test_bulk_retry_dry_run_first_then_act_and_every_action_is_audited(client, tokens, start_worker):
    start_worker(JOBDECK_MAX_RETRIES="0")
    failed = [
        send(client, tokens.admin, "flaky", args=[f"bulk-{n}"], kwargs={"failures": 1}) for n in range(3)
    ]
    for task in failed:
        assert finished(client, tokens.viewer, task["task_id"])["status"] == "FAILURE"
    groups = client.get("/api/core/tasks/failures/", headers=tokens.viewer).get_json()["groups"]
    body = {"action": "retry", "actor": "flaky"}

    dry = client.post(
        "/api/core/tasks/bulk/", headers=tokens.admin, json={**body, "dry_run": True}
    ).get_json()
    real = client.post("/api/core/tasks/bulk/", headers=tokens.admin, json=body).get_json()
    refused = client.post(f"/api/core/tasks/{failed[0]['task_id']}/retry/", headers=tokens.admin)

    assert len(groups) == 1 and groups[0]["count"] == 3 and groups[0]["error_type"]
    assert (dry["matched"], dry["done"], sorted(dry["task_ids"])) == (
        3,
        0,
        sorted(t["task_id"] for t in failed),
    )
    assert (real["matched"], real["done"], sorted(real["task_ids"])) == (3, 3, sorted(dry["task_ids"]))
    assert refused.status_code == 409
    for task in failed:
        retried_as = client.get(f"/api/core/tasks/{task['task_id']}/", headers=tokens.viewer).get_json()[
            "retried_as"
        ]
        assert finished(client, tokens.viewer, retried_as)["status"] == "SUCCESS"

    entries = client.get("/api/core/audit/?limit=100", headers=tokens.admin).get_json()["entries"]
    actions = [(entry["action"], entry["outcome"]) for entry in entries]
    assert actions == [
        ("task.retry", "refused"),
        ("tasks.bulk_retry", "ok"),
        ("tasks.bulk_retry", "ok"),
        ("task.send", "ok"),
        ("task.send", "ok"),
        ("task.send", "ok"),
    ]
    assert {(entry["actor"], entry["source"]) for entry in entries} == {("admin-bot", "127.0.0.1")}
    assert entries[1]["details"] == {"dry_run": False, "matched": 3, "done": 3}
    assert client.get("/api/core/audit/", headers=tokens.viewer).status_code == 403


def test_reports_are_found_by_their_content_and_downloaded(client, tokens, start_worker, runtime):
    with make_session_factory(runtime.engine)() as session, session.begin():
        customer = add_customer(session, "grace@example.com", name="Grace Hopper")
        bill = add_bill(session, customer, "B-1", "99.00", "EUR")
        add_payment(session, bill, paid_at=datetime(2026, 6, 1, 4, tzinfo=UTC))
    start_worker()

    task = send(client, tokens.admin, "generate_daily_report", kwargs={"period_start": "2026-06-01"})
    assert finished(client, tokens.viewer, task["task_id"])["status"] == "SUCCESS"
    found = client.get("/api/core/reports/?q=hopper", headers=tokens.viewer).get_json()["reports"]
    missed = client.get("/api/core/reports/?q=lovelace", headers=tokens.viewer).get_json()["reports"]
    csv = client.get(f"/api/core/reports/{found[0]['id']}/download/", headers=tokens.viewer)
    html = client.get(f"/api/core/reports/{found[0]['id']}/download/?format=html", headers=tokens.viewer)
    unknown = client.get("/api/core/reports/999/download/", headers=tokens.viewer)

    assert [(report["kind"], report["period_start"]) for report in found] == [("daily", "2026-06-01")]
    assert missed == []
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert "Grace Hopper" in csv.get_data(as_text=True)
    assert "attachment" in csv.headers["Content-Disposition"]
    assert html.mimetype == "text/html" and "Grace Hopper" in html.get_data(as_text=True)
    assert unknown.status_code == 404


def test_an_export_is_listed_and_downloaded_whole(client, tokens, start_worker, runtime):
    with make_session_factory(runtime.engine)() as session, session.begin():
        add_customer(session, "ada@example.com")
    start_worker()

    task = send(client, tokens.admin, "export_data", args=["customers", "csv"])
    assert finished(client, tokens.viewer, task["task_id"])["status"] == "SUCCESS"
    [export] = client.get("/api/core/exports/", headers=tokens.viewer).get_json()["exports"]
    download = client.get(f"/api/core/exports/{export['id']}/download/", headers=tokens.viewer)

    assert (export["dataset"], export["state"], export["rows"]) == ("customers", "ready", 1)
    assert download.status_code == 200
    assert hashlib.sha256(download.get_data()).hexdigest() == export["sha256"]
    assert "ada@example.com" in download.get_data(as_text=True)
