"""Worker heartbeats, and the once-a-minute upkeep one live worker does for the whole cluster."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading

import dramatiq
from dramatiq.broker import Broker

from monitoring import keys
from monitoring.counters import roll_up
from monitoring.records import STATES
from monitoring.store import TaskStore, now_ms

logger = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_INTERVAL = 5.0
#: A worker is shown dead after this many heartbeats missed in a row.
DEFAULT_MISSED_HEARTBEATS = 3
#: How long a stopped or dead worker stays listed, in seconds.
DEFAULT_WORKER_RECORD_TTL = 24 * 3600
#: Upkeep (trimming history, flagging orphans) runs at most once per this many seconds.
DEFAULT_UPKEEP_PERIOD = 60
TERMINAL_OR_RECENT = ("SUCCESS", "REVOKED")


def dead_after_ms(interval: float = DEFAULT_HEARTBEAT_INTERVAL) -> int:
    return int(interval * DEFAULT_MISSED_HEARTBEATS * 1000)


class WorkerHeartbeat:
    """Registers a worker process, beats every ``interval`` seconds and runs cluster upkeep.

    Parameters:
      store(TaskStore): the monitoring store.
      broker(Broker): this process's broker (its id is the worker id).
      worker(dramatiq.Worker): the worker, for its queues and thread count.
      interval(float): seconds between heartbeats. Default 5.
    """

    def __init__(
        self,
        *,
        store: TaskStore,
        broker: Broker,
        worker: dramatiq.Worker,
        interval: float = DEFAULT_HEARTBEAT_INTERVAL,
    ) -> None:
        self.store = store
        self.broker = broker
        self.worker_id = broker.broker_id
        self.interval = interval
        self.description = {
            "id": self.worker_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "queues": ",".join(consumed_queues(broker, worker)),
            "threads": worker.worker_threads,
            "started_at": now_ms(),
        }
        self.in_flight = 0
        self.done = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="jobdeck-heartbeat", daemon=True)
        self._alerter = None

    def task_started(self) -> None:
        with self.lock:
            self.in_flight += 1

    def task_finished(self) -> None:
        with self.lock:
            self.in_flight = max(0, self.in_flight - 1)
            self.done += 1

    def start(self) -> None:
        self.beat()
        self.thread.start()

    def stop(self) -> None:
        """Stop beating and mark the worker stopped (not dead)."""
        self.stopping.set()
        try:
            pipeline = self.store.client.pipeline(transaction=False)
            stopped_at = now_ms()
            pipeline.hset(keys.worker(self.worker_id), "stopped_at", stopped_at)
            # Still listed (as stopped) until upkeep forgets it, but no longer counted as live.
            pipeline.zadd(keys.WORKERS, {self.worker_id: stopped_at - dead_after_ms(self.interval) - 1})
            pipeline.expire(keys.worker(self.worker_id), DEFAULT_WORKER_RECORD_TTL)
            pipeline.execute()
        except Exception:
            logger.warning("Could not deregister worker %s.", self.worker_id, exc_info=True)

    def beat(self) -> None:
        """Write this worker's description and counts; one round trip."""
        with self.lock:
            figures = {"in_flight": self.in_flight, "done": self.done, "last_seen": now_ms()}
        pipeline = self.store.client.pipeline(transaction=False)
        pipeline.hset(keys.worker(self.worker_id), mapping={**self.description, **figures})
        pipeline.expire(keys.worker(self.worker_id), DEFAULT_WORKER_RECORD_TTL)
        pipeline.zadd(keys.WORKERS, {self.worker_id: figures["last_seen"]})
        pipeline.execute()

    def _run(self) -> None:
        while not self.stopping.wait(self.interval):
            try:
                self.beat()
                if self.store.claim("upkeep", DEFAULT_UPKEEP_PERIOD):
                    run_upkeep(self.store, self.broker, interval=self.interval)
            except Exception:
                logger.warning("Heartbeat of worker %s failed.", self.worker_id, exc_info=True)
            self.check_scheduler()

    def check_scheduler(self) -> None:
        """Once per alert interval one live worker checks the scheduler's heartbeat (issue 4).

        The check and its sending run in a thread of their own, so that a slow webhook or
        mail server never delays this worker's heartbeats.
        """
        try:
            from monitoring.alerts import WORKER_RULES, Alerter

            if self._alerter is None:
                from jobs.runtime import current

                self._alerter = Alerter.from_runtime(current(), store=self.store)
            if self._alerter.claim(WORKER_RULES):
                threading.Thread(
                    target=self._alerter.evaluate,
                    args=(WORKER_RULES,),
                    kwargs={"claim": False},
                    name="jobdeck-scheduler-check",
                    daemon=True,
                ).start()
        except Exception:
            logger.warning("Worker %s could not check the scheduler.", self.worker_id, exc_info=True)


def consumed_queues(broker: Broker, worker: dramatiq.Worker) -> list[str]:
    """The queues the worker consumes: its --queues, else every declared one (not delay queues)."""
    queues = worker.consumer_whitelist or broker.get_declared_queues()
    return sorted(name for name in queues if not name.endswith((".DQ", ".XQ")))


def live_worker_ids(store: TaskStore, interval: float = DEFAULT_HEARTBEAT_INTERVAL) -> set[str]:
    """Ids of workers whose last heartbeat is recent enough. One round trip."""
    since = now_ms() - dead_after_ms(interval)
    return {member.decode() for member in store.client.zrangebyscore(keys.WORKERS, since, "+inf")}


def run_upkeep(store: TaskStore, broker: Broker, *, interval: float = DEFAULT_HEARTBEAT_INTERVAL) -> dict:
    """Trim history by age and count, flag orphaned tasks, forget long-dead workers.

    Its cost depends on the number of actors, queues and running tasks, never on history size:
    each trim removes only what expired.
    """
    flagged = flag_orphans(store, interval=interval)
    trimmed = trim_history(store, broker)
    roll_up(store)
    store.client.zremrangebyscore(keys.WORKERS, "-inf", now_ms() - DEFAULT_WORKER_RECORD_TTL * 1000)
    return {"orphaned": flagged, "trimmed": trimmed}


def flag_orphans(store: TaskStore, *, interval: float = DEFAULT_HEARTBEAT_INTERVAL) -> int:
    """Flag STARTED tasks whose worker is dead; returns how many were newly flagged."""
    live = live_worker_ids(store, interval)
    flagged = 0
    for record in store.load_started():
        worker_is_dead = record.get("worker") and record["worker"] not in live
        if worker_is_dead and "orphaned" not in record:
            flagged += store.record("orphan", record["id"], {"worker": record["worker"]}) == "orphaned"
    return flagged


def trim_history(store: TaskStore, broker: Broker) -> int:
    """Drop index entries past their retention, and past the count cap; returns how many."""
    now = now_ms()
    success_cutoff = now - store.retention.success * 1000
    failure_cutoff = now - store.retention.failure * 1000
    indexes = {keys.HISTORY: success_cutoff}
    indexes.update({keys.history_by("actor", name): success_cutoff for name in broker.get_declared_actors()})
    indexes.update({keys.history_by("queue", name): success_cutoff for name in broker.get_declared_queues()})
    for state in STATES:
        cutoff = success_cutoff if state in TERMINAL_OR_RECENT else failure_cutoff
        indexes[keys.history_by("state", state)] = cutoff
    pipeline = store.client.pipeline(transaction=False)
    for key, cutoff in indexes.items():
        pipeline.zremrangebyscore(key, "-inf", cutoff)
        pipeline.zremrangebyrank(key, 0, -store.retention.history_max - 1)
    removed = sum(pipeline.execute())
    _forget_old_failure_groups(store, failure_cutoff)
    return removed


def _forget_old_failure_groups(store: TaskStore, cutoff: int) -> None:
    stale = [
        fingerprint
        for fingerprint, group in store.client.hscan_iter(keys.FAILURE_GROUPS)
        if json.loads(group)["last"] < cutoff
    ]
    if stale:
        store.client.hdel(keys.FAILURE_GROUPS, *stale)
