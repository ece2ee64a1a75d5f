"""delete_cache_entries removes jobdeck's cache entries with SCAN and UNLINK, and nothing else."""

from __future__ import annotations

import pytest
import redis

from jobs.platform.cache import delete_cache_entries
from jobs.platform.keys import CACHE_PREFIX

OTHER_KEYS = (
    "jobdeck:tasks:1",
    "jobdeck:cachex",
    "other:jobdeck:cache:stats:1",
    "dramatiq:default",
    "cache:stats:1",
)


@pytest.fixture
def client(redis_url: str) -> redis.Redis:
    client = redis.Redis.from_url(redis_url)

    def forbidden(*arguments, **options):
        raise AssertionError("KEYS blocks Redis; use SCAN")

    client.keys = forbidden
    return client


def fill(client: redis.Redis, stats: int = 2_500, reports: int = 10) -> None:
    pipeline = client.pipeline(transaction=False)
    for index in range(stats):
        pipeline.set(f"{CACHE_PREFIX}stats:{index}", "x")
    for index in range(reports):
        pipeline.set(f"{CACHE_PREFIX}report:{index}", "x")
    for key in OTHER_KEYS:
        pipeline.set(key, "keep")
    pipeline.execute()


def test_everything_under_the_cache_prefix_goes_and_nothing_else(client: redis.Redis) -> None:
    fill(client)

    assert delete_cache_entries(client) == 2_510

    assert list(client.scan_iter(match=f"{CACHE_PREFIX}*")) == []
    # Other processes (a worker's heartbeat) may write keys meanwhile; only ours must be untouched.
    assert [client.get(key) for key in OTHER_KEYS] == [b"keep"] * len(OTHER_KEYS)
    assert delete_cache_entries(client) == 0


def test_a_pattern_narrows_what_is_removed(client: redis.Redis) -> None:
    fill(client, stats=30, reports=10)

    assert delete_cache_entries(client, "report:*") == 10

    assert len(list(client.scan_iter(match=f"{CACHE_PREFIX}*"))) == 30
    assert all(client.exists(key) for key in OTHER_KEYS)


@pytest.mark.parametrize("pattern", ["", None])
def test_an_empty_pattern_is_refused(client: redis.Redis, pattern) -> None:
    with pytest.raises(ValueError, match="pattern must be a non-empty glob"):
        delete_cache_entries(client, pattern)
