"""The scheduler process: starts, logs, fires its schedules, and stops cleanly on SIGTERM.

``python -m scheduler [MODULE ...]`` fires every enabled schedule (jobs.platform.schedules;
the modules are extra actor modules to import, as ``dramatiq jobs.worker MODULE`` takes them);
``python -m scheduler --list`` prints the schedules and exits. Besides the schedules it ticks a
heartbeat into Redis (the workers alert when it stops) and evaluates the alert rules every
``JOBDECK_ALERT_INTERVAL`` seconds (monitoring.alerts), which also records missed runs.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from jobs.platform.errors import JobdeckError
from jobs.platform.settings import Settings
from jobs.runtime import Runtime, start
from monitoring.alerts import Alerter, record_scheduler_heartbeat
from scheduler.firing import (
    DEFAULT_FIRING_THREADS,
    EXECUTOR,
    FireTimeExecutor,
    add_schedule_jobs,
    catch_up,
    log_next_runs,
)
from scheduler.listing import fail, print_schedules

logger = logging.getLogger("jobdeck.scheduler")

#: Seconds between scheduler heartbeats, at most; shorter when the silence threshold is short.
DEFAULT_HEARTBEAT_TICK = 15.0
#: Exit status when a setting, an argument or a module is wrong (one line on standard error).
EXIT_BAD_SETUP = 2


def run(argv: Sequence[str] | None = None) -> int:
    """Run until SIGTERM or SIGINT (or print the schedules with --list); return the exit status."""
    arguments = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # APScheduler logs every job added and every run at INFO; jobdeck logs one line per fire itself.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    try:
        runtime = start()
        for module in arguments.modules:
            importlib.import_module(module)
        # Read now, so that a bad JOBDECK_SCHEDULE_* override stops the process with one line.
        logger.debug("%d schedules enabled.", len(runtime.schedule_definitions))
    except (JobdeckError, ImportError) as error:
        fail(str(error))
        return EXIT_BAD_SETUP
    if arguments.list:
        return print_schedules(runtime.schedule_monitor, sys.stdout)
    return serve(runtime)


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scheduler", description="Fire jobdeck's schedules.")
    parser.add_argument("--list", action="store_true", help="print the schedules and exit")
    parser.add_argument("modules", nargs="*", metavar="MODULE", help="extra actor modules to import")
    return parser.parse_args(argv)


def serve(runtime: Runtime) -> int:
    """Fire the schedules until SIGTERM or SIGINT; exit status 0."""
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda signum, frame: stopping.set())
    manager = runtime.schedule_manager
    now = datetime.now(UTC)
    log_next_runs(manager, now)
    scheduler = BackgroundScheduler(
        timezone=runtime.settings.timezone,
        executors={"default": ThreadPoolExecutor(4), EXECUTOR: FireTimeExecutor(DEFAULT_FIRING_THREADS)},
    )
    add_monitoring_jobs(scheduler, runtime)
    try:
        manager.prepare()
    except Exception as error:  # Redis down at start: the fires will say so, tick by tick
        logger.warning("Could not load the scripts of a fire: %s", error)
    # Ticks up to ``now`` are catch-up's, the ones after it APScheduler's: none falls between.
    catch_up(manager, now)
    add_schedule_jobs(scheduler, manager, after=now)
    scheduler.start()
    logger.info("Scheduler started (time zone %s, as %s).", runtime.settings.timezone.key, manager.process)
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
