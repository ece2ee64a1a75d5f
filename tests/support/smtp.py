"""A real SMTP server on loopback (aiosmtpd) that records what it accepts, for mail tests.

``RecordingSmtpServer(defer_once=..., reject=...)`` answers the first delivery to each address in
``defer_once`` with ``451`` (after taking the whole message, like a greylisting server) and every
RCPT for an address in ``reject`` with ``550``. Its log is the truth the tests compare against:
what a mail server took, with each message's Message-ID.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from jobs.platform.redis_server import free_port

HOST = "127.0.0.1"


@dataclass(frozen=True)
class ReceivedMessage:
    """One message the server accepted."""

    message_id: str
    sender: str
    recipients: tuple[str, ...]
    message: EmailMessage


class _RecordingHandler:
    def __init__(self, defer_once: Collection[str], reject: Collection[str]) -> None:
        self.defer_once = set(defer_once)
        self.reject = set(reject)
        self.lock = threading.Lock()
        self.accepted: list[ReceivedMessage] = []
        self.refused: list[tuple[str, int]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 aiosmtpd's name
        if address in self.reject:
            with self.lock:
                self.refused.append((address, 550))
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 aiosmtpd's name
        with self.lock:
            deferred = [address for address in envelope.rcpt_tos if address in self.defer_once]
            if deferred:
                self.defer_once.difference_update(deferred)
                self.refused.extend((address, 451) for address in deferred)
                return "451 4.7.1 Greylisted, please try again later"
            message = message_from_bytes(envelope.content, policy=policy.default)
            self.accepted.append(
                ReceivedMessage(
                    message_id=str(message["Message-ID"]),
                    sender=envelope.mail_from,
                    recipients=tuple(envelope.rcpt_tos),
                    message=message,
                )
            )
        return "250 Message accepted for delivery"


class RecordingSmtpServer:
    """An aiosmtpd server on a free loopback port; ``url`` is what SMTP_URL should be."""

    def __init__(self, *, defer_once: Collection[str] = (), reject: Collection[str] = ()) -> None:
        self.port = free_port()
        self._handler = _RecordingHandler(defer_once, reject)
        self._controller = Controller(self._handler, hostname=HOST, port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://{HOST}:{self.port}"

    def start(self) -> RecordingSmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def messages(self) -> list[ReceivedMessage]:
        with self._handler.lock:
            return list(self._handler.accepted)

    def message_id_counts(self) -> Counter[str]:
        """How many times the server accepted each Message-ID."""
        return Counter(message.message_id for message in self.messages())

    def refusals(self) -> list[tuple[str, int]]:
        """(address, reply code) of every refused RCPT or DATA, in order."""
        with self._handler.lock:
            return list(self._handler.refused)


@contextmanager
def smtp_server(
    *, defer_once: Collection[str] = (), reject: Collection[str] = ()
) -> Iterator[RecordingSmtpServer]:
    """Run a RecordingSmtpServer for the length of the block."""
    server = RecordingSmtpServer(defer_once=defer_once, reject=reject).start()
    try:
        yield server
    finally:
        server.stop()
