"""Cluster figures for Prometheus, read from the monitoring store through TaskMonitor.

Each worker serves Dramatiq's own per-process metrics; this collector serves what only the
store knows across the cluster: queues, workers, active and orphaned tasks, per-actor rates.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence

import redis
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from jobs.platform.errors import ServiceUnavailable
from monitoring.queries import TaskMonitor
from monitoring.records import ACTIVE_STATES, WorkerRecord
from monitoring.schedules import Schedule, ScheduleMonitor

#: Per-actor figures cover this many seconds (served from minute counters, one round trip).
DEFAULT_ACTOR_WINDOW = 3600
WORKER_STATES = ("alive", "dead", "stopped")

#: Something else that has cluster figures to serve (the schedules'): called on every
#: collection, it returns complete metric families.
MetricSource = Callable[[], Iterable[Metric]]

QUEUE_METRICS = (
    ("jobdeck_queue_ready", "ready", "Messages waiting to run."),
    ("jobdeck_queue_delayed", "delayed", "Messages waiting for their eta or a retry delay."),
    ("jobdeck_queue_in_flight", "in_flight", "Messages a worker process holds."),
    ("jobdeck_queue_dead_lettered", "dead_lettered", "Messages the broker dead-lettered."),
    ("jobdeck_queue_latency_seconds", "latency", "Age of the oldest message waiting to run."),
    ("jobdeck_queue_consumers", "consumers", "Live worker processes consuming the queue."),
)


class ClusterCollector(Collector):
    """A Prometheus collector of the cluster's figures; register it on its own CollectorRegistry.

    One collection costs a fixed number of Redis round trips plus one per queue with waiting
    messages (and what the extra sources cost), whatever the size of the history.

    Parameters:
      monitor(TaskMonitor): the read model; the only way this collector reads Redis.
      sources(Sequence[MetricSource]): more figures to serve, see ``add_source``. Default none.
      actor_window(int): seconds the per-actor failure rate and p95 cover. Default 3600.
    """

    def __init__(
        self,
        monitor: TaskMonitor,
        *,
        sources: Sequence[MetricSource] = (),
        actor_window: int = DEFAULT_ACTOR_WINDOW,
    ) -> None:
        self.monitor = monitor
        self.sources = list(sources)
        self.actor_window = actor_window

    def add_source(self, source: MetricSource) -> None:
        """Serve the metric families ``source()`` returns alongside the store's own."""
        self.sources.append(source)

    def collect(self) -> Iterator[Metric]:
        """The cluster's metric families, all read before any is served: a Redis failure serves none."""
        try:
            workers = self.monitor.get_worker_stats()
            families = [
                *self._queue_metrics(workers),
                self._worker_metric(workers),
                *self._task_metrics(),
                *self._actor_metrics(),
                *(family for source in self.sources for family in source()),
            ]
        except redis.RedisError as error:
            raise ServiceUnavailable(f"Redis cannot be reached: {error}") from None
        yield from families

    def _queue_metrics(self, workers: list[WorkerRecord]) -> list[Metric]:
        families = {name: GaugeMetricFamily(name, text, labels=["queue"]) for name, _, text in QUEUE_METRICS}
        for queue in self.monitor.get_queue_stats(workers):
            for name, field, _ in QUEUE_METRICS:
                families[name].add_metric([queue.name], getattr(queue, field))
        return list(families.values())

    def _worker_metric(self, workers: list[WorkerRecord]) -> Metric:
        counts = Counter(_worker_state(worker) for worker in workers)
        family = GaugeMetricFamily(
            "jobdeck_workers", "Worker processes seen recently, by state.", labels=["state"]
        )
        for state in WORKER_STATES:
            family.add_metric([state], counts[state])
        return family

    def _task_metrics(self) -> list[Metric]:
        counts = self.monitor.count_tasks_by_state()
        active = GaugeMetricFamily(
            "jobdeck_tasks_active", "Tasks not finished yet, by state.", labels=["state"]
        )
        for state in ACTIVE_STATES:
            active.add_metric([state], counts[state])
        orphaned = GaugeMetricFamily(
            "jobdeck_tasks_orphaned",
            "Started tasks whose worker died.",
            value=len(self.monitor.get_orphaned_tasks()),
        )
        return [active, orphaned]

    def _actor_metrics(self) -> list[Metric]:
        window = self.actor_window
        failure_rate = GaugeMetricFamily(
            "jobdeck_actor_failure_rate",
            f"Failed over finished tasks of the actor in the last {window} s.",
            labels=["actor"],
        )
        duration_p95 = GaugeMetricFamily(
            "jobdeck_actor_duration_p95_seconds",
            f"95th percentile duration of the actor's tasks in the last {window} s (bucket bound).",
            labels=["actor"],
        )
        for actor, figures in self.monitor.get_task_stats(window).items():
            # An actor that finished nothing has no rate and no percentile: serve none, not 0.
            if figures["succeeded"] + figures["failed"]:
                failure_rate.add_metric([actor], figures["failure_rate"])
            if figures["duration_p95"] is not None:
                duration_p95.add_metric([actor], figures["duration_p95"])
        return [failure_rate, duration_p95]


def _worker_state(worker: WorkerRecord) -> str:
    if worker.stopped:
        return "stopped"
    return "alive" if worker.alive else "dead"


#: Per schedule: (name, help, the figure of a Schedule; None serves no sample).
SCHEDULE_METRICS: tuple[tuple[str, str, Callable[[Schedule], float | None]], ...] = (
    (
        "jobdeck_schedule_lag_seconds",
        "Seconds since the oldest due tick of the schedule that was neither sent nor paused (0: none).",
        lambda schedule: schedule.lag,
    ),
    (
        "jobdeck_schedule_last_success_timestamp_seconds",
        "When a task of one of the schedule's recent ticks last finished SUCCESS (Unix time).",
        lambda schedule: schedule.last_success.timestamp() if schedule.last_success else None,
    ),
    (
        "jobdeck_schedule_last_run_timestamp_seconds",
        "Nominal time of the schedule's last tick that sent a task (Unix time).",
        lambda schedule: schedule.last_run.timestamp() if schedule.last_run else None,
    ),
    (
        "jobdeck_schedule_last_lateness_seconds",
        "Seconds from the nominal time of the schedule's last sent tick to its enqueue.",
        lambda schedule: schedule.last_lateness,
    ),
    ("jobdeck_schedule_paused", "1 while the schedule is paused.", lambda schedule: float(schedule.paused)),
)


def schedule_metrics(monitor: ScheduleMonitor) -> MetricSource:
    """The schedules' figures (lag, last success, last run, lateness, paused) as a MetricSource.
    Two round trips per collection."""

    def collect() -> list[Metric]:
        families = [GaugeMetricFamily(name, text, labels=["schedule"]) for name, text, _ in SCHEDULE_METRICS]
        for schedule in monitor.list():
            for family, (_, _, figure) in zip(families, SCHEDULE_METRICS, strict=True):
                value = figure(schedule)
                if value is not None:
                    family.add_metric([schedule.name], value)
        return families

    return collect
