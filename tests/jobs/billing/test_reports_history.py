"""Past reports don't change: a bill counts as cancelled in a period only if it was cancelled before its end.

The report jobs run in this process on real databases (SQLite, PostgreSQL), in Shanghai time.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from jobs.billing.bills import cancel_bills
from jobs.billing.models import Bill, Report
from jobs.billing.reports.actors import generate_monthly_report
from jobs.platform.context import current
from jobs.platform.database import make_session_factory
from tests.support.billing import add_bill, add_customer, add_payment

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=SHANGHAI)


def seed_january(engine) -> dict[str, int]:
    """Three CNY bills issued in January 2026: one left unpaid, one paid, one cancelled on 18 January."""
    with make_session_factory(engine).begin() as session:
        customer = add_customer(session, "ada@example.com")
        unpaid = add_bill(session, customer, "INV-1", "100.00", "CNY", due_at=local(2026, 1, 20))
        paid = add_bill(session, customer, "INV-2", "50.00", "CNY", due_at=local(2026, 2, 10))
        add_payment(session, paid, paid_at=local(2026, 1, 15, 10))
        cancelled = add_bill(session, customer, "INV-3", "30.00", "CNY", due_at=local(2026, 1, 25))
        for bill, issued in (
            (unpaid, local(2026, 1, 5)),
            (paid, local(2026, 1, 10)),
            (cancelled, local(2026, 1, 12)),
        ):
            bill.issued_at = issued
        session.flush()
        cancel(session, cancelled.id, at=local(2026, 1, 18))
        return {"unpaid": unpaid.id, "paid": paid.id, "cancelled": cancelled.id}


def cancel(session: Session, bill_id: int, *, at: datetime) -> None:
    assert cancel_bills(session, select(Bill.id).where(Bill.id == bill_id), at=at) == 1


def january_figures() -> dict:
    result = generate_monthly_report.fn(period_start="2026-01-01")
    assert result["period_start"] == "2026-01-01T00:00:00+08:00"
    return report_data(result["report_id"])


def report_data(report_id: int) -> dict:
    with current().sessions() as session:
        data = session.scalar(select(Report.data).where(Report.id == report_id))
    return {"currencies": data["currencies"], "top_customers": data["top_customers"]}


def test_a_bill_cancelled_after_the_period_leaves_its_report_unchanged(jobdeck):
    # Given January's report, with a bill cancelled inside January left out as before
    bills = seed_january(jobdeck.engine)
    before = january_figures()
    assert before["currencies"]["CNY"]["bills_issued"] == 2
    assert before["currencies"]["CNY"]["amount_billed"] == "150.00"
    assert (before["currencies"]["CNY"]["overdue_bills"], before["currencies"]["CNY"]["overdue_amount"]) == (
        1,
        "100.00",
    )

    # When the unpaid January bill is cancelled in February and January's report is made again
    with make_session_factory(jobdeck.engine).begin() as session:
        cancel(session, bills["unpaid"], at=local(2026, 2, 10, 15))
    after = january_figures()

    # Then January's figures are exactly what they were
    assert after == before


def test_a_bill_cancelled_inside_a_period_is_left_out_of_it(jobdeck):
    # Given the unpaid January bill cancelled on 10 February
    bills = seed_january(jobdeck.engine)
    with make_session_factory(jobdeck.engine).begin() as session:
        cancel(session, bills["unpaid"], at=local(2026, 2, 10, 15))

    # When February's report is made
    result = generate_monthly_report.fn(period_start="2026-02-01")

    # Then the bill no longer counts as overdue at the end of February (it was cancelled by then)
    february = report_data(result["report_id"])["currencies"]
    assert "CNY" not in february or february["CNY"]["overdue_bills"] == 0
