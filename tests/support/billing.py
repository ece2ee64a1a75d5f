"""Billing rows for tests (a customer, a bill, a payment, added through the ORM in the caller's session),
and a way to hold a report job inside its run."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from jobs.billing.models import Bill, Customer, Notification, Payment
from jobs.billing.money import from_minor, to_minor

DUE_AT = datetime(2025, 3, 12, 16, 30, tzinfo=UTC)  # 00:30 on 13 March in Shanghai


def add_customer(session: Session, email: str, *, name: str = "Ada Lovelace", locale: str = "en") -> Customer:
    customer = Customer(name=name, email=email, locale=locale, created_at=datetime.now(UTC))
    session.add(customer)
    session.flush()
    return customer


def add_bill(
    session: Session,
    customer: Customer,
    number: str,
    amount: str = "1234.50",
    currency: str = "USD",
    *,
    due_at: datetime = DUE_AT,
    status: str = "pending",
) -> Bill:
    bill = Bill(
        number=number,
        customer_id=customer.id,
        amount_minor=to_minor(Decimal(amount), currency),
        currency=currency,
        issued_at=due_at - timedelta(days=30),
        due_at=due_at,
        status=status,
    )
    session.add(bill)
    session.flush()
    return bill


def add_payment(session: Session, bill: Bill, *, paid_at: datetime, reference: str | None = None) -> Payment:
    """Pay ``bill`` in full at ``paid_at`` (and mark it paid)."""
    payment = Payment(
        bill_id=bill.id,
        customer_id=bill.customer_id,
        amount_minor=bill.amount_minor,
        currency=bill.currency,
        paid_at=paid_at,
        reference=reference or f"PAY-{bill.number}",
    )
    bill.status, bill.paid_at = "paid", paid_at
    session.add(payment)
    session.flush()
    return payment


@contextmanager
def report_writes_blocked(database_url: str) -> Iterator[None]:
    """Hold a lock that makes every write to ``reports`` wait, from another connection, for the block.

    A report or revenue job then stays inside its run (and its one-at-a-time lock) at the moment it
    stores its row, for as long as the test likes: SQLite's write lock, PostgreSQL's table lock.
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        connection = sqlite3.connect(url.database, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
    else:
        connection = psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))
        connection.execute("LOCK TABLE reports IN EXCLUSIVE MODE")
    try:
        yield
    finally:
        connection.rollback()
        connection.close()


def add_reminder(session: Session, bill: Bill, kind: str = "overdue") -> Notification:
    """A queued reminder of ``bill``, with the context its templates need, written directly."""
    notification = Notification(
        customer_id=bill.customer_id,
        bill_id=bill.id,
        kind=kind,
        state="queued",
        dedup_key=f"test:bill:{bill.id}:{kind}",
        subject=f"Bill {bill.number} ({kind})",
        context={
            "bill_number": bill.number,
            "amount": str(from_minor(bill.amount_minor, bill.currency)),
            "currency": bill.currency,
            "due_at": bill.due_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        created_at=datetime.now(UTC),
    )
    session.add(notification)
    session.flush()
    return notification
