"""TaskMonitor: the one read model the API, the CLI and the dashboard share."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from datetime import datetime
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from jobs.platform import keys
from jobs.platform.defaults import DEFAULT_HEARTBEAT_INTERVAL_S
from monitoring.counters import window_totals
from monitoring.liveness import dead_after_ms, live_worker_ids
from monitoring.records import (
    ACTIVE_STATES,
    STATES,
    FailureGroup,
    HistoryPage,
    QueueStats,
    TaskRecord,
    WorkerRecord,
    from_ms,
)
from monitoring.store import DURATION_BUCKETS, TaskStore, now_ms

DEFAULT_PAGE_SIZE = 50
#: Most records one history call reads when it must filter beyond its index (search, two filters).
MAX_SCANNED = 10_000
SCAN_BATCH = 500
COUNTER_METRICS = ("enqueued", "processed", "succeeded", "failed", "retried", "revoked")


class TaskMonitor:
    """Reads tasks, history, statistics, workers and queues; never writes.

    Parameters:
      store(TaskStore): the monitoring store.
      broker(RedisBroker): for queue names and Dramatiq's queue keys.
      heartbeat_interval(float): seconds between worker heartbeats (decides who is dead). Default 5.
    """

    def __init__(
        self,
        *,
        store: TaskStore,
        broker: RedisBroker,
        heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL_S,
    ) -> None:
        self.store = store
        self.broker = broker
        self.client = store.client
        self.heartbeat_interval = heartbeat_interval

    def get_task_status(self, task_id: str) -> TaskRecord | None:
        """One task, or None if unknown or expired. One round trip (two if it is running)."""
        record = self.store.load(task_id)
        if record is None:
            return None
        live = self._live_workers() if record.get("state") == "STARTED" else None
        return TaskRecord.from_store(record, live_workers=live)

    def get_all_tasks(self, limit: int = 500) -> list[TaskRecord]:
        """Active tasks (pending, scheduled, started, retrying), newest first. Three round trips."""
        pipeline = self.client.pipeline(transaction=False)
        for state in ACTIVE_STATES:
            pipeline.zrevrange(keys.history_by("state", state), 0, limit - 1, withscores=True)
        entries = sorted(
            ((score, member.decode()) for members in pipeline.execute() for member, score in members),
            reverse=True,
        )[:limit]
        return self._records([task_id for _, task_id in entries])

    def count_tasks_by_state(self) -> dict[str, int]:
        """How many tasks each state's index holds now (within retention). One round trip."""
        pipeline = self.client.pipeline(transaction=False)
        for state in STATES:
            pipeline.zcard(keys.history_by("state", state))
        return dict(zip(STATES, pipeline.execute(), strict=True))

    def get_orphaned_tasks(self) -> list[TaskRecord]:
        """Started tasks whose worker died. Three round trips; as many records as tasks running."""
        live = self._live_workers()
        started = (TaskRecord.from_store(record, live_workers=live) for record in self.store.load_started())
        return [task for task in started if task.orphaned]

    def get_task_history(
        self,
        *,
        actor: str | None = None,
        queue: str | None = None,
        state: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        search: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
    ) -> HistoryPage:
        """Tasks newest first, filtered; cursor paging.

        The index of the most selective filter is read (state, else actor, else queue); other
        filters and the free-text ``search`` (over arguments, results and errors) are applied
        to what is read, reading at most MAX_SCANNED records per call. A page with one filter
        or none costs two round trips. Every index holds every task until its record expires
        (upkeep removes it then), so every view reaches everything the store keeps.
        """
        checks = {"actor": actor, "queue": queue, "state": state}
        filters = sum(value is not None for value in checks.values())
        max_score, skip = _parse_cursor(cursor, until)
        min_score = int(since.timestamp() * 1000) if since else float("-inf")
        found: list[TaskRecord] = []
        scanned = 0
        live = self._live_workers()
        index, needs_check = self._history_index(actor, queue, state), filters > 1 or bool(search)
        while len(found) < limit and scanned < MAX_SCANNED:
            entries = self.client.zrevrangebyscore(
                index,
                _score_bound(max_score),
                _score_bound(min_score),
                start=skip,
                num=SCAN_BATCH if needs_check else limit - len(found),
                withscores=True,
            )
            if not entries:
                return HistoryPage(found, None, scanned)
            records = self.store.load_many([member.decode() for member, _ in entries], keep_missing=True)
            for (_, score), record in zip(entries, records, strict=True):
                scanned += 1
                skip = skip + 1 if score == max_score else 1
                max_score = score
                if record is not None and (not needs_check or _matches(record, checks, search)):
                    found.append(TaskRecord.from_store(record, live_workers=live))
                    if len(found) == limit:
                        break
        return HistoryPage(found, _format_cursor(max_score, skip), scanned)

    def get_task_stats(self, window: int = 3600) -> dict[str, dict[str, Any]]:
        """Per actor over the last ``window`` seconds: counts, failure rate, p50/p95/max duration.

        Reads only counters (one or two round trips), never history.
        """
        totals = window_totals(self.store, window)
        return {actor: _summarise_counters(figures) for actor, figures in sorted(totals.items())}

    def get_worker_stats(self) -> list[WorkerRecord]:
        """Every worker seen recently, alive or dead. Two round trips."""
        workers = [member.decode() for member in self.client.zrange(keys.WORKERS, 0, -1)]
        pipeline = self.client.pipeline(transaction=False)
        for worker_id in workers:
            pipeline.hgetall(keys.worker(worker_id))
        dead_before = now_ms() - dead_after_ms(self.heartbeat_interval)
        records = []
        for raw in pipeline.execute():
            if not raw:
                continue
            fields = {name.decode(): value.decode() for name, value in raw.items()}
            last_seen = int(fields.get("last_seen", 0))
            records.append(
                WorkerRecord(
                    worker_id=fields["id"],
                    host=fields.get("host", ""),
                    pid=int(fields.get("pid", 0)),
                    queues=[name for name in fields.get("queues", "").split(",") if name],
                    threads=int(fields.get("threads", 0)),
                    started_at=from_ms(fields.get("started_at")),
                    last_seen=from_ms(last_seen),
                    in_flight=int(fields.get("in_flight", 0)),
                    done=int(fields.get("done", 0)),
                    alive=last_seen >= dead_before and "stopped_at" not in fields,
                    stopped="stopped_at" in fields,
                )
            )
        return records

    def get_queue_stats(self, workers: list[WorkerRecord] | None = None) -> list[QueueStats]:
        """Ready, delayed, in flight, dead-lettered, latency and live consumers of each queue.

        Three round trips (the third reads the oldest waiting message of each queue, for its age).
        """
        namespace = self.broker.namespace
        queues = sorted(
            name for name in self.broker.get_declared_queues() if not name.endswith((".DQ", ".XQ"))
        )
        brokers = [member.decode() for member in self.client.zrange(keys.broker_heartbeats(namespace), 0, -1)]
        pipeline = self.client.pipeline(transaction=False)
        for queue in queues:
            pipeline.llen(keys.broker_queue(namespace, queue))
            pipeline.llen(keys.broker_delayed(namespace, queue))
            pipeline.zcard(keys.broker_dead(namespace, queue))
            pipeline.lindex(keys.broker_queue(namespace, queue), 0)
            for broker_id in brokers:
                pipeline.scard(keys.broker_acks(namespace, broker_id, queue))
                pipeline.scard(keys.broker_acks(namespace, broker_id, queue + ".DQ"))
        results = iter(pipeline.execute())
        consumers = self._consumers(self.get_worker_stats() if workers is None else workers)
        figures, oldest_messages = [], self.client.pipeline(transaction=False)
        for queue in queues:
            ready, delayed, dead, oldest = next(results), next(results), next(results), next(results)
            in_flight = 0
            for _ in brokers:
                in_flight += next(results)
                delayed += next(results)
            figures.append((queue, ready, delayed, in_flight, dead))
            oldest_messages.hget(keys.broker_messages(namespace, queue), oldest or "")
        return [
            QueueStats(queue, ready, delayed, in_flight, dead, _age(oldest), consumers.get(queue, 0))
            for (queue, ready, delayed, in_flight, dead), oldest in zip(
                figures, oldest_messages.execute(), strict=True
            )
        ]

    def get_failure_groups(self) -> list[FailureGroup]:
        """Failures grouped by exception type and message fingerprint, most frequent first."""
        groups = []
        for fingerprint, raw in self.client.hscan_iter(keys.FAILURE_GROUPS):
            group = json.loads(raw)
            groups.append(
                FailureGroup(
                    fingerprint.decode(),
                    group.get("type", ""),
                    group.get("message", ""),
                    group["count"],
                    from_ms(group.get("first")),
                    from_ms(group.get("last")),
                )
            )
        return sorted(groups, key=lambda group: group.count, reverse=True)

    def failure_group_task_ids(self, fingerprint: str, limit: int = MAX_SCANNED) -> list[str]:
        """Ids of the failed tasks in one group, newest first."""
        members = self.client.zrevrange(keys.failure_group(fingerprint), 0, limit - 1)
        return [member.decode() for member in members]

    def _consumers(self, workers: list[WorkerRecord]) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for worker in workers:
            if worker.alive:
                for queue in worker.queues:
                    counts[queue] += 1
        return counts

    def _live_workers(self) -> set[str]:
        return live_worker_ids(self.store, self.heartbeat_interval)

    def _records(self, task_ids: list[str]) -> list[TaskRecord]:
        live = self._live_workers()
        return [TaskRecord.from_store(record, live_workers=live) for record in self.store.load_many(task_ids)]

    def _history_index(self, actor: str | None, queue: str | None, state: str | None) -> str:
        if state:
            return keys.history_by("state", state)
        if actor:
            return keys.history_by("actor", actor)
        if queue:
            return keys.history_by("queue", queue)
        return keys.HISTORY


def _matches(record: dict[str, str], checks: dict[str, str | None], search: str | None) -> bool:
    for name, wanted in checks.items():
        if wanted is not None and record.get(name) != wanted:
            return False
    if search:
        needle = search.lower()
        haystack = " ".join(
            record.get(name, "") for name in ("args", "kwargs", "result", "error_type", "error_message")
        )
        return needle in haystack.lower()
    return True


def _parse_cursor(cursor: str | None, until: datetime | None) -> tuple[Any, int]:
    if cursor:
        score, _, skip = cursor.partition(":")
        return float(score), int(skip or 0)
    return (int(until.timestamp() * 1000) if until else float("inf")), 0


def _age(encoded_message: bytes | None) -> float:
    """Seconds since a waiting message was sent (0 when there is none)."""
    if encoded_message is None:
        return 0.0
    enqueued = dramatiq.Message.decode(encoded_message).message_timestamp
    return max(0.0, (time.time() * 1000 - enqueued) / 1000)


def _score_bound(score: float) -> Any:
    """A sorted-set score bound as Redis takes it (infinities as +inf and -inf)."""
    if score in (float("inf"), float("-inf")):
        return "+inf" if score > 0 else "-inf"
    return int(score)


def _format_cursor(score: Any, skip: int) -> str:
    return f"{int(score)}:{skip}"


def _summarise_counters(figures: dict[str, int]) -> dict[str, Any]:
    finished = figures["succeeded"] + figures["failed"]
    buckets = [figures[f"b{index}"] for index in range(len(DURATION_BUCKETS) + 1)]
    # Every attempt that ran (succeeded, failed, retried or aborted) lands in one duration bucket.
    processed = sum(buckets)
    # The fastest duration is counted where record.lua keeps it (duration_min); without it, the
    # floor of the first bucket that holds one bounds the quantiles below.
    seen = {"slowest": figures["duration_max"], "fastest": figures.get("duration_min")}
    return {
        **{metric: figures[metric] for metric in COUNTER_METRICS if metric != "processed"},
        "processed": processed,
        "failure_rate": round(figures["failed"] / finished, 4) if finished else 0.0,
        "duration_mean": round(figures["duration_sum"] / processed / 1000, 3) if processed else None,
        "duration_p50": _quantile(buckets, 0.50, **seen),
        "duration_p95": _quantile(buckets, 0.95, **seen),
        "duration_max": figures["duration_max"] / 1000 if processed else None,
    }


def _quantile(
    buckets: list[int], quantile: float, *, slowest: int, fastest: int | None = None
) -> float | None:
    """A quantile (s) of the durations the histogram counts; ``slowest`` and ``fastest`` in ms.

    Interpolated linearly by rank within the bucket that holds it, as if that bucket's attempts
    were spread evenly between its bounds, the bounds narrowed to the slowest and fastest
    durations seen (the last bucket is open above: the slowest is its top). So the estimate
    never leaves the bucket that holds the quantile, nor the range of the durations seen.
    """
    total = sum(buckets)
    if not total:
        return None
    rank = quantile * total
    index, below = 0, 0
    while not buckets[index] or below + buckets[index] < rank:
        below += buckets[index]
        index += 1
    lower = DURATION_BUCKETS[index - 1] if index else 0
    upper = min(DURATION_BUCKETS[index], slowest) if index < len(DURATION_BUCKETS) else slowest
    lower = min(max(lower, fastest or 0), upper)
    return round((lower + (upper - lower) * (rank - below) / buckets[index]) / 1000, 6)
