"""Golden figures: hand-built billing data, expected numbers worked out by hand and written literally.

The data (Asia/Shanghai, UTC+8; "local" below means Shanghai time):

  customers: 1 Alpha Ltd, 2 王芳, 3 Gamma LLC
  bill  1      c1 CNY 1000.00  issued 01-05  due 01-20  paid 01-10 09:00 local
  bills 2-24   c2 CNY 13 x 0.10 and 10 x 0.20 (= 3.30)  issued 01-12  due 01-26  paid 01-12 15:00 local
  bill 25      c2 CNY 500.00   issued 01-20  due 02-10  paid 2026-01-31 23:30 UTC = 02-01 07:30 local
  bill 26      c3 USD 250.55   issued 01-15  due 01-25  unpaid (overdue)
  bill 27      c3 USD 99.45    issued 01-20  due 02-05  paid 01-28 12:00 local
  bill 28      c1 JPY 30000    issued 01-30  due 02-15  paid 02-03 10:00 local
  bill 29      c1 JPY 12345    issued 02-02 09:00  due 02-20  unpaid (pending)
  bill 30      c2 CNY 777.00   issued 01-08  due 01-22  cancelled
  bill 31      c1 CNY 200.00   issued 2025-12-01  due 12-31  unpaid (overdue)
"""

from __future__ import annotations

import csv
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from jobs.billing.models import Bill, Customer, Payment, Report

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=SHANGHAI)


def add_bill(
    session, number, customer, currency, amount_minor, issued, due, *, status="pending", paid_at=None
):
    bill = Bill(
        id=number,
        number=f"INV-{number:04d}",
        customer_id=customer,
        amount_minor=amount_minor,
        currency=currency,
        issued_at=issued,
        due_at=due,
        status="paid" if paid_at else status,
        paid_at=paid_at,
    )
    session.add(bill)
    if paid_at:
        session.add(
            Payment(
                bill_id=number,
                customer_id=customer,
                amount_minor=amount_minor,
                currency=currency,
                paid_at=paid_at,
                reference=f"PAY-{number:04d}",
            )
        )


def build_golden_data(engine) -> None:
    with Session(engine) as session:
        session.add_all(
            [
                Customer(id=1, name="Alpha Ltd", email="alpha@example.com", locale="en"),
                Customer(id=2, name="王芳", email="wang.fang@example.com", locale="zh-CN"),
                Customer(id=3, name="Gamma LLC", email="gamma@example.com", locale="en"),
            ]
        )
        session.flush()
        add_bill(
            session,
            1,
            1,
            "CNY",
            1000_00,
            local(2026, 1, 5, 10),
            local(2026, 1, 20),
            paid_at=local(2026, 1, 10, 9),
        )
        micro_amounts = [10] * 13 + [20] * 10  # 0.10 and 0.20 CNY: their float sum is 3.300000000000001
        for offset, amount in enumerate(micro_amounts):
            add_bill(
                session, 2 + offset, 2, "CNY", amount, local(2026, 1, 12, 9), local(2026, 1, 26),
                paid_at=local(2026, 1, 12, 15),
            )  # fmt: skip
        add_bill(
            session, 25, 2, "CNY", 500_00, local(2026, 1, 20, 9), local(2026, 2, 10),
            paid_at=datetime.fromisoformat("2026-01-31T23:30:00+00:00"),
        )  # fmt: skip
        add_bill(session, 26, 3, "USD", 250_55, local(2026, 1, 15, 9), local(2026, 1, 25), status="overdue")
        add_bill(
            session,
            27,
            3,
            "USD",
            99_45,
            local(2026, 1, 20, 9),
            local(2026, 2, 5),
            paid_at=local(2026, 1, 28, 12),
        )
        add_bill(
            session,
            28,
            1,
            "JPY",
            30000,
            local(2026, 1, 30, 9),
            local(2026, 2, 15),
            paid_at=local(2026, 2, 3, 10),
        )
        add_bill(session, 29, 1, "JPY", 12345, local(2026, 2, 2, 9), local(2026, 2, 20))
        add_bill(session, 30, 2, "CNY", 777_00, local(2026, 1, 8, 9), local(2026, 1, 22), status="cancelled")
        add_bill(session, 31, 1, "CNY", 200_00, local(2025, 12, 1, 9), local(2025, 12, 31), status="overdue")
        session.commit()


@pytest.fixture
def golden(jobdeck):
    build_golden_data(jobdeck.engine)
    return jobdeck


def test_the_float_sum_of_the_small_payments_really_is_inexact():
    assert sum([0.1] * 13 + [0.2] * 10) != 3.3


def test_monthly_report_for_january(golden):
    from jobs.billing.reports.actors import generate_monthly_report

    summary = generate_monthly_report.fn(period_start="2026-01-01")

    with Session(golden.engine) as session:
        report = session.scalars(select(Report).where(Report.kind == "monthly")).one()
    assert report.id == summary["report_id"]
    assert str(report.period_start) == "2026-01-01" and str(report.period_end) == "2026-02-01"
    assert report.data["currencies"] == {
        "CNY": {
            # bills 1-25 (bill 30 is cancelled): 1000.00 + 3.30 + 500.00
            "bills_issued": 25,
            "amount_billed": "1503.30",
            # bill 25's payment at 23:30 UTC on 31 January is 1 February in Shanghai: not counted
            "payments": 24,
            "revenue": "1003.30",
            # bill 31, due 31 December
            "overdue_bills": 1,
            "overdue_amount": "200.00",
            # 1003.30 / 1503.30 = 0.66739...
            "collection_rate": "0.6674",
        },
        "JPY": {
            "bills_issued": 1,
            "amount_billed": "30000",
            "payments": 0,
            "revenue": "0",
            "overdue_bills": 0,
            "overdue_amount": "0",
            "collection_rate": "0.0000",
        },
        "USD": {
            "bills_issued": 2,
            "amount_billed": "350.00",
            "payments": 1,
            "revenue": "99.45",
            "overdue_bills": 1,
            "overdue_amount": "250.55",
            # 99.45 / 350.00 = 0.28414...
            "collection_rate": "0.2841",
        },
    }
    assert report.data["top_customers"] == {
        "CNY": [
            {"rank": 1, "customer_id": 1, "customer": "Alpha Ltd", "payments": 1, "amount_paid": "1000.00"},
            {"rank": 2, "customer_id": 2, "customer": "王芳", "payments": 23, "amount_paid": "3.30"},
        ],
        "USD": [
            {"rank": 1, "customer_id": 3, "customer": "Gamma LLC", "payments": 1, "amount_paid": "99.45"}
        ],
    }
    assert summary["revenue"] == {"CNY": "1003.30", "JPY": "0", "USD": "99.45"}


def test_weekly_report_for_the_week_crossing_into_february(golden):
    from jobs.billing.reports.actors import generate_weekly_report

    # Fired Monday 2 February 10:00 local: the week Monday 26 January - Monday 2 February.
    summary = generate_weekly_report.fn(fire_time="2026-02-02T02:00:00Z")

    data = summary_data(golden, "weekly")
    assert data["period"]["start"] == "2026-01-26T00:00:00+08:00"
    assert data["period"]["end"] == "2026-02-02T00:00:00+08:00"
    assert data["currencies"] == {
        "CNY": {
            # bill 25's payment (1 February 07:30 local) falls in this week
            "bills_issued": 0,
            "amount_billed": "0.00",
            "payments": 1,
            "revenue": "500.00",
            "overdue_bills": 1,
            "overdue_amount": "200.00",
            "collection_rate": None,
        },
        "JPY": {
            # bill 28 issued 30 January; bill 29 (2 February 09:00) is next week
            "bills_issued": 1,
            "amount_billed": "30000",
            "payments": 0,
            "revenue": "0",
            "overdue_bills": 0,
            "overdue_amount": "0",
            "collection_rate": "0.0000",
        },
        "USD": {
            "bills_issued": 0,
            "amount_billed": "0.00",
            "payments": 1,
            "revenue": "99.45",
            "overdue_bills": 1,
            "overdue_amount": "250.55",
            "collection_rate": None,
        },
    }
    assert data["top_customers"]["CNY"] == [
        {"rank": 1, "customer_id": 2, "customer": "王芳", "payments": 1, "amount_paid": "500.00"}
    ]
    assert summary["period_start"] == "2026-01-26T00:00:00+08:00"


def test_daily_report_of_the_first_of_february_has_the_late_utc_payment(golden):
    from jobs.billing.reports.actors import generate_daily_report

    generate_daily_report.fn(fire_time="2026-02-01T16:00:00Z")  # 2 February 00:00 local

    currencies = summary_data(golden, "daily")["currencies"]
    assert currencies["CNY"]["payments"] == 1
    assert currencies["CNY"]["revenue"] == "500.00"
    assert set(currencies) == {"CNY", "USD"}  # only the overdue USD bill; nothing in JPY that day


def test_monthly_revenue_for_january_and_february(golden):
    from jobs.billing.finance import calculate_monthly_revenue

    january = calculate_monthly_revenue.fn(year=2026, month=1)
    february = calculate_monthly_revenue.fn(fire_time="2026-03-01T00:00:00Z")  # 1 March 08:00 local

    assert january["revenue"] == {"CNY": "1003.30", "USD": "99.45"}
    assert january["payments"] == 25
    assert february["period_start"] == "2026-02-01"
    assert february["revenue"] == {"CNY": "500.00", "JPY": "30000"}
    assert february["payments"] == 2


def test_golden_csv_has_the_exact_figures(golden):
    from jobs.billing.reports.actors import generate_monthly_report

    summary = generate_monthly_report.fn(period_start="2026-01-01")

    with open(summary["csv_path"], encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:5] == ["currency", "bills_issued", "amount_billed", "payments", "revenue"]
    assert rows[0][5:] == ["overdue_bills", "overdue_amount", "collection_rate"]
    assert rows[1] == ["CNY", "25", "1503.30", "24", "1003.30", "1", "200.00", "0.6674"]
    assert rows[3] == ["USD", "2", "350.00", "1", "99.45", "1", "250.55", "0.2841"]
    assert ["CNY", "2", "2", "王芳", "23", "3.30"] in rows


def summary_data(runtime, kind: str) -> dict:
    with Session(runtime.engine) as session:
        return session.scalars(select(Report.data).where(Report.kind == kind)).one()
