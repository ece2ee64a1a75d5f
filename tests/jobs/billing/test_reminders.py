"""send_bill_reminders on real databases, sending through a real SMTP server on loopback.

The job runs in this process against the test's database; the batches it enqueues are taken off
the real Redis queue and run here too, so every backend (SQLite, PostgreSQL) is covered.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from jobs.billing.models import Notification
from jobs.billing.reminders import send_bill_reminders
from jobs.platform.database import make_session_factory
from tests.jobs.billing.conftest import run_queued_batches
from tests.support.billing import add_bill, add_customer

# 09:00 on 10 March 2025 in Shanghai.
FIRE_TIME = datetime(2025, 3, 10, 1, 0, tzinfo=UTC)


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


def test_the_next_days_remind_no_bill_again_until_its_next_step(job_runtime, smtp) -> None:
    # Given the bills reminded on the 10th (the overdue one on its day 5: its day-1 step)
    seed(job_runtime)
    send_bill_reminders.fn(days_ahead=3, fire_time=FIRE_TIME.isoformat())

    # When the job runs on the next days
    next_day = send_bill_reminders.fn(days_ahead=3, fire_time=(FIRE_TIME + timedelta(days=1)).isoformat())
    day_7 = send_bill_reminders.fn(days_ahead=3, fire_time=(FIRE_TIME + timedelta(days=3)).isoformat())

    # Then nothing the next day (due soon is told once, day 1 was sent); on the overdue bill's day 7
    # its day-7 reminder, and INV-3 (due in five days on the 10th) is now due soon
    assert next_day["local_date"] == "2025-03-11"
    assert next_day["created"] == {"due_soon": 0, "overdue": 0}
    assert day_7["created"] == {"due_soon": 1, "overdue": 1}
