"""Dramatiq's results backend, writing a worker's result with its message's acknowledgement."""

from __future__ import annotations

from typing import Any

import dramatiq
import redis
from dramatiq.results import ResultBackend, Results
from dramatiq.results.backend import wrap_result
from dramatiq.results.backends import RedisBackend

from jobs.platform import keys
from jobs.platform.broker import AckOffer, find_middleware, on_worker_thread, ride_on_ack

logger = dramatiq.get_logger(__name__)


class ResultsOnAckBackend(RedisBackend):
    """Dramatiq's Redis results backend; on a worker thread the result rides on the message's ack.

    Only when the results live in the broker's own Redis database (``on_broker_database``):
    the ack goes out on the broker's connection. Elsewhere, and off worker threads (a result
    stored after a nack, from a callback), it writes directly, as Dramatiq does.
    """

    def __init__(self, *, client: redis.Redis, broker: dramatiq.Broker, on_broker_database: bool) -> None:
        super().__init__(client=client, namespace=keys.RESULTS_NAMESPACE, use_namespace_prefix_keys=True)
        self.broker = broker
        self.on_broker_database = on_broker_database

    def store_result(self, message, result, ttl: int) -> None:
        """Store ``result``: with the message's ack when that comes next, else now."""
        if self.on_broker_database and on_worker_thread(self.broker):
            encoded = self.encoder.encode(wrap_result(result))
            ride_on_ack(
                message, _ResultWrite(self.build_message_key(message), encoded, ttl, message.message_id)
            )
            return
        super().store_result(message, result, ttl)


class _ResultWrite:
    """A result's key, value and expiry, written with the ack."""

    def __init__(self, key: str, encoded: bytes, ttl: int, message_id: str) -> None:
        self.key, self.encoded, self.ttl, self.message_id = key, encoded, ttl, message_id

    def commands(self, settle: str, offer: AckOffer | None) -> list[tuple]:
        # In this order a waiter's BRPOPLPUSH (which keeps the key) never sees a key without its TTL.
        return [("DEL", self.key), ("LPUSH", self.key, self.encoded), ("PEXPIRE", self.key, self.ttl)]

    def replied(self, settle: str, replies: list[Any]) -> None:
        if any(isinstance(reply, Exception) for reply in replies):
            logger.warning("Could not store the result of %s.", self.message_id)


def results_backend(broker: dramatiq.Broker) -> ResultBackend:
    """The results backend the broker's Results middleware writes to."""
    return find_middleware(broker, Results).backend
