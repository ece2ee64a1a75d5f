"""The Dramatiq internals jobdeck relies on, so that an upgrade that changes them fails here, loudly.

``RecordingRedisBroker.dispatch_command`` (jobs/platform/broker.py) builds calls of Dramatiq's
dispatch script itself, to send them in one round trip with other writes, and
``_RecordingConsumer`` overrides the private ``_RedisConsumer``'s ack and nack. None of it is
public API: setup.cfg pins dramatiq to the minor series it was checked against. On an upgrade,
re-check jobs/platform/broker.py against the new dramatiq/brokers/redis.py and
dramatiq/brokers/redis/dispatch.lua, update these tests and the pin, and re-run
``bench/monitoring_bench.py throughput`` (docs/performance.md).
"""

from __future__ import annotations

import configparser
import importlib.resources
import inspect
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import dramatiq.brokers.redis as dramatiq_redis
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from packaging.requirements import Requirement
from packaging.version import Version

import jobs.platform.broker as jobdeck_broker
from jobs.platform.broker import RecordingRedisBroker

ROOT = Path(__file__).resolve().parents[3]

#: The Dramatiq minor series jobs/platform/broker.py was checked against (setup.cfg pins it).
CHECKED_SERIES = "2.2"

#: dispatch.lua's KEYS and ARGV, in order, as dispatch_command sends them; the command's own
#: arguments follow ARGV's last.
EXPECTED_KEYS = ["namespace"]
EXPECTED_ARGV = [
    "command",
    "timestamp",
    "queue_name",
    "worker_id",
    "heartbeat_timeout",
    "dead_message_ttl",
    "do_maintenance",
    "max_unpack_size",
]

UPGRADE = (
    f"jobdeck was checked against Dramatiq {CHECKED_SERIES}.x only: re-check jobs/platform/broker.py "
    "against the new Dramatiq, then update tests/jobs/platform/test_dramatiq_internals.py and the "
    "pin in setup.cfg, and re-run bench/monitoring_bench.py throughput (docs/performance.md)"
)
DISPATCH = "re-check RecordingRedisBroker.dispatch_command in jobs/platform/broker.py"
CONSUMER = "re-check _RecordingConsumer (ack, nack, _settle) in jobs/platform/broker.py"
ENQUEUE = "re-check RecordingRedisBroker.enqueue and do_enqueue in jobs/platform/broker.py"
FETCH = "re-check RecordingRedisBroker.do_fetch in jobs/platform/broker.py"
CARRIED_ACK = (
    "re-check the carried ack: AckOffer in jobs/platform/broker.py and settled() in monitoring/record.lua"
)


def dispatch_script() -> str:
    """The dispatch script as installed with Dramatiq."""
    path = importlib.resources.files("dramatiq.brokers").joinpath("redis", "dispatch.lua")
    return path.read_text(encoding="utf-8")


def parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


@pytest.fixture
def broker(redis_url) -> Iterator[RecordingRedisBroker]:
    """A RecordingRedisBroker whose settings are all distinct, so that each shows where it lands."""
    broker = RecordingRedisBroker(
        url=redis_url,
        namespace="internals-test",
        heartbeat_timeout=12_345,
        dead_message_ttl=67_890,
        maintenance_chance=0,
    )
    broker.middleware.clear()
    broker.declare_queue("internals")
    yield broker
    broker.client.close()


# --- the version ---------------------------------------------------------------------------------


def test_dramatiq_is_the_series_jobdeck_was_checked_against():
    installed = Version(dramatiq.__version__)

    assert f"{installed.major}.{installed.minor}" == CHECKED_SERIES, (
        f"Dramatiq {installed} is installed. {UPGRADE}."
    )


def test_setup_cfg_pins_dramatiq_to_that_series():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg", encoding="utf-8")
    requirements = [
        Requirement(line)
        for line in config["options"]["install_requires"].splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    (pin,) = [requirement for requirement in requirements if requirement.name == "dramatiq"]
    major, minor = map(int, CHECKED_SERIES.split("."))

    assert pin.specifier.contains(dramatiq.__version__), f"setup.cfg's {pin} excludes the installed Dramatiq"
    assert not pin.specifier.contains(f"{major}.{minor + 1}.0", prereleases=True), (
        f"setup.cfg's {pin} allows Dramatiq {major}.{minor + 1}. {UPGRADE}."
    )
    assert not pin.specifier.contains(f"{major}.{minor - 1}.99", prereleases=True), (
        f"setup.cfg's {pin} allows a Dramatiq older than {CHECKED_SERIES}. {UPGRADE}."
    )


# --- (a) the dispatch script's arguments ---------------------------------------------------------


def test_dispatch_script_header_lists_the_keys_and_arguments_dispatch_command_sends():
    header = re.search(
        r"^-- dispatch\(\n--\s+args=\[(.*?)\],\n--\s+keys=\[(.*?)\]\n-- \)", dispatch_script(), re.M
    )
    assert header, (
        f"dramatiq/brokers/redis/dispatch.lua has lost its dispatch(args=..., keys=...) header; {DISPATCH}"
    )
    args = [name.strip() for name in header.group(1).split(",")]
    keys = [name.strip() for name in header.group(2).split(",")]

    assert keys == EXPECTED_KEYS, f"dispatch.lua's KEYS are now {keys}, not {EXPECTED_KEYS}; {DISPATCH}"
    assert args == [*EXPECTED_ARGV, "..."], (
        f"dispatch.lua's ARGV is now {args}, not {[*EXPECTED_ARGV, '...']}; {DISPATCH}"
    )


def test_dispatch_script_reads_its_keys_and_arguments_where_the_header_says():
    script = dispatch_script()
    keys = dict(re.findall(r"^local (\w+) = KEYS\[(\d+)\]$", script, re.M))
    argv = dict(re.findall(r"^local (\w+) = ARGV\[(\d+)\]$", script, re.M))
    read_from = {int(index): name for name, index in argv.items()}

    assert keys == {"namespace": "1"}, f"dispatch.lua now reads KEYS as {keys}; {DISPATCH}"
    assert [read_from.get(index) for index in range(1, len(EXPECTED_ARGV) + 1)] == EXPECTED_ARGV, (
        f"dispatch.lua now reads ARGV as {sorted(read_from.items())}; {DISPATCH}"
    )
    first = len(EXPECTED_ARGV) + 1
    assert re.search(rf"for i={first},#ARGV do\n\s+ARGS\[i - {first - 1}\] = ARGV\[i\]", script), (
        f"dispatch.lua no longer takes the command's own arguments from ARGV[{first}] on; {DISPATCH}"
    )


def test_dramatiqs_ack_is_what_record_lua_does_when_a_finish_carries_it():
    # monitoring/record.lua acks a message in the finish record (AckOffer in jobs/platform/broker.py)
    # exactly as dispatch.lua's ack: the worker's heartbeat, then SREM from its acks and HDEL from
    # the queue's messages; and Dramatiq never runs maintenance on an ack, so none is skipped.
    script = dispatch_script()
    ack = re.search(r'elseif command == "ack" then\n(.*?)\n-- ', script, re.S)
    body = [line.strip() for line in ack.group(1).splitlines() if line.strip()] if ack else None

    assert body == [
        "local message_id = ARGS[1]",
        'if redis.call("srem", queue_acks, message_id) > 0 then',
        'redis.call("hdel", queue_messages, message_id)',
        "end",
    ], f"dispatch.lua's ack changed; {CARRIED_ACK}"
    assert 'redis.call("zadd", heartbeats, timestamp, worker_id)' in script, (
        f"dispatch.lua no longer beats on every call; {CARRIED_ACK}"
    )
    assert "ack" in dramatiq_redis.MAINTENANCE_COMMAND_BLACKLIST, (
        f"Dramatiq may now run maintenance on an ack; {CARRIED_ACK}"
    )


def test_the_broker_runs_the_installed_dispatch_script(broker):
    script = broker.scripts["dispatch"]

    assert isinstance(script, redis.commands.core.Script), (
        f"RedisBroker.scripts['dispatch'] changed; {DISPATCH}"
    )
    assert script.script.decode() == dispatch_script(), f"the broker no longer runs dispatch.lua; {DISPATCH}"
    assert broker.client.script_load(script.script) == script.sha, (
        f"scripts['dispatch'].sha changed; {DISPATCH}"
    )


def test_dispatch_command_sends_what_dramatiqs_own_dispatch_sends(broker, monkeypatch):
    # Dramatiq's own call, with its script replaced by one that notes what it is given.
    sent = {}

    class Noting:
        sha = broker.scripts["dispatch"].sha

        def __call__(self, *, keys, args):
            sent.update(keys=keys, args=args)

    monkeypatch.setitem(broker.scripts, "dispatch", Noting())
    monkeypatch.setattr(dramatiq_redis, "current_millis", lambda: 1_700_000_000_000)
    monkeypatch.setattr(jobdeck_broker, "current_millis", lambda: 1_700_000_000_000)
    broker._dispatch("enqueue")("internals", "redis-id", b"data")

    command = broker.dispatch_command("enqueue", "internals", "redis-id", b"data")

    assert command[:3] == ("EVALSHA", Noting.sha, len(EXPECTED_KEYS)), (
        f"not an EVALSHA of dispatch; {DISPATCH}"
    )
    keys, args = list(command[3 : 3 + len(EXPECTED_KEYS)]), list(command[3 + len(EXPECTED_KEYS) :])
    assert (keys, args) == (sent["keys"], sent["args"]), (
        f"RedisBroker._dispatch now sends keys={sent['keys']} args={sent['args']}, "
        f"dispatch_command keys={keys} args={args}; {DISPATCH}"
    )
    by_name = dict(zip(EXPECTED_ARGV, args, strict=False))
    assert keys == [broker.namespace]
    assert by_name == {
        "command": "enqueue",
        "timestamp": 1_700_000_000_000,
        "queue_name": "internals",
        "worker_id": broker.broker_id,
        "heartbeat_timeout": 12_345,
        "dead_message_ttl": 67_890,
        "do_maintenance": 0,
        "max_unpack_size": broker._max_unpack_size(),
    }, f"dispatch_command's ARGV no longer lines up with dispatch.lua's; {DISPATCH}"
    assert args[len(EXPECTED_ARGV) :] == ["redis-id", b"data"], f"the command's arguments moved; {DISPATCH}"


def test_dramatiqs_dispatch_source_builds_the_arguments_in_that_order():
    source = inspect.getsource(RedisBroker._dispatch)
    found = re.search(r"args = \[(.*?)\]", source, re.S)
    assert found, f"RedisBroker._dispatch no longer builds an args list; {DISPATCH}"
    built = [item.strip() for item in found.group(1).split(",") if item.strip()]

    assert built == [
        "command",
        "timestamp",
        "queue_name",
        "self.broker_id",
        "self.heartbeat_timeout",
        "self.dead_message_ttl",
        "self._should_do_maintenance(command)",
        "self._max_unpack_size()",
        "*args",
    ], f"RedisBroker._dispatch now builds ARGV as {built}; {DISPATCH}"
    assert "keys = [self.namespace]" in source, f"RedisBroker._dispatch's KEYS changed; {DISPATCH}"


# --- (b) the private names and their signatures --------------------------------------------------


def test_the_private_broker_methods_jobdeck_calls_keep_their_signatures(broker):
    assert parameters(RedisBroker._dispatch) == ["self", "command"], (
        f"RedisBroker._dispatch changed; {DISPATCH}"
    )
    assert parameters(broker._dispatch("enqueue")) == ["queue_name", "args"], (
        f"RedisBroker._dispatch(command)'s function changed; {ENQUEUE} (its NOSCRIPT fallback)"
    )
    assert parameters(RedisBroker._should_do_maintenance) == ["self", "command"], (
        f"RedisBroker._should_do_maintenance changed; {DISPATCH}"
    )
    assert broker._should_do_maintenance("enqueue") == 0
    broker.maintenance_chance = dramatiq_redis.MAINTENANCE_SCALE
    assert (broker._should_do_maintenance("enqueue"), broker._should_do_maintenance("ack")) == (1, 0), (
        f"RedisBroker._should_do_maintenance no longer answers 0 or 1 (never for acks); {DISPATCH}"
    )
    assert parameters(RedisBroker._max_unpack_size) == ["self"], (
        f"RedisBroker._max_unpack_size changed; {DISPATCH}"
    )
    size = broker._max_unpack_size()
    assert isinstance(size, int) and size > 0, f"RedisBroker._max_unpack_size() gave {size!r}; {DISPATCH}"
    for attribute in ("namespace", "broker_id", "heartbeat_timeout", "dead_message_ttl", "client"):
        assert hasattr(broker, attribute), f"RedisBroker has no {attribute} any more; {DISPATCH}"


def test_enqueue_hands_the_message_to_do_enqueue():
    source = inspect.getsource(RedisBroker.enqueue)

    assert re.search(
        r"self\.do_enqueue\(\s*queue_name,\s*message\.options\[\"redis_message_id\"\],\s*message\.encode\(\)\s*\)",
        source,
    ), f"RedisBroker.enqueue no longer calls do_enqueue(queue_name, redis_message_id, encoded); {ENQUEUE}"
    assert parameters(RedisBroker.enqueue) == ["self", "message", "delay"], (
        f"RedisBroker.enqueue changed; {ENQUEUE}"
    )
    assert "do_enqueue" not in vars(RedisBroker), (
        f"RedisBroker now defines do_enqueue itself (it came from __getattr__); {ENQUEUE}"
    )


def test_the_redis_consumer_jobdeck_extends_keeps_its_shape(broker):
    assert issubclass(_RedisConsumer, dramatiq.Consumer), (
        f"_RedisConsumer is no longer a Consumer; {CONSUMER}"
    )
    assert parameters(_RedisConsumer.__init__) == ["self", "broker", "queue_name", "prefetch", "timeout"], (
        f"_RedisConsumer.__init__ changed; {CONSUMER}"
    )
    for method in (_RedisConsumer.ack, _RedisConsumer.nack):
        assert parameters(method) == ["self", "message"], (
            f"_RedisConsumer.{method.__name__} changed; {CONSUMER}"
        )
        source = inspect.getsource(method)
        assert 'message.options["redis_message_id"]' in source, (
            f"_RedisConsumer.{method.__name__} no longer settles by redis_message_id; {CONSUMER}"
        )
        assert "self.queued_message_ids.discard(message.message_id)" in source, (
            f"_RedisConsumer.{method.__name__} no longer discards from queued_message_ids; {CONSUMER}"
        )
    assert "self.broker.do_fetch(\n                            self.queue_name," in inspect.getsource(
        _RedisConsumer.__next__
    ), f"_RedisConsumer no longer fetches with broker.do_fetch(queue_name, count); {FETCH}"
    assert "return self.consumer_class(" in inspect.getsource(RedisBroker.consume), (
        f"RedisBroker.consume no longer builds consumer_class; {CONSUMER}"
    )

    consumer = broker.consume("internals", prefetch=1, timeout=100)

    assert type(consumer) is jobdeck_broker._RecordingConsumer, (
        f"the consumer is {type(consumer)}; {CONSUMER}"
    )
    assert isinstance(consumer.queued_message_ids, set), f"queued_message_ids is no longer a set; {CONSUMER}"
    assert (consumer.broker, consumer.queue_name) == (broker, "internals"), (
        f"consumer attributes moved; {CONSUMER}"
    )


# --- (c) a real round trip -----------------------------------------------------------------------


def fetch(consumer: _RedisConsumer, timeout: float = 5.0) -> dramatiq.broker.MessageProxy:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = next(consumer)
        if message is not None:
            return message
    raise AssertionError(f"Dramatiq's consumer fetched nothing in {timeout} s; {DISPATCH}")


@pytest.mark.parametrize("settle", ["ack", "nack"])
def test_a_message_dispatch_command_enqueues_is_fetched_and_settled_by_dramatiqs_consumer(broker, settle):
    redis_message_id = str(uuid.uuid4())
    sent = dramatiq.Message(
        queue_name="internals",
        actor_name="noop",
        args=("hello",),
        kwargs={},
        options={"redis_message_id": redis_message_id},
    )
    broker.client.script_load(broker.scripts["dispatch"].script)  # EVALSHA only, as jobdeck sends it

    (reply,) = broker.kept_connections.execute(
        [broker.dispatch_command("enqueue", "internals", redis_message_id, sent.encode())]
    )
    assert not isinstance(reply, Exception), f"Redis answered jobdeck's enqueue with {reply!r}; {DISPATCH}"
    assert broker.do_qsize("internals") == 1, (
        f"jobdeck's enqueue did not land in Dramatiq's queue; {DISPATCH}"
    )

    consumer = _RedisConsumer(broker, "internals", 1, 100)  # Dramatiq's own, not jobdeck's
    message = fetch(consumer)

    assert (message.message_id, message.args, message.options["redis_message_id"]) == (
        sent.message_id,
        ("hello",),
        redis_message_id,
    ), f"Dramatiq's consumer fetched something else; {DISPATCH}"
    assert consumer.queued_message_ids == {sent.message_id}, f"queued_message_ids changed meaning; {CONSUMER}"

    # jobdeck's ack or nack, as _RecordingConsumer._settle sends it
    (reply,) = broker.kept_connections.execute(
        [broker.dispatch_command(settle, "internals", redis_message_id)]
    )
    assert not isinstance(reply, Exception), f"Redis answered jobdeck's {settle} with {reply!r}; {DISPATCH}"

    client = broker.client
    unacked = client.smembers(f"{broker.namespace}:__acks__.{broker.broker_id}.internals")
    dead = client.zrange(f"{broker.namespace}:internals.XQ", 0, -1)
    assert unacked == set(), f"jobdeck's {settle} left the message unacknowledged; {DISPATCH}"
    assert client.hlen(f"{broker.namespace}:internals.msgs") == 0, (
        f"jobdeck's {settle} kept the message; {DISPATCH}"
    )
    assert dead == ([redis_message_id.encode()] if settle == "nack" else []), (
        f"jobdeck's {settle} did not {'dead-letter' if settle == 'nack' else 'drop'} the message; {DISPATCH}"
    )
    assert broker.do_qsize("internals") == 0
