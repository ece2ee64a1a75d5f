"""The demo data set is deterministic, realistic and covers every bill status."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, delete, func, select

from jobs.billing.models import Bill, Customer, Payment, utc_now
from jobs.billing.seed import OVERDUE_AFTER, seed_demo
from jobs.platform.database import make_session_factory
from jobs.platform.errors import JobdeckError

NOW = datetime(2025, 6, 30, 16, 0, tzinfo=UTC)
CUSTOMERS = 200
BILLS = 2_000


def _first_rows(engine: Engine) -> tuple[list[tuple], list[tuple], list[tuple]]:
    with engine.connect() as connection:
        customers = connection.execute(select(Customer.__table__).order_by(Customer.id).limit(5)).all()
        bills = connection.execute(select(Bill.__table__).order_by(Bill.id).limit(20)).all()
        payments = connection.execute(select(Payment.__table__).order_by(Payment.id).limit(20)).all()
    return [tuple(row) for row in customers], [tuple(row) for row in bills], [tuple(row) for row in payments]


def _wipe(engine: Engine) -> None:
    with engine.begin() as connection:
        for model in (Payment, Bill, Customer):
            connection.execute(delete(model))


def test_seed_writes_the_requested_counts_and_every_status(engine: Engine) -> None:
    written = seed_demo(engine, customers=CUSTOMERS, bills=BILLS, now=NOW)

    assert written["skipped"] is False
    assert (written["customers"], written["bills"]) == (CUSTOMERS, BILLS)
    assert set(written["statuses"]) == {"pending", "paid", "overdue", "cancelled"}
    assert all(count > 0 for count in written["statuses"].values())
    assert sum(written["statuses"].values()) == BILLS
    with engine.connect() as connection:
        statuses = dict(connection.execute(select(Bill.status, func.count()).group_by(Bill.status)).all())
        payments = connection.scalar(select(func.count()).select_from(Payment))
    assert statuses == written["statuses"]
    assert payments == written["payments"] == statuses["paid"]


def test_seed_is_deterministic(engine: Engine) -> None:
    first_counts = seed_demo(engine, customers=CUSTOMERS, bills=BILLS, seed=7, now=NOW)
    first_rows = _first_rows(engine)
    _wipe(engine)

    second_counts = seed_demo(engine, customers=CUSTOMERS, bills=BILLS, seed=7, now=NOW)

    assert second_counts == first_counts
    assert _first_rows(engine) == first_rows
    _wipe(engine)
    seed_demo(engine, customers=CUSTOMERS, bills=BILLS, seed=8, now=NOW)
    assert _first_rows(engine) != first_rows


def test_seeded_data_is_realistic(engine: Engine) -> None:
    seed_demo(engine, customers=CUSTOMERS, bills=BILLS, now=NOW)
    sessions = make_session_factory(engine)

    with sessions() as session:
        customers = session.scalars(select(Customer)).all()
        bills = session.scalars(select(Bill)).all()
        payments = {payment.bill_id: payment for payment in session.scalars(select(Payment))}
        # Bound parameters and bulk-written timestamps must compare correctly in SQL.
        due_before_now = session.scalar(select(func.count()).select_from(Bill).where(Bill.due_at < NOW))

    locales = Counter(customer.locale for customer in customers)
    assert 0.2 < locales["zh-CN"] / len(customers) < 0.4
    assert locales["en"] + locales["zh-CN"] == len(customers)
    assert len({customer.email for customer in customers}) == len(customers)
    assert {bill.currency for bill in bills} == {"CNY", "USD", "EUR", "JPY"}
    assert due_before_now == sum(bill.due_at < NOW for bill in bills)

    for bill in bills:
        assert bill.issued_at.tzinfo is UTC
        assert NOW - timedelta(days=400) <= bill.issued_at <= NOW
        assert bill.due_at > bill.issued_at
        assert bill.amount_minor > 0
        if bill.status == "paid":
            payment = payments[bill.id]
            assert (payment.amount_minor, payment.currency, payment.customer_id) == (
                bill.amount_minor,
                bill.currency,
                bill.customer_id,
            )
            assert bill.paid_at == payment.paid_at
            assert bill.issued_at <= bill.paid_at <= NOW
        else:
            assert bill.paid_at is None and bill.id not in payments
        if bill.status == "overdue":
            assert NOW - bill.due_at > OVERDUE_AFTER

    pending = [bill for bill in bills if bill.status == "pending"]
    assert any(NOW < bill.due_at <= NOW + timedelta(days=7) for bill in pending), "a bill due soon"
    assert any(bill.due_at < NOW for bill in pending), "a pending bill past due, for the overdue job"


def test_seeding_a_database_with_customers_is_skipped(engine: Engine) -> None:
    seed_demo(engine, customers=10, bills=50, now=NOW)

    again = seed_demo(engine, customers=10, bills=50, now=NOW)

    assert again["skipped"] is True
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(Bill)) == 50


def test_new_rows_can_be_added_after_seeding(engine: Engine) -> None:
    seed_demo(engine, customers=10, bills=50, now=NOW)
    sessions = make_session_factory(engine)

    with sessions.begin() as session:
        customer = Customer(name="New", email="new@example.com", locale="en", created_at=utc_now())
        session.add(customer)

    assert customer.id == 11


def test_seed_refuses_bad_arguments(engine: Engine) -> None:
    with pytest.raises(JobdeckError):
        seed_demo(engine, customers=0, bills=10)
    with pytest.raises(ValueError, match="timezone-aware"):
        seed_demo(engine, customers=1, bills=1, now=datetime(2025, 1, 1))
