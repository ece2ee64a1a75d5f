"""Retries a fixed delay apart, never retries what cannot succeed, and rides out lost connections."""

from __future__ import annotations

import smtplib
import time
import traceback

import dramatiq
from dramatiq.middleware import Middleware, TimeLimitExceeded
from dramatiq_abort import Abort
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

from jobs.platform.defaults import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_RETRY_DELAY_S,
    DEFAULT_TRANSIENT_RETRY_WINDOW_S,
)
from jobs.platform.errors import PermanentError, TransientError

DEFAULT_RETRY_DELAY_MS = DEFAULT_RETRY_DELAY_S * 1000
DEFAULT_TRANSIENT_WINDOW_MS = DEFAULT_TRANSIENT_RETRY_WINDOW_S * 1000
#: The first wait after a lost connection; it doubles up to DEFAULT_TRANSIENT_MAX_DELAY_MS.
DEFAULT_TRANSIENT_FIRST_DELAY_MS = 1_000
DEFAULT_TRANSIENT_MAX_DELAY_MS = 60_000

#: Errors a retry cannot cure: a time-out would time out again, an abort was asked for.
NEVER_RETRIED: tuple[type[BaseException], ...] = (PermanentError, TimeLimitExceeded, Abort)
#: Errors that mean a server went away, not that the job is wrong.
TRANSIENT: tuple[type[BaseException], ...] = (
    TransientError,
    DisconnectionError,
    OperationalError,
    InterfaceError,
    smtplib.SMTPServerDisconnected,
    smtplib.SMTPConnectError,
    ConnectionError,
    TimeoutError,
)


def is_transient(exception: BaseException) -> bool:
    """Whether the exception (or its cause) is a lost database or mail connection."""
    while exception is not None:
        if isinstance(exception, TRANSIENT):
            return True
        exception = exception.__cause__
    return False


class JobRetries(Middleware):
    """Retries failed messages a fixed delay apart, the way the original's "3 retries, 30 s apart" reads.

    Dramatiq's own Retries doubles its backoff and adds jitter; this one does not. Lost database
    or SMTP connections are retried on their own, doubling, schedule for up to ``transient_window``
    without spending the business retries; errors in NEVER_RETRIED, and an actor's ``throws``,
    fail at once.

    Parameters:
      max_retries(int): business retries per message; per actor with ``max_retries``. Default 3.
      retry_delay(int): milliseconds between business retries; per actor with ``retry_delay``.
        Default 30,000.
      transient_window(int): milliseconds a message keeps retrying lost connections, counted from
        the first such failure. Default 300,000.
    """

    def __init__(
        self,
        *,
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry_delay: int = DEFAULT_RETRY_DELAY_MS,
        transient_window: int = DEFAULT_TRANSIENT_WINDOW_MS,
    ) -> None:
        self.max_retries = max_retries
        self.retry_delay = retry_delay
        self.transient_window = transient_window
        self.logger = dramatiq.get_logger(__name__, type(self))

    @property
    def actor_options(self) -> set[str]:
        return {"max_retries", "retry_delay", "throws"}

    def after_process_message(self, broker, message, *, result=None, exception=None):
        """Decide whether a failed message runs again, and when."""
        if exception is None:
            message.options.pop("transient_since", None)
            return
        actor = broker.get_actor(message.actor_name)
        throws = actor.options.get("throws") or ()
        message.options["traceback"] = traceback.format_exc(limit=30)
        if isinstance(exception, NEVER_RETRIED) or (throws and isinstance(exception, throws)):
            self.logger.info(
                "Failing message %r without retry: %s.", message.message_id, type(exception).__name__
            )
            message.fail()
            return
        now = int(time.time() * 1000)
        if is_transient(exception) and self._within_transient_window(message, now):
            attempt = message.options["transient_attempts"] = message.options.get("transient_attempts", 0) + 1
            delay = min(DEFAULT_TRANSIENT_FIRST_DELAY_MS * 2 ** (attempt - 1), DEFAULT_TRANSIENT_MAX_DELAY_MS)
            self.logger.warning("Connection lost in %r; trying again in %d ms.", message.message_id, delay)
            broker.enqueue(message, delay=delay)
            return
        message.options.pop("transient_since", None)
        retries = message.options.setdefault("retries", 0)
        max_retries = message.options.get("max_retries", actor.options.get("max_retries", self.max_retries))
        if retries >= max_retries:
            self.logger.warning("Retries exceeded for message %r.", message.message_id)
            message.fail()
            return
        message.options["retries"] = retries + 1
        message.options["requeue_timestamp"] = now
        delay = actor.options.get("retry_delay", self.retry_delay)
        if isinstance(exception, dramatiq.Retry) and exception.delay is not None:
            delay = exception.delay
        self.logger.info("Retrying message %r in %d ms.", message.message_id, delay)
        broker.enqueue(message, delay=delay)

    def _within_transient_window(self, message, now: int) -> bool:
        first_failure = message.options.setdefault("transient_since", now)
        return now - first_failure < self.transient_window
