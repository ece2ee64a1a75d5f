"""The original's two diagnostic jobs: a connectivity check and a long-running demo."""

from __future__ import annotations

import time
from typing import Any

import dramatiq

from jobs.platform import queues
from jobs.platform.progress import report_progress


class DiagnosticFailure(Exception):
    """Raised by test_task when asked to fail, so that the failure path can be exercised."""


@dramatiq.actor(queue_name=queues.DEFAULT)
def test_task(*args: Any, fail: bool = False, **kwargs: Any) -> dict[str, Any]:
    """Echo the arguments back; with fail=True, raise DiagnosticFailure instead."""
    if fail:
        raise DiagnosticFailure(f"test_task was asked to fail with arguments {list(args)!r}")
    return {"echo": list(args), "kwargs": kwargs}


@dramatiq.actor(queue_name=queues.DEFAULT)
def long_running_task(seconds: float = 10.0, steps: int = 10) -> dict[str, Any]:
    """Sleep for ``seconds`` in ``steps`` equal steps, reporting progress after each."""
    if steps < 1 or seconds < 0:
        raise ValueError("long_running_task needs steps >= 1 and seconds >= 0")
    started = time.monotonic()
    for step in range(1, steps + 1):
        time.sleep(seconds / steps)
        report_progress(100 * step / steps, f"step {step} of {steps}")
    return {"steps": steps, "seconds": round(time.monotonic() - started, 3)}
