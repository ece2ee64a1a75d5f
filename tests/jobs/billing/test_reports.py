"""The four report jobs on a real database: rows, files, languages, re-runs, locks."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jobs.billing.models import Bill, Customer, Payment, Report
from jobs.billing.periods import PeriodError
from jobs.billing.reports import ReportError
from jobs.platform.errors import TransientError
from jobs.platform.locks import LockHeld, exclusive
from monitoring.actions import SUCCESS, TaskManager

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def one_day_of_billing(jobdeck):
    """5 January 2026 (Shanghai): one CNY bill paid at 13:20 local by a customer with markup in their name."""
    with Session(jobdeck.engine) as session:
        session.add(Customer(id=1, name="<b>Bold</b> & Co", email="bold@example.com", locale="en"))
        session.flush()
        paid_at = datetime(2026, 1, 5, 13, 20, tzinfo=SHANGHAI)
        session.add(
            Bill(
                id=1,
                number="INV-1",
                customer_id=1,
                amount_minor=12_345_67,
                currency="CNY",
                issued_at=datetime(2026, 1, 5, 9, tzinfo=SHANGHAI),
                due_at=datetime(2026, 1, 20, tzinfo=SHANGHAI),
                status="paid",
                paid_at=paid_at,
            )
        )
        session.add(
            Payment(
                bill_id=1,
                customer_id=1,
                amount_minor=12_345_67,
                currency="CNY",
                paid_at=paid_at,
                reference="P-1",
            )
        )
        session.commit()
    return jobdeck


def reports(runtime) -> list[Report]:
    with Session(runtime.engine) as session:
        return list(session.scalars(select(Report).order_by(Report.kind, Report.period_starts_at)))


def test_daily_report_writes_row_csv_and_html_and_a_second_run_changes_nothing(one_day_of_billing):
    from jobs.billing.reports.actors import generate_daily_report

    first = generate_daily_report.fn(fire_time="2026-01-05T16:00:00Z")  # 6 January 00:00 local
    [report] = reports(one_day_of_billing)
    files = sorted(path.name for path in Path(first["csv_path"]).parent.iterdir())
    csv_text = Path(first["csv_path"]).read_text(encoding="utf-8-sig")

    second = generate_daily_report.fn(fire_time="2026-01-05T16:00:00Z")

    assert first["period_start"] == "2026-01-05T00:00:00+08:00"
    assert first["revenue"] == {"CNY": "12345.67"}
    assert (report.kind, str(report.period_start), str(report.period_end)) == (
        "daily",
        "2026-01-05",
        "2026-01-06",
    )
    assert report.timezone == "Asia/Shanghai" and report.language == "en"
    assert report.csv_path == first["csv_path"] and report.html_path == first["html_path"]
    assert report.expires_at is not None
    assert files == ["daily-2026-01-05.csv", "daily-2026-01-05.html"]  # no temporary files left behind
    assert "CNY,1,12345.67,1,12345.67,0,0.00,1.0000" in csv_text
    # The second run replaced the same row and files.
    [again] = reports(one_day_of_billing)
    assert second["report_id"] == first["report_id"] == again.id
    assert again.data == report.data
    assert Path(second["csv_path"]).read_text(encoding="utf-8-sig") == csv_text
    assert sorted(path.name for path in Path(first["csv_path"]).parent.iterdir()) == files


def test_html_is_readable_escaped_and_in_the_asked_language(one_day_of_billing):
    from jobs.billing.reports.actors import generate_daily_report

    english = generate_daily_report.fn(period_start="2026-01-05")
    english_html = Path(english["html_path"]).read_text(encoding="utf-8")
    chinese = generate_daily_report.fn(period_start="2026-01-05", language="zh-CN")
    chinese_html = Path(chinese["html_path"]).read_text(encoding="utf-8")

    assert "Daily report" in english_html and "12,345.67 CNY" in english_html and "100.00 %" in english_html
    assert "&lt;b&gt;Bold&lt;/b&gt; &amp; Co" in english_html and "<b>Bold</b>" not in english_html
    assert '<html lang="zh-CN">' in chinese_html and "日报表" in chinese_html and "回款率" in chinese_html
    [report] = reports(one_day_of_billing)
    assert report.language == "zh-CN"


def test_configured_report_language_is_the_default(one_day_of_billing, settings, database_url, tmp_path):
    from jobs.billing.reports.actors import generate_daily_report
    from jobs.runtime import start

    start(settings.with_overrides(database_url=database_url, timezone=SHANGHAI, report_dir=tmp_path / "zh",
                                  report_language="zh-CN"))  # fmt: skip
    summary = generate_daily_report.fn(period_start="2026-01-05")

    assert "日报表" in Path(summary["html_path"]).read_text(encoding="utf-8")


def test_each_hour_of_a_day_is_its_own_report(one_day_of_billing):
    from jobs.billing.reports.actors import generate_hourly_report

    busy = generate_hourly_report.fn(fire_time="2026-01-05T06:00:00Z")  # 14:00 local: the 13:00 hour
    quiet = generate_hourly_report.fn(period_start="2026-01-05T14:00")

    stored = reports(one_day_of_billing)
    assert [report.kind for report in stored] == ["hourly", "hourly"]
    assert [report.period_starts_at.hour for report in stored] == [5, 6]  # 13:00 and 14:00 in Shanghai
    assert busy["revenue"] == {"CNY": "12345.67"} and quiet["revenue"] == {}
    assert Path(busy["csv_path"]).name == "hourly-2026-01-05T13-00+0800.csv"


def test_weekly_and_monthly_defaults_come_from_the_fire_time(one_day_of_billing):
    from jobs.billing.reports.actors import generate_monthly_report, generate_weekly_report

    weekly = generate_weekly_report.fn(fire_time="2026-01-12T02:00:00Z")  # Monday 12 January 10:00 local
    monthly = generate_monthly_report.fn(fire_time="2026-01-31T16:00:00Z")  # 1 February 00:00 local

    assert weekly["period_start"] == "2026-01-05T00:00:00+08:00"
    assert weekly["period_end"] == "2026-01-12T00:00:00+08:00"
    assert monthly["period_start"] == "2026-01-01T00:00:00+08:00"
    assert weekly["revenue"] == monthly["revenue"] == {"CNY": "12345.67"}
    assert Path(monthly["html_path"]).name == "monthly-2026-01.html"


def test_an_empty_period_still_gives_a_report(jobdeck):
    from jobs.billing.reports.actors import generate_daily_report

    summary = generate_daily_report.fn(period_start="2030-06-01")

    assert summary["revenue"] == {}
    assert "No bills, payments or overdue bills" in Path(summary["html_path"]).read_text(encoding="utf-8")
    with open(summary["csv_path"], encoding="utf-8-sig", newline="") as handle:
        assert next(csv.reader(handle))[0] == "currency"


def test_bad_period_or_language_fails_without_retry(jobdeck):
    from jobs.billing.reports.actors import generate_daily_report, generate_weekly_report
    from jobs.platform.errors import PermanentError

    with pytest.raises(PeriodError, match="does not start a week"):
        generate_weekly_report.fn(period_start="2026-01-07")
    with pytest.raises(PeriodError):
        generate_daily_report.fn(period_start="../../etc/passwd")
    with pytest.raises(ReportError):
        generate_daily_report.fn(period_start="2026-01-05", language="fr")
    assert issubclass(PeriodError, PermanentError) and issubclass(ReportError, PermanentError)
    with Session(jobdeck.engine) as session:
        assert session.scalar(select(func.count()).select_from(Report)) == 0


def test_a_report_already_running_for_the_period_is_retried_not_skipped(jobdeck):
    from jobs.billing.reports.actors import generate_daily_report

    with exclusive("generate_daily_report:2026-01-04T16:00"):
        with pytest.raises(LockHeld, match="held by"):
            generate_daily_report.fn(period_start="2026-01-05")
        other_day = generate_daily_report.fn(period_start="2026-01-06")
    after = generate_daily_report.fn(period_start="2026-01-05")

    assert issubclass(LockHeld, TransientError)  # JobRetries tries it again later
    assert "report_id" in other_day and "report_id" in after


def test_report_files_are_replaced_atomically(jobdeck, tmp_path):
    from jobs.platform.storage import write_atomically

    target = tmp_path / "reports" / "x.csv"
    write_atomically(target, "old")
    first_inode = target.stat().st_ino
    write_atomically(target, "new")

    assert target.read_text() == "new"
    assert target.stat().st_ino != first_inode  # a new file renamed over, not the old one rewritten
    assert [path.name for path in target.parent.iterdir()] == ["x.csv"]


def test_overdue_counts_are_as_of_the_end_of_the_period(jobdeck):
    """A bill due 10 January and paid 20 January is overdue at the end of 15 January, not of 20 January."""
    from jobs.billing.reports.actors import generate_daily_report

    with Session(jobdeck.engine) as session:
        session.add(Customer(id=1, name="Late Payer", email="late@example.com"))
        session.flush()
        paid_at = datetime(2026, 1, 20, 4, tzinfo=UTC)
        session.add(
            Bill(id=1, number="INV-1", customer_id=1, amount_minor=999, currency="USD", status="paid",
                 issued_at=datetime(2026, 1, 1, tzinfo=UTC), due_at=datetime(2026, 1, 10, tzinfo=UTC),
                 paid_at=paid_at)
        )  # fmt: skip
        session.add(
            Payment(
                bill_id=1, customer_id=1, amount_minor=999, currency="USD", paid_at=paid_at, reference="P"
            )
        )
        session.commit()

    mid = generate_daily_report.fn(period_start="2026-01-15")
    after = generate_daily_report.fn(period_start="2026-01-21")

    assert reports_data(jobdeck, mid["report_id"])["currencies"]["USD"]["overdue_amount"] == "9.99"
    assert "USD" not in reports_data(jobdeck, after["report_id"])["currencies"]  # paid, nothing else that day


def reports_data(runtime, report_id: int) -> dict:
    with Session(runtime.engine) as session:
        return session.get(Report, report_id).data


@pytest.mark.slow
def test_a_report_through_a_real_worker(runtime, worker_engine, start_worker):
    import jobs.billing.reports.actors  # noqa: F401  declares the actors on this process's broker, for send_task

    start_worker(modules=("jobs.billing.reports.actors",))
    manager = TaskManager(broker=runtime.broker)

    message = manager.send_task("generate_monthly_report", [], {"fire_time": "2026-03-01T00:00:00Z"})
    outcome = manager.wait_for_result(message, timeout=30)

    assert outcome.status == SUCCESS, outcome.error
    assert outcome.result["period_start"].startswith("2026-02-01T00:00:00")
    assert Path(outcome.result["html_path"]).parent == runtime.settings.report_dir
    assert Path(outcome.result["html_path"]).name == "monthly-2026-02.html"
    assert len(reports(runtime)) == 1
