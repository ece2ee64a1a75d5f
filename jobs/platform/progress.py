"""The small interface through which a running job reports its progress."""

from __future__ import annotations

import logging

import dramatiq
from dramatiq.middleware import CurrentMessage

logger = logging.getLogger(__name__)


def report_progress(percent: float, message: str = "") -> None:
    """Report how far the current job has got (0-100) with a short message.

    Every broker middleware with an ``after_report_progress(broker, message, percent, text)``
    method receives it; the monitoring middleware stores it on the task. Outside a job, or when a
    receiver fails, the report only goes to the log: progress must never fail a job.
    """
    percent = max(0.0, min(100.0, float(percent)))
    current = CurrentMessage.get_current_message()
    logger.info("Progress %s%%: %s", f"{percent:g}", message)
    if current is None:
        return
    broker = dramatiq.get_broker()
    for middleware in broker.middleware:
        receiver = getattr(middleware, "after_report_progress", None)
        if receiver is None:
            continue
        try:
            receiver(broker, current, percent, message)
        except Exception:
            logger.exception("Could not record progress of %s.", current.message_id)
