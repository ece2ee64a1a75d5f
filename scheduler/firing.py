"""The schedules as APScheduler jobs: each fire claims its tick and sends it through ScheduleManager.

A schedule's job runs CLAIM_LEAD (0.2 s) ahead of each tick (AheadTrigger): the claim and the
pause check are done by then, and ScheduleManager.fire sends the message at the tick's nominal
time, so that only the enqueue lies between the two. Per schedule, set explicitly
(docs/scheduling.md explains them):

- ``misfire_grace_time`` = the schedule's grace: its window, or at least a tolerance for a slow
  moment of this process (15 s, less for schedules firing more often), counted from the claim
  time; a fire later than that is not sent but recorded missed.
- ``coalesce=True``: when several fire times were passed (the process stalled), only the latest
  is sent; the others are left to the missed-run check, which records them missed.
- ``max_instances=1``: a fire still sending (Redis slow) is not overlapped by the next one; the
  next tick is skipped with a line in the log and recorded missed by the check.

A restarted scheduler catches up, per schedule, only the latest tick within its window that no
process took (``catch_up``); the others stay missed.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import (
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.base import BaseTrigger

from jobs.platform.schedules import ScheduleDefinition
from monitoring.schedules import (
    CAUGHT_UP,
    DUPLICATE,
    ENQUEUED,
    FAILED,
    MISSED,
    PAUSED,
    ScheduleManager,
    Tick,
)

logger = logging.getLogger("jobdeck.scheduler")

#: The APScheduler executor (and its threads) that fires the schedules.
EXECUTOR = "schedules"
DEFAULT_FIRING_THREADS = 10
JOB_PREFIX = "schedule:"
#: Seconds ahead of its time a tick is claimed (and its pause checked), at most.
CLAIM_LEAD = 0.2
#: How many next fire times of each schedule the start-up log shows.
SHOWN_NEXT_RUNS = 3


class AheadTrigger(BaseTrigger):
    """Fires ``lead`` seconds before ``trigger``: a tick is claimed (and its pause checked) ahead
    of its time, so that at its time only the enqueue is left to do (ScheduleManager.fire waits)."""

    def __init__(self, trigger: BaseTrigger, lead: float) -> None:
        self.trigger = trigger
        self.lead = timedelta(seconds=lead)

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        previous = None if previous_fire_time is None else _shifted(previous_fire_time, self.lead)
        nominal = self.trigger.get_next_fire_time(previous, _shifted(now, self.lead))
        return None if nominal is None else _shifted(nominal, -self.lead)

    def __str__(self) -> str:
        return f"{self.trigger} claimed {self.lead.total_seconds():g} s ahead"


class FireTimeExecutor(ThreadPoolExecutor):
    """ThreadPoolExecutor that hands each job its scheduled run time as the ``fire_time`` argument.

    APScheduler 3 calls a job without saying when it was due; a tick's identity (its claim, its
    task id, the period its job covers) follows from that time, not from the moment the thread
    got to run (with AheadTrigger the run time is the claim time, just before the tick's).
    """

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        # coalesce=True: run_times holds only the latest fire time.
        super()._do_submit_job(_DueJob(job, run_times[-1]), run_times[-1:])


class _DueJob:
    """A job as APScheduler's run_job sees it, with ``fire_time`` added to its keyword arguments."""

    def __init__(self, job: Any, fire_time: datetime) -> None:
        self._job = job
        self.kwargs = {**job.kwargs, "fire_time": fire_time}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._job, name)

    def __str__(self) -> str:
        return str(self._job)


def claim_lead(definition: ScheduleDefinition) -> float:
    """Seconds ahead of a tick its claim is taken: CLAIM_LEAD, less for schedules firing more often."""
    return min(CLAIM_LEAD, definition.cron.shortest_gap / 4)


def add_schedule_jobs(scheduler: BaseScheduler, manager: ScheduleManager, *, after: datetime) -> None:
    """One job per schedule, for its ticks strictly after ``after`` (earlier ticks are catch_up's)."""
    for definition in manager.monitor.definitions.values():
        lead = timedelta(seconds=claim_lead(definition))
        first = definition.next_fire_time(after)
        scheduler.add_job(
            fire_tick,
            trigger=AheadTrigger(definition.trigger, lead.total_seconds()),
            args=(manager, definition.name),
            id=JOB_PREFIX + definition.name,
            name=definition.name,
            executor=EXECUTOR,
            misfire_grace_time=definition.grace,
            coalesce=True,
            max_instances=1,
            next_run_time=None if first is None else _shifted(first, -lead),
        )
    scheduler.add_listener(lambda event: on_missed(manager, event), EVENT_JOB_MISSED)
    scheduler.add_listener(lambda event: on_skipped(manager, event), EVENT_JOB_MAX_INSTANCES)


def fire_tick(manager: ScheduleManager, name: str, fire_time: datetime | None = None) -> None:
    """Claim the tick that follows the claim time ``fire_time`` (FireTimeExecutor passes it), send
    it at its nominal time, log what became of it; never raises."""
    if fire_time is None:
        logger.error("Schedule %s fired without its fire time: not sent (is FireTimeExecutor in use?)", name)
        return
    fire_time = nominal_time(manager, name, fire_time)
    try:
        tick = manager.fire(name, fire_time)
    except Exception as error:  # Redis unreachable: the missed-run check records it later
        logger.error(
            "Schedule %s, run due %s: not claimed: %s", name, _shown(manager, fire_time), _reason(error)
        )
        return
    log_tick(manager, tick)


def catch_up(manager: ScheduleManager, now: datetime) -> list[Tick]:
    """Send, per schedule, the latest tick within its window at or before ``now`` that nobody took."""
    ticks = []
    for name in manager.monitor.definitions:
        try:
            fire_time = manager.catch_up_time(name, now)
            tick = manager.fire(name, fire_time, catching_up=True) if fire_time else None
        except Exception as error:
            logger.error("Schedule %s: could not catch up: %s", name, _reason(error))
            continue
        if tick is not None:
            log_tick(manager, tick)
            ticks.append(tick)
    return ticks


def log_next_runs(manager: ScheduleManager, now: datetime) -> None:
    """At start-up: each schedule, where its cron comes from, and its next fire times."""
    if not manager.monitor.definitions:
        logger.warning("No schedule is enabled: nothing will be fired.")
    for definition in manager.monitor.definitions.values():
        upcoming = ", ".join(
            moment.isoformat() for moment in definition.next_fire_times(now, SHOWN_NEXT_RUNS)
        )
        logger.info(
            "Schedule %s (%s, cron %s in %s, window %s, grace %d s, from %s): next runs %s.",
            definition.name,
            definition.actor_name,
            definition.cron,
            definition.timezone.key,
            _seconds(definition.window),
            definition.grace,
            definition.source,
            upcoming or "none",
        )


def log_tick(manager: ScheduleManager, tick: Tick) -> None:
    """One line for a tick: schedule, nominal time, lateness, outcome, task id."""
    shown = _shown(manager, tick.fire_time)
    lateness = _lateness(tick.lateness)
    if tick.outcome in (ENQUEUED, CAUGHT_UP):
        verb = "fired" if tick.outcome == ENQUEUED else "caught up"
        logger.info(
            "Schedule %s %s for %s: enqueued task %s, %s.", tick.schedule, verb, shown, tick.task_id, lateness
        )
    elif tick.outcome in (DUPLICATE, PAUSED):
        logger.info(
            "Schedule %s, run due %s: %s (%s); nothing sent.", tick.schedule, shown, tick.outcome, tick.detail
        )
    elif tick.outcome == FAILED:
        logger.error(
            "Schedule %s, run due %s: failed to enqueue task %s: %s",
            tick.schedule,
            shown,
            tick.task_id,
            tick.detail,
        )
    elif tick.outcome == MISSED:
        logger.warning("Schedule %s missed its run due %s: %s.", tick.schedule, shown, tick.detail)


def nominal_time(manager: ScheduleManager, name: str, claim_time: datetime) -> datetime:
    """The tick a claim time belongs to: the first fire time after it (the lead is below the gap)."""
    return manager.monitor.definition(name).next_fire_time(claim_time)


def on_missed(manager: ScheduleManager, event: JobExecutionEvent) -> None:
    """APScheduler found a tick past its grace: record it missed (unless another process took it)."""
    name = event.job_id.removeprefix(JOB_PREFIX)
    try:
        definition: ScheduleDefinition = manager.monitor.definition(name)
        fire_time = nominal_time(manager, name, event.scheduled_run_time)
        late = (datetime.now(UTC) - fire_time).total_seconds()
        reason = f"the scheduler got to it {late:.1f} s late, past its {definition.grace} s grace"
        tick = manager.record_missed(name, fire_time, reason)
    except Exception as error:
        logger.error(
            "Schedule %s, run due %s: missed, and not recorded: %s",
            name,
            event.scheduled_run_time,
            _reason(error),
        )
        return
    if tick is not None:
        log_tick(manager, tick)


def on_skipped(manager: ScheduleManager, event: JobSubmissionEvent) -> None:
    """A tick came while the previous one was still being sent: say so; the missed-run check records it."""
    name = event.job_id.removeprefix(JOB_PREFIX)
    for run_time in event.scheduled_run_times:
        logger.warning(
            "Schedule %s, run due %s: skipped, the previous run is still being sent.",
            name,
            _shown(manager, nominal_time(manager, name, run_time)),
        )


def _shifted(moment: datetime, by: timedelta) -> datetime:
    """``moment`` moved by ``by`` in real time (in UTC: wall-clock arithmetic would cross a DST
    change wrongly), in its own zone."""
    return (moment.astimezone(UTC) + by).astimezone(moment.tzinfo)


def _shown(manager: ScheduleManager, moment: datetime) -> str:
    return moment.astimezone(manager.monitor.timezone).isoformat()


def _lateness(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds * 1000:.0f} ms late" if seconds < 10 else f"{seconds:.0f} s late"


def _seconds(seconds: float) -> str:
    return f"{seconds:g} s" if seconds else "none"


def _reason(error: Exception) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}"
