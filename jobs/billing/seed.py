"""A deterministic demo data set: customers, a year of bills in four currencies, and their payments.

Rows are generated from ``random.Random(seed)`` and written with Core bulk inserts in chunks inside
one transaction (no ORM objects), so a million bills take seconds, not minutes.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, select, text

from jobs.billing.models import Bill, Customer, Payment
from jobs.platform.errors import JobdeckError

DEFAULT_SEED = 42
DEFAULT_CHUNK_SIZE = 50_000
#: SQLite page cache while seeding, in KiB (the pooled connection goes back to SQLite's 2 MB default).
SQLITE_SEED_CACHE_KIB = 256 * 1024
#: Bills are issued over roughly the last thirteen months.
ISSUE_WINDOW = timedelta(days=395)
PAYMENT_TERMS_DAYS = (14, 30, 30, 30, 45)
#: Pending bills this long past their due date have already been marked overdue by the job.
OVERDUE_AFTER = timedelta(days=30)
CANCELLED_SHARE = 0.02
#: Share of bills paid before their due date / of those already due.
PAID_EARLY_SHARE = 0.25
PAID_BY_NOW_SHARE = 0.90
ZH_CN_SHARE = 0.3

#: Typical bill size per currency, in minor units (the median of a log-normal spread).
TYPICAL_AMOUNT_MINOR = {"CNY": 1_500_00, "USD": 250_00, "EUR": 220_00, "JPY": 30_000}
AMOUNT_SPREAD = 0.9
LOG_TYPICAL_AMOUNT = {currency: math.log(amount) for currency, amount in TYPICAL_AMOUNT_MINOR.items()}
#: No bill is smaller than a hundredth of its currency's typical bill (nor than one minor unit).
MINIMUM_AMOUNT_MINOR = {currency: max(1, amount // 100) for currency, amount in TYPICAL_AMOUNT_MINOR.items()}
#: Paid bills are paid at the latest this long after their due date.
LATE_PAYMENT_ALLOWANCE = timedelta(days=20)
#: Which currencies a customer of each locale is billed in, with weights.
CURRENCIES_BY_LOCALE = {
    "en": (("USD", "EUR", "CNY", "JPY"), (45, 35, 10, 10)),
    "zh-CN": (("CNY", "USD", "JPY"), (85, 10, 5)),
}

EN_FIRST_NAMES = (
    "Olivia", "Liam", "Emma", "Noah", "Amelia", "Oliver", "Sophia", "James", "Isabella", "Lucas",
    "Mia", "Henry", "Grace", "Ethan", "Chloe", "Daniel", "Ava", "Samuel", "Ella", "Jack",
)  # fmt: skip
EN_LAST_NAMES = (
    "Smith", "Johnson", "Brown", "Taylor", "Wilson", "Davies", "Evans", "Thomas", "Walker", "White",
    "Martin", "Clarke", "Hughes", "Wright", "Green", "Baker", "Hall", "Wood", "King", "Lewis",
)  # fmt: skip
EN_COMPANY_SUFFIXES = ("Ltd", "LLC", "GmbH", "Trading", "Consulting", "Studio", "Logistics")
ZH_SURNAMES = (
    ("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"),
    ("杨", "yang"), ("赵", "zhao"), ("黄", "huang"), ("周", "zhou"), ("吴", "wu"),
)  # fmt: skip
ZH_GIVEN_NAMES = (
    ("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("磊", "lei"), ("洋", "yang"),
    ("婷", "ting"), ("强", "qiang"), ("军", "jun"), ("晓明", "xiaoming"), ("雪梅", "xuemei"),
    ("志强", "zhiqiang"), ("丽华", "lihua"),
)  # fmt: skip
ZH_COMPANY_SUFFIXES = ("科技有限公司", "贸易有限公司", "咨询有限公司", "商贸行")

# Column order of the driver-level inserts below: bypassing SQLAlchemy's per-value type processing
# is what makes a million rows fit in the time budget.
CUSTOMER_COLUMNS = ("id", "name", "email", "locale", "created_at")
BILL_COLUMNS = (
    "id",
    "number",
    "customer_id",
    "amount_minor",
    "currency",
    "issued_at",
    "due_at",
    "status",
    "paid_at",
    "cancelled_at",
)
PAYMENT_COLUMNS = ("id", "bill_id", "customer_id", "amount_minor", "currency", "paid_at", "reference")

#: The first bills play these parts in order, so even a tiny data set has one of each case.
SCENARIO_STATUSES = {
    "paid": "paid",
    "pending_due_soon": "pending",
    "pending_past_due": "pending",
    "overdue": "overdue",
    "cancelled": "cancelled",
}
GUARANTEED_SCENARIOS = tuple(SCENARIO_STATUSES)


def seed_demo(
    engine: Engine,
    *,
    customers: int,
    bills: int,
    seed: int = DEFAULT_SEED,
    now: datetime | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> dict[str, Any]:
    """Write the demo data set into an empty database and return what was written; skip a non-empty one."""
    if customers < 0 or bills < 0 or (bills and not customers):
        raise JobdeckError(f"cannot seed {bills} bills for {customers} customers")
    now = _aware_utc(now or datetime.now(UTC)).replace(microsecond=0)
    rng = random.Random(seed)
    with engine.begin() as connection:
        existing = connection.scalar(select(func.count()).select_from(Customer.__table__))
        if existing:
            # Seeding twice would double every figure; make run only seeds an empty database.
            return {"skipped": True, "reason": f"the database already has {existing} customers"}
        encode_time = _timestamp_encoder(connection)
        if connection.dialect.name == "sqlite":
            # SQLite's default 2 MB page cache thrashes on a million-row load; this keeps the work in memory.
            connection.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_SEED_CACHE_KIB}")
        currencies = _insert_customers(connection, rng, customers, now, chunk_size, encode_time)
        statuses: Counter[str] = Counter()
        payments = 0
        insert_bills = _insert_statement(connection, "bills", BILL_COLUMNS)
        insert_payments = _insert_statement(connection, "payments", PAYMENT_COLUMNS)
        # Building an index once at the end beats a million random inserts into it. The DDL is part of this
        # transaction (SQLite and PostgreSQL roll DDL back), so a failed seed leaves the indexes in place.
        deferred_indexes = [index for table in (Bill.__table__, Payment.__table__) for index in table.indexes]
        for index in deferred_indexes:
            index.drop(connection)
        for bill_rows, payment_rows in _bill_chunks(
            rng, currencies, bills, now, chunk_size, encode_time, statuses
        ):
            connection.exec_driver_sql(insert_bills, bill_rows)
            if payment_rows:
                connection.exec_driver_sql(insert_payments, payment_rows)
            payments += len(payment_rows)
        for index in deferred_indexes:
            index.create(connection)
        if connection.dialect.name == "postgresql":
            _advance_sequences(connection)
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA cache_size=-2000")
    return {
        "skipped": False,
        "customers": customers,
        "bills": bills,
        "payments": payments,
        "statuses": {status: statuses[status] for status in ("pending", "paid", "overdue", "cancelled")},
        "now": now.isoformat(),
    }


def _insert_customers(
    connection: Connection,
    rng: random.Random,
    count: int,
    now: datetime,
    chunk_size: int,
    encode_time: Callable[[datetime], object],
) -> list[str]:
    """Insert the customers and return each one's billing currency (index = id - 1)."""
    insert = _insert_statement(connection, "customers", CUSTOMER_COLUMNS)
    currencies: list[str] = []
    rows: list[tuple[object, ...]] = []
    for index in range(count):
        customer_id = index + 1
        locale = "zh-CN" if rng.random() < ZH_CN_SHARE else "en"
        if locale == "zh-CN":
            surname, surname_latin = rng.choice(ZH_SURNAMES)
            given, given_latin = rng.choice(ZH_GIVEN_NAMES)
            company = rng.random() < 0.4
            name = f"{surname}{given}{rng.choice(ZH_COMPANY_SUFFIXES)}" if company else f"{surname}{given}"
            local_part = f"{surname_latin}.{given_latin}"
        else:
            first, last = rng.choice(EN_FIRST_NAMES), rng.choice(EN_LAST_NAMES)
            company = rng.random() < 0.4
            name = f"{last} {rng.choice(EN_COMPANY_SUFFIXES)}" if company else f"{first} {last}"
            local_part = f"{first}.{last}".lower()
        choices, weights = CURRENCIES_BY_LOCALE[locale]
        currencies.append(rng.choices(choices, weights)[0])
        created_at = now - timedelta(days=400 + 1000 * rng.random(), seconds=rng.randrange(86_400))
        # The id keeps e-mails unique; example.com never delivers real mail.
        email = f"{local_part}.{customer_id}@example.com"
        rows.append((customer_id, name, email, locale, encode_time(created_at)))
        if len(rows) >= chunk_size:
            connection.exec_driver_sql(insert, rows)
            rows = []
    if rows:
        connection.exec_driver_sql(insert, rows)
    return currencies


def _bill_chunks(
    rng: random.Random,
    currencies: list[str],
    count: int,
    now: datetime,
    chunk_size: int,
    encode_time: Callable[[datetime], object],
    statuses: Counter[str],
) -> Iterator[tuple[list[tuple[object, ...]], list[tuple[object, ...]]]]:
    """Yield (bills, payments) rows chunk by chunk; ids are assigned here so payments can point at bills."""
    payment_id = 0
    bill_rows: list[tuple[object, ...]] = []
    payment_rows: list[tuple[object, ...]] = []
    for index in range(count):
        bill_id = index + 1
        scenario = GUARANTEED_SCENARIOS[index] if index < len(GUARANTEED_SCENARIOS) else None
        customer_id, currency, issued_at, due_at, amount_minor, status = _draw_bill(
            rng, currencies, scenario, now
        )
        statuses[status] += 1
        paid_at = None
        cancelled_at = encode_time(_cancelled_at(issued_at, due_at, now)) if status == "cancelled" else None
        if status == "paid":
            paid_at = encode_time(_draw_paid_at(rng, issued_at, due_at, now))
            payment_id += 1
            payment_rows.append(
                (
                    payment_id,
                    bill_id,
                    customer_id,
                    amount_minor,
                    currency,
                    paid_at,
                    f"PAY-{payment_id:09d}",
                )
            )
        bill_rows.append(
            (
                bill_id,
                f"INV-{bill_id:09d}",
                customer_id,
                amount_minor,
                currency,
                encode_time(issued_at),
                encode_time(due_at),
                status,
                paid_at,
                cancelled_at,
            )
        )
        if len(bill_rows) >= chunk_size:
            yield bill_rows, payment_rows
            bill_rows, payment_rows = [], []
    if bill_rows:
        yield bill_rows, payment_rows


def _draw_bill(
    rng: random.Random, currencies: list[str], scenario: str | None, now: datetime
) -> tuple[int, str, datetime, datetime, int, str]:
    """(customer_id, currency, issued_at, due_at, amount_minor, status) of one bill, drawn in a fixed order.

    A plain tuple, not a NamedTuple: this runs once per bill, a million times for a large data set.
    """
    customer_id = rng.randrange(len(currencies)) + 1
    currency = currencies[customer_id - 1]
    terms = timedelta(days=rng.choice(PAYMENT_TERMS_DAYS))
    issued_at, due_at = _draw_dates(rng, scenario, terms, now)
    amount_minor = max(
        MINIMUM_AMOUNT_MINOR[currency], int(rng.lognormvariate(LOG_TYPICAL_AMOUNT[currency], AMOUNT_SPREAD))
    )
    if currency != "JPY" and rng.random() < 0.6:
        # Most invoices are for whole units; some carry cents.
        amount_minor -= amount_minor % 100
    status = _status(rng.random(), scenario, due_at, now)
    return customer_id, currency, issued_at, due_at, amount_minor, status


def _draw_dates(
    rng: random.Random, scenario: str | None, terms: timedelta, now: datetime
) -> tuple[datetime, datetime]:
    """(issued_at, due_at): in the issue window, or placed around ``now`` as the scenario needs."""
    if scenario == "pending_due_soon":
        due_at = now + timedelta(seconds=int(rng.uniform(1, 6) * 86_400))
    elif scenario == "pending_past_due":
        due_at = now - timedelta(seconds=int(rng.uniform(1, 5) * 86_400))
    elif scenario == "overdue":
        due_at = now - timedelta(seconds=int(rng.uniform(40, 200) * 86_400))
    else:
        issued_at = now - timedelta(seconds=int(rng.random() * ISSUE_WINDOW.total_seconds()))
        return issued_at, issued_at + terms
    return due_at - terms, due_at


def _draw_paid_at(rng: random.Random, issued_at: datetime, due_at: datetime, now: datetime) -> datetime:
    """Paid some time after issue, at the latest a few weeks late, never in the future."""
    latest = min(due_at + LATE_PAYMENT_ALLOWANCE, now)
    return issued_at + timedelta(seconds=int(rng.random() * (latest - issued_at).total_seconds()))


def _cancelled_at(issued_at: datetime, due_at: datetime, now: datetime) -> datetime:
    """Half-way through the payment terms, never in the future; drawn from no random number, so the
    rest of the data set is the same as before bills recorded when they were cancelled."""
    return min(issued_at + (due_at - issued_at) / 2, now)


def _status(draw: float, scenario: str | None, due_at: datetime, now: datetime) -> str:
    if scenario is not None:
        return SCENARIO_STATUSES[scenario]
    if draw < CANCELLED_SHARE:
        return "cancelled"
    if due_at > now:
        return "paid" if draw < CANCELLED_SHARE + PAID_EARLY_SHARE else "pending"
    if draw < CANCELLED_SHARE + PAID_BY_NOW_SHARE:
        return "paid"
    # Unpaid and due: the overdue job has marked the older ones; the recent ones await its next run.
    return "overdue" if now - due_at > OVERDUE_AFTER else "pending"


def _insert_statement(connection: Connection, table: str, columns: tuple[str, ...]) -> str:
    """Return a driver-level INSERT in the connection's parameter style (``?`` or ``%s``)."""
    placeholder = {"qmark": "?", "format": "%s", "pyformat": "%s"}[connection.dialect.paramstyle]
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([placeholder] * len(columns))})"


def _timestamp_encoder(connection: Connection) -> Callable[[datetime], object]:
    """Return how an aware UTC datetime is passed to the driver, as UTCDateTime would store it."""
    if connection.dialect.name == "sqlite":
        # The exact text SQLAlchemy's SQLite DATETIME writes, so comparisons with bound values stay correct.
        return lambda moment: moment.replace(tzinfo=None).isoformat(" ", "microseconds")
    return lambda moment: moment


def _advance_sequences(connection: Connection) -> None:
    # Explicit ids do not move PostgreSQL's sequences; without this the next ORM insert would collide.
    for table in ("customers", "bills", "payments"):
        connection.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
            )
        )


def _aware_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got naive {moment.isoformat()}")
    return moment.astimezone(UTC)
