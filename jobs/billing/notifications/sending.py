"""Sending one notification e-mail: ``queued → sending → sent`` with compare-and-set UPDATEs.

Moving a row to ``sending`` writes a claim (:mod:`.claims`); every later UPDATE of the sender checks
its token, so only the claim's owner records how its send went (#11). A sender that meets a row
another live sender is sending leaves it alone and tries again later; one that meets a stale claim
(its owner stopped) cannot know whether the mail server took the message, so it marks the row
``unknown`` for a person to check instead of sending it again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from email.utils import format_datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import TemplateError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from jobs.billing import TEMPLATES_DIR
from jobs.billing.models import LOCALES, Customer, Notification, utc_now
from jobs.billing.money import MoneyError, format_money, to_minor
from jobs.billing.notifications.claims import (
    DEFAULT_CLAIM_STALE_AFTER,
    Claimant,
    NotificationBusy,
    stale_reason,
)
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
      claimant(Claimant): who claims the rows it sends. Default: this process, running no message.
      claim_stale_after(timedelta): age past which another sender's claim is stale.
        Default DEFAULT_CLAIM_STALE_AFTER (5 minutes).
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
        claimant: Claimant | None = None,
        claim_stale_after: timedelta = DEFAULT_CLAIM_STALE_AFTER,
    ) -> None:
        self.sessions = sessions
        self.transport = transport
        self.mail_from = mail_from
        self.timezone = timezone
        self.rate_limiter = rate_limiter
        self.templates = templates or default_templates()
        self.claimant = claimant or Claimant.here()
        self.claim_stale_after = claim_stale_after

    @classmethod
    def from_context(cls, context: JobContext) -> NotificationSender:
        settings = context.settings
        return cls(
            sessions=context.sessions,
            transport=open_transport(settings.smtp_url, settings.outbox_dir),
            mail_from=settings.mail_from,
            timezone=settings.timezone,
            rate_limiter=context.rate_limiter(settings.smtp_rate),
            claimant=Claimant.of(context),
        )

    def __enter__(self) -> NotificationSender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.transport.close()

    def send(self, notification_id: int) -> str:
        """Send one notification unless it was already handled; return its state afterwards.

        Raises MailDeferred (state back to ``queued``, retry), PermanentError (state ``failed``) or
        NotificationBusy (another live sender is sending it: retry).
        """
        found = self._load(notification_id)
        if found is None:
            logger.warning("Notification %d does not exist (deleted?); nothing to send.", notification_id)
            return "missing"
        notification, customer = found
        if notification.state == "sending":
            return self._meet_claim(notification)
        if notification.state != "queued":
            return notification.state  # sent, failed or unknown: never sent again
        message = self._compose(notification, customer)
        # Connect and wait for a rate slot *before* claiming, so the row stays in `sending` only
        # for the moments when the server may be taking the message.
        self.transport.open()
        if self.rate_limiter is not None:
            self.rate_limiter.wait()
        claim = self.claimant.new_claim()
        subject = str(message["Subject"])[:300]
        if not self._move(
            notification_id,
            ("queued",),
            "sending",
            **claim,
            message_id=message["Message-ID"],
            subject=subject,
            error=None,
        ):
            return self._state_of(notification_id)
        return self._hand_over(notification_id, claim["claim_token"], message, customer.email)

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
            except NotificationBusy as error:
                state = "sending"
                failures.append((notification_id, error))
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

    def _hand_over(self, notification_id: int, token: str, message, recipient: str) -> str:
        name = f"notification-{notification_id}"
        try:
            self.transport.send(message, sender=self.mail_from, recipient=recipient, name=name)
        except MailDeferred as error:
            self._settle(notification_id, token, "queued", error=str(error))
            raise
        except MailRejected as error:
            self._settle(notification_id, token, "failed", error=str(error))
            raise
        except MailOutcomeUnknown as error:
            self._settle(notification_id, token, "unknown", error=str(error))
            logger.error(
                "Notification %d may or may not have been delivered; marked unknown: %s",
                notification_id,
                error,
            )
            return "unknown"
        except BaseException as error:
            # Whatever happened, the server may have the message: never risk sending it twice.
            self._settle(notification_id, token, "unknown", error=f"{type(error).__name__}: {error}")
            raise
        self._settle(notification_id, token, "sent", error=None, sent_at=utc_now())
        return "sent"

    def _settle(self, notification_id: int, token: str, to_state: str, **values: Any) -> None:
        """Record how this sender's send went; only the claim's owner can, from ``sending`` or ``unknown``.

        ``unknown`` too: a sender that judged this claim stale may have written it, but the owner
        knows what the server answered (sent, deferred, refused).
        """
        owned = Notification.claim_token == token
        if not self._move(notification_id, ("sending", "unknown"), to_state, owned, **values):
            logger.error(
                "Notification %d is %s, but its row no longer carries this sender's claim (deleted?).",
                notification_id,
                to_state,
            )

    def _meet_claim(self, notification: Notification) -> str:
        """A row in ``sending``: its owner's to finish, unless its claim is stale; then taken over."""
        stale = stale_reason(notification, self.claimant, self.claim_stale_after)
        if stale is None:
            owner = notification.claimed_by
            raise NotificationBusy(
                f"notification {notification.id} is being sent by {owner}; trying again later"
            )
        reason = f"{stale}: the mail server may or may not have it; not sent again"
        same_claim = Notification.claim_token.is_not_distinct_from(notification.claim_token)
        if self._move(notification.id, ("sending",), "unknown", same_claim, error=reason):
            logger.error("Notification %d %s; marked unknown for a person to check.", notification.id, reason)
            return "unknown"
        return self._state_of(notification.id)

    def _move(
        self,
        notification_id: int,
        from_states: Sequence[str],
        to_state: str,
        *conditions: ColumnElement[bool],
        **values: Any,
    ) -> bool:
        """Compare-and-set: change the state only if it is one of ``from_states`` and ``conditions`` hold."""
        if "error" in values and values["error"] is not None:
            values["error"] = values["error"][:_MAX_ERROR_LENGTH]
        with self.sessions.begin() as session:
            result = session.execute(
                update(Notification)
                .where(Notification.id == notification_id, Notification.state.in_(from_states), *conditions)
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
