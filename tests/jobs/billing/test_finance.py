"""The finance jobs on a real database and a real Redis: overdue bills, their reminders, monthly revenue."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import redis
from dramatiq import Message
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from jobs.billing.models import Bill, Customer, Notification, Payment, ReminderSent, Report
from jobs.billing.notifications.policy import OVERDUE_REMINDER_DAYS
from jobs.platform.errors import TransientError
from jobs.platform.locks import LockHeld, exclusive
from monitoring.actions import SUCCESS, TaskManager

SHANGHAI = ZoneInfo("Asia/Shanghai")
FIRE_TIME = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
PAST_DUE = 1_203  # enough for three batches of 500


def add_customers(engine, count: int = 3) -> None:
    with Session(engine) as session:
        session.execute(
            insert(Customer),
            [{"id": n, "name": f"Customer {n}", "email": f"c{n}@example.com"} for n in range(1, count + 1)],
        )
        session.commit()


def add_bills(engine, bills: list[dict]) -> None:
    """Insert bills given as {"status", "due_at", ...}; ids follow on from the highest one."""
    with Session(engine) as session:
        first_id = (session.scalar(select(func.max(Bill.id))) or 0) + 1
        rows = []
        for offset, bill in enumerate(bills):
            bill_id = first_id + offset
            rows.append(
                {
                    "id": bill_id,
                    "number": f"INV-{bill_id:06d}",
                    "customer_id": 1 + bill_id % 3,
                    "amount_minor": 100_00 + bill_id,
                    "currency": "CNY",
                    "issued_at": bill["due_at"] - timedelta(days=30),
                    "paid_at": None,
                    **bill,
                }
            )
        session.execute(insert(Bill), rows)
        session.commit()


@pytest.fixture
def billing(jobdeck):
    """1,203 pending bills past due at FIRE_TIME, plus bills the job must leave alone."""
    add_customers(jobdeck.engine)
    add_bills(
        jobdeck.engine,
        [{"status": "pending", "due_at": FIRE_TIME - timedelta(hours=n % 500 + 1)} for n in range(PAST_DUE)],
    )
    add_bills(
        jobdeck.engine,
        [
            {"status": "pending", "due_at": FIRE_TIME + timedelta(seconds=1)},  # not yet due
            {"status": "pending", "due_at": FIRE_TIME},  # due exactly now: not *past* due
            {"status": "paid", "due_at": FIRE_TIME - timedelta(days=3), "paid_at": FIRE_TIME - timedelta(4)},
            {"status": "cancelled", "due_at": FIRE_TIME - timedelta(days=3)},
        ],
    )  # fmt: skip
    return jobdeck


def enqueued_notification_ids(redis_url: str) -> list[int]:
    """Every notification id in a send_notification_batch message waiting on the email queue."""
    client = redis.Redis.from_url(redis_url)
    ids: list[int] = []
    for data in client.hvals("dramatiq:email.msgs"):
        message = Message.decode(data)
        assert message.actor_name == "send_notification_batch"
        ids.extend(message.args[0])
    return ids


def email_messages(redis_url: str) -> int:
    return redis.Redis.from_url(redis_url).hlen("dramatiq:email.msgs")


def overdue_reminders_per_bill(engine) -> Counter[int]:
    with Session(engine) as session:
        rows = session.scalars(select(Notification.bill_id).where(Notification.kind == "overdue"))
        return Counter(rows)


def overdue_bill_ids(engine) -> set[int]:
    with Session(engine) as session:
        return set(session.scalars(select(Bill.id).where(Bill.status == "overdue")))


def assert_every_overdue_bill_reminded_exactly_once(engine, redis_url: str) -> None:
    reminders = overdue_reminders_per_bill(engine)
    assert set(reminders) == overdue_bill_ids(engine)
    assert set(reminders.values()) == {1}
    with Session(engine) as session:
        notification_ids = sorted(
            session.scalars(select(Notification.id).where(Notification.kind == "overdue"))
        )
    assert sorted(enqueued_notification_ids(redis_url)) == notification_ids  # each enqueued once


# --- check_pending_bills --------------------------------------------------------------------------


def test_past_due_bills_become_overdue_and_are_reminded_once_in_batches(billing, redis_url):
    from jobs.billing.finance import check_pending_bills

    summary = check_pending_bills.fn(fire_time=FIRE_TIME.isoformat())

    assert summary == {
        "fire_time": "2026-03-10T02:00:00+00:00",
        "marked_overdue": PAST_DUE,
        "reminders_created": PAST_DUE,
        "reminders_enqueued": PAST_DUE,
    }
    assert len(overdue_bill_ids(billing.engine)) == PAST_DUE
    with Session(billing.engine) as session:
        statuses = dict(session.execute(select(Bill.status, func.count()).group_by(Bill.status)).all())
        key = session.scalar(select(Notification.dedup_key).where(Notification.bill_id == 1))
    assert statuses == {"overdue": PAST_DUE, "pending": 2, "paid": 1, "cancelled": 1}
    assert key == "bill:1:overdue:1"  # its first reminder step: day 1 of being overdue
    assert email_messages(redis_url) == 3  # 500 + 500 + 203 ids, not one message per bill
    assert_every_overdue_bill_reminded_exactly_once(billing.engine, redis_url)


def test_a_second_run_changes_nothing(billing, redis_url):
    from jobs.billing.finance import check_pending_bills

    check_pending_bills.fn(fire_time=FIRE_TIME.isoformat())
    second = check_pending_bills.fn(fire_time=FIRE_TIME.isoformat())  # delivered twice

    assert (second["marked_overdue"], second["reminders_created"], second["reminders_enqueued"]) == (0, 0, 0)
    assert email_messages(redis_url) == 3
    assert_every_overdue_bill_reminded_exactly_once(billing.engine, redis_url)


def test_the_fire_time_not_the_clock_decides_what_is_past_due(billing):
    from jobs.billing.finance import check_pending_bills

    early = check_pending_bills.fn(fire_time=(FIRE_TIME - timedelta(hours=250)).isoformat())

    assert early["marked_overdue"] == PAST_DUE - 250 * 2 - 203  # due more than 250 hours before FIRE_TIME
    assert early["reminders_created"] == early["marked_overdue"]


def step_reached(due_at: datetime, fire_time: datetime) -> int | None:
    """The policy's overdue step at ``fire_time``, worked out in Python: the last day begun."""
    begun = [day for day in OVERDUE_REMINDER_DAYS if due_at < fire_time - timedelta(days=day - 1)]
    return begun[-1] if begun else None


def test_next_day_only_the_newly_overdue_bills_and_those_reaching_a_step_are_reminded(billing, redis_url):
    from jobs.billing.finance import check_pending_bills

    check_pending_bills.fn(fire_time=FIRE_TIME.isoformat())
    next_fire = FIRE_TIME + timedelta(days=1)
    next_day = check_pending_bills.fn(fire_time=next_fire.isoformat())

    # The bill due exactly at FIRE_TIME and the one due a second later (their day 1), and the bills
    # whose day 7 or 14 began since yesterday; none is reminded of a step it had.
    with Session(billing.engine) as session:
        due_times = session.scalars(select(Bill.due_at).where(Bill.status == "overdue")).all()
    new_steps = sum(
        step_reached(due_at, next_fire) != step_reached(due_at, FIRE_TIME) for due_at in due_times
    )
    assert next_day["marked_overdue"] == 2
    assert next_day["reminders_created"] == next_day["reminders_enqueued"] == new_steps == 2 + 120
    with Session(billing.engine) as session:
        steps = session.execute(select(ReminderSent.bill_id, ReminderSent.step)).all()
    assert len(steps) == len(set(steps)) == PAST_DUE + new_steps


def test_crash_between_commit_and_enqueue_is_repaired_by_the_next_run(billing, redis_url, monkeypatch):
    import jobs.billing.finance
    from jobs.billing.finance import check_pending_bills

    def worker_dies_before_enqueueing(session):
        raise SystemExit("worker killed between the commit and the enqueue")

    monkeypatch.setattr(jobs.billing.finance, "enqueue_queued_reminders", worker_dies_before_enqueueing)
    with pytest.raises(SystemExit):
        check_pending_bills.fn(fire_time=FIRE_TIME.isoformat())
    assert len(overdue_bill_ids(billing.engine)) == PAST_DUE  # the commit happened
    assert email_messages(redis_url) == 0  # the enqueue did not
    monkeypatch.undo()

    repair = check_pending_bills.fn(fire_time=FIRE_TIME.isoformat())

    assert (repair["marked_overdue"], repair["reminders_created"], repair["reminders_enqueued"]) == (
        0,
        0,
        PAST_DUE,
    )
    assert_every_overdue_bill_reminded_exactly_once(billing.engine, redis_url)


def test_crash_after_marking_overdue_before_any_reminder_is_repaired(billing, redis_url):
    from jobs.billing.finance import check_pending_bills, mark_overdue_bills

    with billing.sessions() as session:  # a run that died right after its status UPDATE committed
        assert mark_overdue_bills(session, as_of=FIRE_TIME) == PAST_DUE
        session.commit()

    repair = check_pending_bills.fn(fire_time=FIRE_TIME.isoformat())

    assert (repair["marked_overdue"], repair["reminders_created"], repair["reminders_enqueued"]) == (
        0,
        PAST_DUE,
        PAST_DUE,
    )
    assert_every_overdue_bill_reminded_exactly_once(billing.engine, redis_url)


def test_an_overlapping_run_is_retried_later_not_skipped(billing, redis_url):
    from jobs.billing.finance import check_pending_bills

    with exclusive("check_pending_bills"), pytest.raises(LockHeld, match="held by"):
        check_pending_bills.fn(fire_time=FIRE_TIME.isoformat())
    after = check_pending_bills.fn(fire_time=FIRE_TIME.isoformat())

    assert issubclass(LockHeld, TransientError)  # JobRetries tries it again later
    assert after["marked_overdue"] == PAST_DUE


# --- calculate_monthly_revenue --------------------------------------------------------------------


@pytest.fixture
def payments(jobdeck):
    """February 2026 (Shanghai): 300 CNY payments of 0.10 and two USD payments; one in March."""
    add_customers(jobdeck.engine)
    paid = datetime(2026, 2, 14, 12, tzinfo=SHANGHAI)
    add_bills(jobdeck.engine, [{"status": "paid", "due_at": paid, "paid_at": paid} for _ in range(303)])
    march_first = datetime(2026, 3, 1, tzinfo=SHANGHAI)  # exactly: March, not February
    rows = [payment(n, 1, 10, "CNY", paid) for n in range(1, 301)]
    rows += [payment(301, 2, 1999, "USD", paid), payment(302, 2, 1, "USD", paid)]
    rows += [payment(303, 3, 5000, "CNY", march_first)]
    with Session(jobdeck.engine) as session:
        session.execute(insert(Payment), rows)
        session.commit()
    return jobdeck


def payment(bill_id: int, customer_id: int, amount_minor: int, currency: str, paid_at: datetime) -> dict:
    return {
        "bill_id": bill_id,
        "customer_id": customer_id,
        "amount_minor": amount_minor,
        "currency": currency,
        "paid_at": paid_at,
        "reference": f"P{bill_id}",
    }


def revenue_reports(engine) -> list[Report]:
    with Session(engine) as session:
        return list(session.scalars(select(Report).where(Report.kind == "monthly_revenue")))


def test_monthly_revenue_defaults_to_the_month_before_the_fire_time(payments):
    from jobs.billing.finance import calculate_monthly_revenue

    summary = calculate_monthly_revenue.fn(fire_time="2026-03-01T01:00:00Z")  # 1 March 09:00 local

    assert summary["period_start"] == "2026-02-01" and summary["period_end"] == "2026-03-01"
    assert summary["revenue"] == {"CNY": "30.00", "USD": "20.00"}
    assert summary["payments"] == 302
    [report] = revenue_reports(payments.engine)
    assert report.id == summary["report_id"]
    assert report.data["revenue"] == {"CNY": "30.00", "USD": "20.00"}
    assert report.data["payments"] == {"CNY": 300, "USD": 2}
    assert (str(report.period_start), report.timezone) == ("2026-02-01", "Asia/Shanghai")


def test_rerunning_a_month_replaces_its_report_never_doubles(payments):
    from jobs.billing.finance import calculate_monthly_revenue

    first = calculate_monthly_revenue.fn(year=2026, month=2)
    second = calculate_monthly_revenue.fn(year=2026, month=2)
    march = calculate_monthly_revenue.fn(year=2026, month=3)

    assert second == first
    assert march["revenue"] == {"CNY": "50.00"}
    reports = revenue_reports(payments.engine)
    assert len(reports) == 2
    assert {report.id for report in reports} == {first["report_id"], march["report_id"]}


def test_monthly_revenue_refuses_half_a_month(jobdeck):
    from jobs.billing.finance import calculate_monthly_revenue
    from jobs.platform.errors import PermanentError

    with pytest.raises(PermanentError, match="both year and month"):
        calculate_monthly_revenue.fn(year=2026)
    with pytest.raises(PermanentError, match="no such month"):
        calculate_monthly_revenue.fn(year=2026, month=13)


# --- through a real worker --------------------------------------------------------------------------


@pytest.mark.slow
def test_finance_jobs_through_a_real_worker(runtime, worker_engine, start_worker, redis_url):
    import jobs.billing.finance  # noqa: F401  declares the actors on this process's broker, for send_task

    add_customers(runtime.engine)
    add_bills(
        runtime.engine, [{"status": "pending", "due_at": FIRE_TIME - timedelta(days=1)} for _ in range(7)]
    )
    start_worker(modules=("jobs.billing.finance",))
    manager = TaskManager(broker=runtime.broker)

    overdue = manager.wait_for_result(
        manager.send_task("check_pending_bills", [], {"fire_time": FIRE_TIME.isoformat()}), timeout=30
    )
    revenue = manager.wait_for_result(
        manager.send_task("calculate_monthly_revenue", [], {"year": 2026, "month": 2}), timeout=30
    )

    assert overdue.status == SUCCESS, overdue.error
    assert overdue.result == {
        "fire_time": "2026-03-10T02:00:00+00:00",
        "marked_overdue": 7,
        "reminders_created": 7,
        "reminders_enqueued": 7,
    }
    assert revenue.status == SUCCESS, revenue.error
    assert revenue.result["revenue"] == {} and revenue.result["period_start"] == "2026-02-01"
    assert len(overdue_reminders_per_bill(runtime.engine)) == 7
