"""The read side: history paging and filters, statistics, queue figures, retention."""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime

import pytest
import redis

from jobs.platform import keys
from jobs.runtime import start
from monitoring.counters import roll_up, window_totals
from monitoring.records import TaskRecord
from monitoring.store import TaskStore, duration_bucket, now_ms
from monitoring.upkeep import trim_history
from tests.monitoring.test_recorder import finished


def record_finished(store, task_id: str, *, actor="test_task", state="SUCCESS", duration_ms=10, args="[]"):
    """Record a task's enqueue, start and finish exactly as the middleware does."""
    names = {"actor": actor, "queue": "default"}
    store.record("enqueue", task_id, {**names, "args": args, "kwargs": "{}"})
    store.record("start", task_id, {**names, "worker": "w", "attempt": 1, "retries": 0})
    failure = (
        {"error_type": "ValueError", "error_message": "bad", "fingerprint": "f"} if state == "FAILURE" else {}
    )
    store.record(
        "finish",
        task_id,
        {
            **names,
            "state": state,
            "duration_ms": duration_ms,
            "bucket": duration_bucket(duration_ms),
            "retries": 0,
            "attempt": 1,
            "result": "null",
            **failure,
        },
    )


def test_history_pages_newest_first_with_a_cursor(runtime):
    sent = [runtime.manager.send_task("test_task", [n]).message_id for n in range(120)]

    pages, cursor = [], None
    while True:
        page = runtime.monitor.get_task_history(limit=50, cursor=cursor)
        pages.append(page.tasks)
        cursor = page.next_cursor
        if cursor is None:
            break

    tasks = [task for page in pages for task in page]
    assert [len(page) for page in pages][:3] == [50, 50, 20]
    assert sorted(task.task_id for task in tasks) == sorted(sent)  # each exactly once
    times = [task.enqueued_at for task in tasks]
    assert times == sorted(times, reverse=True)


def test_history_filters_by_actor_state_time_and_text(runtime):
    record_finished(runtime.store, "a-ok", args='["invoice 17"]')
    record_finished(runtime.store, "a-bad", state="FAILURE")
    record_finished(runtime.store, "b-ok", actor="long_running_task")
    time.sleep(0.01)  # times are kept to the millisecond
    cutoff = time.time()
    time.sleep(0.01)
    record_finished(runtime.store, "late", args='["invoice 18"]')
    monitor = runtime.monitor

    def ids(**filters):
        return [task.task_id for task in monitor.get_task_history(**filters).tasks]

    assert ids(actor="long_running_task") == ["b-ok"]
    assert ids(state="FAILURE") == ["a-bad"]
    assert ids(actor="test_task", state="SUCCESS") == ["late", "a-ok"]
    assert ids(search="invoice") == ["late", "a-ok"]
    assert ids(since=datetime.fromtimestamp(cutoff, UTC)) == ["late"]
    assert ids(until=datetime.fromtimestamp(cutoff, UTC)) == ["b-ok", "a-bad", "a-ok"]


def test_a_search_scans_a_bounded_number_of_records_and_continues(runtime, monkeypatch):
    monkeypatch.setattr("monitoring.queries.MAX_SCANNED", 30)
    monkeypatch.setattr("monitoring.queries.SCAN_BATCH", 10)
    record_finished(runtime.store, "needle", args='["needle"]')
    for number in range(50):
        record_finished(runtime.store, f"hay-{number}")

    first = runtime.monitor.get_task_history(search="needle")
    second = runtime.monitor.get_task_history(search="needle", cursor=first.next_cursor)

    assert first.tasks == [] and first.scanned == 30 and first.next_cursor
    assert [task.task_id for task in second.tasks] == ["needle"]


def test_stats_per_actor_come_from_counters(runtime):
    for number, duration in enumerate([5, 20, 40, 80, 3000]):
        record_finished(runtime.store, f"s-{number}", duration_ms=duration)
    record_finished(runtime.store, "f-1", state="FAILURE", duration_ms=7)

    stats = runtime.monitor.get_task_stats(window=600)["test_task"]

    assert (stats["processed"], stats["succeeded"], stats["failed"]) == (6, 5, 1)
    assert stats["failure_rate"] == round(1 / 6, 4)
    assert stats["duration_p50"] == 0.025  # the third of six, alone in its bucket (10-25 ms): its top
    # The 95th percentile falls in the last one's bucket (2.5-5 s), 70 % of the way up to the max.
    assert stats["duration_p95"] == 2.85
    assert stats["duration_max"] == 3.0


def test_p50_and_p95_are_within_a_sample_spacing_of_the_true_percentiles_and_never_above_the_max(runtime):
    durations = list(range(30, 3001, 30))  # 100 tasks, 30 ms apart, from 30 ms to 3 s
    for number, duration in enumerate(durations):
        record_finished(runtime.store, f"q-{number}", duration_ms=duration)
    true = statistics.quantiles(durations, n=100, method="inclusive")  # p50 1.515 s, p95 2.8515 s

    stats = runtime.monitor.get_task_stats(window=600)["test_task"]

    # A histogram keeps counts per bucket only, and interpolating spreads a bucket's tasks evenly
    # between its bounds (capped by the max). Evenly spaced durations really are spread so: the
    # estimate is off by less than one spacing (30 ms), against 1 s (p50) and 2.1 s (p95) before.
    assert abs(stats["duration_p50"] - true[49] / 1000) < 0.030
    assert abs(stats["duration_p95"] - true[94] / 1000) < 0.030
    assert stats["duration_p50"] <= stats["duration_p95"] <= stats["duration_max"] == 3.0


def test_percentiles_of_durations_in_one_bucket_stay_between_the_fastest_and_the_slowest(runtime):
    durations = [2_600 + 4 * number for number in range(100)]  # all in the 2.5-5 s bucket
    for number, duration in enumerate(durations):
        record_finished(runtime.store, f"q-{number}", duration_ms=duration)
    true = statistics.quantiles(durations, n=100, method="inclusive")

    floored = runtime.monitor.get_task_stats(window=600)["test_task"]
    # What record.lua keeps once it counts the fastest duration too (duration_min, beside the max).
    bucket = keys.stats("minute", now_ms() // keys.GRANULARITIES["minute"])
    runtime.store.client.hset(bucket, "test_task@default:duration_min", min(durations))
    stats = runtime.monitor.get_task_stats(window=600)["test_task"]

    # Without the fastest, the bucket's floor bounds them: in the bucket, below the max.
    assert 2.5 <= floored["duration_p50"] <= floored["duration_p95"] <= floored["duration_max"] == 2.996
    # With it, spread evenly from the fastest (2.6 s) to the slowest (2.996 s), as these are.
    assert abs(stats["duration_p50"] - true[49] / 1000) < 0.004
    assert abs(stats["duration_p95"] - true[94] / 1000) < 0.004
    assert 2.6 <= stats["duration_p50"] <= stats["duration_p95"] <= stats["duration_max"] == 2.996


def test_rolled_up_hour_counters_equal_the_minute_counters(runtime, monkeypatch):
    record_finished(runtime.store, "r-1", duration_ms=12)
    record_finished(runtime.store, "r-2", state="FAILURE", duration_ms=900)
    short = window_totals(runtime.store, 600)["test_task"]
    # Pretend three minutes have passed so that the current minute is old enough to roll up.
    later = time.time() + 180
    monkeypatch.setattr("monitoring.counters.now_ms", lambda: int(later * 1000))

    assert roll_up(runtime.store) >= 1
    long = window_totals(runtime.store, 24 * 3600)["test_task"]

    assert dict(long) == dict(short)
    assert roll_up(runtime.store) == 0  # nothing new to roll up: never counted twice


@pytest.mark.slow
def test_queue_figures_show_waiting_work_latency_and_consumers(runtime, start_worker):
    for number in range(3):
        runtime.manager.send_task("test_task", [number], queue="reports")
    runtime.manager.send_task("test_task", ["later"], delay=600)
    time.sleep(0.3)

    waiting = {queue.name: queue for queue in runtime.monitor.get_queue_stats()}
    start_worker()  # consumes every queue
    finished(runtime, runtime.manager.send_task("test_task", ["now"]).message_id)
    served = {queue.name: queue for queue in runtime.monitor.get_queue_stats()}

    assert waiting["reports"].ready == 3 and waiting["reports"].consumers == 0
    assert waiting["reports"].latency >= 0.3
    assert waiting["default"].delayed == 1
    assert served["reports"].consumers == 1
    assert served["default"].delayed == 1  # still waiting for its eta, now held by the worker


def test_retention_drops_successes_first_and_keeps_failures(settings, redis_url):
    runtime = start(settings.with_overrides(success_retention=1, failure_retention=60))
    record_finished(runtime.store, "kept-failure", state="FAILURE")
    record_finished(runtime.store, "dropped-success")
    client = redis.Redis.from_url(redis_url)

    time.sleep(2.2)
    removed = trim_history(runtime.store, runtime.broker)

    assert runtime.monitor.get_task_status("dropped-success") is None
    assert runtime.monitor.get_task_status("kept-failure").status == "FAILURE"
    assert removed >= 1
    assert client.zscore(keys.HISTORY, "dropped-success") is None
    assert [task.task_id for task in runtime.monitor.get_task_history(state="FAILURE").tasks] == [
        "kept-failure"
    ]
    assert 0 < client.ttl(keys.task("kept-failure")) <= 60


def test_history_goes_on_past_the_success_retention_with_the_failures(settings, redis_url):
    runtime = start(settings.with_overrides(success_retention=1, failure_retention=60))
    record_finished(runtime.store, "old-failure", state="FAILURE")
    record_finished(runtime.store, "old-success")
    record_finished(runtime.store, "old-failure-of-another-actor", actor="other", state="FAILURE")
    time.sleep(2.2)
    trim_history(runtime.store, runtime.broker)
    record_finished(runtime.store, "new-success")
    history = runtime.monitor.get_task_history

    pages, cursor = [], None
    while True:
        page = history(limit=1, cursor=cursor)
        pages.append([task.task_id for task in page.tasks])
        if (cursor := page.next_cursor) is None:
            break

    assert [task_id for page in pages for task_id in page] == [
        "new-success",
        "old-failure-of-another-actor",
        "old-failure",
    ]
    assert [task.task_id for task in history(actor="test_task").tasks] == ["new-success", "old-failure"]
    assert [task.task_id for task in history(actor="other").tasks] == ["old-failure-of-another-actor"]


def test_a_task_retried_past_the_timeline_limit_keeps_its_latest_events_in_order(runtime):
    store = TaskStore(runtime.store.client, timeline_max=5)
    names = {"actor": "test_task", "queue": "default"}
    store.record("enqueue", "retried-often", names)
    for attempt in range(1, 5):
        start = {**names, "worker": "w", "attempt": attempt, "retries": attempt - 1}
        store.record("start", "retried-often", start)
        finish = {**names, "state": "RETRY", "attempt": attempt, "retries": attempt - 1, "duration_ms": 1}
        store.record(
            "finish", "retried-often", {**finish, "bucket": 0, "error_type": "E", "error_message": "x"}
        )

    record = store.load("retried-often")
    timeline = TaskRecord.from_store(record).timeline

    # 9 events were recorded: PENDING, then STARTED and RETRY four times; the last 5 are kept.
    assert [(event["state"], event.get("attempt")) for event in timeline] == [
        ("RETRY", 2),
        ("STARTED", 3),
        ("RETRY", 3),
        ("STARTED", 4),
        ("RETRY", 4),
    ]
