"""Sending one notification e-mail: ``queued → sending → sent`` with compare-and-set UPDATEs.

A redelivered job that finds its row ``sending`` cannot know whether the mail server took the
message, so it marks the row ``unknown`` for a person to check instead of sending it again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from email.utils import format_datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import TemplateError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from jobs.billing import TEMPLATES_DIR
from jobs.billing.models import LOCALES, Customer, Notification, utc_now
from jobs.billing.money import MoneyError, format_money, to_minor
from jobs.platform.context import JobContext
from jobs.platform.errors import JobdeckError, PermanentError, TransientError
from jobs.platform.mail import (
    MailDeferred,
    MailOutcomeUnknown,
    MailRejected,
    MailTemplates,
    MailTransport,
    RateLimiter,
    build_message,
    open_transport,
)
from jobs.platform.retries import is_transient

logger = logging.getLogger(__name__)

_MAX_ERROR_LENGTH = 2_000


class NotificationsNotSent(JobdeckError):
    """Raised when notifications of a batch failed for reasons neither transient nor permanent."""


def message_id_for(notification: Notification) -> str:
    """The stable Message-ID of a notification: the same on every attempt, unique across databases."""
    digest = hashlib.sha256(notification.dedup_key.encode("utf-8")).hexdigest()[:16]
    return f"<notification-{notification.id}.{digest}@jobdeck>"


class NotificationSender:
    """Sends notifications by id through one transport, moving each through its states.

    Parameters:
      sessions(sessionmaker): the billing database; each state change is its own short transaction.
      transport(MailTransport): SMTP or the outbox folder; closed by ``close()``.
      mail_from(str): the From address.
      timezone(ZoneInfo): the zone dates in e-mails are shown in.
      rate_limiter(RateLimiter | None): spaces messages out; None sends as fast as the server takes them.
      templates(MailTemplates): the notification templates. Default: jobs/templates/notifications.
    """

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        transport: MailTransport,
        mail_from: str,
        timezone: ZoneInfo,
        rate_limiter: RateLimiter | None = None,
        templates: MailTemplates | None = None,
    ) -> None:
        self.sessions = sessions
        self.transport = transport
        self.mail_from = mail_from
        self.timezone = timezone
        self.rate_limiter = rate_limiter
        self.templates = templates or default_templates()

    @classmethod
    def from_context(cls, context: JobContext) -> NotificationSender:
        settings = context.settings
        return cls(
            sessions=context.sessions,
            transport=open_transport(settings.smtp_url, settings.outbox_dir),
            mail_from=settings.mail_from,
            timezone=settings.timezone,
            rate_limiter=context.rate_limiter(settings.smtp_rate),
        )

    def __enter__(self) -> NotificationSender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.transport.close()

    def send(self, notification_id: int) -> str:
        """Send one notification unless it was already handled; return its state afterwards.

        Raises MailDeferred (state back to ``queued``, retry) or PermanentError (state ``failed``).
        """
        found = self._load(notification_id)
        if found is None:
            logger.warning("Notification %d does not exist (deleted?); nothing to send.", notification_id)
            return "missing"
        notification, customer = found
        if notification.state == "sending":
            return self._give_up_half_sent(notification_id)
        if notification.state != "queued":
            return notification.state  # sent, failed or unknown: never sent again
        message = self._compose(notification, customer)
        # Connect and wait for a rate slot *before* claiming, so the row stays in `sending` only
        # for the moments when the server may be taking the message.
        self.transport.open()
        if self.rate_limiter is not None:
            self.rate_limiter.wait()
        if not self._claim(notification_id, message["Message-ID"], str(message["Subject"])):
            return self._state_of(notification_id)
        return self._hand_over(notification_id, message, customer.email)

    def send_many(self, notification_ids: Iterable[int]) -> dict[str, int]:
        """Send each notification; one failing does not stop the others. Raises at the end if any failed.

        Counts per resulting state are returned; the error raised is transient when any failure
        was, so that the batch is retried (already sent ones are skipped then).
        """
        counts: dict[str, int] = {}
        failures: list[tuple[int, Exception]] = []
        for notification_id in notification_ids:
            try:
                state = self.send(notification_id)
            except PermanentError as error:
                state = "failed"
                failures.append((notification_id, error))
            except Exception as error:  # collected: the rest of the batch still goes out
                state = "queued"
                failures.append((notification_id, error))
                logger.warning("Notification %d not sent this time: %s", notification_id, error)
            counts[state] = counts.get(state, 0) + 1
        if failures:
            raise _batch_error(failures, counts)
        return counts

    def _load(self, notification_id: int) -> tuple[Notification, Customer] | None:
        with self.sessions() as session:
            row = session.execute(
                select(Notification, Customer)
                .join(Customer, Customer.id == Notification.customer_id)
                .where(Notification.id == notification_id)
            ).one_or_none()
            return None if row is None else (row[0], row[1])

    def _compose(self, notification: Notification, customer: Customer):
        locale = customer.locale if customer.locale in LOCALES else "en"
        try:
            context = _template_context(notification, customer, self.timezone)
            rendered = self.templates.render(locale, notification.kind, context)
        except (TemplateError, MoneyError, KeyError, ValueError, InvalidOperation) as error:
            # Bad data or a broken template will not render better next time.
            reason = f"cannot render notification {notification.id}: {type(error).__name__}: {error}"
            self._move(notification.id, ("queued",), "failed", error=reason)
            raise PermanentError(reason) from error
        return build_message(
            rendered,
            sender=self.mail_from,
            recipient=customer.email,
            recipient_name=customer.name,
            message_id=message_id_for(notification),
            date=format_datetime(utc_now()),
        )

    def _hand_over(self, notification_id: int, message, recipient: str) -> str:
        name = f"notification-{notification_id}"
        try:
            self.transport.send(message, sender=self.mail_from, recipient=recipient, name=name)
        except MailDeferred as error:
            self._move(notification_id, ("sending",), "queued", error=str(error))
            raise
        except MailRejected as error:
            self._move(notification_id, ("sending",), "failed", error=str(error))
            raise
        except MailOutcomeUnknown as error:
            self._move(notification_id, ("sending",), "unknown", error=str(error))
            logger.error(
                "Notification %d may or may not have been delivered; marked unknown: %s",
                notification_id,
                error,
            )
            return "unknown"
        except BaseException as error:
            # Whatever happened, the server may have the message: never risk sending it twice.
            self._move(notification_id, ("sending",), "unknown", error=f"{type(error).__name__}: {error}")
            raise
        # `unknown` too: if another delivery gave up on this row meanwhile, this one knows it went out.
        if not self._move(notification_id, ("sending", "unknown"), "sent", error=None, sent_at=utc_now()):
            logger.warning("Notification %d was sent but its row changed meanwhile.", notification_id)
        return "sent"

    def _give_up_half_sent(self, notification_id: int) -> str:
        reason = (
            "found in state sending on redelivery: the worker stopped after claiming it, "
            "so the mail server may or may not have it; not sent again"
        )
        if self._move(notification_id, ("sending",), "unknown", error=reason):
            logger.error("Notification %d %s; marked unknown for a person to check.", notification_id, reason)
            return "unknown"
        return self._state_of(notification_id)

    def _claim(self, notification_id: int, message_id: str, subject: str) -> bool:
        return self._move(
            notification_id, ("queued",), "sending", message_id=message_id, subject=subject[:300], error=None
        )

    def _move(self, notification_id: int, from_states: Sequence[str], to_state: str, **values: Any) -> bool:
        """Compare-and-set: change the state only if it is still one of ``from_states``."""
        if "error" in values and values["error"] is not None:
            values["error"] = values["error"][:_MAX_ERROR_LENGTH]
        with self.sessions.begin() as session:
            result = session.execute(
                update(Notification)
                .where(Notification.id == notification_id, Notification.state.in_(from_states))
                .values(state=to_state, **values)
                .execution_options(synchronize_session=False)
            )
            return result.rowcount == 1

    def _state_of(self, notification_id: int) -> str:
        with self.sessions() as session:
            state = session.scalar(select(Notification.state).where(Notification.id == notification_id))
            return state or "missing"


def _template_context(notification: Notification, customer: Customer, timezone: ZoneInfo) -> dict[str, Any]:
    context: dict[str, Any] = {
        **notification.context,
        "customer_name": customer.name,
        "subject": notification.subject,
        "body": notification.body or "",
    }
    if "due_at" in context:
        due_at = datetime.fromisoformat(context["due_at"].replace("Z", "+00:00"))
        context["due_date"] = due_at.astimezone(timezone).date()
    if "amount" in context and "currency" in context:
        currency = context["currency"]
        context["amount"] = format_money(to_minor(Decimal(context["amount"]), currency), currency)
    return context


def _batch_error(failures: list[tuple[int, Exception]], counts: dict[str, int]) -> JobdeckError:
    examples = "; ".join(f"#{notification_id}: {error}" for notification_id, error in failures[:5])
    summary = f"{len(failures)} of {sum(counts.values())} notifications not sent ({examples})"
    errors = [error for _, error in failures]
    if any(is_transient(error) for error in errors):
        return TransientError(summary)
    if all(isinstance(error, PermanentError) for error in errors):
        return PermanentError(summary)
    return NotificationsNotSent(summary)


@cache
def default_templates() -> MailTemplates:
    """The notification templates, loaded once per process (Jinja2 caches what it compiles)."""
    return MailTemplates(TEMPLATES_DIR / "notifications")


def count_unknown_notifications(sessions: sessionmaker[Session]) -> int:
    """How many notifications are in state ``unknown`` (for the alert of that name). One query."""
    with sessions() as session:
        return session.scalar(
            select(func.count()).select_from(Notification).where(Notification.state == "unknown")
        )
