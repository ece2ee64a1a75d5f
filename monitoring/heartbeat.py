"""Worker heartbeats; after each, one live worker a minute runs the cluster's upkeep (upkeep.py)."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable

import dramatiq
from dramatiq.broker import Broker

from jobs.platform import keys
from jobs.platform.defaults import DEFAULT_HEARTBEAT_INTERVAL_S
from monitoring.liveness import dead_after_ms
from monitoring.store import TaskStore, now_ms
from monitoring.upkeep import DEFAULT_UPKEEP_PERIOD, DEFAULT_WORKER_RECORD_TTL, run_upkeep

logger = logging.getLogger(__name__)


class WorkerHeartbeat:
    """Registers a worker process, beats every ``interval`` seconds and runs cluster upkeep.

    Parameters:
      store(TaskStore): the monitoring store.
      broker(Broker): this process's broker (its id is the worker id).
      worker(dramatiq.Worker): the worker, for its queues and thread count.
      interval(float): seconds between heartbeats. Default 5.
      scheduler_check(callable): called after each heartbeat; it claims its own period, so one
        live worker runs it per period, and returns at once. Default None.
    """

    def __init__(
        self,
        *,
        store: TaskStore,
        broker: Broker,
        worker: dramatiq.Worker,
        interval: float = DEFAULT_HEARTBEAT_INTERVAL_S,
        scheduler_check: Callable[[], None] | None = None,
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
        self.scheduler_check = scheduler_check

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

    def mark_stopping(self) -> None:
        """Note that the worker is shutting down; it keeps beating while its tasks finish."""
        try:
            self.store.client.hset(keys.worker(self.worker_id), "stopping_at", now_ms())
        except Exception:
            logger.warning("Could not mark worker %s stopping.", self.worker_id, exc_info=True)

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
        """Run the scheduler check handed in (issue 4); it must return at once (it claims its
        period and evaluates, if it won, in a thread of its own)."""
        if self.scheduler_check is None:
            return
        try:
            self.scheduler_check()
        except Exception:
            logger.warning("Worker %s could not check the scheduler.", self.worker_id, exc_info=True)


def consumed_queues(broker: Broker, worker: dramatiq.Worker) -> list[str]:
    """The queues the worker consumes: its --queues, else every declared one (not delay queues)."""
    queues = worker.consumer_whitelist or broker.get_declared_queues()
    return sorted(name for name in queues if not name.endswith((".DQ", ".XQ")))
