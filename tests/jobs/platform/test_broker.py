"""What a worker thread writes per message rides on few round trips (monitoring/acks.py, jobs/broker.py)."""

from __future__ import annotations

import logging
import threading

import dramatiq
import pytest
import redis
from dramatiq.middleware import SkipMessage

from jobs.platform.broker import JobdeckBroker
from jobs.platform.connections import KeptConnections, pack_commands
from jobs.platform.settings import load_settings
from jobs.runtime import start
from tests.conftest import wait_for


def test_kept_connection_answers_in_order_and_hands_back_error_replies(redis_url):
    connections = KeptConnections(redis.Redis.from_url(redis_url))

    replies = connections.execute([("SET", "k", "1"), ("LPUSH", "k", "x"), ("INCR", "k")])

    assert replies[0] == b"OK"
    assert isinstance(replies[1], redis.ResponseError) and "WRONGTYPE" in str(replies[1])
    assert replies[2] == 2
    assert connections.execute([("GET", "k")]) == [b"2"]


def test_kept_connections_pack_commands_as_redis_py_does(redis_url):
    connection = redis.Redis.from_url(redis_url).connection_pool.make_connection()
    commands = [
        ("EVALSHA", "abc", 0, "jobdeck:", "finish", "ünïcode", 1_733_100_000_000, -7, '{"a": "é"}'),
        ("SET", b"raw bytes", 1.5, memoryview(b"a view"), b"x" * 10_000),
        ("PING",),
    ]

    assert pack_commands(connection, commands) == b"".join(connection.pack_commands(commands))


def test_kept_connection_recovers_when_redis_drops_it(redis_url):
    client = redis.Redis.from_url(redis_url)
    connections = KeptConnections(client)
    (own_id,) = connections.execute([("CLIENT", "ID")])
    assert connections.execute([("CLIENT", "ID")]) == [own_id]  # kept between calls

    client.client_kill_filter(_id=own_id)

    assert connections.execute([("PING",)]) == [b"PONG"]
    assert connections.execute([("CLIENT", "ID")]) != [own_id]


def test_kept_connection_closes_when_its_thread_ends(redis_url):
    client = redis.Redis.from_url(redis_url)
    connections = KeptConnections(client)
    ids: list[int] = []
    thread = threading.Thread(target=lambda: ids.extend(connections.execute([("CLIENT", "ID")])))
    thread.start()
    thread.join()

    def open_ids() -> set[int]:
        return {client_info["id"] for client_info in client.client_list()}

    assert wait_for(lambda: ids[0] not in open_ids(), timeout=5)


def test_enqueues_and_their_records_survive_redis_losing_its_scripts(runtime, redis_url):
    client = redis.Redis.from_url(redis_url)
    first = runtime.manager.send_task("test_task", ["first"])
    client.script_flush()  # both Dramatiq's and jobdeck's, as after a Redis restart
    second = runtime.manager.send_task("test_task", ["second"], delay=60)

    assert runtime.monitor.get_task_status(first.message_id).status == "PENDING"
    assert runtime.monitor.get_task_status(second.message_id).status == "SCHEDULED"
    assert [
        queue.ready + queue.delayed for queue in runtime.monitor.get_queue_stats() if queue.name == "default"
    ] == [2]


def test_nothing_rides_when_no_enqueue_is_under_way(runtime):
    assert runtime.broker.ride_on_enqueue(("PING",), print) is False


class Calls(dramatiq.Middleware):
    """Notes which hooks it was called for."""

    def __init__(self, name: str, calls: list[str]) -> None:
        self.name, self.calls = name, calls


class BeforeOnly(Calls):
    def before_process_message(self, broker, message):
        self.calls.append(f"{self.name}.before")


class AfterOnly(Calls):
    def after_process_message(self, broker, message, *, result=None, exception=None):
        self.calls.append(f"{self.name}.after")


class Broken(Calls):
    def before_process_message(self, broker, message):
        raise RuntimeError("a middleware bug")


class Skipping(Calls):
    def before_process_message(self, broker, message):
        raise SkipMessage("on purpose")


@pytest.fixture
def bare_broker(redis_url) -> JobdeckBroker:
    broker = JobdeckBroker(url=redis_url)
    broker.middleware.clear()
    return broker


def test_hooks_reach_the_middleware_that_implement_them_in_dramatiq_order(bare_broker, caplog):
    calls: list[str] = []
    for middleware in (
        BeforeOnly("a", calls),
        AfterOnly("b", calls),
        Broken("c", calls),
        AfterOnly("d", calls),
    ):
        bare_broker.add_middleware(middleware)

    with caplog.at_level(logging.CRITICAL):
        bare_broker.emit_before("process_message", None)
    bare_broker.emit_after("process_message", None, result=None)

    assert calls == ["a.before", "d.after", "b.after"]
    assert "a middleware bug" in caplog.text  # logged, as Dramatiq does, not raised


def test_hooks_follow_changes_to_the_middleware_list(bare_broker):
    calls: list[str] = []
    bare_broker.add_middleware(BeforeOnly("a", calls))
    bare_broker.emit_before("process_message", None)
    bare_broker.add_middleware(BeforeOnly("b", calls))
    bare_broker.emit_before("process_message", None)
    bare_broker.middleware.clear()
    bare_broker.emit_before("process_message", None)

    assert calls == ["a.before", "a.before", "b.before"]


def test_a_skip_from_a_middleware_still_reaches_the_worker(bare_broker):
    bare_broker.add_middleware(Skipping("s", []))

    with pytest.raises(SkipMessage):
        bare_broker.emit_before("process_message", None)


def test_a_result_is_written_with_its_acknowledgement(runtime, start_worker, redis_url):
    client = redis.Redis.from_url(redis_url)
    start_worker()
    client.config_resetstat()

    message = runtime.manager.send_task("test_task", ["on the ack"])
    result = runtime.manager.get_result(message.message_id, wait=15)

    assert (result.status, result.result) == ("SUCCESS", {"echo": ["on the ack"], "kwargs": {}})
    # Dramatiq's own backend writes each result in a MULTI/EXEC transaction of its own.
    assert "cmdstat_exec" not in client.info("commandstats")


def test_a_result_on_another_database_is_written_there_directly(environment, start_worker, redis_url):
    results_url = redis_url.rsplit("/", 1)[0] + "/1"
    runtime = start(load_settings({**environment, "RESULTS_REDIS_URL": results_url}, dotenv=False))
    start_worker(RESULTS_REDIS_URL=results_url)

    message = runtime.manager.send_task("test_task", ["elsewhere"])
    result = runtime.manager.get_result(message.message_id, wait=15)

    assert (result.status, result.result) == ("SUCCESS", {"echo": ["elsewhere"], "kwargs": {}})
    assert redis.Redis.from_url(results_url).dbsize() == 1
