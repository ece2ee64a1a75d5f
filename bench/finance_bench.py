"""Time the finance jobs at a million rows on a fresh SQLite file and a real Redis (bars: < 2 s each).

1. ``check_pending_bills`` over 1,000,000 bills of which 10,000 are pending past due (and 20,000
   were already overdue and reminded), enqueueing their reminders in batches included.
2. ``calculate_monthly_revenue`` over 1,000,000 payments, all in one month.

Run: ``.venv/bin/python bench/finance_bench.py [--keep]``
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import redis

from jobs.platform.database import make_engine, upgrade
from jobs.platform.redis_server import start_embedded_redis
from jobs.platform.settings import load_settings

BAR_SECONDS = 2.0
BILLS = 1_000_000
PAYMENTS = 1_000_000
CUSTOMERS = 50_000
NEWLY_PAST_DUE = 10_000
ALREADY_OVERDUE = 20_000
NOT_YET_DUE = 40_000
CHUNK = 50_000
ZONE = ZoneInfo("Asia/Shanghai")
FIRE_TIME = datetime(2026, 3, 10, 2, tzinfo=UTC)
#: Every payment falls in February 2026, Shanghai time.
REVENUE_MONTH = (2026, 2)


def main(argv: list[str] | None = None) -> int:
    """Build the data, run both jobs, print each figure against its bar; exit 1 if a bar is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the database file and print its path")
    args = parser.parse_args(argv)

    directory = Path(tempfile.mkdtemp(prefix="jobdeck-finance-bench-"))
    database_url = f"sqlite:///{directory / 'bench.sqlite3'}"
    redis_url = start_embedded_redis(directory / "redis", persistent=False)
    try:
        started = time.perf_counter()
        build_database(database_url)
        print(f"built {BILLS:,} bills and {PAYMENTS:,} payments in {time.perf_counter() - started:.1f} s")
        results = run_jobs(database_url, redis_url, directory)
    finally:
        redis.Redis.from_url(redis_url).shutdown(nosave=True)
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
    if args.keep:
        print(f"database kept at {database_url}")
    return 0 if all(seconds < BAR_SECONDS for seconds in results) else 1


def run_jobs(database_url: str, redis_url: str, directory: Path) -> list[float]:
    from jobs.runtime import start

    settings = load_settings(
        {"REDIS_URL": redis_url, "DATABASE_URL": database_url, "JOBDECK_VAR_DIR": str(directory / "var")},
        dotenv=False,
    )
    runtime = start(settings)
    from jobs.billing.finance import calculate_monthly_revenue, check_pending_bills

    started = time.perf_counter()
    overdue = check_pending_bills.fn(fire_time=FIRE_TIME.isoformat())
    overdue_seconds = time.perf_counter() - started
    messages = runtime.broker.client.hlen("dramatiq:email.msgs")
    assert overdue["marked_overdue"] == overdue["reminders_enqueued"] == NEWLY_PAST_DUE, overdue
    report("check_pending_bills", overdue_seconds, f"{overdue} in {messages} messages")

    started = time.perf_counter()
    revenue = calculate_monthly_revenue.fn(year=REVENUE_MONTH[0], month=REVENUE_MONTH[1])
    revenue_seconds = time.perf_counter() - started
    assert revenue["payments"] == PAYMENTS, revenue
    report(
        "calculate_monthly_revenue", revenue_seconds, f"{revenue['payments']:,} payments {revenue['revenue']}"
    )

    started = time.perf_counter()
    calculate_monthly_revenue.fn(year=REVENUE_MONTH[0], month=REVENUE_MONTH[1])
    report("calculate_monthly_revenue, re-run", time.perf_counter() - started, "replaces the report")
    return [overdue_seconds, revenue_seconds]


def report(name: str, seconds: float, detail: str) -> None:
    verdict = "PASS" if seconds < BAR_SECONDS else "FAIL"
    print(f"{name}: {seconds:.3f} s (bar < {BAR_SECONDS:.0f} s) {verdict}  [{detail}]")


# --- The data set ---------------------------------------------------------------------------------


def build_database(database_url: str) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("PRAGMA cache_size=-262144")
            insert_rows(
                connection, "customers", ("id", "name", "email", "locale", "created_at"), customer_rows()
            )
            bill_columns = ("id", "number", "customer_id", "amount_minor", "currency", "issued_at", "due_at",
                            "status", "paid_at")  # fmt: skip
            insert_rows(connection, "bills", bill_columns, bill_rows())
            payment_columns = (
                "id",
                "bill_id",
                "customer_id",
                "amount_minor",
                "currency",
                "paid_at",
                "reference",
            )
            insert_rows(connection, "payments", payment_columns, payment_rows())
            notification_columns = ("id", "customer_id", "bill_id", "kind", "state", "dedup_key", "subject",
                                    "context", "created_at", "enqueued_at")  # fmt: skip
            insert_rows(connection, "notifications", notification_columns, reminded_rows())
            # Those reminders reached the day-30 step, so none is owed again at the fire time.
            insert_rows(
                connection, "reminders_sent", ("bill_id", "kind", "step", "created_at"), reminded_steps()
            )
            connection.exec_driver_sql("ANALYZE")
    finally:
        engine.dispose()


def insert_rows(connection, table: str, columns: tuple[str, ...], rows: Iterator[tuple]) -> None:
    statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    chunk: list[tuple] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK:
            connection.exec_driver_sql(statement, chunk)
            chunk = []
    if chunk:
        connection.exec_driver_sql(statement, chunk)


def sqlite_time(moment: datetime) -> str:
    # How UTCDateTime stores a time in SQLite: UTC wall time, as text.
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def customer_rows() -> Iterator[tuple]:
    created = sqlite_time(FIRE_TIME - timedelta(days=800))
    for n in range(1, CUSTOMERS + 1):
        yield (n, f"Customer {n}", f"customer.{n}@example.com", "en" if n % 3 else "zh-CN", created)


def bill_status(bill_id: int) -> tuple[str, datetime]:
    """Bills 1..10,000: pending past due; then 20,000 overdue, 40,000 pending not yet due; the rest paid."""
    if bill_id <= NEWLY_PAST_DUE:
        return "pending", FIRE_TIME - timedelta(minutes=bill_id % 1440 + 1)
    if bill_id <= NEWLY_PAST_DUE + ALREADY_OVERDUE:
        return "overdue", FIRE_TIME - timedelta(days=40 + bill_id % 100)
    if bill_id <= NEWLY_PAST_DUE + ALREADY_OVERDUE + NOT_YET_DUE:
        return "pending", FIRE_TIME + timedelta(days=1 + bill_id % 30)
    return "paid", FIRE_TIME - timedelta(days=bill_id % 300)


def bill_rows() -> Iterator[tuple]:
    currencies = ("CNY", "USD", "JPY")
    for bill_id in range(1, BILLS + 1):
        status, due_at = bill_status(bill_id)
        paid_at = sqlite_time(due_at - timedelta(days=2)) if status == "paid" else None
        yield (
            bill_id,
            f"INV-{bill_id:09d}",
            bill_id % CUSTOMERS + 1,
            1_000 + bill_id % 997 * 13,
            currencies[bill_id % 3],
            sqlite_time(due_at - timedelta(days=30)),
            sqlite_time(due_at),
            status,
            paid_at,
        )


def payment_rows() -> Iterator[tuple]:
    currencies = ("CNY", "USD", "JPY")
    month_start = datetime(*REVENUE_MONTH, 1, tzinfo=ZONE)
    seconds_in_month = 28 * 86_400
    first_paid_bill = NEWLY_PAST_DUE + ALREADY_OVERDUE + NOT_YET_DUE + 1
    paid_bills = BILLS - first_paid_bill + 1
    for n in range(1, PAYMENTS + 1):
        bill_id = first_paid_bill + (n - 1) % paid_bills  # a few bills are paid in two instalments
        paid_at = month_start + timedelta(seconds=n * seconds_in_month // (PAYMENTS + 1))
        yield (n, bill_id, bill_id % CUSTOMERS + 1, 1_000 + n % 997 * 13, currencies[bill_id % 3],
               sqlite_time(paid_at), f"PAY-{n:09d}")  # fmt: skip


def reminded_rows() -> Iterator[tuple]:
    """The already overdue bills were reminded on an earlier day."""
    earlier = FIRE_TIME - timedelta(days=30)
    for offset in range(ALREADY_OVERDUE):
        bill_id = NEWLY_PAST_DUE + 1 + offset
        yield (offset + 1, bill_id % CUSTOMERS + 1, bill_id, "overdue", "sent",
               f"bill:{bill_id}:overdue:30", f"Bill INV-{bill_id:09d} is overdue", "{}",
               sqlite_time(earlier), sqlite_time(earlier))  # fmt: skip


def reminded_steps() -> Iterator[tuple]:
    """The reminder step each already overdue bill has had (jobs.billing.notifications.policy)."""
    earlier = sqlite_time(FIRE_TIME - timedelta(days=30))
    for offset in range(ALREADY_OVERDUE):
        yield (NEWLY_PAST_DUE + 1 + offset, "overdue", 30, earlier)


if __name__ == "__main__":
    raise SystemExit(main())
