"""A RedisBroker whose acknowledgements carry the task's finish record in the same round trip.

A worker thread ends each message with two writes: the recorder's SUCCESS/RETRY/FAILURE record
and the broker's ack (or nack, which dead-letters). Sent as one pipeline they cost one round
trip instead of two. Nothing is buffered in memory: the record travels with the ack, so a
process killed before the ack loses neither more nor less than Dramatiq itself would (the
message is redelivered and the recorder counts the lost attempt).
"""

from __future__ import annotations

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import current_millis
from dramatiq.errors import ConnectionClosed

#: The attribute of a worker's MessageProxy holding the finish record its ack must carry.
FINISH_ATTRIBUTE = "jobdeck_finish"
#: Set on the MessageProxy once its finish was recorded with a nack (so after_nack need not).
SETTLED_BY_NACK = "jobdeck_settled_by_nack"


class RecordingRedisBroker(RedisBroker):
    """RedisBroker with acknowledgements that also record the task's finish (see module doc)."""

    @property
    def consumer_class(self):
        return _RecordingConsumer

    def dispatch_on(self, pipeline: redis.client.Pipeline, command: str, queue_name: str, *args) -> None:
        """Queue one command of Dramatiq's dispatch script on ``pipeline``, as ``do_<command>`` runs it.

        A plain EVALSHA: a Script object on a pipeline would cost a SCRIPT EXISTS round trip.
        The broker has run the script before any ack, so it is loaded; if Redis lost it, the
        command fails with NOSCRIPT and the caller falls back to Dramatiq's own call.
        """
        pipeline.execute_command(
            "EVALSHA",
            self.scripts["dispatch"].sha,
            1,
            self.namespace,
            command,
            current_millis(),
            queue_name,
            self.broker_id,
            self.heartbeat_timeout,
            self.dead_message_ttl,
            self._should_do_maintenance(command),
            self._max_unpack_size(),
            *args,
        )


class _RecordingConsumer(_RedisConsumer):
    def ack(self, message) -> None:
        if not self._settle(message, "ack"):
            super().ack(message)

    def nack(self, message) -> None:
        if not self._settle(message, "nack"):
            super().nack(message)

    def _settle(self, message, command: str) -> bool:
        """Ack or nack with the finish record in one pipeline; False if there is no record."""
        finish = message.__dict__.get(FINISH_ATTRIBUTE)
        if finish is None:
            return False
        store, data = finish
        if command == "nack":
            data = {**data, "dead_lettered_at": current_millis()}
        pipeline = self.broker.client.pipeline(transaction=False)
        self.broker.dispatch_on(pipeline, command, self.queue_name, message.options["redis_message_id"])
        try:
            store.record("finish", message.message_id, data, pipeline=pipeline)
        except Exception:
            # Monitoring must never keep a message from being acknowledged.
            dramatiq.get_logger(__name__).warning("Could not record %s.", message.message_id, exc_info=True)
            del message.__dict__[FINISH_ATTRIBUTE]
            return False
        try:
            settled, recorded = pipeline.execute(raise_on_error=False)
        except redis.ConnectionError as error:
            raise ConnectionClosed(error) from None
        if isinstance(recorded, redis.exceptions.NoScriptError):
            # Redis lost the scripts (a restart): record directly, which loads ours again.
            store.script_lost()
            recorded = store.record("finish", message.message_id, data)
        del message.__dict__[FINISH_ATTRIBUTE]
        message.__dict__[SETTLED_BY_NACK] = command == "nack"
        if isinstance(settled, redis.exceptions.NoScriptError):
            return False  # Dramatiq's own ack or nack follows, and reloads its script
        if isinstance(settled, Exception):
            if isinstance(settled, redis.ConnectionError):
                raise ConnectionClosed(settled) from None
            raise settled
        self.queued_message_ids.discard(message.message_id)
        if isinstance(recorded, Exception):
            dramatiq.get_logger(__name__).warning(
                "Could not record the finish of %s: %s", message.message_id, recorded
            )
        return True
