"""The Redis side of schedules: tick claims, tick records, pause state and operators' actions.

A tick is claimed by SET NX on (schedule, nominal fire time) before anything is sent: whichever
scheduler process (or the missed-run check) takes it decides its outcome, every other one finds
it taken. Tick records are kept TICK_RETENTION (31 days) and at most MAX_TICKS per schedule; the
summary hash per schedule lets a read skip the history. The key names are in jobs.platform.keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis

from jobs.platform import keys
from jobs.platform.schedules import to_ms
from monitoring.records import from_ms
from monitoring.schedules.records import HANDLED_OUTCOMES, SENT_OUTCOMES, ScheduleAction, Tick
from monitoring.store import now_ms

#: Seconds tick records and operators' actions are kept (the issue asks for at least 30 days).
TICK_RETENTION = 31 * 24 * 3600
#: Most tick records one schedule keeps (a minutely schedule with two schedulers: about 90,000).
MAX_TICKS = 100_000
MAX_ACTIONS = 10_000
#: How long a claim outlives its schedule's grace, in seconds: the missed-run check looks back
#: at most CLAIM_MARGIN / 2, so a claim is never gone while a check may still ask about it.
CLAIM_MARGIN = 2 * 3600

CLAIM_SCRIPT = """
-- KEYS[1]: the tick's claim, KEYS[2]: the schedule's pause flag. ARGV: claimer, ttl (ms).
-- Returns {'won', ''}, {'paused', pause JSON} (claimed: the claimer records it paused) or
-- {'lost', holder}.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local paused = redis.call('GET', KEYS[2])
  if paused then return {'paused', paused} end
  return {'won', ''}
end
return {'lost', redis.call('GET', KEYS[1]) or ''}
"""

RECORD_SCRIPT = """
-- KEYS[1]: the schedule's ticks, KEYS[2]: its summary. ARGV: fire ms, member, outcome,
-- sent (1/0), handled (1/0), task id, lateness ms, oldest ms kept, most kept, summary ttl ms.
local fire = tonumber(ARGV[1])
redis.call('ZADD', KEYS[1], fire, ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[8])
local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[9])
if excess > 0 then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, excess - 1) end
local function newer(field)
  local seen = redis.call('HGET', KEYS[2], field)
  return (not seen) or fire >= tonumber(seen)
end
-- A duplicate says nothing new about the tick; an older tick recorded late changes no summary.
if ARGV[3] ~= 'duplicate' then
  if newer('last_fire_ms') then
    redis.call('HSET', KEYS[2], 'last_fire_ms', fire, 'last_outcome', ARGV[3])
  end
  if ARGV[4] == '1' and newer('last_run_ms') then
    redis.call('HSET', KEYS[2], 'last_run_ms', fire, 'last_task_id', ARGV[6], 'last_lateness_ms', ARGV[7])
  end
  if ARGV[5] == '1' and newer('last_handled_ms') then
    redis.call('HSET', KEYS[2], 'last_handled_ms', fire)
  end
end
redis.call('PEXPIRE', KEYS[2], ARGV[10])
return 1
"""


@dataclass(frozen=True)
class ScheduleState:
    """What the store holds of one schedule: its summary, its pause and its recent ticks."""

    summary: dict[str, str] = field(default_factory=dict)
    paused: dict[str, Any] | None = None
    ticks: list[Tick] = field(default_factory=list)

    def moment(self, name: str) -> datetime | None:
        """A summary time field (``last_run_ms``, ``checked_until``...) as a UTC datetime."""
        return from_ms(self.summary.get(name))


class ScheduleStore:
    """Reads and writes schedules' claims, ticks, pause flags and actions in Redis.

    Parameters:
      client(redis.Redis): the broker's Redis client.
      retention(int): seconds tick records and actions are kept. Default 31 days.
      max_ticks(int): most tick records kept per schedule. Default 100,000.
    """

    def __init__(
        self, client: redis.Redis, *, retention: int = TICK_RETENTION, max_ticks: int = MAX_TICKS
    ) -> None:
        self.client = client
        self.retention = retention
        self.max_ticks = max_ticks
        self._claim = client.register_script(CLAIM_SCRIPT)
        self._record = client.register_script(RECORD_SCRIPT)

    def load_scripts(self) -> None:
        """Load the claim and record scripts now, so a first tick pays no NOSCRIPT round trip."""
        for script in (self._claim, self._record):
            self.client.script_load(script.script)

    def claim_tick(self, name: str, fire_ms: int, *, claimer: str, ttl: float) -> tuple[str, str]:
        """Claim the tick due at ``fire_ms`` for ``claimer``: (won | paused | lost, detail).
        One round trip."""
        status, detail = self._claim(
            keys=[keys.schedule_claim(name, fire_ms), keys.schedule_paused(name)],
            args=[claimer, int(ttl * 1000)],
        )
        return _text(status), _text(detail)

    def claim_ticks(
        self, claims: list[tuple[str, int]], *, claimer: str, ttl: dict[str, float]
    ) -> list[bool]:
        """Claim several (schedule, fire ms) ticks past their deadline; which ones were free.
        One round trip."""
        pipeline = self.client.pipeline(transaction=False)
        for name, fire_ms in claims:
            pipeline.set(keys.schedule_claim(name, fire_ms), claimer, nx=True, px=int(ttl[name] * 1000))
        return [bool(won) for won in pipeline.execute()] if claims else []

    def record_tick(self, tick: Tick, *, pipeline: Any = None) -> None:
        """Keep a tick's record and update its schedule's summary. One round trip (or on ``pipeline``)."""
        now = now_ms()
        self._record(
            keys=[keys.schedule_ticks(tick.schedule), keys.schedule(tick.schedule)],
            args=[
                to_ms(tick.fire_time),
                tick.member(),
                tick.outcome,
                int(tick.outcome in SENT_OUTCOMES),
                int(tick.outcome in HANDLED_OUTCOMES),
                tick.task_id or "",
                "" if tick.lateness is None else round(tick.lateness * 1000),
                now - self.retention * 1000,
                self.max_ticks,
                self.retention * 1000,
            ],
            client=pipeline if pipeline is not None else self.client,
        )

    def set_checked(self, checked: dict[str, int], *, pipeline: Any = None) -> None:
        """Move the missed-run check's cursor of each schedule to the given ms."""
        target = pipeline if pipeline is not None else self.client.pipeline(transaction=False)
        for name, until in checked.items():
            target.hset(keys.schedule(name), "checked_until", until)
            target.pexpire(keys.schedule(name), self.retention * 1000)
        if pipeline is None:
            target.execute()

    def pause(self, name: str, *, requested_by: str, at: datetime) -> bool:
        """Pause a schedule; False if it was paused already (the first pause is kept). One round trip."""
        value = json.dumps({"by": requested_by, "at": to_ms(at)})
        return bool(self.client.set(keys.schedule_paused(name), value, nx=True))

    def resume(self, name: str) -> bool:
        """Resume a schedule; False if it was not paused. One round trip."""
        return bool(self.client.delete(keys.schedule_paused(name)))

    def record_action(self, action: ScheduleAction) -> None:
        """Keep an operator's action, bounded by age and count. One round trip."""
        now = now_ms()
        pipeline = self.client.pipeline(transaction=False)
        pipeline.zadd(keys.SCHEDULE_ACTIONS, {action.member(): to_ms(action.at)})
        pipeline.zremrangebyscore(keys.SCHEDULE_ACTIONS, "-inf", f"({now - self.retention * 1000}")
        pipeline.zremrangebyrank(keys.SCHEDULE_ACTIONS, 0, -MAX_ACTIONS - 1)
        pipeline.execute()

    def load(self, names: list[str], *, recent: int) -> dict[str, ScheduleState]:
        """Each schedule's summary, pause and ``recent`` newest ticks. One round trip."""
        pipeline = self.client.pipeline(transaction=False)
        for name in names:
            pipeline.hgetall(keys.schedule(name))
            pipeline.get(keys.schedule_paused(name))
            pipeline.zrevrangebyscore(
                keys.schedule_ticks(name), "+inf", "-inf", start=0, num=recent, withscores=True
            )
        replies = pipeline.execute()
        states = {}
        for index, name in enumerate(names):
            summary, paused, ticks = replies[3 * index : 3 * index + 3]
            states[name] = ScheduleState(
                summary={_text(key): _text(value) for key, value in summary.items()},
                paused=json.loads(paused) if paused else None,
                ticks=[Tick.from_member(name, score, member) for member, score in ticks],
            )
        return states

    def ticks(self, name: str, *, limit: int, before_ms: int | None = None) -> list[Tick]:
        """A schedule's ticks, newest first, due before ``before_ms`` (exclusive). One round trip."""
        upper = "+inf" if before_ms is None else f"({before_ms}"
        replies = self.client.zrevrangebyscore(
            keys.schedule_ticks(name), upper, "-inf", start=0, num=limit, withscores=True
        )
        return [Tick.from_member(name, score, member) for member, score in replies]

    def actions(self, *, limit: int) -> list[ScheduleAction]:
        """Operators' actions, newest first. One round trip."""
        return [
            ScheduleAction.from_member(member)
            for member in self.client.zrevrange(keys.SCHEDULE_ACTIONS, 0, limit - 1)
        ]


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value
