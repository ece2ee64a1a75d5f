"""A worker SIGKILLed in the middle of send_bill_reminders: every reminder reaches the server at most once.

Real parts only: the worker processes, Redis, the SQLite database they share with the test, and an
SMTP server on loopback whose own log is the evidence.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from jobs.billing.models import Notification
from monitoring.actions import SUCCESS, TaskManager
from tests.conftest import wait_for
from tests.support.billing import add_bill, add_customer
from tests.support.smtp import smtp_server

pytestmark = pytest.mark.slow

REMINDERS = 30
WORKER_MODULES = ("jobs.billing.reminders", "jobs.billing.notifications.actors")


def seed_overdue_bills(sessions, count: int) -> None:
    with sessions.begin() as session:
        for index in range(count):
            customer = add_customer(
                session, f"customer{index}@example.com", locale=("en", "zh-CN")[index % 2]
            )
            add_bill(
                session,
                customer,
                f"INV-{index:04d}",
                due_at=datetime.now(UTC) - timedelta(days=5),
                status="overdue",
            )


def states(sessions) -> dict[str, int]:
    with sessions() as session:
        rows = session.execute(select(Notification.state, func.count()).group_by(Notification.state))
        return dict(rows.all())


def test_worker_killed_mid_send_never_delivers_a_reminder_twice(
    runtime, start_worker, worker_sessions, environment
):
    import jobs.billing.reminders  # noqa: F401  binds the actors to this test's broker

    seed_overdue_bills(worker_sessions, REMINDERS)
    with smtp_server() as smtp:
        mail = {"SMTP_URL": smtp.url, "JOBDECK_SMTP_RATE": "5"}
        first = start_worker(modules=WORKER_MODULES, **mail)

        # Given a worker sending 30 reminders at 5 a second
        manager = TaskManager(broker=runtime.broker)
        manager.send_task("send_bill_reminders", [], {"days_ahead": 3})
        wait_for(lambda: len(smtp.messages()) >= 8, timeout=30, interval=0.02)

        # When its worker process is killed without warning in the middle of the batch
        first.kill()
        accepted_before_restart = len(smtp.messages())
        assert accepted_before_restart < REMINDERS, "the kill came too late to test anything"

        # And a new worker takes the unacknowledged batch over once the old one's heartbeat stops
        start_worker(modules=WORKER_MODULES, **mail)
        wait_for(lambda: set(states(worker_sessions)) <= {"sent", "unknown"}, timeout=40, interval=0.2)

        # Then the server's own log shows every reminder once, or the row says `unknown`: never twice
        counts = smtp.message_id_counts()
        with worker_sessions() as session:
            rows = session.execute(select(Notification.state, Notification.message_id)).all()
        assert len(rows) == REMINDERS
        assert max(counts.values()) == 1, counts
        for state, message_id in rows:
            if state == "sent":
                assert counts[message_id] == 1
            else:
                assert state == "unknown" and counts.get(message_id, 0) <= 1
        assert states(worker_sessions).get("unknown", 0) <= 1  # only the one in flight at the kill
        assert len(counts) >= REMINDERS - 1

        # And running the job again the same day sends nothing more
        outcome = manager.wait_for_result(
            manager.send_task("send_bill_reminders", [], {"days_ahead": 3}), timeout=30
        )
        assert outcome.status == SUCCESS
        assert outcome.result["created"] == {"due_soon": 0, "overdue": 0}
        assert outcome.result["enqueued"] == 0
        assert smtp.message_id_counts() == counts
