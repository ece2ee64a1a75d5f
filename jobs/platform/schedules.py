"""What is scheduled: each periodic actor's cron expression, zone and window, decided in one place.

A schedule is declared next to its actor with periodiq's option, plus a catch-up window::

    @dramatiq.actor(queue_name=queues.REPORTS, periodic=cron("0 * * * *"), schedule_window=600)

:func:`schedule_definitions` reads the broker's actors and the deployment's overrides
(``JOBDECK_SCHEDULE_<JOB>`` = a cron expression or ``off``, ``JOBDECK_SCHEDULE_<JOB>_WINDOW`` =
seconds; see jobs.platform.settings) and returns the schedules every process agrees on: the
scheduler fires them, the workers' alert rules check that they fired, the faces list them.

periodiq's runner never runs: ``ScheduleOptions`` (in place of periodiq's middleware) declares the
options and refuses the messages periodiq's runner sends, which would fire every tick a second
time. periodiq's worker middleware, which drops a message whose ``scheduled_at`` option is over
30 s old, is not installed; the nominal fire time travels as the job's ``fire_time`` argument.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import dramatiq
from apscheduler.triggers.base import BaseTrigger
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import MiddlewareError

from jobs.platform.cron import CronExpression
from jobs.platform.defaults import DEFAULT_SCHEDULE_TOLERANCE_S
from jobs.platform.errors import JobdeckError, SettingsError
from jobs.platform.settings import ScheduleOverride, Settings

#: The actor options that declare a schedule: periodiq's cron, and the catch-up window (seconds).
PERIODIC_OPTION = "periodic"
WINDOW_OPTION = "schedule_window"
#: The message option periodiq's runner sets on what it sends.
PERIODIQ_RUNNER_OPTION = "scheduled_at"
#: Task ids of ticks are uuid5 in this namespace of (schedule, nominal fire time in ms).
TICK_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://jobdeck.localhost/schedule-tick")
ONE_MICROSECOND = timedelta(microseconds=1)


class PeriodiqRunnerRefused(MiddlewareError, JobdeckError):
    """Raised when periodiq's own runner sends a message: jobdeck's scheduler fires the schedules."""


class ScheduleOptions(dramatiq.Middleware):
    """Declares the schedule options actors may take and refuses periodiq's runner's sends."""

    actor_options = {PERIODIC_OPTION, WINDOW_OPTION}

    def before_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message, delay: int) -> None:
        """Refuse a message periodiq's runner sent (it marks them ``scheduled_at``)."""
        if PERIODIQ_RUNNER_OPTION in message.options:
            raise PeriodiqRunnerRefused(
                f"{message.actor_name} was sent by periodiq's runner, which must not run: "
                "`python -m scheduler` fires jobdeck's schedules (every tick would run twice)"
            )


def accept_schedule_options() -> None:
    """Let actors declared before ``jobs.runtime.start()`` take the schedule options.

    Actors bind to Dramatiq's global broker when their module is imported, and Dramatiq refuses
    an option no middleware of that broker declares. Before start() installs jobdeck's broker
    there is none (Dramatiq would make a RabbitMQ or localhost Redis one on the spot): a
    StubBroker with ScheduleOptions holds the actors until start() moves them to jobdeck's. A
    global broker that lacks the options gets ScheduleOptions added.
    """
    broker = dramatiq.broker.global_broker
    if broker is None:
        dramatiq.set_broker(StubBroker(middleware=[ScheduleOptions()]))
    elif not ScheduleOptions.actor_options <= broker.actor_options:
        broker.add_middleware(ScheduleOptions())


@dataclass(frozen=True)
class ScheduleDefinition:
    """One schedule: which job, when (cron in ``timezone``), and how late a tick may still be sent.

    ``window`` (seconds) is how long after its nominal time a tick no scheduler sent may still
    be caught up, by a scheduler that was down or late; 0 for none. ``grace`` is what APScheduler
    gets as ``misfire_grace_time``: the window, or at least the tolerance a running scheduler
    needs for a slow moment. ``source`` names where the cron came from (the actor or a variable).
    """

    name: str
    actor_name: str
    queue_name: str
    cron: CronExpression
    timezone: ZoneInfo
    window: float = 0
    source: str = "actor"
    passes_fire_time: bool = True
    trigger: BaseTrigger = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "trigger", self.cron.trigger(self.timezone))

    @property
    def grace(self) -> int:
        """Seconds after its nominal time a tick is still sent (APScheduler's misfire_grace_time)."""
        tolerance = min(DEFAULT_SCHEDULE_TOLERANCE_S, self.cron.shortest_gap)
        return max(1, int(max(self.window, tolerance)))

    def next_fire_time(self, after: datetime) -> datetime | None:
        """The first fire time strictly after ``after``, in the schedule's zone."""
        # Reckoned from UTC: wall-clock arithmetic on a repeated local time would step back.
        start = (after.astimezone(UTC) + ONE_MICROSECOND).astimezone(self.timezone)
        return self.trigger.get_next_fire_time(None, start)

    def next_fire_times(self, after: datetime, count: int) -> list[datetime]:
        """The next ``count`` fire times strictly after ``after``."""
        times: list[datetime] = []
        while len(times) < count:
            fire_time = self.next_fire_time(times[-1] if times else after)
            if fire_time is None:
                break
            times.append(fire_time)
        return times

    def fire_times_between(self, after: datetime, until: datetime) -> list[datetime]:
        """Every fire time in (after, until], oldest first."""
        times: list[datetime] = []
        fire_time = self.next_fire_time(after)
        while fire_time is not None and fire_time <= until:
            times.append(fire_time)
            fire_time = self.next_fire_time(fire_time)
        return times

    def latest_fire_time(self, until: datetime, not_before: datetime) -> datetime | None:
        """The latest fire time in [not_before, until], or None."""
        times = self.fire_times_between(not_before - ONE_MICROSECOND, until)
        return times[-1] if times else None

    def task_id(self, fire_time: datetime) -> str:
        """The task id of the tick at ``fire_time``: the same in every scheduler process."""
        return str(uuid.uuid5(TICK_NAMESPACE, f"{self.name}@{to_ms(fire_time)}"))

    def kwargs(self, fire_time: datetime) -> dict[str, Any]:
        """The job's arguments for the tick at ``fire_time``: its nominal time, ISO 8601 UTC."""
        return {"fire_time": fire_time.astimezone(UTC).isoformat()} if self.passes_fire_time else {}

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "actor": self.actor_name,
            "queue": self.queue_name,
            "cron": str(self.cron),
            "timezone": self.timezone.key,
            "window": self.window,
            "source": self.source,
        }


def to_ms(moment: datetime) -> int:
    """Milliseconds since the epoch of an aware datetime (how ticks are keyed)."""
    return round(moment.timestamp() * 1000)


def schedule_definitions(
    actors: Iterable[dramatiq.Actor], settings: Settings
) -> tuple[ScheduleDefinition, ...]:
    """Every enabled schedule: the actors' ``periodic`` options with the settings' overrides applied.

    An override may also make periodic a job that declares no schedule. Raises SettingsError
    naming the variable when an override names no job.
    """
    by_name = {actor.actor_name: actor for actor in actors}
    overrides = {override.name: override for override in settings.schedule_overrides}
    for override in overrides.values():
        if override.name not in by_name:
            raise SettingsError(
                override.variable, f"names no job; the jobs are: {', '.join(sorted(by_name))}"
            )
    definitions = []
    for name, actor in by_name.items():
        definition = _definition(actor, overrides.get(name), settings.timezone)
        if definition is not None:
            definitions.append(definition)
    return tuple(definitions)


def _definition(
    actor: dramatiq.Actor, override: ScheduleOverride | None, zone: ZoneInfo
) -> ScheduleDefinition | None:
    declared = actor.options.get(PERIODIC_OPTION)
    window = float(actor.options.get(WINDOW_OPTION, 0))
    cron = CronExpression.parse(str(declared)) if declared is not None else None
    source = "actor"
    if override is not None:
        if override.disabled:
            return None
        if override.cron is not None:
            cron, source = override.cron, override.variable
        if override.window is not None:
            window = override.window
    if cron is None:
        return None
    return ScheduleDefinition(
        name=actor.actor_name,
        actor_name=actor.actor_name,
        queue_name=actor.queue_name,
        cron=cron,
        timezone=zone,
        window=window,
        source=source,
        passes_fire_time=_takes_fire_time(actor),
    )


def _takes_fire_time(actor: dramatiq.Actor) -> bool:
    parameters = inspect.signature(actor.fn).parameters.values()
    return any(p.name == "fire_time" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
