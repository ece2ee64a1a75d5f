"""Sending e-mail: over SMTP (``SMTP_URL``) or, by default, into an outbox folder of ``.eml`` files.

A transport hands one message to the mail system and says how it went in one of three ways:
it returns (accepted), raises :class:`MailDeferred` (not delivered, try again later),
:class:`MailRejected` (will never be accepted) or :class:`MailOutcomeUnknown` (the connection
was lost while the server was taking the message: it may or may not have been accepted, so the
caller must not send it again). Errors never carry the SMTP password.
"""

from __future__ import annotations

import smtplib
import ssl
import threading
import time
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from jobs.platform.errors import JobdeckError, PermanentError, TransientError
from jobs.platform.storage import ensure_directory, write_atomically

DEFAULT_SMTP_PORT = 25
DEFAULT_SMTPS_PORT = 465
#: Seconds to wait for the mail server to connect or answer one command.
DEFAULT_SMTP_TIMEOUT = 30.0


class MailError(JobdeckError):
    """Raised when a message could not be handed to the mail system."""


class MailDeferred(MailError, TransientError):
    """Raised when the message was not accepted this time (a 4xx reply, a lost connection); send it again."""


class MailRejected(MailError, PermanentError):
    """Raised when the mail server refuses the message for good (a 5xx reply, e.g. an unknown mailbox)."""


class MailOutcomeUnknown(MailError):
    """Raised when the connection was lost while the server was taking the message: it may have it."""


class MailTransport(Protocol):
    """Hands messages to a mail system; ``open`` connects ahead so that sending itself is short."""

    def open(self) -> None: ...

    def send(self, message: EmailMessage, *, sender: str, recipient: str, name: str) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class SmtpServerAddress:
    """Where and how to reach the mail server, parsed from ``smtp://user:pass@host:port`` or ``smtps://``."""

    host: str
    port: int
    implicit_tls: bool
    username: str | None
    password: str | None

    @classmethod
    def from_url(cls, url: str) -> SmtpServerAddress:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise MailError("SMTP_URL must look like smtp://user:password@host:port or smtps://...")
        implicit_tls = parts.scheme == "smtps"
        try:
            port = parts.port or (DEFAULT_SMTPS_PORT if implicit_tls else DEFAULT_SMTP_PORT)
        except ValueError:
            raise MailError("SMTP_URL has a port that is not a number") from None
        return cls(
            host=parts.hostname,
            port=port,
            implicit_tls=implicit_tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )

    def __str__(self) -> str:
        # What logs and errors may show: never the password.
        scheme = "smtps" if self.implicit_tls else "smtp"
        user = f"{self.username}@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}"


class SmtpTransport:
    """Sends over one SMTP connection, kept open between messages and reopened after an error.

    Parameters:
      address(SmtpServerAddress): the server; STARTTLS is used whenever the server offers it.
      timeout(float): seconds per connection attempt or command. Default DEFAULT_SMTP_TIMEOUT.
    """

    def __init__(self, address: SmtpServerAddress, *, timeout: float = DEFAULT_SMTP_TIMEOUT) -> None:
        self.address = address
        self.timeout = timeout
        self._connection: smtplib.SMTP | None = None

    def open(self) -> None:
        if self._connection is not None:
            return
        try:
            self._connection = self._connect()
        except smtplib.SMTPAuthenticationError as error:
            # A wrong password is the operator's to fix; the message itself is fine, so it waits.
            raise MailDeferred(f"{self.address} refused the login: {_reply(error)}") from None
        except (smtplib.SMTPException, OSError) as error:
            raise MailDeferred(f"cannot connect to {self.address}: {_describe(error)}") from None

    def send(self, message: EmailMessage, *, sender: str, recipient: str, name: str) -> None:
        self.open()
        connection = self._connection
        try:
            self._envelope(connection, sender, recipient)
        except (smtplib.SMTPServerDisconnected, OSError) as error:
            self.close()
            raise MailDeferred(f"{self.address} closed the connection: {_describe(error)}") from None
        try:
            code, reply = connection.data(message.as_bytes(policy=SMTP_POLICY))
        except smtplib.SMTPResponseException as error:
            self._reset()
            raise _refusal(error.smtp_code, error.smtp_error, "the message") from None
        except (smtplib.SMTPServerDisconnected, OSError) as error:
            # After DATA the server may already have queued it; sending again could deliver it twice.
            self.close()
            raise MailOutcomeUnknown(
                f"{self.address} closed the connection while taking the message: {_describe(error)}"
            ) from None
        if code != 250:
            self._reset()
            raise _refusal(code, reply, "the message")

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.quit()
        except (smtplib.SMTPException, OSError):
            connection.close()

    def _connect(self) -> smtplib.SMTP:
        context = ssl.create_default_context()
        if self.address.implicit_tls:
            connection = smtplib.SMTP_SSL(
                self.address.host, self.address.port, timeout=self.timeout, context=context
            )
        else:
            connection = smtplib.SMTP(self.address.host, self.address.port, timeout=self.timeout)
        try:
            connection.ehlo()
            if not self.address.implicit_tls and connection.has_extn("starttls"):
                connection.starttls(context=context)
                connection.ehlo()
            if self.address.username:
                connection.login(self.address.username, self.address.password or "")
        except BaseException:
            connection.close()
            raise
        return connection

    def _envelope(self, connection: smtplib.SMTP, sender: str, recipient: str) -> None:
        code, reply = connection.mail(sender)
        if code != 250:
            self._reset()
            raise _refusal(code, reply, f"the sender {sender}")
        code, reply = connection.rcpt(recipient)
        if code not in (250, 251):
            self._reset()
            raise _refusal(code, reply, f"the recipient {recipient}")

    def _reset(self) -> None:
        # Clears the refused transaction so the next message can use the same connection.
        try:
            self._connection.rset()
        except (smtplib.SMTPException, OSError):
            self.close()


class OutboxTransport:
    """Writes each message as ``<name>.eml`` into a folder: the embedded default when no SMTP_URL is set.

    Parameters:
      directory(Path): the outbox folder, created when missing.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def open(self) -> None:
        ensure_directory(self.directory, "the outbox folder")

    def send(self, message: EmailMessage, *, sender: str, recipient: str, name: str) -> None:
        self.open()
        write_atomically(self.directory / f"{name}.eml", message.as_bytes(policy=SMTP_POLICY))

    def close(self) -> None:
        pass


def open_transport(smtp_url: str | None, outbox_dir: Path) -> MailTransport:
    """The SMTP transport when ``smtp_url`` is set, else the outbox folder."""
    if smtp_url:
        return SmtpTransport(SmtpServerAddress.from_url(smtp_url))
    return OutboxTransport(outbox_dir)


class RateLimiter:
    """Spaces calls at least ``1 / rate`` seconds apart across the threads of one process.

    Parameters:
      rate(float): the most calls per second.
    """

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be greater than 0")
        self.interval = 1.0 / rate
        self._lock = threading.Lock()
        self._next_slot = time.monotonic()

    def wait(self) -> None:
        """Block until this caller's slot comes."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


@dataclass(frozen=True)
class RenderedMail:
    """A message's subject and its two bodies."""

    subject: str
    text: str
    html: str


class MailTemplates:
    """Renders ``<folder>/<locale>/<name>.subject.txt``, ``.txt`` and ``.html`` with Jinja2.

    Parameters:
      folder(Path): the templates' folder.
    """

    def __init__(self, folder: Path) -> None:
        self.environment = Environment(
            loader=FileSystemLoader(folder),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            # A missing value is a bug to see, not a blank in a customer's e-mail.
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )

    def render(self, locale: str, name: str, context: dict[str, Any]) -> RenderedMail:
        def render(suffix: str, values: dict[str, Any]) -> str:
            return self.environment.get_template(f"{locale}/{name}{suffix}").render(values)

        # A subject is one line whatever the template's line breaks.
        subject = " ".join(render(".subject.txt", context).split())
        bodies = {**context, "subject": subject, "html_lang": locale}
        return RenderedMail(subject=subject, text=render(".txt", bodies), html=render(".html", bodies))


def build_message(
    mail: RenderedMail, *, sender: str, recipient: str, recipient_name: str, message_id: str, date: str
) -> EmailMessage:
    """A multipart/alternative message (text and HTML) with the given Message-ID."""
    message = EmailMessage(policy=SMTP_POLICY)
    message["From"] = sender
    message["To"] = Address(display_name=recipient_name, addr_spec=recipient)
    message["Subject"] = mail.subject
    message["Date"] = date
    message["Message-ID"] = message_id
    message.set_content(mail.text)
    message.add_alternative(mail.html, subtype="html")
    return message


def _refusal(code: int, reply: bytes | str, what: str) -> MailError:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    if 400 <= code < 500:
        return MailDeferred(f"the mail server deferred {what}: {code} {text}")
    return MailRejected(f"the mail server rejected {what}: {code} {text}")


def _reply(error: smtplib.SMTPResponseException) -> str:
    text = error.smtp_error
    return f"{error.smtp_code} {text.decode('utf-8', 'replace') if isinstance(text, bytes) else text}"


def _describe(error: BaseException) -> str:
    if isinstance(error, smtplib.SMTPResponseException):
        return _reply(error)
    return str(error) or type(error).__name__
