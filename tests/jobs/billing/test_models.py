"""Timestamps are aware UTC in and out; money columns are exact integers; constraints hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import BigInteger, Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, StatementError

from jobs.billing.models import Bill, Customer, Notification
from jobs.billing.money import from_minor, to_minor
from jobs.platform.database import make_session_factory
from jobs.platform.tables import UTCDateTime

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _customer(session, email: str = "li.na@example.com") -> Customer:
    customer = Customer(name="李娜", email=email, locale="zh-CN", created_at=datetime.now(UTC))
    session.add(customer)
    session.flush()
    return customer


def _bill(customer: Customer, number: str, amount_minor: int, currency: str = "USD", **fields) -> Bill:
    issued_at = fields.pop("issued_at", datetime(2025, 3, 1, 9, 0, tzinfo=UTC))
    return Bill(
        number=number,
        customer_id=customer.id,
        amount_minor=amount_minor,
        currency=currency,
        issued_at=issued_at,
        due_at=fields.pop("due_at", issued_at + timedelta(days=30)),
        status=fields.pop("status", "pending"),
        **fields,
    )


def test_timestamps_come_back_as_aware_utc(engine: Engine) -> None:
    # Given a bill issued at 08:30 in Shanghai (00:30 UTC)
    issued_local = datetime(2025, 1, 15, 8, 30, 15, 123456, tzinfo=SHANGHAI)
    sessions = make_session_factory(engine)
    with sessions.begin() as session:
        customer = _customer(session)
        session.add(_bill(customer, "INV-1", 100, issued_at=issued_local))

    # When it is read back in a new session
    with sessions() as session:
        issued_at = session.scalars(select(Bill.issued_at)).one()

    # Then it is the same instant, expressed in UTC
    assert issued_at == issued_local
    assert issued_at.tzinfo is UTC
    assert (issued_at.hour, issued_at.minute, issued_at.microsecond) == (0, 30, 123456)


def test_timestamps_compare_as_instants_in_sql(engine: Engine) -> None:
    sessions = make_session_factory(engine)
    with sessions.begin() as session:
        customer = _customer(session)
        session.add(_bill(customer, "INV-1", 100, due_at=datetime(2025, 1, 1, 1, 0, tzinfo=UTC)))
        session.add(_bill(customer, "INV-2", 100, due_at=datetime(2025, 1, 1, 3, 0, tzinfo=UTC)))

    # 10:00 in Shanghai is 02:00 UTC: between the two due dates.
    cutoff = datetime(2025, 1, 1, 10, 0, tzinfo=SHANGHAI)
    with sessions() as session:
        assert session.scalars(select(Bill.number).where(Bill.due_at < cutoff)).all() == ["INV-1"]


def test_naive_datetimes_are_refused(engine: Engine) -> None:
    sessions = make_session_factory(engine)
    with sessions() as session:
        session.add(
            Customer(name="Ada", email="ada@example.com", locale="en", created_at=datetime(2025, 1, 1))
        )
        with pytest.raises(StatementError, match="naive datetime") as raised:
            session.flush()

    assert isinstance(raised.value.orig, ValueError)


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()])
def test_utc_datetime_type_refuses_naive_values_directly(dialect) -> None:
    with pytest.raises(ValueError, match="naive"):
        UTCDateTime().process_bind_param(datetime(2025, 1, 1), dialect)
    assert UTCDateTime().process_result_value(datetime(2025, 1, 1), dialect) == datetime(
        2025, 1, 1, tzinfo=UTC
    )


def test_money_columns_are_big_integers() -> None:
    assert isinstance(Bill.__table__.c.amount_minor.type, BigInteger)
    assert Bill.__table__.c.currency.type.length == 3


def test_sql_sums_over_minor_units_are_exact(engine: Engine) -> None:
    # Given a thousand bills of 0.10 USD and a thousand of 0.20 USD, and one beyond float precision
    sessions = make_session_factory(engine)
    beyond_float = 2**53 + 1
    with sessions.begin() as session:
        customer = _customer(session)
        for index in range(1000):
            session.add(_bill(customer, f"INV-A{index}", to_minor(Decimal("0.10"), "USD")))
            session.add(_bill(customer, f"INV-B{index}", to_minor(Decimal("0.20"), "USD")))
        session.add(_bill(customer, "INV-BIG", beyond_float, currency="JPY"))

    # When the database sums them per currency
    with sessions() as session:
        query = select(Bill.currency, func.sum(Bill.amount_minor)).group_by(Bill.currency)
        totals = {currency: total for currency, total in session.execute(query)}

    # Then the totals are exact
    assert int(totals["USD"]) == 30000
    assert from_minor(int(totals["USD"]), "USD") == Decimal("300.00")
    assert int(totals["JPY"]) == beyond_float
    assert float(beyond_float) != beyond_float


def test_foreign_keys_are_enforced(engine: Engine) -> None:
    sessions = make_session_factory(engine)
    with sessions() as session:
        session.add(
            Bill(
                number="INV-ORPHAN",
                customer_id=999,
                amount_minor=100,
                currency="USD",
                issued_at=datetime.now(UTC),
                due_at=datetime.now(UTC),
                status="pending",
            )
        )
        with pytest.raises(IntegrityError):
            session.flush()


def test_unknown_bill_status_is_refused(engine: Engine) -> None:
    sessions = make_session_factory(engine)
    with sessions() as session:
        customer = _customer(session)
        session.add(_bill(customer, "INV-1", 100, status="lost"))
        with pytest.raises(IntegrityError):
            session.flush()


def test_notification_dedup_key_is_unique(engine: Engine) -> None:
    sessions = make_session_factory(engine)
    with sessions() as session:
        customer = _customer(session)
        for _ in range(2):
            session.add(
                Notification(
                    customer_id=customer.id,
                    kind="due_soon",
                    dedup_key="due_soon:INV-1",
                    subject="Your bill is due soon",
                    context={"number": "INV-1", "amount": "1.00 USD"},
                )
            )
        with pytest.raises(IntegrityError):
            session.flush()


def test_json_context_round_trips(engine: Engine) -> None:
    sessions = make_session_factory(engine)
    context = {"number": "INV-1", "amount": "¥1,500", "lines": [1, 2, 3], "locale": "zh-CN"}
    with sessions.begin() as session:
        customer = _customer(session)
        session.add(
            Notification(customer_id=customer.id, kind="generic", dedup_key="k", subject="s", context=context)
        )

    with sessions() as session:
        notification = session.scalars(select(Notification)).one()
        assert notification.context == context
        assert notification.state == "queued"
        assert notification.created_at.tzinfo is UTC
