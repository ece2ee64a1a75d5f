"""A report's files: the CSV (summary, then top customers) and the HTML page, in two languages."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from jobs.billing import TEMPLATES_DIR
from jobs.billing.money import format_money, to_minor
from jobs.billing.periods import Period

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
