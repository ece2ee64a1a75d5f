"""The scheduler process: starts, logs, fires its schedules, and stops cleanly on SIGTERM.

Besides the schedules it ticks a heartbeat into Redis (the workers alert when it stops) and
evaluates the alert rules every ``JOBDECK_ALERT_INTERVAL`` seconds (monitoring.alerts).
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import datetime

from apscheduler.schedulers.background import BackgroundScheduler

from jobs.platform.errors import JobdeckError
from jobs.platform.settings import Settings
from jobs.runtime import Runtime, start
from monitoring.alerts import Alerter, record_scheduler_heartbeat

logger = logging.getLogger("jobdeck.scheduler")

#: Seconds between scheduler heartbeats, at most; shorter when the silence threshold is short.
DEFAULT_HEARTBEAT_TICK = 15.0


def run() -> int:
    """Run until SIGTERM or SIGINT; return the process exit status."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # APScheduler logs every run of every job at INFO; the heartbeat alone would be 4 lines a minute.
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
    try:
        runtime = start()
    except JobdeckError as error:
        logger.error("%s", error)
        return 2
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda signum, frame: stopping.set())
    scheduler = BackgroundScheduler(timezone=runtime.settings.timezone)
    add_monitoring_jobs(scheduler, runtime)
    scheduler.start()
    logger.info("Scheduler started (time zone %s).", runtime.settings.timezone.key)
    stopping.wait()
    logger.info("Scheduler stopping.")
    scheduler.shutdown(wait=False)
    logger.info("Scheduler stopped.")
    return 0


def heartbeat_tick(settings: Settings) -> float:
    """Seconds between heartbeats: 15, or a quarter of the silence threshold if that is shorter."""
    return min(DEFAULT_HEARTBEAT_TICK, settings.alert_scheduler_silence / 4)


def add_monitoring_jobs(scheduler: BackgroundScheduler, runtime: Runtime) -> None:
    """Add the heartbeat (every tick) and the alert evaluation (every alert interval), both due now."""
    alerter = runtime.alerter
    now = datetime.now(runtime.settings.timezone)
    scheduler.add_job(
        beat,
        "interval",
        seconds=heartbeat_tick(runtime.settings),
        args=(runtime,),
        id="jobdeck-scheduler-heartbeat",
        next_run_time=now,
        coalesce=True,
        max_instances=1,
    )
    scheduler.add_job(
        evaluate_alerts,
        "interval",
        seconds=runtime.settings.alert_interval,
        args=(alerter,),
        id="jobdeck-alerts",
        next_run_time=now,
        coalesce=True,
        max_instances=1,
    )


def beat(runtime: Runtime) -> None:
    """Write the scheduler heartbeat; a Redis hiccup is logged, the next tick tries again."""
    try:
        record_scheduler_heartbeat(runtime.store)
    except Exception:
        logger.warning("Could not write the scheduler heartbeat.", exc_info=True)


def evaluate_alerts(alerter: Alerter) -> None:
    """Evaluate the alert rules once, if no other scheduler replica claimed this period."""
    try:
        evaluation = alerter.evaluate()
    except Exception:  # evaluate() never raises; this keeps a bug from stopping the job
        logger.warning("Alert evaluation failed.", exc_info=True)
        return
    if evaluation.sent:
        logger.info("Alerts: %d raised, %d sent.", len(evaluation.raised), len(evaluation.sent))
