"""ScheduleMonitor: the schedules' read model, beside TaskMonitor, for every face."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from jobs.platform.errors import UnknownSchedule
from jobs.platform.schedules import ScheduleDefinition
from monitoring.records import SUCCESS, from_ms
from monitoring.schedules.records import Schedule, ScheduleAction, Tick
from monitoring.schedules.store import ScheduleState, ScheduleStore
from monitoring.store import TaskStore

#: Ticks each schedule of a list shows.
DEFAULT_RECENT_TICKS = 10
MAX_TICKS_READ = 1_000


class ScheduleMonitor:
    """Reads schedules, their ticks and operators' actions; never writes.

    Parameters:
      definitions(Sequence[ScheduleDefinition]): the schedules (jobs.platform.schedules).
      store(ScheduleStore): claims, ticks and pause flags.
      task_store(TaskStore): the tasks the ticks sent, for their state.
      timezone(ZoneInfo): the zone times are shown in (the schedules'). Default UTC.
    """

    def __init__(
        self,
        *,
        definitions: Sequence[ScheduleDefinition],
        store: ScheduleStore,
        task_store: TaskStore,
        timezone: ZoneInfo = UTC,
    ) -> None:
        self.definitions = {definition.name: definition for definition in definitions}
        self.store = store
        self.task_store = task_store
        self.timezone = timezone

    def definition(self, name: str) -> ScheduleDefinition:
        """The schedule called ``name``; UnknownSchedule listing the names there are."""
        try:
            return self.definitions[name]
        except KeyError:
            known = ", ".join(sorted(self.definitions)) or "none"
            raise UnknownSchedule(f"no schedule is called {name!r}; the schedules are: {known}") from None

    def list(self, *, recent: int = DEFAULT_RECENT_TICKS, now: datetime | None = None) -> list[Schedule]:
        """Every schedule with its next and last run, pause, lag and ``recent`` newest ticks.
        Two round trips, however many schedules."""
        return self._schedules(list(self.definitions.values()), recent=recent, now=now)

    def find(self, name: str, *, recent: int = DEFAULT_RECENT_TICKS, now: datetime | None = None) -> Schedule:
        """One schedule (UnknownSchedule if there is none of that name). Two round trips."""
        [schedule] = self._schedules([self.definition(name)], recent=recent, now=now)
        return schedule

    def ticks(self, name: str, *, limit: int = 100, before: datetime | None = None) -> list[Tick]:
        """A schedule's ticks, newest first, due before ``before``; each with its task's state.
        Two round trips."""
        self.definition(name)
        before_ms = None if before is None else int(before.timestamp() * 1000)
        ticks = self.store.ticks(name, limit=min(limit, MAX_TICKS_READ), before_ms=before_ms)
        states = self.task_store.load_states([tick.task_id for tick in ticks if tick.task_id])
        return [_with_state(tick, states) for tick in ticks]

    def actions(self, *, limit: int = 100) -> list[ScheduleAction]:
        """Operators' pause, resume and run-now requests, newest first. One round trip."""
        return self.store.actions(limit=min(limit, MAX_TICKS_READ))

    def _schedules(
        self, definitions: list[ScheduleDefinition], *, recent: int, now: datetime | None
    ) -> list[Schedule]:
        now = now or datetime.now(UTC)
        states = self.store.load([definition.name for definition in definitions], recent=recent)
        task_ids = {
            task_id
            for state in states.values()
            for task_id in [state.summary.get("last_task_id"), *(tick.task_id for tick in state.ticks)]
            if task_id
        }
        task_states = self.task_store.load_states(sorted(task_ids))
        return [
            self._schedule(definition, states[definition.name], task_states, now)
            for definition in definitions
        ]

    def _schedule(
        self,
        definition: ScheduleDefinition,
        state: ScheduleState,
        task_states: dict[str, tuple[str, str | None]],
        now: datetime,
    ) -> Schedule:
        ticks = [_with_state(tick, task_states) for tick in state.ticks]
        last_task_id = state.summary.get("last_task_id") or None
        lateness_ms = state.summary.get("last_lateness_ms")
        paused = state.paused or {}
        return Schedule(
            name=definition.name,
            actor=definition.actor_name,
            queue=definition.queue_name,
            cron=str(definition.cron),
            timezone=self.timezone,
            window=definition.window,
            grace=definition.grace,
            next_run=definition.next_fire_time(now),
            last_run=state.moment("last_run_ms"),
            last_outcome=state.summary.get("last_outcome"),
            last_task_id=last_task_id,
            last_task_state=task_states.get(last_task_id, (None, None))[0] if last_task_id else None,
            last_lateness=int(lateness_ms) / 1000 if lateness_ms else None,
            last_success=_last_success(ticks, task_states),
            lag=_lag(definition, state.moment("last_handled_ms"), now),
            paused=state.paused is not None,
            paused_by=paused.get("by"),
            paused_at=from_ms(paused.get("at")),
            recent_ticks=ticks,
        )


def _with_state(tick: Tick, task_states: dict[str, tuple[str, str | None]]) -> Tick:
    return tick.with_task_state(task_states.get(tick.task_id, (None, None))[0]) if tick.task_id else tick


def _last_success(ticks: list[Tick], task_states: dict[str, tuple[str, str | None]]) -> datetime | None:
    finished = [
        from_ms(task_states[tick.task_id][1])
        for tick in ticks
        if tick.task_id in task_states
        and task_states[tick.task_id][0] == SUCCESS
        and task_states[tick.task_id][1]
    ]
    return max(finished, default=None)


def _lag(definition: ScheduleDefinition, last_handled: datetime | None, now: datetime) -> float | None:
    """Seconds since the first tick after the last handled one fell due; 0 if none is due yet."""
    if last_handled is None:
        return None
    overdue = definition.next_fire_time(last_handled)
    if overdue is None or overdue > now:
        return 0.0
    return round((now - overdue).total_seconds(), 3)
