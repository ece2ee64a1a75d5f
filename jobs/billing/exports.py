"""The data export job: a billing dataset, filtered, streamed to a CSV, JSON Lines or XLSX file.

Rows are read with a streaming Core ``SELECT`` (a server-side cursor on PostgreSQL, SQLite's lazy
cursor) in batches of :data:`DEFAULT_BATCH_ROWS` and written as they arrive, so memory stays flat
however many rows there are. On SQLite the money and time text is computed in the SELECT itself
(no Python code per row), and for CSV the whole line (see :func:`_sqlite_csv_line`); on
PostgreSQL, by :func:`row_formatter` and :mod:`csv`; all give identical output.
Money is written as a decimal string with the currency's number of
places (``"1234.50"``, ``"1500"`` for JPY), never a float; times as ISO 8601 in UTC with their
offset (``"2025-06-30T16:00:00+00:00"``).

Each run is its own export: sending the same export twice (or Dramatiq redelivering it) writes two
files and two ``exports`` rows with identical content and checksum, never a half-file; the extra
one expires like any other. A run that fails marks its row ``failed`` and leaves no file.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

import dramatiq
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Integer,
    Select,
    String,
    Table,
    case,
    cast,
    func,
    insert,
    literal,
    select,
    type_coerce,
    update,
)

from jobs.billing.models import (
    BILL_STATUSES,
    NOTIFICATION_STATES,
    Bill,
    Customer,
    Export,
    Notification,
    Payment,
    utc_now,
)
from jobs.billing.money import COMMON_MINOR_EXPONENT, CURRENCIES_BY_EXPONENT, checked_currency, minor_exponent
from jobs.platform import queues
from jobs.platform.context import current
from jobs.platform.errors import PermanentError
from jobs.platform.progress import report_progress
from jobs.platform.storage import Storage, export_storage

logger = logging.getLogger(__name__)

FORMATS = ("csv", "jsonl", "xlsx")
#: Rows fetched from the database per round trip.
DEFAULT_BATCH_ROWS = 10_000
#: Rows between two progress reports.
PROGRESS_EVERY_ROWS = 100_000
#: An XLSX sheet holds 1,048,576 rows; one is the header.
XLSX_MAX_DATA_ROWS_PER_SHEET = 1_048_575
#: What makes :mod:`csv` (excel dialect, QUOTE_MINIMAL) quote a field, as a GLOB pattern.
CSV_NEEDS_QUOTES_GLOB = '*[,"\r\n]*'

# How a database value becomes an output value.
AS_IS = "as_is"
TIME = "time"
MONEY = "money"


@dataclass(frozen=True)
class Column:
    """One output column: its header, the table column it reads, and how the value is written."""

    header: str
    source: str
    kind: str = AS_IS


@dataclass(frozen=True)
class Dataset:
    """An exportable table: its columns, the date the range filter applies to, and its other filters.

    ``filters`` maps a filter name (``status``, ``currency``, ``customer_id``) to the column it
    compares; ``statuses`` lists the values ``status`` accepts.
    """

    name: str
    table: Table
    columns: tuple[Column, ...]
    date_column: str
    filters: Mapping[str, str]
    statuses: tuple[str, ...] = ()


DATASETS: dict[str, Dataset] = {
    dataset.name: dataset
    for dataset in (
        Dataset(
            name="bills",
            table=Bill.__table__,
            columns=(
                Column("id", "id"),
                Column("number", "number"),
                Column("customer_id", "customer_id"),
                Column("amount", "amount_minor", MONEY),
                Column("currency", "currency"),
                Column("issued_at", "issued_at", TIME),
                Column("due_at", "due_at", TIME),
                Column("status", "status"),
                Column("paid_at", "paid_at", TIME),
            ),
            date_column="issued_at",
            filters={"status": "status", "currency": "currency", "customer_id": "customer_id"},
            statuses=BILL_STATUSES,
        ),
        Dataset(
            name="payments",
            table=Payment.__table__,
            columns=(
                Column("id", "id"),
                Column("reference", "reference"),
                Column("bill_id", "bill_id"),
                Column("customer_id", "customer_id"),
                Column("amount", "amount_minor", MONEY),
                Column("currency", "currency"),
                Column("paid_at", "paid_at", TIME),
            ),
            date_column="paid_at",
            filters={"currency": "currency", "customer_id": "customer_id"},
        ),
        Dataset(
            name="customers",
            table=Customer.__table__,
            columns=(
                Column("id", "id"),
                Column("name", "name"),
                Column("email", "email"),
                Column("locale", "locale"),
                Column("created_at", "created_at", TIME),
            ),
            date_column="created_at",
            filters={"customer_id": "id"},
        ),
        Dataset(
            name="notifications",
            table=Notification.__table__,
            columns=(
                Column("id", "id"),
                Column("customer_id", "customer_id"),
                Column("bill_id", "bill_id"),
                Column("kind", "kind"),
                Column("state", "state"),
                Column("subject", "subject"),
                Column("created_at", "created_at", TIME),
                Column("sent_at", "sent_at", TIME),
                Column("message_id", "message_id"),
            ),
            date_column="created_at",
            filters={"status": "state", "customer_id": "customer_id"},
            statuses=NOTIFICATION_STATES,
        ),
    )
}


@dataclass(frozen=True)
class ExportRequest:
    """A validated export: which dataset, which format, and the normalised filters."""

    dataset: Dataset
    format: str
    filters: dict[str, Any]
    #: The UTC bounds [start, end) the date filters stand for, or None.
    start: datetime | None = None
    end: datetime | None = None


def parse_export_request(
    dataset: object, format: object, filters: object, timezone: ZoneInfo
) -> ExportRequest:
    """Validate an export's arguments; raise PermanentError naming the first bad one.

    ``from`` and ``to`` are ISO dates (``YYYY-MM-DD``), both included, in ``timezone``.
    """
    if dataset not in DATASETS:
        raise PermanentError(f"unknown dataset {dataset!r}; the datasets are: {', '.join(DATASETS)}")
    if format not in FORMATS:
        raise PermanentError(f"unknown export format {format!r}; the formats are: {', '.join(FORMATS)}")
    spec = DATASETS[dataset]
    filters = {} if filters is None else filters
    if not isinstance(filters, Mapping):
        raise PermanentError(f"filters must be an object of filter names to values, got {filters!r}")
    allowed = ("from", "to", *spec.filters)
    for name in filters:
        if name not in allowed:
            raise PermanentError(
                f"unknown filter {name!r} for {dataset}; its filters are: {', '.join(allowed)}"
            )
    normalised: dict[str, Any] = {}
    first_day = _date_filter(filters, "from")
    last_day = _date_filter(filters, "to")
    if first_day and last_day and first_day > last_day:
        raise PermanentError(f"filter 'from' ({first_day}) is after 'to' ({last_day})")
    start = end = None
    if first_day:
        normalised["from"] = first_day.isoformat()
        start = _local_midnight_utc(first_day, timezone)
    if last_day:
        normalised["to"] = last_day.isoformat()
        # 'to' includes its whole day: the bound is the next local midnight.
        end = _local_midnight_utc(last_day + timedelta(days=1), timezone)
    if "status" in filters:
        normalised["status"] = _status_filter(spec, filters["status"])
    if "currency" in filters:
        normalised["currency"] = _currency_filter(filters["currency"])
    if "customer_id" in filters:
        normalised["customer_id"] = _customer_filter(filters["customer_id"])
    return ExportRequest(dataset=spec, format=format, filters=normalised, start=start, end=end)


def _date_filter(filters: Mapping[str, Any], name: str) -> date | None:
    value = filters.get(name)
    if value is None:
        return None
    problem = f"filter {name!r} must be an ISO date like 2025-01-31, got {value!r}"
    # date.fromisoformat also takes 20250131 and week dates; only the plain form is unambiguous to people.
    if not isinstance(value, str) or len(value) != 10:
        raise PermanentError(problem)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise PermanentError(problem) from None


def _local_midnight_utc(day: date, timezone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=timezone).astimezone(UTC)


def _status_filter(spec: Dataset, value: Any) -> str:
    if value not in spec.statuses:
        raise PermanentError(
            f"filter 'status' for {spec.name} must be one of {', '.join(spec.statuses)}, got {value!r}"
        )
    return value


def _currency_filter(value: Any) -> str:
    code = checked_currency(value, what="filter 'currency'")
    minor_exponent(code)  # refuses a code ISO 4217 does not list
    return code


def _customer_filter(value: Any) -> int:
    # bool is an int in Python; true is not customer 1.
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PermanentError(f"filter 'customer_id' must be a positive whole number, got {value!r}")
    return value


def build_query(request: ExportRequest, *, format_in_sql: bool = False, csv_lines: bool = False) -> Select:
    """The Core SELECT of the export's rows, in id order, with its filters applied.

    With ``format_in_sql`` (SQLite), money and time columns come back already as their output
    text (see :func:`_sqlite_text`), so no Python code runs per row; otherwise
    :func:`row_formatter` converts them. With ``csv_lines`` (SQLite), each row is one value:
    its finished CSV line (see :func:`_sqlite_csv_line`).
    """
    spec = request.dataset
    table = spec.table
    if csv_lines:
        selected = [_sqlite_csv_line(table, spec.columns)]
    elif format_in_sql:
        selected = [_sqlite_text(table, column) for column in spec.columns]
    else:
        selected = [table.c[name] for name in _source_columns(spec)]
    query = select(*selected).order_by(table.c.id)
    date_column = table.c[spec.date_column]
    if request.start is not None:
        query = query.where(date_column >= request.start)
    if request.end is not None:
        query = query.where(date_column < request.end)
    for name, column in spec.filters.items():
        if name in request.filters:
            query = query.where(table.c[column] == request.filters[name])
    return query


def _sqlite_text(table: Table, column: Column) -> ColumnElement:
    """The column as SQLite computes its output text: a million rows formatted in C, not in Python.

    UTCDateTime stores UTC as ``2025-06-30 16:00:00.000000``; ``isoformat()`` of the same instant
    is ``2025-06-30T16:00:00+00:00`` (fraction kept only when not zero). NULL stays NULL.
    """
    source = table.c[column.source]
    if column.kind == TIME:
        stored = type_coerce(source, String)
        return (func.replace(func.replace(stored, " ", "T"), ".000000", "") + "+00:00").label(column.header)
    if column.kind == MONEY:
        return _sqlite_money_text(source, table.c.currency).label(column.header)
    return source


def _sqlite_csv_line(table: Table, columns: Sequence[Column]) -> ColumnElement:
    """One row as the exact CSV line :mod:`csv` writes (``\\r\\n`` included), built by SQLite.

    csv.writer checks every character of every field in C, yet takes half a SQLite export's time;
    one ``printf`` per row is far cheaper. Fields are quoted as QUOTE_MINIMAL does, only where the
    text holds a comma, quote, CR or LF (money, times and integers never do); NULL is an empty
    field, as in :mod:`csv`. SQLite's text functions stop at a NUL character, which a text column
    could only hold if written outside jobdeck (PostgreSQL refuses it).
    """
    fields = []
    for column in columns:
        source = table.c[column.source]
        if column.kind != AS_IS:
            fields.append(_sqlite_text(table, column).element)
        elif isinstance(source.type, Integer):
            fields.append(source)
        else:
            text = type_coerce(source, String)
            quoted = literal('"') + func.replace(text, '"', '""') + '"'
            fields.append(case((text.op("GLOB")(CSV_NEEDS_QUOTES_GLOB), quoted), else_=text))
    return func.printf(literal(",".join(["%s"] * len(fields)) + "\r\n"), *fields)


def _sqlite_money_text(amount_minor: ColumnElement, currency: ColumnElement) -> ColumnElement:
    """SQL giving the same text as :func:`money_text`, one CASE branch per currency exponent."""

    def with_places(places: int) -> ColumnElement:
        if places == 0:
            return cast(amount_minor, String)
        scale = 10**places
        sign = case((amount_minor < 0, literal("-")), else_=literal(""))
        # SQLite's own "/" truncates integers; SQLAlchemy's "/" and "//" would add a float or FLOOR().
        whole = func.abs(amount_minor).op("/")(scale)
        fraction = func.abs(amount_minor) % scale
        # One printf costs less than the casts, substr and concatenations it replaces.
        return func.printf(literal(f"%s%d.%0{places}d"), sign, whole, fraction)

    branches = [
        (currency.in_(codes), with_places(places))
        for places, codes in CURRENCIES_BY_EXPONENT.items()
        if places != COMMON_MINOR_EXPONENT
    ]
    return case(*branches, else_=with_places(COMMON_MINOR_EXPONENT))


def _source_columns(spec: Dataset) -> list[str]:
    """The table columns to select: each output column's source in output order, then currency for money."""
    names = [column.source for column in spec.columns]
    if any(column.kind == MONEY for column in spec.columns) and "currency" not in names:
        names.append("currency")
    return names


def row_formatter(spec: Dataset) -> Callable[[Sequence], list]:
    """A function turning one selected row into the output values (money as text, times as ISO).

    It runs once per exported row, so it converts only the money and time positions in place.
    """
    positions = {name: index for index, name in enumerate(_source_columns(spec))}
    currency_at = positions.get("currency")
    money_at = [positions[column.source] for column in spec.columns if column.kind == MONEY]
    time_at = [positions[column.source] for column in spec.columns if column.kind == TIME]
    width = len(spec.columns)

    def format_row(row: Sequence) -> list:
        values = list(row)
        for at in money_at:
            values[at] = money_text(values[at], values[currency_at])
        for at in time_at:
            if values[at] is not None:
                values[at] = values[at].isoformat()
        # Drop the currency selected only for the money columns.
        return values if len(values) == width else values[:width]

    return format_row


def money_text(amount_minor: int, currency: str) -> str:
    """Minor units as a decimal string with the currency's places: (123450, 'USD') -> '1234.50'.

    The same text as ``str(jobs.billing.money.from_minor(...))``, computed with integers because it
    runs once per exported row.
    """
    exponent = minor_exponent(currency)
    if exponent == 0:
        return str(amount_minor)
    whole, fraction = divmod(abs(amount_minor), 10**exponent)
    sign = "-" if amount_minor < 0 else ""
    return f"{sign}{whole}.{fraction:0{exponent}d}"


class CsvLines(list):
    """A batch of rows that are each one finished CSV line, as 1-tuples (see :func:`_sqlite_csv_line`)."""


def stream_rows(
    engine: Engine,
    request: ExportRequest,
    *,
    format_in_sql: bool = False,
    csv_lines: bool = False,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> Iterator[list[Sequence]]:
    """Yield the export's rows in batches, from one streaming SELECT (one consistent snapshot).

    With ``csv_lines`` (SQLite only), the batches are :class:`CsvLines`.
    """
    query = build_query(request, format_in_sql=format_in_sql, csv_lines=csv_lines)
    with engine.connect() as connection:
        if csv_lines:
            yield from map(CsvLines, _driver_batches(connection, query, batch_rows))
            return
        if format_in_sql:
            yield from _driver_batches(connection, query, batch_rows)
            return
        result = connection.execution_options(stream_results=True, yield_per=batch_rows).execute(query)
        yield from result.partitions()


def _driver_batches(connection: Connection, query: Select, batch_rows: int) -> Iterator[list[Sequence]]:
    """Batches read straight from the driver's cursor (lazy on SQLite), skipping SQLAlchemy's Row objects.

    Only for queries whose values are already final: about 15% of a SQLite export's time. The plain
    execute matters: a buffered (stream_results) result would already have taken rows off the cursor.
    """
    with closing(connection.execute(query)) as result:
        while batch := result.cursor.fetchmany(batch_rows):
            yield batch


def count_rows(engine: Engine, request: ExportRequest) -> int:
    """How many rows the export will hold (for progress reports)."""
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(build_query(request).subquery())) or 0


def write_csv(
    stream: BinaryIO,
    spec: Dataset,
    batches: Iterable[list[Sequence]],
    format_row: Callable[[Sequence], list] | None,
    on_rows: Callable[[int], None],
) -> int:
    """Write a header and every row as UTF-8 CSV (no BOM, ``\\r\\n`` line ends); return the row count.

    :class:`CsvLines` batches are written as they are, one string per batch.
    """
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
    writer = csv.writer(text)
    writer.writerow([column.header for column in spec.columns])
    rows = 0
    for batch in batches:
        if isinstance(batch, CsvLines):
            text.write("".join([line for (line,) in batch]))
        else:
            writer.writerows(batch if format_row is None else map(format_row, batch))
        rows += len(batch)
        on_rows(rows)
    text.flush()
    text.detach()  # the storage, not the wrapper, closes the file
    return rows


def write_jsonl(
    stream: BinaryIO,
    spec: Dataset,
    batches: Iterable[list[Sequence]],
    format_row: Callable[[Sequence], list] | None,
    on_rows: Callable[[int], None],
) -> int:
    """Write one JSON object per line (UTF-8, keys in column order); return the row count."""
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="\n")
    headers = [column.header for column in spec.columns]
    format_row = format_row or list
    rows = 0
    for batch in batches:
        text.writelines(
            json.dumps(dict(zip(headers, format_row(row), strict=True)), ensure_ascii=False) + "\n"
            for row in batch
        )
        rows += len(batch)
        on_rows(rows)
    text.flush()
    text.detach()
    return rows


def write_xlsx(
    stream: BinaryIO,
    spec: Dataset,
    batches: Iterable[list[Sequence]],
    format_row: Callable[[Sequence], list] | None,
    on_rows: Callable[[int], None],
) -> int:
    """Write an XLSX workbook in openpyxl's write-only mode; return the row count.

    A sheet holds at most XLSX_MAX_DATA_ROWS_PER_SHEET (1,048,575) data rows under its header;
    the rows past that continue on further sheets named ``bills``, ``bills (2)``, ``bills (3)``, ...
    each with the header again. Money stays text, so Excel cannot round it through a float.
    """
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    headers = [column.header for column in spec.columns]
    # openpyxl appends lists and tuples, not database rows.
    format_row = format_row or list
    sheet = None
    sheets = 0
    on_sheet = rows = 0
    for batch in batches:
        for row in batch:
            if sheet is None or on_sheet == XLSX_MAX_DATA_ROWS_PER_SHEET:
                sheets += 1
                sheet = workbook.create_sheet(spec.name if sheets == 1 else f"{spec.name} ({sheets})")
                sheet.append(headers)
                on_sheet = 0
            sheet.append(format_row(row))
            on_sheet += 1
        rows += len(batch)
        on_rows(rows)
    if sheet is None:
        workbook.create_sheet(spec.name).append(headers)
    workbook.save(stream)
    return rows


WRITERS = {"csv": write_csv, "jsonl": write_jsonl, "xlsx": write_xlsx}


def run_export(
    engine: Engine,
    storage: Storage,
    request: ExportRequest,
    *,
    ttl_days: float,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Write one export file and its ``exports`` row; return the row's summary.

    The row is ``running`` while the file is written, ``ready`` with rows, size, sha256 and expiry
    when it is complete, and ``failed`` (no file) if anything goes wrong; the error is re-raised.
    """
    now = now or utc_now()
    expires_at = now + timedelta(days=ttl_days)
    export_id = _insert_export(engine, request, now, expires_at)
    stored_name = None
    try:
        total = count_rows(engine, request)
        # SQLite hands times back as text; reshaping it in SQL is much cheaper than parsing it in Python.
        format_in_sql = engine.dialect.name == "sqlite"
        csv_lines = format_in_sql and request.format == "csv"
        with storage.create("." + request.format) as new_file:
            rows = WRITERS[request.format](
                new_file.stream,
                request.dataset,
                stream_rows(engine, request, format_in_sql=format_in_sql, csv_lines=csv_lines),
                None if format_in_sql else row_formatter(request.dataset),
                _progress_reporter(total),
            )
        stored_name = new_file.name
        _update_export(
            engine,
            export_id,
            state="ready",
            path=new_file.name,
            rows=rows,
            size_bytes=new_file.size,
            sha256=new_file.sha256,
        )
    except BaseException:
        logger.exception("Export %s of %s failed.", export_id, request.dataset.name)
        if stored_name is not None:
            storage.delete(stored_name)
        _mark_failed(engine, export_id)
        raise
    return {
        "export_id": export_id,
        "dataset": request.dataset.name,
        "format": request.format,
        "filters": request.filters,
        "rows": rows,
        "size_bytes": new_file.size,
        "sha256": new_file.sha256,
        "path": new_file.name,
        "expires_at": expires_at.isoformat(),
    }


def _progress_reporter(total: int) -> Callable[[int], None]:
    next_report = PROGRESS_EVERY_ROWS

    def on_rows(rows: int) -> None:
        nonlocal next_report
        if rows >= next_report and total:
            report_progress(100 * rows / total, f"{rows:,} of {total:,} rows")
            next_report = rows + PROGRESS_EVERY_ROWS

    return on_rows


def _insert_export(engine: Engine, request: ExportRequest, now: datetime, expires_at: datetime) -> int:
    with engine.begin() as connection:
        return connection.execute(
            insert(Export.__table__)
            .values(
                dataset=request.dataset.name,
                format=request.format,
                filters=request.filters,
                state="running",
                created_at=now,
                expires_at=expires_at,
            )
            .returning(Export.__table__.c.id)
        ).scalar_one()


def _update_export(engine: Engine, export_id: int, **values: Any) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(Export.__table__).where(Export.__table__.c.id == export_id).values(**values)
        )


def _mark_failed(engine: Engine, export_id: int) -> None:
    try:
        _update_export(engine, export_id, state="failed", path=None)
    except Exception:
        # The database may be what failed; the clean-up job fails stale running exports later.
        logger.exception("Could not mark export %s failed.", export_id)


@dramatiq.actor(queue_name=queues.DEFAULT)
def export_data(dataset: str, format: str = "csv", filters: dict[str, Any] | None = None) -> dict[str, Any]:
    """Export a dataset (bills, payments, customers, notifications) as csv, jsonl or xlsx.

    ``filters``: ``from`` / ``to`` (ISO dates, inclusive, in JOBDECK_TIMEZONE, on the dataset's
    main date: bills.issued_at, payments.paid_at, customers.created_at, notifications.created_at),
    ``status``, ``currency``, ``customer_id`` where the dataset has them. Bad arguments fail at
    once (PermanentError), never retried. Each run is its own export (see the module docstring).
    """
    runtime = current()
    request = parse_export_request(dataset, format, filters, runtime.settings.timezone)
    return run_export(
        runtime.engine, export_storage(runtime.settings), request, ttl_days=runtime.settings.export_ttl_days
    )
