"""Real scheduler processes (``python -m scheduler tests.support.actors``) for the tests."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, process_environment, wait_for

#: The five production schedules, off: a test fires only the schedules it sets up.
PRODUCTION_SCHEDULES_OFF = {
    f"JOBDECK_SCHEDULE_{name.upper()}": "off"
    for name in (
        "check_pending_bills",
        "generate_hourly_report",
        "generate_weekly_report",
        "generate_monthly_report",
        "cleanup_old_notifications",
    )
}


@dataclass
class SchedulerProcess:
    """A real scheduler process and its log file."""

    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def signature(self) -> str:
        """How it signs its claims and tick records (host:pid)."""
        return f"{socket.gethostname()}:{self.process.pid}"

    def wait_until_started(self, timeout: float = 30) -> None:
        wait_for(
            lambda: "Scheduler started" in self.log() or self.process.poll() is not None, timeout=timeout
        )
        assert self.process.poll() is None, self.log()

    def stop(self, timeout: float = 10) -> tuple[int, float]:
        """SIGTERM it; return its exit status and how many seconds it took to exit."""
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            status = self.process.wait()
        return status, time.monotonic() - started


@pytest.fixture
def start_scheduler(environment: dict[str, str], tmp_path: Path) -> Iterator:
    """Start real scheduler processes: ``start_scheduler(**env)``, waiting until each has started."""
    schedulers: list[SchedulerProcess] = []

    def start(wait: bool = True, **env: str) -> SchedulerProcess:
        log_path = tmp_path / f"scheduler-{len(schedulers)}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "scheduler", "tests.support.actors"],
                cwd=ROOT,
                env=process_environment({**environment, **env}),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        scheduler = SchedulerProcess(process, log_path)
        schedulers.append(scheduler)
        if wait:
            scheduler.wait_until_started()
        return scheduler

    yield start
    for scheduler in schedulers:
        scheduler.stop()
