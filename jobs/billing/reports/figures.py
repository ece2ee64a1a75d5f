"""A report's figures, summed in SQL on integer minor units per currency; Decimals only in the output."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from jobs.billing.models import Bill, Customer, Payment
from jobs.billing.money import from_minor
from jobs.billing.periods import Period

TOP_CUSTOMERS = 10
#: Collection rate digits: 0.8130 reads as 81.30 %.
RATE_QUANTUM = Decimal("0.0001")


def report_figures(session: Session, period: Period) -> dict[str, Any]:
    """Every figure of a report for ``period``: per-currency summary and top customers, as JSON values."""
    start, end = period.start_utc, period.end_utc
    billed = _by_currency(session, _billed(start, end))
    paid = paid_by_currency(session, start, end)
    overdue = _by_currency(session, _overdue_as_of(end))
    currencies = sorted(set(billed) | set(paid) | set(overdue))
    summary = {
        currency: _currency_summary(
            currency, billed.get(currency, (0, 0)), paid.get(currency, (0, 0)), overdue.get(currency, (0, 0))
        )
        for currency in currencies
    }
    return {"currencies": summary, "top_customers": _top_customers(session, start, end)}


def _billed(start: datetime, end: datetime) -> Select:
    return (
        select(Bill.currency, func.count(), func.sum(Bill.amount_minor))
        .where(Bill.issued_at >= start, Bill.issued_at < end, ~cancelled_by(end))
        .group_by(Bill.currency)
    )


def cancelled_by(end: datetime) -> ColumnElement[bool]:
    """Whether a bill had been cancelled before ``end``: its status as of then, not today's (#13).

    A cancelled bill without ``cancelled_at`` (cancelled before the time was recorded) counts as
    cancelled in every period, as it always did.
    """
    return and_(Bill.status == "cancelled", or_(Bill.cancelled_at.is_(None), Bill.cancelled_at < end))


def paid_by_currency(session: Session, start: datetime, end: datetime) -> dict[str, tuple[int, int]]:
    """Per currency, in currency order: (payment count, total in minor units) paid in [start, end)."""
    query = (
        select(Payment.currency, func.count(), func.sum(Payment.amount_minor))
        .where(Payment.paid_at >= start, Payment.paid_at < end)
        .group_by(Payment.currency)
        .order_by(Payment.currency)
    )
    return _by_currency(session, query)


def _overdue_as_of(end: datetime) -> Select:
    # Rebuilt from dates rather than today's status, so regenerating an old period gives its figures.
    unpaid_at_end = or_(Bill.paid_at.is_(None), Bill.paid_at >= end)
    return (
        select(Bill.currency, func.count(), func.sum(Bill.amount_minor))
        .where(~cancelled_by(end), Bill.due_at < end, unpaid_at_end)
        .group_by(Bill.currency)
    )


def _by_currency(session: Session, query: Select) -> dict[str, tuple[int, int]]:
    rows = session.execute(query)
    return {currency: (int(count), int(total or 0)) for currency, count, total in rows}


def _currency_summary(
    currency: str, billed: tuple[int, int], paid: tuple[int, int], overdue: tuple[int, int]
) -> dict[str, Any]:
    return {
        "bills_issued": billed[0],
        "amount_billed": str(from_minor(billed[1], currency)),
        "payments": paid[0],
        "revenue": str(from_minor(paid[1], currency)),
        "overdue_bills": overdue[0],
        "overdue_amount": str(from_minor(overdue[1], currency)),
        "collection_rate": collection_rate(paid[1], billed[1]),
    }


def collection_rate(paid_minor: int, billed_minor: int) -> str | None:
    """Paid / billed in one currency, as a decimal string to 4 places; None when nothing was billed."""
    if billed_minor == 0:
        return None
    return str((Decimal(paid_minor) / Decimal(billed_minor)).quantize(RATE_QUANTUM, ROUND_HALF_EVEN))


def _top_customers(session: Session, start: datetime, end: datetime) -> dict[str, list[dict[str, Any]]]:
    totals = (
        select(
            Payment.currency,
            Payment.customer_id,
            func.count().label("payments"),
            func.sum(Payment.amount_minor).label("amount"),
        )
        .where(Payment.paid_at >= start, Payment.paid_at < end)
        .group_by(Payment.currency, Payment.customer_id)
        .subquery()
    )
    rank = (
        func.row_number()
        .over(partition_by=totals.c.currency, order_by=(totals.c.amount.desc(), totals.c.customer_id))
        .label("rank")
    )
    ranked = select(totals, rank).subquery()
    query = (
        select(ranked, Customer.name)
        .join(Customer, Customer.id == ranked.c.customer_id)
        .where(ranked.c.rank <= TOP_CUSTOMERS)
        .order_by(ranked.c.currency, ranked.c.rank)
    )
    top: dict[str, list[dict[str, Any]]] = {}
    for row in session.execute(query):
        top.setdefault(row.currency, []).append(
            {
                "rank": int(row.rank),
                "customer_id": row.customer_id,
                "customer": row.name,
                "payments": int(row.payments),
                "amount_paid": str(from_minor(int(row.amount), row.currency)),
            }
        )
    return top
