"""The same no-op actor on a plain Dramatiq RedisBroker with only the Results middleware added."""

import os

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

broker = RedisBroker(url=os.environ["REDIS_URL"])
broker.add_middleware(
    Results(
        backend=RedisBackend(client=redis.Redis.from_url(os.environ["RESULTS_REDIS_URL"])), store_results=True
    )
)
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="default", max_retries=0)
def noop() -> None:
    """Do nothing: the benchmark measures the platform, not the job."""
