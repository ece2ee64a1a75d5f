"""Counters stay exact: a roll-up killed part-way and run again, or two at once, add each minute once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import redis
from redis.connection import Connection

from jobs.platform import keys
from monitoring.counters import MINUTE, ROLL_UP_LAG, roll_up, window_totals
from monitoring.store import TaskStore, now_ms
from tests.conftest import ROOT, process_environment, wait_for
from tests.monitoring.test_queries import record_finished

TASKS_PER_MINUTE = 5
#: Extremes merge by min and max; every other counter adds up.
MERGE = {"duration_max": max, "duration_min": min}
#: A roll-up in a process of its own, each Redis command slowed so that it can be killed part-way.
SLOW_ROLL_UP = """
import sys, time
import redis
from redis.connection import Connection
import monitoring.counters
from monitoring.counters import roll_up
from monitoring.store import TaskStore

monitoring.counters.ROLL_UP_BATCH = 2  # several round trips for 20 minutes, so a kill falls between
send = Connection.send_packed_command
def slowly(self, *args, **kwargs):
    time.sleep(0.05)
    return send(self, *args, **kwargs)
Connection.send_packed_command = slowly
roll_up(TaskStore(redis.Redis.from_url(sys.argv[1])))
"""


def minutes_to_roll_up(count: int) -> list[int]:
    """The last ``count`` minutes old enough to roll up, oldest first."""
    last = now_ms() // MINUTE - ROLL_UP_LAG
    return list(range(last - count + 1, last + 1))


def record_tasks_in(store: TaskStore, minutes: list[int], monkeypatch) -> None:
    """Record TASKS_PER_MINUTE finished tasks (one failed) of varied durations in each minute."""
    for minute in minutes:
        with monkeypatch.context() as clock:
            clock.setattr("monitoring.store.now_ms", lambda minute=minute: minute * MINUTE + 30_000)
            for number in range(TASKS_PER_MINUTE):
                state = "FAILURE" if number == 0 else "SUCCESS"
                record_finished(
                    store, f"t-{minute}-{number}", state=state, duration_ms=40 * number + minute % 7
                )
    # The roll-up starts just before these minutes, as if it had rolled up everything older.
    store.client.set(keys.STATS_ROLLED_UP, minutes[0] - 1)


def bucket_totals(client: redis.Redis, granularity: str, minutes: list[int]) -> dict[str, int]:
    """Every counter field over the ``granularity`` buckets that hold ``minutes``."""
    size = keys.GRANULARITIES[granularity]
    totals: dict[str, int] = {}
    for bucket in sorted({minute * MINUTE // size for minute in minutes}):
        for name, value in client.hgetall(keys.stats(granularity, bucket)).items():
            name, value = name.decode(), int(value)
            merge = MERGE.get(name.rpartition(":")[2], int.__add__)
            totals[name] = merge(totals[name], value) if name in totals else value
    return totals


def enqueued(totals: dict[str, int]) -> int:
    return sum(value for name, value in totals.items() if name.endswith(":enqueued"))


def assert_hours_and_days_equal_the_minutes(client: redis.Redis, minutes: list[int]) -> None:
    by_minute = bucket_totals(client, "minute", minutes)
    assert enqueued(by_minute) == len(minutes) * TASKS_PER_MINUTE  # every task recorded, once
    assert bucket_totals(client, "hour", minutes) == by_minute
    assert bucket_totals(client, "day", minutes) == by_minute


def test_a_roll_up_killed_part_way_then_run_again_counts_each_minute_once(runtime, redis_url, monkeypatch):
    minutes = minutes_to_roll_up(20)
    record_tasks_in(runtime.store, minutes, monkeypatch)
    client = runtime.store.client

    # An upkeep process rolls these minutes up; it is killed once it has added three of them.
    upkeep = subprocess.Popen(
        [sys.executable, "-c", SLOW_ROLL_UP, redis_url], cwd=ROOT, env=process_environment({})
    )
    wait_for(lambda: enqueued(bucket_totals(client, "hour", minutes)) >= 3 * TASKS_PER_MINUTE, interval=0.002)
    os.kill(upkeep.pid, signal.SIGKILL)
    killed_with = upkeep.wait()
    rolled_before_the_kill = enqueued(bucket_totals(client, "hour", minutes))
    roll_up(runtime.store)  # the next minute's upkeep

    assert killed_with == -signal.SIGKILL
    assert rolled_before_the_kill < len(minutes) * TASKS_PER_MINUTE  # it died part-way
    assert_hours_and_days_equal_the_minutes(client, minutes)
    assert int(client.get(keys.STATS_ROLLED_UP)) >= minutes[-1]
    assert dict(window_totals(runtime.store, 24 * 3600)) == dict(window_totals(runtime.store, 3600))


def test_overlapping_roll_ups_add_each_minute_once(runtime, redis_url, monkeypatch):
    minutes = minutes_to_roll_up(30)
    record_tasks_in(runtime.store, minutes, monkeypatch)
    together = threading.Barrier(4)

    def upkeep(_) -> int:
        store = TaskStore(redis.Redis.from_url(redis_url))  # a process of its own, in effect
        together.wait()
        return roll_up(store)

    with ThreadPoolExecutor(4) as pool:
        rolled = list(pool.map(upkeep, range(4)))

    client = runtime.store.client
    assert_hours_and_days_equal_the_minutes(client, minutes)
    assert sum(rolled) == int(client.get(keys.STATS_ROLLED_UP)) - (minutes[0] - 1)  # each minute by one


def test_a_long_window_read_while_a_minute_is_rolled_up_counts_it_once(runtime, monkeypatch):
    minutes = minutes_to_roll_up(3)
    record_tasks_in(runtime.store, minutes, monkeypatch)
    before = window_totals(runtime.store, 24 * 3600)

    class RollUpAfterTheMarkerIsRead:
        """The store's client, with another process's roll-up landing between two reads."""

        def __init__(self, client: redis.Redis) -> None:
            self.client = client

        def get(self, name: str):
            value = self.client.get(name)
            roll_up(runtime.store)
            return value

        def __getattr__(self, name: str):
            return getattr(self.client, name)

    during = window_totals(TaskStore(RollUpAfterTheMarkerIsRead(runtime.store.client)), 24 * 3600)

    assert int(runtime.store.client.get(keys.STATS_ROLLED_UP)) >= minutes[-1]  # it did roll up
    assert {actor: dict(figures) for actor, figures in during.items()} == {
        actor: dict(figures) for actor, figures in before.items()
    }


def test_a_roll_up_costs_one_round_trip_per_minute(runtime, monkeypatch):
    minutes = minutes_to_roll_up(10)
    record_tasks_in(runtime.store, minutes, monkeypatch)
    sent = []
    send = Connection.send_packed_command

    def counted(self, *args, **kwargs):
        sent.append(args)
        return send(self, *args, **kwargs)

    monkeypatch.setattr(Connection, "send_packed_command", counted)

    rolled = roll_up(runtime.store)

    assert rolled >= len(minutes)
    assert len(sent) <= rolled + 3  # the marker, one per minute, and once loading a script
