"""Billing rows for tests: a customer and a bill, added through the ORM in the caller's session."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from jobs.billing.models import Bill, Customer
from jobs.billing.money import to_minor

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
