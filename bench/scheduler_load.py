"""The load of the scheduler benchmark: ``dramatiq jobs.worker bench.scheduler_load``."""

import time

import dramatiq


@dramatiq.actor(queue_name="reports", max_retries=0)
def burn(milliseconds: int = 40) -> None:
    """Keep one core busy for ``milliseconds`` (CPU, not sleep): the workers load the machine."""
    deadline = time.process_time() + milliseconds / 1000
    while time.process_time() < deadline:
        pass
