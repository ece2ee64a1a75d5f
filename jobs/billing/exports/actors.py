"""The data export job (queue ``default``): parse the arguments, run the export.

Imported by ``jobs.runtime.start()`` once the broker is set up (see ``ACTOR_MODULES``).
"""

from __future__ import annotations

from typing import Any

import dramatiq

from jobs.billing.exports.request import parse_export_request
from jobs.billing.exports.running import run_export
from jobs.platform import queues
from jobs.platform.context import current
from jobs.platform.storage import export_storage


@dramatiq.actor(queue_name=queues.DEFAULT)
def export_data(dataset: str, format: str = "csv", filters: dict[str, Any] | None = None) -> dict[str, Any]:
    """Export a dataset (bills, payments, customers, notifications) as csv, jsonl or xlsx.

    ``filters``: ``from`` / ``to`` (ISO dates, inclusive, in JOBDECK_TIMEZONE, on the dataset's
    main date: bills.issued_at, payments.paid_at, customers.created_at, notifications.created_at),
    ``status``, ``currency``, ``customer_id`` where the dataset has them. Bad arguments fail at
    once (PermanentError), never retried. Each run is its own export (see jobs.billing.exports).
    """
    runtime = current()
    request = parse_export_request(dataset, format, filters, runtime.settings.timezone)
    return run_export(
        runtime.engine, export_storage(runtime.settings), request, ttl_days=runtime.settings.export_ttl_days
    )
