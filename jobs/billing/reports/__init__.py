"""The periodic reports, and storing any report row (one per kind and period).

Each report sums the billing tables for one period of the configured zone, grouped by currency,
entirely in SQL on integer minor units; Decimals appear only when the figures are written out.
The figures go to a :class:`~jobs.billing.models.Report` row (replaced when the period is generated again)
and to a CSV and an HTML file in ``settings.report_dir``, each written atomically.

The modules: :mod:`.store` (the row), :mod:`.figures` (the SQL), :mod:`.rendering` (the files),
:mod:`.generating` (one run) and :mod:`.actors` (the jobs, queue ``reports``). The actors are left
out here: their module binds to the broker, so only ``jobs.runtime.start()`` imports it.
"""

from jobs.billing.reports.figures import collection_rate, paid_by_currency, report_figures
from jobs.billing.reports.generating import REPORT_PERIODS, ReportError, generate_report
from jobs.billing.reports.rendering import LABELS, render_csv, render_html, report_file_stem
from jobs.billing.reports.store import store_report

__all__ = [
    "LABELS",
    "REPORT_PERIODS",
    "ReportError",
    "collection_rate",
    "generate_report",
    "paid_by_currency",
    "render_csv",
    "render_html",
    "report_figures",
    "report_file_stem",
    "store_report",
]
