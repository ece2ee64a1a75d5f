"""The read model's value objects: a task, a worker, a queue, a failure group, a history page."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

#: Task states, under Celery's names, which the API and its users already know.
PENDING, SCHEDULED, STARTED, RETRY = "PENDING", "SCHEDULED", "STARTED", "RETRY"
SUCCESS, FAILURE, REVOKED = "SUCCESS", "FAILURE", "REVOKED"
ACTIVE_STATES = (PENDING, SCHEDULED, STARTED, RETRY)
FINISHED_STATES = (SUCCESS, FAILURE, REVOKED)
STATES = ACTIVE_STATES + FINISHED_STATES


def from_ms(value: str | int | None) -> datetime | None:
    """A UTC datetime from milliseconds since the epoch (as stored)."""
    if value in (None, ""):
        return None
    return datetime.fromtimestamp(int(float(value)) / 1000, tz=UTC)


def _json_or_text(value: str | None) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return value


def _int(value: str | None) -> int | None:
    return None if value in (None, "") else int(float(value))


@dataclass(frozen=True)
class TaskRecord:
    """One task as the store knows it; ``orphaned`` means its worker died while running it."""

    task_id: str
    task_name: str
    queue: str
    status: str
    args: Any = None
    kwargs: Any = None
    result: Any = None
    enqueued_at: datetime | None = None
    eta: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration: float | None = None
    worker: str | None = None
    attempt: int | None = None
    retries: int = 0
    progress: float | None = None
    progress_text: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = None
    fingerprint: str | None = None
    parent_id: str | None = None
    pipeline: list[str] | None = None
    group_id: str | None = None
    retry_of: str | None = None
    retried_as: str | None = None
    orphaned: bool = False
    dead_lettered: bool = False
    revoke_requested: bool = False
    timeline: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_store(cls, record: dict[str, str], *, live_workers: set[str] | None = None) -> TaskRecord:
        """Build from the store's text fields; a STARTED task on a dead worker is orphaned."""
        duration_ms = _int(record.get("duration_ms"))
        orphaned = "orphaned" in record or (
            live_workers is not None
            and record.get("state") == "STARTED"
            and bool(record.get("worker"))
            and record["worker"] not in live_workers
        )
        timeline = _json_or_text(record.get("timeline")) or []
        for event in timeline:
            event["at"] = from_ms(event.get("at"))
            if "eta" in event:
                event["eta"] = from_ms(event["eta"])
        return cls(
            task_id=record["id"],
            task_name=record.get("actor", ""),
            queue=record.get("queue", ""),
            status=record.get("state", PENDING),
            args=_json_or_text(record.get("args")),
            kwargs=_json_or_text(record.get("kwargs")),
            result=_json_or_text(record.get("result")),
            enqueued_at=from_ms(record.get("enqueued_at")),
            eta=from_ms(record.get("eta")),
            started_at=from_ms(record.get("started_at")),
            finished_at=from_ms(record.get("finished_at")),
            duration=None if duration_ms is None else duration_ms / 1000,
            worker=record.get("worker") or None,
            attempt=_int(record.get("attempt")),
            retries=_int(record.get("retries")) or 0,
            progress=None if record.get("progress") is None else float(record["progress"]),
            progress_text=record.get("progress_text"),
            error_type=record.get("error_type"),
            error_message=record.get("error_message"),
            traceback=record.get("traceback"),
            fingerprint=record.get("fingerprint"),
            parent_id=record.get("parent_id"),
            pipeline=_json_or_text(record.get("pipeline")),
            group_id=record.get("group_id"),
            retry_of=record.get("retry_of"),
            retried_as=record.get("retried_as"),
            orphaned=orphaned,
            dead_lettered="dead_lettered_at" in record,
            revoke_requested="revoke_requested_at" in record,
            timeline=timeline,
        )

    @property
    def timestamp(self) -> datetime | None:
        """When the task last changed: finished, else started, else enqueued."""
        return self.finished_at or self.started_at or self.enqueued_at

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["timestamp"] = self.timestamp
        return data


@dataclass(frozen=True)
class HistoryPage:
    """A page of history, newest first; pass ``next_cursor`` back for the next page (None at the end)."""

    tasks: list[TaskRecord]
    next_cursor: str | None
    scanned: int


@dataclass(frozen=True)
class WorkerRecord:
    """A worker process: alive unless it missed its heartbeats; stopped if it said goodbye."""

    worker_id: str
    host: str
    pid: int
    queues: list[str]
    threads: int
    started_at: datetime | None
    last_seen: datetime | None
    in_flight: int
    done: int
    alive: bool
    stopped: bool


@dataclass(frozen=True)
class QueueStats:
    """One queue's figures now; ``latency`` is the age in seconds of its oldest waiting message."""

    name: str
    ready: int
    delayed: int
    in_flight: int
    dead_lettered: int
    latency: float
    consumers: int


@dataclass(frozen=True)
class FailureGroup:
    """Failures sharing an exception type and message fingerprint."""

    fingerprint: str
    error_type: str
    error_message: str
    count: int
    first_seen: datetime | None
    last_seen: datetime | None
