"""The monitoring store tells the truth through deploys, kills, Redis error replies and replays.

Each test reproduces a fault that happens every day in production (issue 9, items 1-6 and 8) on a
real Redis and, where a process is involved, real ``dramatiq`` worker processes.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
import redis

from jobs.platform import keys
from jobs.platform.broker import find_middleware
from jobs.runtime import start
from monitoring.recorder import FinishRecord, TaskRecorder
from monitoring.upkeep import run_upkeep, trim_history
from tests.conftest import redis_events, wait_for
from tests.monitoring.test_recorder import finished


@pytest.fixture
def environment(environment):
    """Redelivery only after two minutes: whatever comes back sooner was handed back on purpose."""
    return {**environment, "JOBDECK_REDELIVERY_TIMEOUT": "120"}


def events(record) -> list[str]:
    return [event["state"] for event in record.timeline]


def stop_like_a_platform(worker, timeout: float = 30.0) -> float:
    """SIGTERM to every process of the worker at once, as a PaaS stops a dyno; seconds to exit."""
    started = time.monotonic()
    os.killpg(worker.process.pid, signal.SIGTERM)
    worker.process.wait(timeout)
    return time.monotonic() - started


def started(runtime, message) -> None:
    wait_for(lambda: runtime.monitor.get_task_status(message.message_id).status == "STARTED", timeout=20)


# --- 1. A deploy is a graceful stop, not a crash -------------------------------------------------


@pytest.mark.slow
def test_sigterm_to_the_whole_process_group_lets_running_jobs_finish(runtime, start_worker, redis_url):
    worker = start_worker(threads=2, shutdown_timeout=15_000)
    messages = [runtime.manager.send_task("sleeper", [f"deploy-{n}"], {"seconds": 3}) for n in range(2)]
    for message in messages:
        started(runtime, message)

    seconds = stop_like_a_platform(worker)

    assert seconds < 12, worker.log()
    assert "Killing worker process" not in worker.log()
    for n, message in enumerate(messages):
        record = runtime.monitor.get_task_status(message.message_id)
        assert record.status == "SUCCESS", worker.log()
        assert not record.orphaned and "LOST" not in events(record) and "ORPHANED" not in events(record)
        assert [event for event, _ in redis_events(redis_url, f"deploy-{n}")] == ["started", "finished"]
    [worker_record] = runtime.monitor.get_worker_stats()
    assert worker_record.stopped and not worker_record.alive
    assert runtime.alerter.check("orphaned_tasks") == [] and runtime.alerter.check("no_consumer") == []


@pytest.mark.slow
def test_a_job_that_cannot_finish_in_the_window_is_handed_back_at_once(runtime, start_worker, redis_url):
    worker = start_worker(shutdown_timeout=1_000)
    message = runtime.manager.send_task("sleeper", ["cut"], {"seconds": 4})
    started(runtime, message)

    stop_like_a_platform(worker)

    record = runtime.monitor.get_task_status(message.message_id)
    assert record.status == "PENDING", record
    interrupted = [event for event in record.timeline if event["state"] == "INTERRUPTED"]
    assert interrupted and interrupted[0]["reason"] == "shutdown"
    assert not record.orphaned
    assert runtime.monitor.get_queue_stats()[0].ready == 1  # back on its queue, not in a dead worker's hands
    # The next worker runs it again, and that is no death.
    start_worker()
    record = finished(runtime, message.message_id)
    assert record.status == "SUCCESS"
    assert "LOST" not in events(record)
    assert runtime.store.load(message.message_id).get("deaths", "0") == "0"


# --- 2. The poison cap counts only real deaths ---------------------------------------------------


@pytest.mark.slow
def test_a_job_interrupted_by_deploys_is_never_dead_lettered(runtime, start_worker, redis_url):
    message = runtime.manager.send_task("sleeper", ["redeployed"], {"seconds": 4})
    for _ in range(3):  # more deploys than the poison cap
        worker = start_worker(shutdown_timeout=500, JOBDECK_POISON_CAP="2")
        started(runtime, message)
        stop_like_a_platform(worker)

    start_worker(JOBDECK_POISON_CAP="2")
    record = finished(runtime, message.message_id)

    assert record.status == "SUCCESS"
    assert events(record).count("INTERRUPTED") == 3


def test_a_redelivery_while_the_first_worker_lives_is_no_death(runtime, redis_url):
    # Given a task STARTED on a worker whose Dramatiq heartbeat is fresh (a duplicate delivery after
    # a lost acknowledgement), and the poison cap at 2
    client = redis.Redis.from_url(redis_url)
    store = runtime.store
    task = "duplicate-delivery"
    names = {"actor": "test_task", "queue": "default"}
    store.record("enqueue", task, names)
    for attempt_worker in ("worker-a", "worker-b", "worker-c"):
        client.zadd(
            keys.broker_heartbeats(runtime.broker.namespace), {attempt_worker: int(time.time() * 1000)}
        )
        outcome = store.record("start", task, {**names, "worker": attempt_worker, "attempt": 1, "retries": 0})
        # Then no delivery is refused as poison and no death is counted
        assert outcome == "ok"
    assert store.load(task).get("deaths", "0") == "0"


def test_a_redelivery_after_the_worker_died_is_a_death(runtime, redis_url):
    store = runtime.store
    task = "real-death"
    names = {"actor": "test_task", "queue": "default"}
    store.record("enqueue", task, names)
    store.record("start", task, {**names, "worker": "gone", "attempt": 1, "retries": 0})

    # "gone" has no Dramatiq heartbeat: it died without a goodbye, so its message was redelivered.
    assert store.record("start", task, {**names, "worker": "next", "attempt": 1, "retries": 0}) == "ok"

    assert store.load(task)["deaths"] == "1"


# --- 3. A finish record is never lost when the ack lands -----------------------------------------


def fetch_one(runtime, text: str):
    """Enqueue a test_task and fetch it with the broker's own consumer, as a worker thread would."""
    runtime.broker.enqueue(runtime.broker.get_actor("test_task").message(text))
    consumer = runtime.broker.consume("default", prefetch=1, timeout=1000)
    return consumer, next(message for message in consumer if message is not None)


def record_started_here(runtime, message) -> None:
    """The STARTED record this process's worker thread would write for ``message``."""
    runtime.store.record(
        "start",
        message.message_id,
        {
            "actor": "test_task",
            "queue": "default",
            "worker": runtime.broker.broker_id,
            "attempt": 1,
            "retries": 0,
            "broker_message_id": message.options["redis_message_id"],
        },
    )


class RefusedFinish:
    """A finish record Redis refuses with an error reply (here: a command the script does not know)."""

    def __init__(self, runtime, message) -> None:
        self.store, self.message_id = runtime.store, message.message_id
        self.replies: list = []

    def commands(self, settle, offer):
        # It carries the ack, as the real finish record does: the refusal must not lose the ack.
        acknowledgement = offer.take() if offer is not None else ()
        return [
            self.store.record_command(
                "not-a-command", self.message_id, {"state": "SUCCESS"}, *acknowledgement
            )
        ]

    def replied(self, settle, replies):
        self.replies = replies


def test_a_refused_finish_record_is_resolved_by_upkeep_not_left_started(runtime, redis_url):
    consumer, message = fetch_one(runtime, "record-refused")
    record_started_here(runtime, message)
    refused = RefusedFinish(runtime, message)
    message.__dict__.setdefault("jobdeck_ack_riders", []).append(refused)

    consumer.ack(message)  # the acknowledgement lands, the record is refused
    consumer.close()
    assert isinstance(refused.replies[0], redis.ResponseError)
    assert runtime.monitor.get_task_status(message.message_id).status == "STARTED"

    run_upkeep(runtime.store, runtime.broker, interval=runtime.settings.heartbeat_interval)

    record = runtime.monitor.get_task_status(message.message_id)
    assert record.status == "FAILURE"
    assert record.error_type == "Lost"
    assert "acknowledged" in record.error_message


def test_a_finish_record_carries_its_messages_ack_in_the_same_script_call(runtime, redis_url):
    # Given a message fetched and started here, and its finish record riding on its ack
    client = redis.Redis.from_url(redis_url)
    consumer, message = fetch_one(runtime, "carried ack")
    record_started_here(runtime, message)
    recorder = find_middleware(runtime.broker, TaskRecorder)
    data = {"actor": "test_task", "queue": "default", "state": "SUCCESS", "result": "null", "duration_ms": 1}
    finish = FinishRecord(recorder, message, {**data, "bucket": 0, "attempt": 1, "retries": 0})
    message.__dict__.setdefault("jobdeck_ack_riders", []).append(finish)
    client.config_resetstat()
    before = int(time.time() * 1000)

    consumer.ack(message)
    consumer.close()

    # Then one script call records and acks (Dramatiq's dispatch script is not called)
    namespace, broker_id = runtime.broker.namespace, runtime.broker.broker_id
    assert int(client.info("commandstats")["cmdstat_evalsha"]["calls"]) == 1
    # and the ack is Dramatiq's: the message leaves the worker's acks and the queue, the worker beats
    assert client.smembers(keys.broker_acks(namespace, broker_id, "default")) == set()
    assert client.hlen(keys.broker_messages(namespace, "default")) == 0
    assert client.zscore(keys.broker_heartbeats(namespace), broker_id) >= before
    assert runtime.monitor.get_task_status(message.message_id).status == "SUCCESS"
    assert message.message_id not in consumer.queued_message_ids


def test_a_running_task_is_not_resolved_as_lost(runtime, redis_url):
    consumer, message = fetch_one(runtime, "still-running")
    record_started_here(runtime, message)

    run_upkeep(runtime.store, runtime.broker, interval=runtime.settings.heartbeat_interval)

    assert runtime.monitor.get_task_status(message.message_id).status == "STARTED"
    consumer.close()


# --- 4. Replays are idempotent -------------------------------------------------------------------


def test_a_replayed_start_record_is_applied_once(runtime):
    store = runtime.store
    task = "replayed-start"
    names = {"actor": "test_task", "queue": "default"}
    store.record("enqueue", task, names)
    start = {**names, "worker": "worker-a", "attempt": 1, "retries": 0}

    assert store.record("start", task, start) == "ok"
    assert store.record("start", task, start) == "ok"  # the kept connection re-sent its batch

    record = runtime.monitor.get_task_status(task)
    assert events(record) == ["PENDING", "STARTED"]
    assert store.load(task).get("deaths", "0") == "0"


def test_a_replayed_retry_record_is_counted_once(runtime):
    store = runtime.store
    task = "replayed-retry"
    names = {"actor": "replayed_actor", "queue": "default"}
    store.record("enqueue", task, names)
    store.record("start", task, {**names, "worker": "worker-a", "attempt": 1, "retries": 0})
    finish = {**names, "state": "RETRY", "attempt": 1, "retries": 0, "duration_ms": 5, "bucket": 0}

    store.record("finish", task, finish)
    store.record("finish", task, finish)  # replayed

    record = runtime.monitor.get_task_status(task)
    assert events(record).count("RETRY") == 1
    assert runtime.monitor.get_task_stats(600)["replayed_actor"]["retried"] == 1


def test_a_replayed_scheduled_enqueue_and_a_repeated_orphaning_add_one_event_each(runtime):
    store = runtime.store
    task = "replayed-enqueue"
    names = {"actor": "test_task", "queue": "default"}
    eta = int(time.time() * 1000) + 60_000
    store.record("enqueue", task, {**names, "eta": eta})
    store.record("enqueue", task, {**names, "eta": eta})  # replayed
    store.record("start", task, {**names, "worker": "worker-a", "attempt": 1, "retries": 0})
    store.record("orphan", task, {"worker": "worker-a"})
    store.record("orphan", task, {"worker": "worker-a"})  # a second upkeep

    assert events(runtime.monitor.get_task_status(task)) == ["SCHEDULED", "STARTED", "ORPHANED"]


# --- 5. No prefetch-slot leak on an error reply to the ack ---------------------------------------


def test_an_error_reply_to_the_ack_releases_the_prefetch_slot(runtime, redis_url):
    client = redis.Redis.from_url(redis_url)
    runtime.broker.enqueue(runtime.broker.get_actor("test_task").message("slot"))
    consumer = runtime.broker.consume("default", prefetch=1, timeout=1000)
    message = next(message for message in consumer if message is not None)
    runtime.store.record_command("finish", message.message_id, {})  # loads the record script
    rider = _FailingRider()
    message.__dict__.setdefault("jobdeck_ack_riders", []).append(rider)
    client.config_set("maxmemory", 1)  # every write is refused with OOM, as on a full Redis
    try:
        with pytest.raises(redis.ResponseError):
            consumer.ack(message)
    finally:
        client.config_set("maxmemory", 0)

    assert message.message_id not in consumer.queued_message_ids
    consumer.close()


class _FailingRider:
    def commands(self, settle, offer):
        return [("SET", "jobdeck:test:rider", "1")]

    def replied(self, settle, replies):
        pass


# --- 6. Revoke fails closed ----------------------------------------------------------------------


@pytest.mark.slow
def test_a_revoked_task_whose_check_fails_never_runs_and_is_not_dropped(runtime, start_worker, redis_url):
    client = redis.Redis.from_url(redis_url)
    message = runtime.manager.send_task("sleeper", ["revoked"], {"seconds": 0.1})
    assert runtime.manager.revoke_task(message.message_id).done
    # The start record will fail: the task's record (which holds its revocation) is put aside
    # and its key holds a string instead of a hash.
    client.rename(keys.task(message.message_id), "jobdeck:test:put-aside")
    client.set(keys.task(message.message_id), "broken")

    start_worker()
    time.sleep(4)

    assert redis_events(redis_url, "revoked") == []  # it never ran
    held = client.llen("dramatiq:default") + sum(
        client.scard(key) for key in client.scan_iter("dramatiq:__acks__.*")
    )
    assert held == 1  # and its message is still there, waiting for the check to succeed
    client.rename("jobdeck:test:put-aside", keys.task(message.message_id))  # the check works again
    wait_for(
        lambda: client.llen("dramatiq:default") + len(list(client.scan_iter("dramatiq:__acks__.*"))) == 0
    )
    assert redis_events(redis_url, "revoked") == []


# --- 8. History covers what exists ---------------------------------------------------------------


def test_a_task_scheduled_past_the_retention_stays_in_every_history_view(settings, redis_url):
    runtime = start(settings.with_overrides(success_retention=1, failure_retention=60))
    message = runtime.manager.send_task("test_task", ["later"], delay=30)
    backlog = runtime.manager.send_task("test_task", ["waiting"])
    time.sleep(2.5)

    trim_history(runtime.store, runtime.broker)

    for view in ({}, {"actor": "test_task"}, {"queue": "default"}):
        listed = {task.task_id for task in runtime.monitor.get_task_history(**view).tasks}
        assert {message.message_id, backlog.message_id} <= listed, view


def test_the_indexes_of_an_undeclared_actor_are_trimmed_once_its_tasks_expire(settings, redis_url):
    runtime = start(settings.with_overrides(success_retention=1, failure_retention=1))
    client = redis.Redis.from_url(redis_url)
    runtime.store.record("enqueue", "ghost-task", {"actor": "ghost", "queue": "elsewhere"})
    assert client.zcard(keys.history_by("actor", "ghost")) == 1
    time.sleep(2.5)  # past the task's expiry

    trim_history(runtime.store, runtime.broker)

    assert client.exists(keys.task("ghost-task")) == 0
    assert client.zcard(keys.history_by("actor", "ghost")) == 0
    assert client.zcard(keys.history_by("queue", "elsewhere")) == 0
    assert client.zscore(keys.HISTORY, "ghost-task") is None
