"""The data export job: a billing dataset, filtered, streamed to a CSV, JSON Lines or XLSX file.

Rows are read with a streaming Core ``SELECT`` (a server-side cursor on PostgreSQL, SQLite's lazy
cursor) in batches of :data:`~.queries.DEFAULT_BATCH_ROWS` and written as they arrive, so memory
stays flat however many rows there are. On SQLite the money and time text is computed in the
SELECT itself (no Python code per row), and for CSV the whole line (see :mod:`.queries`); on
PostgreSQL, by :func:`~.formatting.row_formatter` and :mod:`csv`; all give identical output.
Money is written as a decimal string with the currency's number of
places (``"1234.50"``, ``"1500"`` for JPY), never a float; times as ISO 8601 in UTC with their
offset (``"2025-06-30T16:00:00+00:00"``).

Each run is its own export: sending the same export twice (or Dramatiq redelivering it) writes two
files and two ``exports`` rows with identical content and checksum, never a half-file; the extra
one expires like any other. A run that fails marks its row ``failed`` and leaves no file.

The modules: :mod:`.datasets` (what can be exported), :mod:`.request` (checking the arguments),
:mod:`.queries` (the SELECT), :mod:`.formatting` (values in Python), :mod:`.writers` (the file
formats), :mod:`.running` (one run and its row) and :mod:`.actors` (the job). The actor is left
out here: its module binds to the broker, so only ``jobs.runtime.start()`` imports it.
"""

from jobs.billing.exports.datasets import DATASETS, FORMATS, Column, Dataset
from jobs.billing.exports.formatting import money_text, row_formatter
from jobs.billing.exports.queries import build_query, count_rows, stream_rows
from jobs.billing.exports.request import ExportRequest, parse_export_request
from jobs.billing.exports.running import run_export
from jobs.billing.exports.writers import WRITERS, write_csv, write_jsonl, write_xlsx

__all__ = [
    "DATASETS",
    "FORMATS",
    "WRITERS",
    "Column",
    "Dataset",
    "ExportRequest",
    "build_query",
    "count_rows",
    "money_text",
    "parse_export_request",
    "row_formatter",
    "run_export",
    "stream_rows",
    "write_csv",
    "write_jsonl",
    "write_xlsx",
]
