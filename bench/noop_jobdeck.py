"""The no-op actor on jobdeck's broker, all monitoring on: ``dramatiq jobs.worker bench.noop_jobdeck``."""

import dramatiq


@dramatiq.actor(queue_name="default", max_retries=0)
def noop() -> None:
    """Do nothing: the benchmark measures the platform, not the job."""
