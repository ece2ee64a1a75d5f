"""The four periodic report jobs (queue ``reports``), and storing any report row (one per kind and period).

Each report sums the billing tables for one period of the configured zone, grouped by currency,
entirely in SQL on integer minor units; Decimals appear only when the figures are written out.
The figures go to a :class:`~jobs.billing.models.Report` row (replaced when the period is generated again)
and to a CSV and an HTML file in ``settings.report_dir``, each written atomically.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import dramatiq
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from jobs.billing import TEMPLATES_DIR
from jobs.billing.models import Bill, Customer, Payment, Report, utc_now
from jobs.billing.money import format_money, from_minor, to_minor
from jobs.billing.periods import Period, parse_fire_time, parse_period_start, previous_period
from jobs.platform import queues
from jobs.platform.context import current
from jobs.platform.database import upsert_insert
from jobs.platform.defaults import REPORT_LANGUAGES
from jobs.platform.errors import PermanentError
from jobs.platform.locks import exclusive
from jobs.platform.storage import write_atomically

#: Report kind → period kind (jobs.billing.periods).
REPORT_PERIODS = {"hourly": "hour", "daily": "day", "weekly": "week", "monthly": "month"}
TOP_CUSTOMERS = 10
#: Collection rate digits: 0.8130 reads as 81.30 %.
RATE_QUANTUM = Decimal("0.0001")
SUMMARY_COLUMNS = (
    "currency",
    "bills_issued",
    "amount_billed",
    "payments",
    "revenue",
    "overdue_bills",
    "overdue_amount",
    "collection_rate",
)
TOP_CUSTOMER_COLUMNS = ("currency", "rank", "customer_id", "customer", "payments", "amount_paid")

LABELS: dict[str, dict[str, Any]] = {
    "en": {
        "titles": {
            "hourly": "Hourly report",
            "daily": "Daily report",
            "weekly": "Weekly report",
            "monthly": "Monthly report",
        },
        "period": "Period",
        "timezone": "Time zone",
        "generated": "Generated",
        "summary": "Summary by currency",
        "currency": "Currency",
        "bills_issued": "Bills issued",
        "amount_billed": "Amount billed",
        "payments": "Payments",
        "revenue": "Revenue",
        "overdue_bills": "Overdue bills",
        "overdue_amount": "Overdue amount",
        "collection_rate": "Collection rate",
        "top_customers": "Top customers by amount paid",
        "rank": "Rank",
        "customer": "Customer",
        "amount_paid": "Amount paid",
        "no_activity": "No bills, payments or overdue bills in this period.",
        "notes": (
            "Overdue figures are as of the end of the period. Collection rate is revenue divided by "
            "the amount billed in the same period and currency. Cancelled bills are left out."
        ),
        "not_applicable": "n/a",
    },
    "zh-CN": {
        "titles": {"hourly": "小时报表", "daily": "日报表", "weekly": "周报表", "monthly": "月报表"},
        "period": "统计周期",
        "timezone": "时区",
        "generated": "生成时间",
        "summary": "按币种汇总",
        "currency": "币种",
        "bills_issued": "开具账单数",
        "amount_billed": "账单金额",
        "payments": "收款笔数",
        "revenue": "收款金额",
        "overdue_bills": "逾期账单数",
        "overdue_amount": "逾期金额",
        "collection_rate": "回款率",
        "top_customers": "付款金额最高的客户",
        "rank": "排名",
        "customer": "客户",
        "amount_paid": "付款金额",
        "no_activity": "本期没有账单、收款或逾期账单。",
        "notes": "逾期数据为截至期末的状态。回款率 = 同期同币种收款金额 ÷ 账单金额。已取消的账单不计入。",
        "not_applicable": "—",
    },
}


class ReportError(PermanentError):
    """Raised when a report is asked for in a language or for a period it cannot be made for."""


# ---------------------------------------------------------------------------------------------
# One row per (kind, period).


def store_report(
    session: Session,
    *,
    kind: str,
    period: Period,
    language: str,
    data: dict[str, Any],
    csv_path: str | None = None,
    html_path: str | None = None,
    expires_at: datetime | None = None,
) -> int:
    """Insert or replace the report of ``kind`` for ``period`` in one statement; return its id."""
    values = {
        "kind": kind,
        "period_starts_at": period.start_utc,
        "period_start": period.start_date,
        "period_end": period.end_date,
        "timezone": period.zone.key,
        "language": language,
        "data": data,
        "csv_path": csv_path,
        "html_path": html_path,
        "created_at": utc_now(),
        "expires_at": expires_at,
    }
    statement = upsert_insert(session, Report).values(**values)
    unique = ("kind", "period_starts_at")
    replaced = {name: statement.excluded[name] for name in values if name not in unique}
    statement = statement.on_conflict_do_update(index_elements=list(unique), set_=replaced)
    return session.scalar(statement.returning(Report.id))


# ---------------------------------------------------------------------------------------------
# The figures, all in SQL.


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
        .where(Bill.issued_at >= start, Bill.issued_at < end, Bill.status != "cancelled")
        .group_by(Bill.currency)
    )


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
        .where(Bill.status != "cancelled", Bill.due_at < end, unpaid_at_end)
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


# ---------------------------------------------------------------------------------------------
# Files.


def report_file_stem(kind: str, period: Period) -> str:
    """The file name (without extension) of a report: derived from kind and period only, never from input."""
    return f"{kind}-{period.label}"


def render_csv(data: dict[str, Any]) -> str:
    """The summary table, a blank line, then the top-customers table; amounts as exact decimals."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(SUMMARY_COLUMNS)
    for currency, figures in data["currencies"].items():
        writer.writerow([currency, *(_csv_value(figures[column]) for column in SUMMARY_COLUMNS[1:])])
    writer.writerow([])
    writer.writerow(TOP_CUSTOMER_COLUMNS)
    for currency, customers in data["top_customers"].items():
        for customer in customers:
            writer.writerow([currency, *(customer[column] for column in TOP_CUSTOMER_COLUMNS[1:])])
    return buffer.getvalue()


def _csv_value(value: Any) -> Any:
    return "" if value is None else value


def render_html(data: dict[str, Any], *, language: str, generated_at: datetime, zone_name: str) -> str:
    """The report as a page a person would read, in ``language``."""
    template = _templates().get_template("report.html")
    return template.render(
        data=data,
        labels=LABELS[language],
        language=language,
        generated_at=generated_at,
        zone_name=zone_name,
    )


@cache
def _templates() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR / "reports"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["money"] = lambda amount, currency: format_money(
        to_minor(Decimal(amount), currency), currency
    )
    environment.filters["percent"] = lambda rate: f"{Decimal(rate) * 100:.2f} %"
    environment.filters["local_time"] = lambda text: datetime.fromisoformat(text).strftime(
        "%Y-%m-%d %H:%M %z"
    )
    return environment


# ---------------------------------------------------------------------------------------------
# The jobs.


def generate_report(
    kind: str, *, period_start: str | None, fire_time: str | None, language: str | None
) -> dict[str, Any]:
    """Generate (or regenerate) the ``kind`` report; the body shared by the four actors."""
    settings = current().settings
    language = language or settings.report_language
    if language not in REPORT_LANGUAGES:
        raise ReportError(f"language must be one of {', '.join(REPORT_LANGUAGES)}, got {language!r}")
    period = _requested_period(kind, period_start, fire_time, settings.timezone)
    with exclusive(f"generate_{kind}_report:{period.start_utc:%Y-%m-%dT%H:%M}") as acquired:
        if not acquired:
            return {"skipped": "already running", "period_start": period.start_local.isoformat()}
        return _generate(kind, period, language)


def _requested_period(kind: str, period_start: str | None, fire_time: str | None, zone: ZoneInfo) -> Period:
    period_kind = REPORT_PERIODS[kind]
    if period_start is not None:
        return parse_period_start(period_kind, period_start, zone)
    return previous_period(period_kind, parse_fire_time(fire_time), zone)


def _generate(kind: str, period: Period, language: str) -> dict[str, Any]:
    runtime = current()
    settings = runtime.settings
    with runtime.sessions() as session:
        figures = report_figures(session, period)
        data = {"kind": kind, "period": _period_json(period), **figures}
        generated_at = datetime.now(UTC)
        stem = report_file_stem(kind, period)
        csv_path = settings.report_dir / f"{stem}.csv"
        html_path = settings.report_dir / f"{stem}.html"
        # The BOM lets spreadsheet programs read customer names in Chinese correctly.
        write_atomically(csv_path, render_csv(data), encoding="utf-8-sig")
        html = render_html(
            data,
            language=language,
            generated_at=generated_at.astimezone(period.zone),
            zone_name=period.zone.key,
        )
        write_atomically(html_path, html)
        report_id = store_report(
            session,
            kind=kind,
            period=period,
            language=language,
            data=data,
            csv_path=str(csv_path),
            html_path=str(html_path),
            expires_at=generated_at + timedelta(days=settings.report_file_ttl_days),
        )
        session.commit()
    return {
        "report_id": report_id,
        "kind": kind,
        "period_start": period.start_local.isoformat(),
        "period_end": period.end_local.isoformat(),
        "revenue": {currency: figures["revenue"] for currency, figures in data["currencies"].items()},
        "csv_path": str(csv_path),
        "html_path": str(html_path),
    }


def _period_json(period: Period) -> dict[str, str]:
    return {
        "start": period.start_local.isoformat(),
        "end": period.end_local.isoformat(),
        "start_utc": period.start_utc.isoformat(),
        "end_utc": period.end_utc.isoformat(),
        "timezone": period.zone.key,
    }


@dramatiq.actor(queue_name=queues.REPORTS)
def generate_hourly_report(
    period_start: str | None = None, fire_time: str | None = None, language: str | None = None
) -> dict[str, Any]:
    """The report of one hour (default: the hour that ended at the fire time)."""
    return generate_report("hourly", period_start=period_start, fire_time=fire_time, language=language)


@dramatiq.actor(queue_name=queues.REPORTS)
def generate_daily_report(
    period_start: str | None = None, fire_time: str | None = None, language: str | None = None
) -> dict[str, Any]:
    """The report of one local day (default: the day that ended at the fire time)."""
    return generate_report("daily", period_start=period_start, fire_time=fire_time, language=language)


@dramatiq.actor(queue_name=queues.REPORTS)
def generate_weekly_report(
    period_start: str | None = None, fire_time: str | None = None, language: str | None = None
) -> dict[str, Any]:
    """The report of one Monday-to-Monday week (default: the week that ended at the fire time)."""
    return generate_report("weekly", period_start=period_start, fire_time=fire_time, language=language)


@dramatiq.actor(queue_name=queues.REPORTS)
def generate_monthly_report(
    period_start: str | None = None, fire_time: str | None = None, language: str | None = None
) -> dict[str, Any]:
    """The report of one calendar month (default: the month that ended at the fire time)."""
    return generate_report("monthly", period_start=period_start, fire_time=fire_time, language=language)
