"""The kept connections work wherever redis-py works: TLS, an ACL user, a Unix socket, a restart.

A hosted Redis (a PaaS) is reached at ``rediss://user:password@host:port/0``, often with a
self-signed certificate and ``ssl_cert_reqs=none``. Every write path of a message (the enqueue
record, the start record, the ack with the result and the finish record) must work there as on a
local Redis, and go on working after that Redis restarts. docs/reliability-redis.md.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import dramatiq
import pytest
import redis
from dramatiq.middleware.prometheus import Prometheus
from redis.backoff import ConstantBackoff
from redis.cache import CacheConfig
from redis.retry import Retry

from jobs.platform import connections
from jobs.platform.connections import KeptConnections
from jobs.platform.settings import load_settings
from jobs.runtime import Runtime, start
from tests.conftest import wait_for
from tests.support.tls_redis import USER, RedisServer

#: How a test reaches its server: the server's own URL with a query a PaaS would give.
URLS: dict[str, Callable[[RedisServer], str]] = {
    "tls-unverified": lambda server: server.url(ssl_cert_reqs="none"),
    "tls-verified-by-the-ca": lambda server: server.url(ssl_ca_certs=str(server.certificates.ca)),
    "unix-socket": lambda server: server.url(),
}


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server on a TLS port only, admitting only the ACL user."""
    server = RedisServer.tls(tmp_path / "tls-redis").start()
    yield server
    server.stop()


@pytest.fixture(params=list(URLS))
def hosted_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a Redis of the test's own: over TLS (unverified, or verified by the CA) or a socket."""
    if request.param == "unix-socket":
        server = RedisServer.unix_socket(tmp_path / "unix-redis")
    else:
        server = RedisServer.tls(tmp_path / "tls-redis")
    yield URLS[request.param](server.start())
    server.stop()


def runtime_on(environment: dict[str, str], url: str) -> Runtime:
    """This process's runtime with both the broker and the results on ``url``."""
    return start(load_settings({**environment, "REDIS_URL": url, "RESULTS_REDIS_URL": url}, dotenv=False))


def finished(runtime: Runtime, task_id: str, timeout: float = 20):
    """Wait until the task is SUCCESS or FAILURE in the monitoring store; return its record."""
    return wait_for(
        lambda: (
            (record := runtime.monitor.get_task_status(task_id))
            and record.status in ("SUCCESS", "FAILURE")
            and record
        ),
        timeout=timeout,
    )


def run_test_task(runtime: Runtime, argument: str) -> list[str]:
    """Send test_task, wait for SUCCESS in the monitoring store, read its result; return its states."""
    message = runtime.manager.send_task("test_task", [argument])
    record = finished(runtime, message.message_id)
    outcome = runtime.manager.get_result(message.message_id, wait=10)

    assert (record.status, outcome.status) == ("SUCCESS", "SUCCESS")
    assert outcome.result == record.result == {"echo": [argument], "kwargs": {}}
    assert record.worker and record.attempt == 1
    return [event["state"] for event in record.timeline]


def client_fields(info: bytes | str | dict) -> dict[str, str]:
    """The fields of CLIENT INFO that say how a connection was set up."""
    if isinstance(info, dict):
        fields = {name: str(value) for name, value in info.items()}
    else:
        text = info.decode() if isinstance(info, bytes) else info
        fields = dict(pair.split("=", 1) for pair in text.split())
    return {name: fields[name] for name in ("user", "name", "db", "resp")}


def test_a_kept_connection_is_set_up_as_the_pool_sets_up_its_own(tls_server):
    url = tls_server.url(
        ssl_cert_reqs="none", client_name="jobdeck-web", protocol="3", health_check_interval="1"
    )
    client = redis.Redis.from_url(url.replace("/0?", "/2?"))
    connections = KeptConnections.for_client(client)

    (kept,) = connections.execute([("CLIENT", "INFO")])

    pooled = client_fields(client.client_info())
    assert pooled == {"user": USER, "name": "jobdeck-web", "db": "2", "resp": "3"}
    assert client_fields(kept) == pooled


def test_a_kept_tls_connection_reconnects_after_redis_restarts(tls_server):
    client = redis.Redis.from_url(tls_server.url(ssl_cert_reqs="none"))
    connections = KeptConnections.for_client(client)
    connections.execute([("SET", "before", "1")])

    tls_server.restart()

    assert connections.execute([("GET", "before"), ("SET", "after", "1")]) == [None, b"OK"]
    assert client.get("after") == b"1"


def test_a_kept_connection_waits_out_a_restart_as_the_clients_retry_policy_says(tls_server):
    retry = Retry(ConstantBackoff(0.1), 50)
    client = redis.Redis.from_url(tls_server.url(ssl_cert_reqs="none"), retry=retry)
    connections = KeptConnections.for_client(client)
    connections.execute([("PING",)])

    tls_server.stop()
    back = threading.Timer(0.5, tls_server.start)
    back.start()
    try:
        replies = connections.execute([("SET", "during", "1")])
    finally:
        back.join()

    assert replies == [b"OK"]


@pytest.fixture
def cluster_client(tmp_path: Path) -> Iterator[redis.RedisCluster]:
    """A client of a one-node cluster holding every slot."""
    server = RedisServer.cluster(tmp_path / "cluster-redis").start()
    redis.Redis.from_url(server.url()).cluster("ADDSLOTSRANGE", 0, 16383)
    client = redis.RedisCluster.from_url(server.url())
    yield client
    client.close()
    server.stop()


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What KeptConnections logged about the clients it cannot serve."""
    return [record.getMessage() for record in caplog.records if record.name == "jobs.platform.connections"]


def test_kept_connections_refuse_clients_they_cannot_serve_in_one_log_line(cluster_client, caplog):
    class OwnPool(redis.ConnectionPool):
        """A pool of a kind KeptConnections does not know (it may make connections its own way)."""

    url = "rediss://u:p@127.0.0.1:1/0"
    clients = {
        "RedisCluster": cluster_client,
        "SentinelConnectionPool": redis.Sentinel([("127.0.0.1", 1)]).master_for("jobdeck"),
        "OwnPool": redis.Redis(connection_pool=OwnPool.from_url(url)),
        "caches": redis.Redis.from_url(url, protocol=3, cache_config=CacheConfig()),
    }

    with caplog.at_level(logging.INFO, logger="jobs.platform.connections"):
        refused = [KeptConnections.for_client(client) for client in clients.values()]

    assert refused == [None] * len(clients)
    lines = refusals(caplog)
    assert len(lines) == len(clients)
    for reason, line in zip(clients, lines, strict=True):
        assert reason in line and "Dramatiq's own calls" in line


def test_kept_connections_serve_the_clients_redis_py_builds_from_a_url(tmp_path):
    urls = ["redis://127.0.0.1:1/0", "rediss://u:p@127.0.0.1:1/0", f"unix://{tmp_path / 'redis.sock'}?db=0"]
    clients = [redis.Redis.from_url(url) for url in urls]
    clients.append(redis.Redis(connection_pool=redis.BlockingConnectionPool.from_url(urls[1])))

    served = [KeptConnections.for_client(client) for client in clients]

    assert all(isinstance(each, KeptConnections) for each in served)


#: The states of a send whose enqueue record is written after the enqueue, in a round trip of its
#: own (the process's first send, before the record script is loaded; the first after Redis lost
#: it): a worker may start the task first, and a late PENDING is left out of the timeline.
SENT_BEFORE_THE_SCRIPT = ["STARTED", "SUCCESS"]
#: The states of a send whose enqueue record rides on the enqueue.
RIDING_ON_THE_ENQUEUE = ["PENDING", "STARTED", "SUCCESS"]


@pytest.mark.slow
def test_every_write_path_works_where_a_hosted_redis_is_reached(hosted_url, environment, start_worker):
    runtime = runtime_on(environment, hosted_url)
    start_worker(REDIS_URL=hosted_url, RESULTS_REDIS_URL=hosted_url)

    assert run_test_task(runtime, "first")[-2:] == SENT_BEFORE_THE_SCRIPT
    assert run_test_task(runtime, "second") == RIDING_ON_THE_ENQUEUE


@pytest.mark.slow
def test_every_write_path_survives_a_tls_redis_restart(tls_server, environment, start_worker):
    url = tls_server.url(ssl_cert_reqs="none")
    runtime = runtime_on(environment, url)
    # Dramatiq restarts a consumer that lost its connection after 3 s by default.
    start_worker(REDIS_URL=url, RESULTS_REDIS_URL=url, dramatiq_restart_delay="200")
    assert run_test_task(runtime, "before")[-2:] == SENT_BEFORE_THE_SCRIPT

    tls_server.restart()  # empty: scripts, records and every connection are gone

    assert run_test_task(runtime, "after")[-2:] == SENT_BEFORE_THE_SCRIPT
    assert run_test_task(runtime, "again") == RIDING_ON_THE_ENQUEUE


def test_a_broker_whose_connections_cannot_be_kept_makes_dramatiqs_own_calls(settings, monkeypatch, caplog):
    monkeypatch.setattr(connections, "KNOWN_POOLS", ())  # as for a Sentinel or cluster client
    with caplog.at_level(logging.INFO, logger="jobs.platform.connections"):
        runtime = start(settings)
    # A worker in this process, so that the refusal holds on its threads; no metrics server here.
    runtime.broker.middleware[:] = [
        each for each in runtime.broker.middleware if not isinstance(each, Prometheus)
    ]
    worker = dramatiq.Worker(runtime.broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        states = run_test_task(runtime, "unkept")
    finally:
        worker.stop()

    assert runtime.broker.kept_connections is None
    assert len(refusals(caplog)) == 1
    assert states[-2:] == SENT_BEFORE_THE_SCRIPT
