"""The export file writers (CSV, JSON Lines, XLSX): each streams batches of rows into a binary file."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Sequence
from typing import BinaryIO

from jobs.billing.exports.datasets import Dataset
from jobs.billing.exports.queries import CsvLines

#: An XLSX sheet holds 1,048,576 rows; one is the header.
XLSX_MAX_DATA_ROWS_PER_SHEET = 1_048_575


def write_csv(
    stream: BinaryIO,
    spec: Dataset,
    batches: Iterable[list[Sequence]],
    format_row: Callable[[Sequence], list] | None,
    on_rows: Callable[[int], None],
) -> int:
    """Write a header and every row as UTF-8 CSV (no BOM, ``\\r\\n`` line ends); return the row count.

    :class:`~.queries.CsvLines` batches are written as they are, one string per batch.
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
    # openpyxl takes a while to import, and only XLSX exports need it.
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
