"""The Redis store behind the monitoring middleware, TaskMonitor and TaskManager.

Writes go through one Lua script (record.lua), so each lifecycle event is one round trip.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from jobs.platform import keys
from jobs.platform.defaults import (
    DEFAULT_FAILURE_RETENTION_S,
    DEFAULT_POISON_CAP,
    DEFAULT_REDELIVERY_TIMEOUT_S,
    DEFAULT_SUCCESS_RETENTION_S,
)

DEFAULT_COUNTER_TTLS = {"minute": 2 * 24 * 3600, "hour": 30 * 24 * 3600, "day": 365 * 24 * 3600}
DEFAULT_TIMELINE_MAX = 50
DEFAULT_HISTORY_MAX = 2_000_000
#: Dramatiq's Redis broker's default key namespace.
DEFAULT_BROKER_NAMESPACE = "dramatiq"
#: Upper bounds (ms) of the duration histogram's buckets; the last bucket is everything above.
DURATION_BUCKETS = (
    5,
    10,
    25,
    50,
    100,
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    30_000,
    60_000,
    300_000,
    1_800_000,
)

RECORD_SCRIPT = (Path(__file__).with_name("record.lua")).read_text(encoding="utf-8")


def now_ms() -> int:
    return int(time.time() * 1000)


def duration_bucket(duration_ms: int) -> int:
    """The index of the histogram bucket a duration falls in."""
    for index, bound in enumerate(DURATION_BUCKETS):
        if duration_ms <= bound:
            return index
    return len(DURATION_BUCKETS)


@dataclass(frozen=True)
class Retention:
    """How long the store keeps things, in seconds, and how much.

    Parameters:
      success(int): finished successful and revoked tasks. Default 1 day.
      failure(int): failed tasks (and their full messages, for retry). Default 30 days.
      counters(dict): per granularity (minute, hour, day). Defaults 2 days, 30 days, 1 year.
      history_max(int): most task ids any one history index keeps. Default 2,000,000.
    """

    success: int = DEFAULT_SUCCESS_RETENTION_S
    failure: int = DEFAULT_FAILURE_RETENTION_S
    counters: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_COUNTER_TTLS))
    history_max: int = DEFAULT_HISTORY_MAX


class TaskStore:
    """Reads and writes jobdeck's task records in Redis.

    Parameters:
      client(redis.Redis): the broker's Redis client.
      retention(Retention): how long records and counters are kept.
      poison_cap(int): worker deaths in a row after which a message is failed. Default 3.
      timeline_max(int): events kept in a task's timeline. Default 50.
      broker_namespace(str): Dramatiq's key namespace, whose worker heartbeats tell a dead
        worker from a live one. Default "dramatiq".
      redelivery_timeout(float): seconds without a Dramatiq heartbeat after which the broker
        redelivers a worker's messages (its ``heartbeat_timeout``). Default 60.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        retention: Retention | None = None,
        poison_cap: int = DEFAULT_POISON_CAP,
        timeline_max: int = DEFAULT_TIMELINE_MAX,
        broker_namespace: str = DEFAULT_BROKER_NAMESPACE,
        redelivery_timeout: float = DEFAULT_REDELIVERY_TIMEOUT_S,
    ) -> None:
        self.client = client
        self.retention = retention or Retention()
        self.broker_namespace = broker_namespace
        # In record.lua's order: TTL_SUCCESS, TTL_FAILURE, TTL_MINUTE, TIMELINE_MAX, POISON_CAP,
        # REDELIVERY_MS, BROKER_HEARTBEATS.
        constants = (
            int(self.retention.success),
            int(self.retention.failure),
            str(int(self.retention.counters["minute"])),
            int(timeline_max),
            int(poison_cap),
            int(redelivery_timeout * 1000),
            keys.broker_heartbeats(broker_namespace),
        )
        self._script = client.register_script(
            RECORD_SCRIPT.replace("= CONFIG", "= " + ", ".join(json.dumps(value) for value in constants), 1)
        )
        self._loaded = False

    def record(self, command: str, task_id: str, data: dict[str, Any], *, pipeline=None) -> Any:
        """Run one record.lua command for a task; one round trip (or queued on ``pipeline``)."""
        if pipeline is not None:
            # The script is loaded once per process (record_command); a NOSCRIPT (Redis restarted)
            # surfaces as that command's result, and the next direct call loads it again.
            return pipeline.execute_command(*self.record_command(command, task_id, data))
        result = self._script(keys=[], args=self._arguments(command, task_id, data))
        self._loaded = True  # redis-py's Script loads it when Redis does not have it
        return reply_text(result)

    def record_command(
        self, command: str, task_id: str, data: dict[str, Any], *acknowledgement: str
    ) -> tuple:
        """The EVALSHA command that records one event, to send on a pipeline or a kept connection.

        A straight EVALSHA: a Script on a pipeline costs a SCRIPT EXISTS round trip per execute.
        A finish may also do its message's ack: ``acknowledgement`` is then the acks key, the
        messages key, the heartbeats key, the worker id and the message id
        (jobs.platform.broker.AckOffer).
        """
        self._ensure_loaded()
        return ("EVALSHA", self._script.sha, 0, *self._arguments(command, task_id, data), *acknowledgement)

    @staticmethod
    def _arguments(command: str, task_id: str, data: dict[str, Any]) -> list:
        """The script's arguments: the event's data as one JSON object whose values are all text,
        so that the script formats no number (record.lua). One argument, not name and value pairs:
        packing each argument costs a worker more than decoding the JSON costs Redis."""
        payload = {name: _text(value) for name, value in data.items() if value is not None}
        return [keys.PREFIX, command, task_id, now_ms(), json.dumps(payload)]

    def checked_reply(self, command: str, task_id: str, data: dict[str, Any], reply: Any) -> Any:
        """The reply of a record sent along with other commands, as text.

        On NOSCRIPT (Redis lost the script in a restart) the event is recorded again directly,
        which loads the script; any other error Redis answered with is raised.
        """
        if isinstance(reply, redis.exceptions.NoScriptError):
            self.script_lost()
            return self.record(command, task_id, data)
        if isinstance(reply, Exception):
            raise reply
        return reply_text(reply)

    @property
    def script_loaded(self) -> bool:
        """Whether this process has seen Redis run the record script (so EVALSHA needs no load)."""
        return self._loaded

    def script_lost(self) -> None:
        """Note that Redis no longer has the script (NOSCRIPT), so the next pipeline reloads it."""
        self._loaded = False

    def load_script(self) -> None:
        """Load record.lua now (a process about to send on a deadline pays it up front). One round trip."""
        self._loaded = False
        self._ensure_loaded()

    def _ensure_loaded(self) -> None:
        if not self._loaded:
            self.client.script_load(self._script.script)
            self._loaded = True

    def load(self, task_id: str, *, with_message: bool = False) -> dict[str, str] | None:
        """One task's fields as text, or None. One round trip."""
        raw = self.client.hgetall(keys.task(task_id))
        return decode_record(task_id, raw, with_message=with_message) if raw else None

    def load_many(self, task_ids: list[str], *, keep_missing: bool = False) -> list[dict[str, str] | None]:
        """Several tasks' fields in the order given, skipping expired ones (or giving None for
        them with ``keep_missing``). One round trip."""
        pipeline = self.client.pipeline(transaction=False)
        for task_id in task_ids:
            pipeline.hgetall(keys.task(task_id))
        records = [
            decode_record(task_id, raw) if raw else None
            for task_id, raw in zip(task_ids, pipeline.execute(), strict=True)
        ]
        return records if keep_missing else [record for record in records if record is not None]

    def load_states(self, task_ids: list[str]) -> dict[str, tuple[str, str | None]]:
        """Each known task's (state, finished_at ms) by id; unknown or expired ones are left out.
        One round trip."""
        pipeline = self.client.pipeline(transaction=False)
        for task_id in task_ids:
            pipeline.hmget(keys.task(task_id), "state", "finished_at")
        states = {}
        for task_id, (state, finished_at) in zip(task_ids, pipeline.execute(), strict=True):
            if state is not None:
                states[task_id] = (state.decode(), finished_at.decode() if finished_at else None)
        return states

    def load_started(self) -> list[dict[str, str]]:
        """Every task now STARTED (at most one per worker thread). Two round trips."""
        started = self.client.zrange(keys.history_by("state", "STARTED"), 0, -1)
        return self.load_many([member.decode() for member in started])

    def claim(self, name: str, period_seconds: int) -> bool:
        """Claim a once-per-period duty for this process; False if another process has it."""
        period = int(time.time() // period_seconds)
        return bool(self.client.set(keys.claim(name, period), "1", nx=True, ex=period_seconds * 2))


def _text(value: Any) -> str:
    """A record field's value as the text the store keeps."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, default=str)


def reply_text(reply: Any) -> Any:
    """A record.lua reply (the task's state or an outcome) as text."""
    return reply.decode() if isinstance(reply, bytes) else reply


def decode_record(task_id: str, raw: dict[bytes, bytes], *, with_message: bool = False) -> dict[str, str]:
    """A task's fields as text; the id is the key's, not stored twice."""
    record = {name.decode(): value.decode(errors="replace") for name, value in raw.items()}
    record["id"] = task_id
    if not with_message:
        record.pop("message", None)
    return record
