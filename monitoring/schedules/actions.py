"""ScheduleManager: firing ticks (claimed once across processes), pausing, resuming, running now.

Every write the scheduler process makes about a tick goes through here, and so do operators'
actions: the API and the CLI put faces on ``pause``, ``resume`` and ``run_now``. A pause is a
flag in Redis that every scheduler process reads at every tick, so it holds across restarts
and replicas; the ticks due while paused are recorded ``paused``.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import redis

from jobs.platform.broker import RecordingRedisBroker
from jobs.platform.errors import BadArguments, ServiceUnavailable
from jobs.platform.schedules import ScheduleDefinition, to_ms
from monitoring.alerts.schedule_records import record_missed_schedule
from monitoring.records import from_ms
from monitoring.schedules.queries import ScheduleMonitor
from monitoring.schedules.records import (
    CAUGHT_UP,
    DUPLICATE,
    ENQUEUED,
    FAILED,
    MISSED,
    PAUSE,
    PAUSED,
    RESUME,
    RUN_NOW,
    ScheduleAction,
    Tick,
)
from monitoring.schedules.store import CLAIM_MARGIN, ScheduleState, ScheduleStore
from monitoring.store import TaskStore

logger = logging.getLogger("jobdeck.schedules")

#: Seconds past a tick's deadline (nominal time + grace) before the missed-run check takes it:
#: a scheduler that claimed it just in time is still sending it.
MISSED_CHECK_SETTLE = 2
#: How far back the missed-run check looks when it was not run for a while (half the claims' life).
MISSED_CHECK_LOOKBACK = timedelta(seconds=CLAIM_MARGIN / 2)
#: Most ticks of one schedule one check records (a per-second schedule unwatched for an hour).
MAX_CHECKED = 1_000
MAX_REQUESTER_LENGTH = 200
UNSENT = "no scheduler sent it by its deadline"


class ScheduleManager:
    """Acts on schedules: fires their ticks, records misses, pauses, resumes and runs them now.

    Parameters:
      monitor(ScheduleMonitor): the read model (definitions, and the schedule after an action).
      store(ScheduleStore): claims, ticks, pause flags, actions.
      task_store(TaskStore): where missed runs are noted for the ``missed_schedule`` alert.
      broker(RecordingRedisBroker): the broker ticks are sent on.
      process(str): who this process is in claims and records (``host:pid``).
    """

    def __init__(
        self,
        *,
        monitor: ScheduleMonitor,
        store: ScheduleStore,
        task_store: TaskStore,
        broker: RecordingRedisBroker,
        process: str,
    ) -> None:
        self.monitor = monitor
        self.store = store
        self.task_store = task_store
        self.broker = broker
        self.process = process

    def prepare(self) -> None:
        """Load every Lua script a fire runs (the claim, the record, the recorder's, Dramatiq's),
        so that the first tick is as quick as the others. A few round trips, once."""
        self.store.load_scripts()
        self.task_store.load_script()
        self.broker.load_scripts()

    def fire(self, name: str, fire_time: datetime, *, catching_up: bool = False) -> Tick | None:
        """Claim the tick of ``name`` due at ``fire_time`` now and send it at its time (now, if
        that has passed); return it as recorded.

        A tick another process claimed is recorded DUPLICATE and nothing is sent; when
        ``catching_up`` (a scheduler starting) it is not a duplicate but a tick already handled,
        and None is returned with nothing recorded. Three round trips when sent.
        """
        definition = self.monitor.definition(name)
        status, detail = self.store.claim_tick(
            name, to_ms(fire_time), claimer=self.process, ttl=definition.grace + CLAIM_MARGIN
        )
        if status == "lost":
            if catching_up:
                return None
            tick = self._tick(definition, fire_time, DUPLICATE, detail=f"already taken by {detail}")
        elif status == "paused":
            tick = self._tick(definition, fire_time, PAUSED, detail=_paused_detail(json.loads(detail)))
        else:
            tick = self._send(definition, fire_time, CAUGHT_UP if catching_up else ENQUEUED)
        self.store.record_tick(tick)
        if tick.outcome == FAILED:
            record_missed_schedule(self.task_store, name, fire_time)
        return tick

    def catch_up_time(self, name: str, now: datetime) -> datetime | None:
        """The tick a scheduler starting at ``now`` catches up: the latest within the window, if
        any, and only for a schedule that has had a tick before (a new schedule, or a new
        deployment, starts from now: nothing was missed before it existed). One round trip."""
        definition = self.monitor.definition(name)
        if definition.window <= 0:
            return None
        if not self.store.load([name], recent=0)[name].summary.get("last_fire_ms"):
            return None
        return definition.latest_fire_time(now, now - timedelta(seconds=definition.window))

    def record_missed(self, name: str, fire_time: datetime, reason: str) -> Tick | None:
        """Record that the tick due at ``fire_time`` was not sent (too late), unless someone took it."""
        definition = self.monitor.definition(name)
        ttl = definition.grace + CLAIM_MARGIN
        [free] = self.store.claim_ticks(
            [(name, to_ms(fire_time))], claimer=f"missed:{self.process}", ttl={name: ttl}
        )
        if not free:
            return None
        tick = self._tick(definition, fire_time, MISSED, detail=reason)
        self.store.record_tick(tick)
        record_missed_schedule(self.task_store, name, fire_time)
        return tick

    def detect_missed(self, now: datetime | None = None) -> list[Tick]:
        """Record every tick no scheduler took by its deadline since the last check: MISSED (and
        noted for the alert), or PAUSED if due while paused. Safe in any number of processes at
        once (each tick is claimed); works with no scheduler running. Three round trips."""
        now = now or datetime.now(UTC)
        definitions = list(self.monitor.definitions.values())
        states = self.store.load([definition.name for definition in definitions], recent=0)
        due: list[tuple[ScheduleDefinition, datetime, str]] = []
        checked: dict[str, int] = {}
        for definition in definitions:
            checked[definition.name], unsent = _unsent_since_last_check(
                definition, states[definition.name], now
            )
            due.extend((definition, fire_time, outcome) for fire_time, outcome in unsent)
        free = self.store.claim_ticks(
            [(definition.name, to_ms(fire_time)) for definition, fire_time, _ in due],
            claimer=f"missed-run check:{self.process}",
            ttl={definition.name: definition.grace + CLAIM_MARGIN for definition in definitions},
        )
        ticks = [
            self._tick(
                definition,
                fire_time,
                outcome,
                detail=_paused_detail(states[definition.name].paused) if outcome == PAUSED else UNSENT,
            )
            for (definition, fire_time, outcome), taken in zip(due, free, strict=True)
            if taken
        ]
        pipeline = self.store.client.pipeline(transaction=False)
        for tick in ticks:
            self.store.record_tick(tick, pipeline=pipeline)
            if tick.outcome == MISSED:
                record_missed_schedule(self.task_store, tick.schedule, tick.fire_time, pipeline=pipeline)
        self.store.set_checked(checked, pipeline=pipeline)
        pipeline.execute()
        for tick in ticks:
            self._log(tick)
        return ticks

    def pause(self, name: str, *, requested_by: str) -> ScheduleAction:
        """Pause ``name`` in every scheduler process until resumed, recording who asked; its ticks
        are recorded ``paused``. Two round trips."""
        with _redis_unavailable():
            return self._set_paused(name, requested_by, paused=True)

    def resume(self, name: str, *, requested_by: str) -> ScheduleAction:
        """Resume ``name``: its next tick is sent again (missed ones are not). Two round trips."""
        with _redis_unavailable():
            return self._set_paused(name, requested_by, paused=False)

    def run_now(self, name: str, *, requested_by: str) -> ScheduleAction:
        """Send ``name``'s job now, as if it were due now, paused or not; recorded with who asked.
        A new task each call. Three round trips."""
        with _redis_unavailable():
            return self._run_now(name, requested_by)

    def _set_paused(self, name: str, requested_by: str, *, paused: bool) -> ScheduleAction:
        self.monitor.definition(name)
        action = self._action(name, PAUSE if paused else RESUME, requested_by)
        if paused:
            changed = self.store.pause(name, requested_by=action.requested_by, at=action.at)
        else:
            changed = self.store.resume(name)
        action = ScheduleAction(name, action.action, action.requested_by, action.at, changed=changed)
        self.store.record_action(action)
        unchanged = " (already paused)" if paused else " (was not paused)"
        logger.info(
            "Schedule %s %s by %s%s.",
            name,
            "paused" if paused else "resumed",
            action.requested_by,
            "" if changed else unchanged,
        )
        return action

    def _run_now(self, name: str, requested_by: str) -> ScheduleAction:
        definition = self.monitor.definition(name)
        action = self._action(name, RUN_NOW, requested_by)
        task_id = str(uuid.uuid4())
        self._enqueue(definition, action.at, task_id)
        action = ScheduleAction(name, RUN_NOW, action.requested_by, action.at, task_id=task_id)
        self.store.record_tick(
            self._tick(definition, action.at, RUN_NOW, task_id=task_id, requested_by=action.requested_by)
        )
        self.store.record_action(action)
        logger.info("Schedule %s run now by %s: task %s.", name, action.requested_by, task_id)
        return action

    def _send(self, definition: ScheduleDefinition, fire_time: datetime, outcome: str) -> Tick:
        task_id = definition.task_id(fire_time)
        # A tick claimed ahead of its time (the scheduler claims a moment early, so that only
        # the enqueue stands between the nominal time and the message) is never sent early.
        early = (fire_time - datetime.now(UTC)).total_seconds()
        if early > 0:
            time.sleep(early)
        try:
            self._enqueue(definition, fire_time, task_id)
        except Exception as error:  # whatever the broker raised, the tick is recorded as failed
            reason = str(error).splitlines()[0] if str(error) else ""
            return self._tick(
                definition, fire_time, FAILED, task_id=task_id, detail=f"{type(error).__name__}: {reason}"
            )
        lateness = (datetime.now(UTC) - fire_time).total_seconds()
        return self._tick(definition, fire_time, outcome, task_id=task_id, lateness=lateness)

    def _enqueue(self, definition: ScheduleDefinition, fire_time: datetime, task_id: str) -> None:
        actor = self.broker.get_actor(definition.actor_name)
        message = actor.message_with_options(kwargs=definition.kwargs(fire_time))
        self.broker.enqueue(message.copy(message_id=task_id))

    def _tick(self, definition: ScheduleDefinition, fire_time: datetime, outcome: str, **fields) -> Tick:
        return Tick(
            schedule=definition.name,
            fire_time=fire_time.astimezone(UTC),
            outcome=outcome,
            recorded_at=datetime.now(UTC),
            recorded_by=self.process,
            **fields,
        )

    def _action(self, name: str, action: str, requested_by: str) -> ScheduleAction:
        requester = (requested_by or "").strip()
        if not requester or len(requester) > MAX_REQUESTER_LENGTH:
            raise BadArguments(f"requested_by must name who asks, in 1 to {MAX_REQUESTER_LENGTH} characters")
        return ScheduleAction(name, action, requester, datetime.now(UTC))

    def _log(self, tick: Tick) -> None:
        shown = tick.fire_time.astimezone(self.monitor.timezone).isoformat()
        if tick.outcome == MISSED:
            logger.warning("Schedule %s missed its run due %s: %s.", tick.schedule, shown, tick.detail)
        else:
            logger.info(
                "Schedule %s: the run due %s was %s (%s).", tick.schedule, shown, tick.outcome, tick.detail
            )


@contextmanager
def _redis_unavailable() -> Iterator[None]:
    """Redis errors of an operator's action as ServiceUnavailable (the faces' 503 / red line)."""
    try:
        yield
    except redis.RedisError as error:
        raise ServiceUnavailable(f"Redis cannot be reached: {error}") from None


def _unsent_since_last_check(
    definition: ScheduleDefinition, state: ScheduleState, now: datetime
) -> tuple[int, list[tuple[datetime, str]]]:
    """The check's new cursor (ms) and the ticks past their deadline since the last check, each
    MISSED, or PAUSED if the schedule was paused when it fell due; the newest MAX_CHECKED."""
    since = state.moment("checked_until")
    if since is None:
        # The first check starts the watch now: nothing was expected of a scheduler before anyone
        # was watching (a new deployment starting its processes).
        return to_ms(now), []
    until = now - timedelta(seconds=definition.grace + MISSED_CHECK_SETTLE)
    paused_at = from_ms(state.paused["at"]) if state.paused else None
    fire_times = definition.fire_times_between(max(since, until - MISSED_CHECK_LOOKBACK), until)
    unsent = [
        (fire_time, PAUSED if paused_at is not None and paused_at <= fire_time else MISSED)
        for fire_time in fire_times[-MAX_CHECKED:]
    ]
    # The cursor never moves back, so no tick before the watch began is ever expected.
    return max(to_ms(since), to_ms(until)), unsent


def _paused_detail(pause: dict | None) -> str:
    return f"paused by {(pause or {}).get('by')}"
