"""export_data streams a filtered dataset to CSV, JSON Lines or XLSX and records it in ``exports``."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine, func, insert, select

import jobs.billing.exports.writers
from jobs.billing.exports import money_text
from jobs.billing.models import Bill, Customer, Export, Notification, Payment
from jobs.billing.money import from_minor
from jobs.platform.errors import PermanentError
from tests.conftest import wait_for

ISSUED = datetime(2025, 1, 10, 8, 0, tzinfo=UTC)


def insert_billing_rows(engine: Engine) -> None:
    """Three customers, six bills in three currencies, two payments, one notification."""
    customers = [
        {
            "id": 1,
            "name": "Olivia Smith",
            "email": "olivia@example.com",
            "locale": "en",
            "created_at": ISSUED,
        },
        {
            "id": 2,
            "name": "王伟科技有限公司",
            "email": "wang@example.com",
            "locale": "zh-CN",
            "created_at": ISSUED,
        },
        {
            "id": 3,
            "name": 'Quote "Ltd", Comma',
            "email": "q@example.com",
            "locale": "en",
            "created_at": ISSUED,
        },
    ]
    bills = [
        _bill(1, 1, 123_450, "USD", ISSUED, "paid", paid_at=ISSUED + timedelta(days=3)),
        _bill(2, 2, 1_500, "JPY", ISSUED, "pending"),
        _bill(3, 2, 1_005, "BHD", ISSUED, "overdue"),
        # 16:30 UTC on 31 January is already 1 February in Shanghai.
        _bill(4, 1, 5, "USD", datetime(2025, 1, 31, 16, 30, tzinfo=UTC), "pending"),
        _bill(5, 3, 99_999_999_999, "CNY", datetime(2025, 2, 14, 1, 2, 3, 456789, tzinfo=UTC), "cancelled"),
        _bill(6, 3, 0, "USD", datetime(2025, 3, 1, tzinfo=UTC), "pending"),
    ]
    payments = [
        {"id": 1, "bill_id": 1, "customer_id": 1, "amount_minor": 123_450, "currency": "USD",
         "paid_at": ISSUED + timedelta(days=3), "reference": "PAY-1"},
        {"id": 2, "bill_id": 3, "customer_id": 2, "amount_minor": 1, "currency": "BHD",
         "paid_at": ISSUED + timedelta(days=5), "reference": "PAY-2"},
    ]  # fmt: skip
    notification = {
        "id": 1, "customer_id": 2, "bill_id": 3, "kind": "overdue", "state": "sent", "dedup_key": "3:overdue",
        "subject": "账单逾期", "context": {}, "created_at": ISSUED, "sent_at": ISSUED, "message_id": "<m1@x>",
    }  # fmt: skip
    with engine.begin() as connection:
        connection.execute(insert(Customer), customers)
        connection.execute(insert(Bill), bills)
        connection.execute(insert(Payment), payments)
        connection.execute(insert(Notification), [notification])


def _bill(bill_id, customer_id, amount_minor, currency, issued_at, status, paid_at=None) -> dict:
    return {
        "id": bill_id,
        "number": f"INV-{bill_id:04d}",
        "customer_id": customer_id,
        "amount_minor": amount_minor,
        "currency": currency,
        "issued_at": issued_at,
        "due_at": issued_at + timedelta(days=30),
        "status": status,
        "paid_at": paid_at,
    }


def read_export(runtime, summary: dict) -> bytes:
    return (runtime.settings.export_dir / summary["path"]).read_bytes()


def export_rows(engine: Engine) -> list:
    with engine.connect() as connection:
        return connection.execute(select(Export.__table__).order_by(Export.id)).all()


def test_bills_to_csv_keep_every_cent_and_utc_times(jobs_runtime, engine: Engine) -> None:
    from jobs.billing.exports.actors import export_data

    insert_billing_rows(engine)

    summary = export_data.fn("bills")

    content = read_export(jobs_runtime, summary)
    rows = list(csv.reader(io.StringIO(content.decode("utf-8"), newline="")))
    assert rows[0] == [
        "id",
        "number",
        "customer_id",
        "amount",
        "currency",
        "issued_at",
        "due_at",
        "status",
        "paid_at",
    ]
    assert rows[1] == [
        "1", "INV-0001", "1", "1234.50", "USD", "2025-01-10T08:00:00+00:00", "2025-02-09T08:00:00+00:00",
        "paid", "2025-01-13T08:00:00+00:00",
    ]  # fmt: skip
    assert [row[3] for row in rows[1:]] == ["1234.50", "1500", "1.005", "0.05", "999999999.99", "0.00"]
    assert rows[5][5] == "2025-02-14T01:02:03.456789+00:00"
    assert rows[2][8] == ""
    assert summary["rows"] == 6 and summary["dataset"] == "bills" and summary["format"] == "csv"
    assert summary["sha256"] == hashlib.sha256(content).hexdigest()
    (export,) = export_rows(engine)
    assert (export.id, export.state, export.rows, export.path) == (
        summary["export_id"],
        "ready",
        6,
        summary["path"],
    )
    assert (export.size_bytes, export.sha256) == (len(content), summary["sha256"])
    assert export.expires_at - export.created_at == timedelta(days=jobs_runtime.settings.export_ttl_days)


@pytest.mark.parametrize(
    ("filters", "expected_ids"),
    [
        ({"from": "2025-02-01"}, [4, 5, 6]),
        ({"to": "2025-01-31"}, [1, 2, 3]),
        ({"from": "2025-02-01", "to": "2025-02-28"}, [4, 5]),
        ({"status": "pending"}, [2, 4, 6]),
        ({"currency": "USD", "customer_id": 1}, [1, 4]),
        ({"customer_id": 3, "status": "paid"}, []),
    ],
)
def test_bill_filters_pick_the_matching_rows(jobs_runtime, engine: Engine, filters, expected_ids) -> None:
    from jobs.billing.exports.actors import export_data

    insert_billing_rows(engine)

    summary = export_data.fn("bills", "csv", filters)

    rows = list(csv.DictReader(io.StringIO(read_export(jobs_runtime, summary).decode())))
    assert [int(row["id"]) for row in rows] == expected_ids
    assert summary["rows"] == len(expected_ids)
    assert export_rows(engine)[0].filters == filters


def test_payments_and_notifications_to_json_lines(jobs_runtime, engine: Engine) -> None:
    from jobs.billing.exports.actors import export_data

    insert_billing_rows(engine)

    payments = export_data.fn("payments", "jsonl", {"currency": "BHD"})
    notifications = export_data.fn("notifications", "jsonl", {"status": "sent"})

    lines = read_export(jobs_runtime, payments).decode().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"id": 2, "reference": "PAY-2", "bill_id": 3, "customer_id": 2, "amount": "0.001", "currency": "BHD",
         "paid_at": "2025-01-15T08:00:00+00:00"},
    ]  # fmt: skip
    (notification,) = [
        json.loads(line) for line in read_export(jobs_runtime, notifications).decode().splitlines()
    ]
    assert notification["subject"] == "账单逾期" and notification["bill_id"] == 3
    assert notification["sent_at"] == "2025-01-10T08:00:00+00:00"
    assert export_data.fn("notifications", "jsonl", {"status": "failed"})["rows"] == 0


def test_xlsx_continues_on_further_sheets(jobs_runtime, engine: Engine, monkeypatch) -> None:
    from jobs.billing.exports.actors import export_data

    insert_billing_rows(engine)
    monkeypatch.setattr(jobs.billing.exports.writers, "XLSX_MAX_DATA_ROWS_PER_SHEET", 4)

    summary = export_data.fn("bills", "xlsx")

    workbook = load_workbook(io.BytesIO(read_export(jobs_runtime, summary)), read_only=True)
    assert workbook.sheetnames == ["bills", "bills (2)"]
    first, second = (
        [list(row) for row in workbook[name].iter_rows(values_only=True)] for name in workbook.sheetnames
    )
    headers = [
        "id",
        "number",
        "customer_id",
        "amount",
        "currency",
        "issued_at",
        "due_at",
        "status",
        "paid_at",
    ]
    assert first[0] == second[0] == headers
    assert [row[0] for row in first[1:] + second[1:]] == [1, 2, 3, 4, 5, 6]
    assert first[1][3] == "1234.50"
    assert summary["rows"] == 6


def test_an_empty_result_is_a_file_with_only_the_header(jobs_runtime, engine: Engine) -> None:
    from jobs.billing.exports.actors import export_data

    summary = export_data.fn("customers", "csv")

    assert read_export(jobs_runtime, summary) == b"id,name,email,locale,created_at\r\n"
    assert summary["rows"] == 0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("invoices",), "unknown dataset 'invoices'"),
        (("bills", "pdf"), "unknown export format 'pdf'"),
        (("bills", "csv", {"colour": "red"}), "unknown filter 'colour' for bills"),
        (("payments", "csv", {"status": "paid"}), "unknown filter 'status' for payments"),
        (("bills", "csv", {"from": "31/01/2025"}), "filter 'from' must be an ISO date"),
        (
            ("bills", "csv", {"from": "2025-02-01", "to": "2025-01-01"}),
            "'from' \\(2025-02-01\\) is after 'to'",
        ),
        (("bills", "csv", {"status": "lost"}), "filter 'status' for bills must be one of"),
        (("bills", "csv", {"currency": "usd"}), "filter 'currency' must be a 3-letter"),
        (("bills", "csv", {"customer_id": "1"}), "filter 'customer_id' must be a positive whole number"),
        (("bills", "csv", {"customer_id": True}), "filter 'customer_id' must be a positive whole number"),
        (("bills", "csv", ["status"]), "filters must be an object"),
    ],
)
def test_bad_arguments_fail_permanently_before_any_work(
    jobs_runtime, engine: Engine, arguments, message
) -> None:
    from jobs.billing.exports.actors import export_data

    with pytest.raises(PermanentError, match=message):
        export_data.fn(*arguments)

    assert export_rows(engine) == []
    assert not jobs_runtime.settings.export_dir.exists() or not any(
        jobs_runtime.settings.export_dir.iterdir()
    )


def test_a_failed_export_is_marked_failed_and_leaves_no_file(
    jobs_runtime, engine: Engine, monkeypatch
) -> None:
    from jobs.billing.exports.actors import export_data

    insert_billing_rows(engine)
    write_csv = jobs.billing.exports.writers.WRITERS["csv"]

    def failing_halfway(stream, spec, batches, format_row, on_rows) -> int:
        write_csv(stream, spec, batches, format_row, on_rows)
        raise OSError(28, "No space left on device")

    monkeypatch.setitem(jobs.billing.exports.writers.WRITERS, "csv", failing_halfway)

    with pytest.raises(OSError, match="No space left on device"):
        export_data.fn("bills")

    (export,) = export_rows(engine)
    assert (export.state, export.path, export.rows) == ("failed", None, None)
    assert list(jobs_runtime.settings.export_dir.iterdir()) == []


def test_running_twice_gives_two_identical_exports(jobs_runtime, engine: Engine) -> None:
    from jobs.billing.exports.actors import export_data

    insert_billing_rows(engine)

    first = export_data.fn("bills", "csv", {"currency": "USD"})
    second = export_data.fn("bills", "csv", {"currency": "USD"})

    assert first["export_id"] != second["export_id"] and first["path"] != second["path"]
    assert first["sha256"] == second["sha256"] and first["rows"] == second["rows"] == 3
    assert [export.state for export in export_rows(engine)] == ["ready", "ready"]
    assert len(list(jobs_runtime.settings.export_dir.iterdir())) == 2


def test_money_text_matches_jobs_money() -> None:
    for minor in (0, 1, 5, 99, 100, 101, 123_456_789, -1, -250, 10**15 + 7):
        for currency in ("USD", "JPY", "BHD", "CLF"):
            assert money_text(minor, currency) == str(from_minor(minor, currency))
            assert Decimal(money_text(minor, currency)) == from_minor(minor, currency)


def test_a_real_worker_exports_to_the_export_folder(
    runtime, environment, start_worker, worker_engine: Engine
) -> None:
    from jobs.billing.exports.actors import export_data

    engine = worker_engine
    insert_billing_rows(engine)
    start_worker(modules=("jobs.billing.exports.actors",))

    export_data.send("bills", "csv", {"currency": "USD"})

    def ready_export():
        with engine.connect() as connection:
            return connection.execute(select(Export.__table__).where(Export.state == "ready")).first()

    export = wait_for(ready_export, timeout=30)
    path = Path(environment["JOBDECK_VAR_DIR"]) / "exports" / export.path
    assert path.read_bytes().count(b"\r\n") == 1 + 3
    assert hashlib.sha256(path.read_bytes()).hexdigest() == export.sha256
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(Export.__table__)) == 1
