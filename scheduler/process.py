"""The scheduler process: starts, logs, fires its schedules, and stops cleanly on SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading

from apscheduler.schedulers.background import BackgroundScheduler

from jobs.errors import JobdeckError

logger = logging.getLogger("jobdeck.scheduler")


def run() -> int:
    """Run until SIGTERM or SIGINT; return the process exit status."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        from jobs.runtime import start

        runtime = start()
    except JobdeckError as error:
        logger.error("%s", error)
        return 2
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda signum, frame: stopping.set())
    scheduler = BackgroundScheduler(timezone=runtime.settings.timezone)
    scheduler.start()
    logger.info("Scheduler started (time zone %s).", runtime.settings.timezone.key)
    stopping.wait()
    logger.info("Scheduler stopping.")
    scheduler.shutdown(wait=False)
    logger.info("Scheduler stopped.")
    return 0
