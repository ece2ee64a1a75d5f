"""The four periodic report jobs (queue ``reports``), one per report kind.

Imported by ``jobs.runtime.start()`` once the broker is set up (see ``ACTOR_MODULES``).
"""

from __future__ import annotations

from typing import Any

import dramatiq
from periodiq import cron

from jobs.billing.reports.generating import generate_report
from jobs.platform import queues


# At minute 0 of every hour; caught up within 10 minutes (later, the next hour's is near).
@dramatiq.actor(queue_name=queues.REPORTS, periodic=cron("0 * * * *"), schedule_window=10 * 60)
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


# Mondays 10:00 (cron's 1 is Monday; the original's day_of_week=0 fired on Sundays); a day to catch up.
@dramatiq.actor(queue_name=queues.REPORTS, periodic=cron("0 10 * * 1"), schedule_window=24 * 3600)
def generate_weekly_report(
    period_start: str | None = None, fire_time: str | None = None, language: str | None = None
) -> dict[str, Any]:
    """The report of one Monday-to-Monday week (default: the week that ended at the fire time)."""
    return generate_report("weekly", period_start=period_start, fire_time=fire_time, language=language)


# The 1st of each month at 00:00; two days to catch up.
@dramatiq.actor(queue_name=queues.REPORTS, periodic=cron("0 0 1 * *"), schedule_window=2 * 24 * 3600)
def generate_monthly_report(
    period_start: str | None = None, fire_time: str | None = None, language: str | None = None
) -> dict[str, Any]:
    """The report of one calendar month (default: the month that ended at the fire time)."""
    return generate_report("monthly", period_start=period_start, fire_time=fire_time, language=language)
