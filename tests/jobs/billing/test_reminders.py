"""send_bill_reminders on real databases, sending through a real SMTP server on loopback.

The job runs in this process against the test's database; the batches it enqueues are taken off
the real Redis queue and run here too, so every backend (SQLite, PostgreSQL) is covered.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from dramatiq import Message
from sqlalchemy import select

from jobs.billing.models import Notification
from jobs.billing.notifications.actors import send_notification_batch
from jobs.billing.reminders import send_bill_reminders
from jobs.platform.database import make_session_factory
from tests.jobs.conftest import started
from tests.support.billing import add_bill, add_customer
from tests.support.smtp import smtp_server

# 09:00 on 10 March 2025 in Shanghai.
FIRE_TIME = datetime(2025, 3, 10, 1, 0, tzinfo=UTC)


@pytest.fixture
def smtp():
    with smtp_server() as server:
        yield server


@pytest.fixture
def job_runtime(settings, database_url, engine, smtp):
    """A runtime on the test's database and SMTP server, as a worker would have."""
    yield from started(settings, database_url=database_url, smtp_url=smtp.url, smtp_rate=1000.0)


def run_queued_batches(runtime) -> int:
    """Take the send_notification_batch messages off the email queue and run them here; return how many."""
    client = runtime.broker.client
    payloads = client.hvals("dramatiq:email.msgs")
    client.delete("dramatiq:email", "dramatiq:email.msgs")
    for payload in payloads:
        message = Message.decode(payload)
        assert message.actor_name == "send_notification_batch"
        send_notification_batch.fn(*message.args, **message.kwargs)
    return len(payloads)


def seed(runtime) -> dict[str, int]:
    sessions = make_session_factory(runtime.engine)
    with sessions.begin() as session:
        customer = add_customer(session, "ada@example.com")
        zh = add_customer(session, "li.na@example.com", name="李娜", locale="zh-CN")
        bills = {
            "due_in_2_days": add_bill(session, customer, "INV-1", due_at=FIRE_TIME + timedelta(days=2)),
            # 23:30 on 13 March in Shanghai: still within 3 local days of the 10th.
            "due_late_on_day_3": add_bill(
                session, zh, "INV-2", due_at=datetime(2025, 3, 13, 15, 30, tzinfo=UTC)
            ),
            "due_in_5_days": add_bill(session, customer, "INV-3", due_at=FIRE_TIME + timedelta(days=5)),
            "paid_due_soon": add_bill(
                session, customer, "INV-4", due_at=FIRE_TIME + timedelta(days=1), status="paid"
            ),
            "overdue": add_bill(session, zh, "INV-5", due_at=FIRE_TIME - timedelta(days=4), status="overdue"),
        }
        return {name: bill.id for name, bill in bills.items()}


def test_reminders_are_created_sent_and_a_second_run_the_same_day_does_nothing(job_runtime, smtp) -> None:
    # Given bills due soon, later, paid and overdue
    bills = seed(job_runtime)

    # When the job runs at its fire time and its e-mail batches are worked off
    first = send_bill_reminders.fn(days_ahead=3, fire_time=FIRE_TIME.isoformat())
    batches = run_queued_batches(job_runtime)

    # Then the bills due within three local days and the overdue one are reminded, once each
    assert first == {"local_date": "2025-03-10", "created": {"due_soon": 2, "overdue": 1}, "enqueued": 3}
    assert batches == 1
    sessions = make_session_factory(job_runtime.engine)
    with sessions() as session:
        rows = session.execute(select(Notification.bill_id, Notification.kind, Notification.state)).all()
    assert sorted(rows) == sorted(
        [
            (bills["due_in_2_days"], "due_soon", "sent"),
            (bills["due_late_on_day_3"], "due_soon", "sent"),
            (bills["overdue"], "overdue", "sent"),
        ]
    )
    counts = smtp.message_id_counts()
    assert len(counts) == 3 and set(counts.values()) == {1}
    subjects = sorted(str(message.message["Subject"]) for message in smtp.messages())
    assert subjects == [
        "Bill INV-1 is due on 12 March 2025",
        "账单 INV-2 将于 2025年3月13日到期",
        "账单 INV-5 已逾期",
    ]

    # When it runs again the same local day (a retry, a double fire)
    second = send_bill_reminders.fn(days_ahead=3, fire_time=(FIRE_TIME + timedelta(hours=10)).isoformat())

    # Then nothing is created, enqueued or sent
    assert second == {"local_date": "2025-03-10", "created": {"due_soon": 0, "overdue": 0}, "enqueued": 0}
    assert run_queued_batches(job_runtime) == 0
    assert smtp.message_id_counts() == counts


def test_a_run_whose_enqueue_was_lost_is_repaired_by_the_next_run(job_runtime, smtp) -> None:
    # Given a first run whose e-mail messages never reached a worker (lost with Redis, say)
    seed(job_runtime)
    send_bill_reminders.fn(days_ahead=3, fire_time=FIRE_TIME.isoformat())
    job_runtime.broker.client.delete("dramatiq:email", "dramatiq:email.msgs")
    sessions = make_session_factory(job_runtime.engine)
    with sessions.begin() as session:
        # ...more than the re-dispatch interval ago.
        for row in session.scalars(select(Notification)):
            row.enqueued_at = datetime.now(UTC) - timedelta(minutes=11)

    # When the job runs again the same day
    again = send_bill_reminders.fn(days_ahead=3, fire_time=FIRE_TIME.isoformat())
    run_queued_batches(job_runtime)

    # Then nothing new is created, but the stranded reminders go out, once each
    assert again["created"] == {"due_soon": 0, "overdue": 0}
    assert again["enqueued"] == 3
    assert sorted(smtp.message_id_counts().values()) == [1, 1, 1]


def test_the_next_local_day_reminds_overdue_bills_again(job_runtime, smtp) -> None:
    seed(job_runtime)
    send_bill_reminders.fn(days_ahead=3, fire_time=FIRE_TIME.isoformat())

    next_day = send_bill_reminders.fn(days_ahead=3, fire_time=(FIRE_TIME + timedelta(days=1)).isoformat())

    assert next_day["local_date"] == "2025-03-11"
    assert next_day["created"]["overdue"] == 1
