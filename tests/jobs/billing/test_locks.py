"""The one-at-a-time lock of the revenue and report jobs: a dead holder is taken over, a live one waits.

Real parts: worker processes SIGKILLed while they hold a job's lock, Redis, and the database (SQLite
and PostgreSQL) the worker writes its report row to. A run never returns "skipped" as a success: the
task ends SUCCESS with the real figures, or it is retried.
"""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from jobs.billing.finance import calculate_monthly_revenue
from jobs.billing.models import Report
from jobs.billing.reports.actors import generate_monthly_report
from jobs.platform.errors import TransientError
from jobs.platform.keys import LOCK_PREFIX
from jobs.platform.locks import exclusive
from monitoring.actions import SUCCESS, TaskManager
from tests.conftest import wait_for
from tests.support.billing import add_bill, add_customer, add_payment, report_writes_blocked

SHANGHAI = ZoneInfo("Asia/Shanghai")
PAID_AT = datetime(2026, 2, 14, 12, tzinfo=SHANGHAI)
#: The hard time limit the old lock lived for after its holder died; the takeover must beat it by far.
TIME_LIMITS = {"JOBDECK_SOFT_TIME_LIMIT": "50", "JOBDECK_TIME_LIMIT": "60"}
TAKEN_OVER_WITHIN_S = 20

#: job → (actor, kwargs, its lock's name, the report kind it stores)
JOBS = {
    "revenue": (
        "calculate_monthly_revenue",
        {"year": 2026, "month": 2},
        "calculate_monthly_revenue:2026-02",
        "monthly_revenue",
    ),
    "report": (
        "generate_monthly_report",
        {"period_start": "2026-02-01"},
        "generate_monthly_report:2026-01-31T16:00",  # 1 February, midnight in Shanghai, in UTC
        "monthly",
    ),
}


#: The actors, to call in this process.
ACTORS = {
    "calculate_monthly_revenue": calculate_monthly_revenue,
    "generate_monthly_report": generate_monthly_report,
}


def seed_february(engine) -> None:
    """Two bills of February 2026 (Shanghai), paid 1,234.50 and 10.00 CNY."""
    with Session(engine) as session:
        customer = add_customer(session, "ada@example.com")
        for number, amount in (("INV-1", "1234.50"), ("INV-2", "10.00")):
            bill = add_bill(session, customer, number, amount, "CNY", due_at=PAID_AT)
            add_payment(session, bill, paid_at=PAID_AT)
        session.commit()


def stored_reports(engine, kind: str) -> list[Report]:
    with Session(engine) as session:
        return list(session.scalars(select(Report).where(Report.kind == kind)))


@pytest.fixture
def worker_database(database_url, engine):
    """The test's database (SQLite or PostgreSQL), migrated, seeded, for worker processes to use."""
    seed_february(engine)
    return {**TIME_LIMITS, "DATABASE_URL": database_url}


@pytest.mark.slow
@pytest.mark.parametrize("job", sorted(JOBS))
def test_a_run_killed_holding_the_lock_is_taken_over_within_seconds(
    job, runtime, start_worker, worker_database, database_url, engine
):
    actor, kwargs, lock_name, kind = JOBS[job]
    manager = TaskManager(broker=runtime.broker)
    first = start_worker(**worker_database)

    # Given a worker inside the job's run, holding its lock, when it is killed without warning
    with report_writes_blocked(database_url):
        message = manager.send_task(actor, [], kwargs)
        wait_for(lambda: runtime.broker.client.exists(LOCK_PREFIX + lock_name), timeout=30, interval=0.05)
        time.sleep(0.5)  # it is waiting to store its row now
        first.kill()
    killed_at = time.monotonic()

    # When another worker takes the message over (Dramatiq redelivers a dead worker's messages)
    start_worker(**worker_database)
    outcome = manager.wait_for_result(message, timeout=TAKEN_OVER_WITHIN_S + 10)

    # Then the run succeeded with the real figures, within seconds rather than the hard time limit
    assert outcome.status == SUCCESS, outcome.error
    assert "skipped" not in outcome.result, outcome.result
    assert outcome.result["revenue"] == {"CNY": "1244.50"}
    assert time.monotonic() - killed_at < TAKEN_OVER_WITHIN_S
    [report] = stored_reports(engine, kind)
    assert report.id == outcome.result["report_id"]


@pytest.mark.parametrize("job", sorted(JOBS))
def test_a_run_that_overlaps_a_live_one_is_retried_never_skipped(job, jobdeck):
    # Given a live run of the job holding its lock
    actor, kwargs, lock_name, kind = JOBS[job]
    seed_february(jobdeck.engine)
    function = ACTORS[actor]

    # When a second run of the same period starts
    with exclusive(lock_name), pytest.raises(TransientError, match="held by"):
        function.fn(**kwargs)

    # Then it raised a retryable error and stored nothing; once the lock is free it runs
    assert stored_reports(jobdeck.engine, kind) == []
    assert function.fn(**kwargs)["revenue"] == {"CNY": "1244.50"}


@pytest.mark.slow
def test_a_worker_run_that_overlaps_a_live_one_runs_once_the_lock_is_free(
    runtime, start_worker, worker_database, engine
):
    actor, kwargs, lock_name, kind = JOBS["revenue"]
    manager = TaskManager(broker=runtime.broker)
    start_worker(**worker_database)

    # Given this process holding the revenue lock for three seconds (a live run)
    with exclusive(lock_name):
        message = manager.send_task(actor, [], kwargs)
        time.sleep(3)
        assert stored_reports(engine, kind) == []  # the worker's run did not go ahead meanwhile

    # Then the worker's run was retried, and succeeded with the real figure once the lock was free
    outcome = manager.wait_for_result(message, timeout=30)
    assert outcome.status == SUCCESS, outcome.error
    assert outcome.result["revenue"] == {"CNY": "1244.50"}
    timeline = runtime.monitor.get_task_status(message.message_id).timeline
    assert "RETRY" in [event["state"] for event in timeline], timeline
