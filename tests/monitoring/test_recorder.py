"""Every transition of a task's life, recorded by real workers against a real Redis."""

from __future__ import annotations

import pytest
import redis

from tests.conftest import redis_events, wait_for

pytestmark = pytest.mark.slow


def states(record) -> list[str]:
    return [event["state"] for event in record.timeline]


def finished(runtime, task_id: str, timeout: float = 30):
    """Wait until the task is SUCCESS, FAILURE or REVOKED; return its record."""
    return wait_for(
        lambda: (
            (record := runtime.monitor.get_task_status(task_id))
            and record.status in ("SUCCESS", "FAILURE", "REVOKED")
            and record
        ),
        timeout=timeout,
    )


def test_a_successful_task_goes_pending_started_success(runtime, start_worker):
    start_worker()

    message = runtime.manager.send_task("test_task", ["hello"], {"n": 1})
    record = finished(runtime, message.message_id)

    assert record.status == "SUCCESS"
    assert states(record) == ["PENDING", "STARTED", "SUCCESS"]
    assert record.result == {"echo": ["hello"], "kwargs": {"n": 1}}
    assert record.args == ["hello"] and record.kwargs == {"n": 1}
    assert record.worker and record.attempt == 1 and record.retries == 0
    assert record.duration is not None and record.duration < 5
    assert record.enqueued_at <= record.started_at <= record.finished_at


def test_a_delayed_task_is_scheduled_with_its_eta(runtime):
    message = runtime.manager.send_task("test_task", ["later"], delay=600)

    record = runtime.monitor.get_task_status(message.message_id)

    assert record.status == "SCHEDULED"
    assert 590 < (record.eta - record.enqueued_at).total_seconds() <= 601


def test_retries_keep_one_task_id_and_every_attempt(runtime, start_worker, redis_url):
    start_worker()

    message = runtime.manager.send_task("flaky", ["retried"], {"failures": 2})
    record = finished(runtime, message.message_id)

    assert record.status == "SUCCESS"
    assert record.retries == 2
    assert states(record) == ["PENDING", "STARTED", "RETRY", "STARTED", "RETRY", "STARTED", "SUCCESS"]
    retry_events = [event for event in record.timeline if event["state"] == "RETRY"]
    assert retry_events[0]["error"] == "RuntimeError: attempt 1 failed on purpose"
    assert [event["attempt"] for event in record.timeline if event["state"] == "STARTED"] == [1, 2, 3]


def test_a_failure_keeps_type_message_traceback_and_its_group(runtime, start_worker):
    start_worker(JOBDECK_MAX_RETRIES="0")

    message = runtime.manager.send_task("flaky", ["failed"], {"kind": "business"})
    record = finished(runtime, message.message_id)

    assert record.status == "FAILURE"
    assert record.error_type == "RuntimeError"
    assert record.error_message == "attempt 1 failed on purpose"
    assert 'raise FAILURES[kind](f"attempt {attempt} failed on purpose")' in record.traceback
    wait_for(lambda: runtime.monitor.get_task_status(message.message_id).dead_lettered, timeout=10)
    groups = runtime.monitor.get_failure_groups()
    assert [(group.error_type, group.count) for group in groups] == [("RuntimeError", 1)]
    assert runtime.monitor.failure_group_task_ids(groups[0].fingerprint) == [message.message_id]


def test_progress_reported_by_the_job_is_on_the_task(runtime, start_worker):
    start_worker()

    message = runtime.manager.send_task("long_running_task", [], {"seconds": 4, "steps": 4})
    running = wait_for(
        lambda: (
            (record := runtime.monitor.get_task_status(message.message_id)) and record.progress and record
        ),
        timeout=20,
    )

    assert running.status == "STARTED"
    assert 0 < running.progress < 100
    assert running.progress_text.startswith("step ")
    assert finished(runtime, message.message_id).status == "SUCCESS"


def test_secrets_are_masked_in_every_read(runtime, start_worker):
    start_worker()
    secret_kwargs = {"password": "hunter2", "nested": {"api_token": "tok-123"}, "user": "ann"}

    message = runtime.manager.send_task("test_task", ["x"], secret_kwargs)
    finished(runtime, message.message_id)

    reads = [
        runtime.monitor.get_task_status(message.message_id).as_dict(),
        runtime.monitor.get_task_history(limit=10).tasks[0].as_dict(),
        runtime.monitor.get_task_history(search="ann").tasks[0].as_dict(),
    ]
    for read in reads:
        assert "hunter2" not in repr(read) and "tok-123" not in repr(read)
        assert read["kwargs"] == {"password": "***", "nested": {"api_token": "***"}, "user": "ann"}
        assert read["result"]["kwargs"]["password"] == "***"


def test_a_chain_is_followed_from_parent_to_child(runtime, start_worker):
    start_worker()

    first, second = runtime.manager.send_chain(
        [{"name": "test_task", "args": ["a"]}, {"name": "test_task", "args": ["b"]}]
    )
    child = finished(runtime, second.message_id)
    parent = runtime.monitor.get_task_status(first.message_id)

    assert parent.pipeline == ["test_task"]
    assert child.parent_id == first.message_id
    assert child.args == ["b", {"echo": ["a"], "kwargs": {}}]


def test_a_killed_worker_shows_dead_and_its_task_orphaned(runtime, start_worker, redis_url):
    worker = start_worker()
    message = runtime.manager.send_task("sleeper", ["orphan"], {"seconds": 60})
    wait_for(lambda: runtime.monitor.get_task_status(message.message_id).status == "STARTED", timeout=20)

    worker.kill()

    dead = wait_for(
        lambda: [record for record in runtime.monitor.get_worker_stats() if not record.alive], timeout=15
    )
    assert not dead[0].stopped
    record = runtime.monitor.get_task_status(message.message_id)
    assert record.status == "STARTED"
    assert record.orphaned


def test_a_message_that_kills_its_worker_is_failed_after_the_cap(runtime, start_worker, redis_url):
    message = runtime.manager.send_task("kill_own_worker", ["poison"])

    def status():
        return runtime.monitor.get_task_status(message.message_id).status

    def attempted(count: int) -> bool:
        return len(redis_events(redis_url, "poison")) >= count or status() == "FAILURE"

    for attempt in (1, 2, 3):
        # Each worker takes the message (back, after the redelivery timeout) and dies on it;
        # after the second death the next worker refuses it.
        worker = start_worker(wait=False, JOBDECK_POISON_CAP="2")
        wait_for(lambda count=attempt: attempted(count), timeout=40)
        if status() == "FAILURE":
            break
        worker.kill()  # the dramatiq parent of a killed child does not always exit by itself

    record = runtime.monitor.get_task_status(message.message_id)
    assert attempt == 3
    assert record.status == "FAILURE"
    assert record.error_type == "WorkerKilled"
    assert record.error_message == "killed its worker 2 times"
    assert len(redis_events(redis_url, "poison")) == 2
    wait_for(lambda: redis.Redis.from_url(redis_url).zcard("dramatiq:default.XQ") == 1, timeout=10)


def test_a_worker_stopped_cleanly_is_shown_stopped_not_dead(runtime, start_worker):
    worker = start_worker()
    assert [record.alive for record in runtime.monitor.get_worker_stats()] == [True]

    worker.stop()

    [record] = runtime.monitor.get_worker_stats()
    assert record.stopped and not record.alive
    assert record.pid == worker.worker_pids()[0]


def test_recording_survives_redis_forgetting_its_scripts(runtime, start_worker, redis_url):
    start_worker(JOBDECK_MAX_RETRIES="0")
    assert finished(runtime, runtime.manager.send_task("test_task", ["warm"]).message_id).status == "SUCCESS"

    redis.Redis.from_url(redis_url).script_flush()  # as after a Redis restart
    succeeded = finished(runtime, runtime.manager.send_task("test_task", ["after"]).message_id)
    failed = runtime.manager.send_task("test_task", [], {"fail": True})

    assert succeeded.status == "SUCCESS" and succeeded.result == {"echo": ["after"], "kwargs": {}}
    assert finished(runtime, failed.message_id).status == "FAILURE"
    wait_for(lambda: runtime.monitor.get_task_status(failed.message_id).dead_lettered, timeout=10)
    assert runtime.monitor.get_queue_stats()[0].in_flight == 0


def test_recording_survives_redis_dropping_every_connection(runtime, start_worker, redis_url):
    start_worker()
    assert finished(runtime, runtime.manager.send_task("test_task", ["warm"]).message_id).status == "SUCCESS"

    client = redis.Redis.from_url(redis_url)
    client.script_flush()
    dropped = client.client_kill_filter(_type="normal")  # every worker connection, as in a restart
    message = runtime.manager.send_task("test_task", ["after"])

    assert dropped > 0
    assert finished(runtime, message.message_id).status == "SUCCESS"
    assert runtime.manager.wait_for_result(message, timeout=10).result == {"echo": ["after"], "kwargs": {}}
    assert states(runtime.monitor.get_task_status(message.message_id)) == ["PENDING", "STARTED", "SUCCESS"]


def test_a_task_waiting_when_the_worker_boots_names_that_worker(runtime, start_worker):
    message = runtime.manager.send_task("test_task", ["early"])

    start_worker()
    record = finished(runtime, message.message_id)

    [worker] = runtime.monitor.get_worker_stats()
    assert record.worker == worker.worker_id
    started_on = [event.get("worker") for event in record.timeline if event["state"] == "STARTED"]
    assert started_on == [worker.worker_id]
