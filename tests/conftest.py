"""Fixtures for real services: a Redis server the suite starts, worker processes, settings."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from jobs.platform.redis_server import free_port, start_embedded_redis
from jobs.platform.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
WORKER_READY = re.compile(
    r"\[PID (\d+)\] \[MainThread\] \[dramatiq\.WorkerProcess\(\d+\)\] \[INFO\] Worker process is ready"
)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """A Redis server of the suite's own, on a free port, keeping nothing on disk."""
    directory = Path(tempfile.mkdtemp(prefix="jobdeck-test-redis-"))
    url = start_embedded_redis(directory, persistent=False)
    yield url
    with contextlib.suppress(redis.RedisError):
        redis.Redis.from_url(url).shutdown(nosave=True)


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The suite's Redis, emptied before the test (both the broker and results databases)."""
    redis.Redis.from_url(redis_server).flushall()
    return redis_server


@pytest.fixture
def environment(redis_url: str, tmp_path: Path) -> dict[str, str]:
    """Environment variables for jobdeck processes started by a test: its own Redis, files, database."""
    return {
        "REDIS_URL": redis_url,
        "JOBDECK_VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'jobdeck.sqlite3'}",
        "JOBDECK_RETRY_DELAY": "1",
        "JOBDECK_REDELIVERY_TIMEOUT": "3",
        "JOBDECK_MAINTENANCE_CHANCE": "1000000",
        "JOBDECK_HEARTBEAT_INTERVAL": "1",
    }


@pytest.fixture
def settings(environment: dict[str, str]) -> Settings:
    return load_settings(environment, dotenv=False)


@pytest.fixture
def runtime(settings: Settings):
    """This test process's runtime (broker and actors) on the test's Redis and database."""
    from jobs.runtime import start

    runtime = start(settings)
    import tests.support.actors  # noqa: F401  the test actors bind to this broker

    return runtime


@pytest.fixture
def webhook():
    """A real webhook receiver on loopback for this test (tests.support.webhook)."""
    from tests.support.webhook import webhook_receiver

    with webhook_receiver() as receiver:
        yield receiver


def process_environment(environment: dict[str, str]) -> dict[str, str]:
    """The test process's environment plus ``environment``, with the venv's commands on PATH."""
    env = {**os.environ, **environment}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class WorkerProcess:
    """A real ``dramatiq jobs.worker`` process and its log file."""

    process: subprocess.Popen
    log_path: Path
    expected_processes: int
    pids_seen: list[int] = field(default_factory=list)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def worker_pids(self) -> list[int]:
        """The pids of every worker process that has said it is ready, in order."""
        return [int(pid) for pid in WORKER_READY.findall(self.log())]

    def wait_until_ready(self, count: int | None = None, timeout: float = 30.0) -> None:
        count = count or self.expected_processes
        deadline = time.monotonic() + timeout
        while len(self.worker_pids()) < count:
            if self.process.poll() is not None and self.process.returncode != 0:
                raise AssertionError(f"worker exited with {self.process.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"worker not ready after {timeout} s:\n{self.log()}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL the parent and every worker process, as a lost machine would."""
        if self.process.poll() is None or self.worker_pids():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout: float = 30.0) -> float:
        """SIGTERM the worker; return how many seconds it took to exit."""
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return time.monotonic() - started


@pytest.fixture
def start_worker(environment: dict[str, str], tmp_path: Path) -> Iterator:
    """Start real worker processes: ``start_worker(processes=1, threads=2, modules=(), **env)``.

    ``modules`` are extra modules the worker imports; ``env`` adds environment variables;
    ``wait=False`` returns before the worker says it is ready (for workers that die at once);
    ``python`` runs ``python -m dramatiq`` of another environment instead of this one's command.
    """
    workers: list[WorkerProcess] = []

    def start(
        processes: int = 1,
        threads: int = 2,
        shutdown_timeout: int = 5000,
        modules: tuple[str, ...] = (),
        wait: bool = True,
        python: Path | None = None,
        **env: str,
    ) -> WorkerProcess:
        log_path = tmp_path / f"worker-{len(workers)}.log"
        metrics_dir = tmp_path / f"prometheus-{len(workers)}"
        metrics_dir.mkdir()
        command = [
            *([str(python), "-m", "dramatiq"] if python else [str(BIN / "dramatiq")]),
            "jobs.worker",
            "tests.support.actors",
            *modules,
            "--processes",
            str(processes),
            "--threads",
            str(threads),
            "--worker-shutdown-timeout",
            str(shutdown_timeout),
        ]
        extra = {"dramatiq_prom_port": str(free_port()), "dramatiq_prom_db": str(metrics_dir), **env}
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=process_environment({**environment, **extra}),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so that kill() reaches every process
            )
        worker = WorkerProcess(process, log_path, processes)
        workers.append(worker)
        if wait:
            worker.wait_until_ready()
        return worker

    yield start
    for worker in workers:
        worker.stop()


def run_jobdeck(
    environment: dict[str, str], *arguments: str, timeout: float = 90
) -> subprocess.CompletedProcess:
    """Run the ``jobdeck`` command line as a user would, in its own process."""
    return subprocess.run(
        [str(BIN / "jobdeck"), *arguments],
        cwd=ROOT,
        env=process_environment(environment),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def redis_events(redis_url: str, key: str) -> list[tuple[str, float]]:
    """The (event, time) pairs a test actor logged under ``key``."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    return [(event, float(at)) for event, at in (item.split(":") for item in client.lrange(key, 0, -1))]


def wait_for(condition, timeout: float = 30.0, interval: float = 0.1):
    """Poll ``condition`` until it returns something truthy; fail the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)
