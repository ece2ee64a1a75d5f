"""The scheduler process starts, logs and stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys

from tests.conftest import ROOT, process_environment, wait_for


def test_scheduler_starts_logs_and_stops_on_sigterm(environment, tmp_path):
    log_path = tmp_path / "scheduler.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "scheduler"],
            cwd=ROOT,
            env=process_environment(environment),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: "Scheduler started (time zone Asia/Shanghai)" in log_path.read_text(), timeout=20)

        process.send_signal(signal.SIGTERM)

        assert process.wait(timeout=10) == 0
        assert "Scheduler stopped." in log_path.read_text()
    finally:
        process.kill()


def test_scheduler_with_a_bad_setting_exits_with_one_line(environment):
    environment = {**environment, "JOBDECK_TIMEZONE": "Nowhere/Land"}

    result = subprocess.run(
        [sys.executable, "-m", "scheduler"],
        cwd=ROOT,
        env=process_environment(environment),
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 2
    assert "JOBDECK_TIMEZONE is not a known time zone" in result.stderr
    assert "Traceback" not in result.stderr
