"""The reminder policy, once and only once: due soon once; overdue on days 1, 7, 14 and 30; never twice.

The jobs run in this process on real databases (SQLite, PostgreSQL) at simulated fire times, twice a
day for six weeks; the e-mail batches they enqueue are taken off the real Redis queue and sent to a
real SMTP server on loopback, whose log is the evidence.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from jobs.billing.finance import check_pending_bills
from jobs.billing.models import Notification
from jobs.billing.notifications.actors import cleanup_old_notifications
from jobs.billing.reminders import send_bill_reminders
from jobs.platform.database import make_session_factory
from tests.jobs.billing.conftest import run_queued_batches
from tests.support.billing import add_bill, add_customer

DUE_AT = datetime(2025, 3, 12, 16, 30, tzinfo=UTC)  # 00:30 on 13 March in Shanghai
DAY = timedelta(days=1)


def fire(runtime, fire_time: datetime) -> dict[str, int]:
    """Run the overdue check and the reminder job at ``fire_time``, send their mail; count what was new."""
    overdue = check_pending_bills.fn(fire_time=fire_time.isoformat())
    reminders = send_bill_reminders.fn(days_ahead=3, fire_time=fire_time.isoformat())
    run_queued_batches(runtime)
    return {
        "overdue": overdue["reminders_created"] + reminders["created"]["overdue"],
        "due_soon": reminders["created"]["due_soon"],
    }


def fire_times(first: datetime, last: datetime) -> list[datetime]:
    """09:00 and 21:00 in Shanghai (01:00 and 13:00 UTC) every day from ``first`` to ``last``."""
    times, moment = [], first.replace(hour=1, minute=0)
    while moment <= last:
        times += [moment, moment + timedelta(hours=12)]
        moment += DAY
    return times


def day_overdue(fire_time: datetime) -> int:
    """Which day of being overdue ``fire_time`` falls on: day 1 is the first 24 hours after the due time."""
    return (fire_time - DUE_AT) // DAY + 1


def seed_bill(runtime) -> int:
    with make_session_factory(runtime.engine).begin() as session:
        return add_bill(session, add_customer(session, "ada@example.com"), "INV-1", due_at=DUE_AT).id


def reminder_kinds_on_the_server(smtp) -> list[str]:
    subjects = [str(message.message["Subject"]) for message in smtp.messages()]
    return sorted("overdue" if subject.endswith("is overdue") else "due_soon" for subject in subjects)


def test_a_bill_overdue_for_forty_days_gets_the_day_1_7_14_30_reminders_once_each(job_runtime, smtp):
    # Given a bill due on 13 March (Shanghai)
    seed_bill(job_runtime)

    # When the jobs fire twice a day from five days before it falls due to forty days after
    created = {fired: fire(job_runtime, fired) for fired in fire_times(DUE_AT - 5 * DAY, DUE_AT + 40 * DAY)}

    # Then it was reminded once that it was due soon, and overdue on days 1, 7, 14 and 30, once each
    due_soon = [fired for fired, counts in created.items() for _ in range(counts["due_soon"])]
    overdue = [fired for fired, counts in created.items() for _ in range(counts["overdue"])]
    assert [day_overdue(fired) for fired in overdue] == [1, 7, 14, 30]
    assert len(due_soon) == 1 and DUE_AT - 3 * DAY <= due_soon[0] < DUE_AT
    # And the mail server took exactly those five e-mails, each once
    counts = smtp.message_id_counts()
    assert len(counts) == 5 and set(counts.values()) == {1}
    assert reminder_kinds_on_the_server(smtp) == ["due_soon", "overdue", "overdue", "overdue", "overdue"]


def test_a_step_already_sent_is_not_sent_again_after_old_notifications_are_cleaned_up(job_runtime, smtp):
    # Given a bill ten days overdue, reminded (its day-7 reminder)
    seed_bill(job_runtime)
    tenth_day = DUE_AT + 9 * DAY + timedelta(hours=9)
    assert fire(job_runtime, tenth_day)["overdue"] == 1

    # When the clean-up deletes every sent notification
    far_future = datetime.now(UTC) + timedelta(days=200)
    cleaned = cleanup_old_notifications.fn(days=90, fire_time=far_future.isoformat())
    assert cleaned["deleted"] == 1
    with make_session_factory(job_runtime.engine)() as session:
        assert session.scalars(select(Notification)).all() == []

    # Then the jobs, firing again that day and the days after, remind it of nothing already sent
    later = [fire(job_runtime, fired)["overdue"] for fired in fire_times(tenth_day, DUE_AT + 12 * DAY)]
    assert sum(later) == 0
    assert len(smtp.messages()) == 1
    # And the next step still comes on its day
    assert fire(job_runtime, DUE_AT + 13 * DAY + timedelta(hours=9))["overdue"] == 1
