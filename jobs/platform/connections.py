"""Redis connections a thread keeps, outside redis-py's pool, for the per-message hot path."""

from __future__ import annotations

import os
import threading
from typing import Any

import dramatiq
import redis
from redis.connection import AbstractConnection, Connection, UnixDomainSocketConnection

#: The pools whose connections KeptConnections makes exactly as they do: each makes one as
#: ``connection_class(**connection_kwargs)`` (``make_connection``). Not their subclasses, which may
#: not (Sentinel's pool makes connections that ask it where the master is).
KNOWN_POOLS = (redis.ConnectionPool, redis.BlockingConnectionPool)

#: What those pools connect with for redis://, rediss:// and unix:// URLs (SSLConnection is a Connection).
KNOWN_CONNECTIONS = (Connection, UnixDomainSocketConnection)

logger = dramatiq.get_logger(__name__)


class KeptConnections:
    """Sends commands on a Redis connection each thread keeps, in one round trip.

    redis-py's client checks a connection out of its pool, wraps the call in its retry policy and
    instruments it on every command: about 25 µs of CPU a call, as much as the socket calls
    themselves. For the two calls a worker thread makes per message that doubles their cost.

    Each connection is made as the client's pool makes its own, so it speaks TLS, logs in as the
    ACL user, names itself and picks the RESP version as they do; a lost one is replaced under the
    client's retry policy. ``for_client`` says whether a client's connections can be kept at all.
    """

    def __init__(self, client: redis.Redis) -> None:
        self.pool = client.connection_pool
        self.local = threading.local()

    @classmethod
    def for_client(cls, client: Any) -> KeptConnections | None:
        """Kept connections for ``client``; None, logged once, for a client they cannot serve."""
        refusal = cls._refusal(client)
        if refusal is None:
            return cls(client)
        logger.info("Redis connections are not kept per thread (%s); Dramatiq's own calls are used.", refusal)
        return None

    @staticmethod
    def _refusal(client: Any) -> str | None:
        """Why ``client``'s connections cannot be made as its pool makes them, or None if they can."""
        pool = getattr(client, "connection_pool", None)
        if pool is None:
            return f"a {type(client).__name__} has no connection pool"
        if type(pool) not in KNOWN_POOLS:
            return f"a {type(pool).__name__} makes its own connections"
        if not issubclass(pool.connection_class, KNOWN_CONNECTIONS):
            return f"{pool.connection_class.__name__} is not a connection class redis-py's URLs give"
        if pool.cache is not None:
            return "the client caches replies on its side"
        return None

    def execute(self, commands: list[tuple]) -> list[Any]:
        """Each command's reply, or the error Redis answered it with; raises on a lost connection."""
        connection = self._connection()
        try:
            return self._round_trip(connection, commands)
        except (redis.ConnectionError, redis.TimeoutError):
            # Most often a kept connection Redis has closed (a restart): again on a fresh one, and
            # as often again as the client's retry policy says, as its pool and client would do.
            return connection.retry.call_with_retry(
                lambda: self._round_trip(connection, commands), lambda error: connection.disconnect()
            )

    def _connection(self) -> AbstractConnection:
        connection = getattr(self.local, "connection", None)
        if connection is None or self.local.pid != os.getpid():
            # Outside the pool, so that it closes when its thread ends (a web server may start a
            # thread per request); a forked child never shares its parent's socket. Not from the
            # pool's make_connection(), which counts it against max_connections for good.
            connection = self.local.connection = self.pool.connection_class(**self.pool.connection_kwargs)
            self.local.pid = os.getpid()
        return connection

    def _round_trip(self, connection: AbstractConnection, commands: list[tuple]) -> list[Any]:
        try:
            connection.send_packed_command([pack_commands(connection, commands)])
            return [self._read(connection) for _ in commands]
        except BaseException:
            # Replies may be left unread: the connection cannot be trusted any more.
            connection.disconnect()
            raise

    @staticmethod
    def _read(connection: AbstractConnection) -> Any:
        try:
            return connection.read_response()
        except redis.ResponseError as error:
            return error


def pack_commands(connection: AbstractConnection, commands: list[tuple]) -> bytes:
    """The commands in Redis's wire format, as ``connection`` would pack them.

    redis-py's packer costs about 1 µs an argument in a worker (py-spy, issue 9: a quarter of a
    worker's time went there); text, bytes and integers, all the hot path sends, are packed here
    in one pass, and anything else by the connection's own encoder.
    """
    encoder = connection.encoder
    encoding, errors = encoder.encoding, encoder.encoding_errors
    parts = []
    for command in commands:
        parts.append(b"*%d\r\n" % len(command))
        for argument in command:
            if isinstance(argument, str):
                argument = argument.encode(encoding, errors)
            elif type(argument) is int:
                argument = b"%d" % argument
            elif not isinstance(argument, bytes):
                argument = encoder.encode(argument)
            parts.append(b"$%d\r\n%b\r\n" % (len(argument), argument))
    return b"".join(parts)
