"""The alert rules: each reads the store, the read model or a count handed in, and returns its alerts."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING

from jobs.platform import keys
from monitoring.alerts.model import Alert
from monitoring.records import TaskRecord, from_ms
from monitoring.store import now_ms, reply_text

if TYPE_CHECKING:
    from monitoring.alerts.alerter import Alerter

logger = logging.getLogger("monitoring.alerts")

#: Most failed tasks or started tasks one evaluation loads.
MAX_LOADED = 500
#: Task ids and errors listed in one alert.
MAX_LISTED = 10


def task_failed(alerter: Alerter) -> list[Alert]:
    """Tasks that failed after their last retry since the last evaluation, one alert per actor."""
    since, until = alerter.advance_cursor("task_failed")
    if until <= since:
        return []
    groups = [
        fingerprint.decode()
        for fingerprint, raw in alerter.client.hscan_iter(keys.FAILURE_GROUPS)
        if json.loads(raw).get("last", 0) > since
    ]
    pipeline = alerter.client.pipeline(transaction=False)
    for fingerprint in groups:
        pipeline.zrangebyscore(keys.failure_group(fingerprint), f"({since}", until)
    task_ids = [member.decode() for members in pipeline.execute() for member in members]
    by_actor: dict[str, list[dict[str, str]]] = defaultdict(list)
    for record in alerter.store.load_many(task_ids[:MAX_LOADED]):
        by_actor[record.get("actor", "?")].append(record)
    alerts = []
    for actor, records in sorted(by_actor.items()):
        errors = sorted({f"{r.get('error_type', '')}: {r.get('error_message', '')}" for r in records})
        alerts.append(
            Alert(
                "task_failed",
                actor,
                "error",
                f"{_count(len(records), 'task')} of {actor} failed after the last retry",
                {
                    "actor": actor,
                    "failed": len(records),
                    "errors": errors[:MAX_LISTED],
                    "task_ids": [record["id"] for record in records][:MAX_LISTED],
                },
            )
        )
    return alerts


def failure_rate(alerter: Alerter) -> list[Alert]:
    """Actors whose failure rate over the window is above the threshold."""
    policy = alerter.policy
    alerts = []
    for actor, figures in alerter.monitor.get_task_stats(policy.failure_rate_window).items():
        finished = figures["succeeded"] + figures["failed"]
        if finished >= policy.failure_rate_min_tasks and figures["failure_rate"] > policy.failure_rate:
            alerts.append(
                Alert(
                    "failure_rate",
                    actor,
                    "warning",
                    f"{figures['failure_rate']:.0%} of {actor}'s tasks failed in the last "
                    f"{_duration(policy.failure_rate_window)} ({figures['failed']} of {finished}; "
                    f"threshold {policy.failure_rate:.0%})",
                    {
                        "actor": actor,
                        "failure_rate": figures["failure_rate"],
                        "failed": figures["failed"],
                        "finished": finished,
                        "window_seconds": policy.failure_rate_window,
                        "threshold": policy.failure_rate,
                    },
                )
            )
    return alerts


def queue_latency(alerter: Alerter) -> list[Alert]:
    """Queues whose oldest waiting message is older than the threshold."""
    threshold = alerter.policy.queue_latency
    return [
        Alert(
            "queue_latency",
            queue.name,
            "warning",
            f"the oldest message waiting in {queue.name} is {_duration(queue.latency)} old "
            f"(threshold {_duration(threshold)}; {queue.ready} waiting)",
            {"queue": queue.name, "latency_seconds": round(queue.latency, 1), "ready": queue.ready},
        )
        for queue in alerter.queue_stats()
        if queue.latency > threshold
    ]


def no_consumer(alerter: Alerter) -> list[Alert]:
    """Queues with messages ready to run and no live worker consuming them."""
    return [
        Alert(
            "no_consumer",
            queue.name,
            "critical",
            f"{_count(queue.ready, 'message')} waiting in {queue.name} and no live worker consumes it",
            {"queue": queue.name, "ready": queue.ready, "latency_seconds": round(queue.latency, 1)},
        )
        for queue in alerter.queue_stats()
        if queue.ready > 0 and queue.consumers == 0
    ]


def orphaned_tasks(alerter: Alerter) -> list[Alert]:
    """Tasks still STARTED on a worker that died, one alert per dead worker."""
    by_worker: dict[str, list[TaskRecord]] = defaultdict(list)
    for task in alerter.monitor.get_orphaned_tasks():
        by_worker[task.worker or "?"].append(task)
    return [
        Alert(
            "orphaned_tasks",
            worker,
            "warning",
            f"{_count(len(tasks), 'task')} left STARTED on worker {worker}, which died",
            {
                "worker": worker,
                "orphaned": len(tasks),
                "actors": sorted({task.task_name for task in tasks}),
                "task_ids": [task.task_id for task in tasks][:MAX_LISTED],
            },
        )
        for worker, tasks in sorted(by_worker.items())
    ]


def notification_unknown(alerter: Alerter) -> list[Alert]:
    """Notifications whose delivery is unknown: a person must check before anything is resent."""
    if alerter.count_unknown_notifications is None:
        return []
    count = alerter.count_unknown_notifications()
    if not count:
        return []
    return [
        Alert(
            "notification_unknown",
            "notifications",
            "warning",
            f"{_count(count, 'notification')} in state unknown: the mail server may or may not have "
            "taken them; check before sending again",
            {"count": count},
        )
    ]


def missed_schedule(alerter: Alerter) -> list[Alert]:
    """Schedules with runs missed since the last evaluation, one alert per schedule.

    First the ticks nobody sent by their deadline are recorded as missed (with no scheduler
    running too); a failure there is logged and what was recorded before is still reported.
    """
    if alerter.detect_missed_schedules is not None:
        try:
            alerter.detect_missed_schedules()
        except Exception as error:
            logger.warning("Missed runs could not be checked: %s: %s", type(error).__name__, error)
    since, until = alerter.advance_cursor("missed_schedule")
    if until <= since:
        return []
    by_schedule: dict[str, list[str]] = defaultdict(list)
    for member in alerter.client.zrangebyscore(keys.MISSED_SCHEDULES, f"({since}", until):
        entry = json.loads(member)
        by_schedule[entry["schedule"]].append(entry["fire_time"])
    return [
        Alert(
            "missed_schedule",
            name,
            "error",
            f"schedule {name} missed {_count(len(times), 'run')} (last due {max(times)})",
            {"schedule": name, "missed": len(times), "fire_times": sorted(times)[-MAX_LISTED:]},
        )
        for name, times in sorted(by_schedule.items())
    ]


def no_scheduler(alerter: Alerter) -> list[Alert]:
    """No scheduler heartbeat for longer than the threshold (evaluated by workers)."""
    last = reply_text(alerter.client.get(keys.SCHEDULER_HEARTBEAT))
    reference = int(last) if last else alerter.started_at
    silent = (now_ms() - reference) / 1000
    threshold = alerter.policy.scheduler_silence
    if silent <= threshold:
        return []
    if last:
        summary = (
            f"no scheduler heartbeat for {_duration(silent)} (threshold {_duration(threshold)}): "
            "schedules are not firing"
        )
    else:
        summary = f"no scheduler heartbeat seen in {_duration(silent)}: is a scheduler process running?"
    return [
        Alert(
            "no_scheduler",
            "scheduler",
            "critical",
            summary,
            {
                "last_heartbeat": from_ms(last).isoformat() if last else None,
                "silent_seconds": round(silent),
                "threshold_seconds": threshold,
            },
        )
    ]


#: Every rule by name, in jobs.platform.settings.ALERT_RULES order.
RULES: dict[str, Callable[[Alerter], list[Alert]]] = {
    "task_failed": task_failed,
    "failure_rate": failure_rate,
    "queue_latency": queue_latency,
    "no_consumer": no_consumer,
    "orphaned_tasks": orphaned_tasks,
    "notification_unknown": notification_unknown,
    "missed_schedule": missed_schedule,
    "no_scheduler": no_scheduler,
}


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
