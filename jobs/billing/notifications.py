"""Customer e-mail: the notification outbox and the jobs that send and clean it (queue ``email``).

A notification row is written first (``create_bill_reminders``), then put on the queue by
``dispatch_queued_notifications`` once its transaction commits (a transactional outbox: a crash
in between leaves a ``queued`` row that the next dispatch picks up). Sending follows
``queued → sending → sent`` with compare-and-set UPDATEs, so that Dramatiq's at-least-once
delivery never becomes "at least once" for the customer: a redelivered job that finds
``sending`` cannot know whether the server took the message, so it marks the row ``unknown``
for a person to check instead of sending it again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from email.utils import format_datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import dramatiq
from jinja2 import TemplateError
from sqlalchemy import (
    Integer,
    Select,
    String,
    case,
    cast,
    delete,
    event,
    func,
    literal,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from jobs.billing import TEMPLATES_DIR
from jobs.billing.models import LOCALES, Bill, Customer, Notification, UTCDateTime, utc_now
from jobs.billing.money import (
    COMMON_MINOR_EXPONENT,
    CURRENCIES_BY_EXPONENT,
    MoneyError,
    format_money,
    to_minor,
)
from jobs.billing.periods import parse_fire_time
from jobs.platform import queues
from jobs.platform.context import JobContext, current
from jobs.platform.database import upsert_insert
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

BILL_REMINDER_KINDS = ("due_soon", "overdue")
#: A queued notification enqueued this long ago without being sent is enqueued again.
REDISPATCH_AFTER = timedelta(minutes=10)
DEFAULT_DISPATCH_BATCH_SIZE = 500
DEFAULT_RETENTION_DAYS = 90
DEFAULT_CLEANUP_BATCH_SIZE = 5_000
#: The operator-facing subject stored with a reminder; the e-mail's own subject is rendered in the
#: customer's language when it is sent, and replaces this one.
BILL_REMINDER_SUBJECTS = {"due_soon": "Bill {} is due soon", "overdue": "Bill {} is overdue"}
#: session.info key of the batches to enqueue once the session's transaction commits.
_PENDING_BATCHES = "jobdeck.notifications.pending_batches"
_MAX_ERROR_LENGTH = 2_000


class NotificationsNotSent(JobdeckError):
    """Raised when notifications of a batch failed for reasons neither transient nor permanent."""


# --- The outbox ---------------------------------------------------------------------------------


def create_bill_reminders(session: Session, *, kind: str, bill_ids: Select, local_date: date) -> int:
    """Queue one ``kind`` reminder per bill id ``bill_ids`` selects; return how many rows were new.

    One INSERT ... SELECT ... ON CONFLICT DO NOTHING: the dedup key ``bill:{id}:{kind}:{local_date}``
    makes a second call the same local day insert nothing. The context holds what the templates
    need: bill number, amount as a decimal string, currency and due time (UTC, ISO 8601).
    """
    if kind not in BILL_REMINDER_KINDS:
        raise ValueError(f"kind must be one of {', '.join(BILL_REMINDER_KINDS)}, got {kind!r}")
    dialect = session.get_bind().dialect.name
    dedup_key = "bill:" + cast(Bill.id, String) + literal(f":{kind}:{local_date.isoformat()}", String)
    prefix, _, suffix = BILL_REMINDER_SUBJECTS[kind].partition("{}")
    rows = select(
        Bill.customer_id,
        Bill.id,
        literal(kind, String),
        literal("queued", String),
        dedup_key,
        literal(prefix, String) + Bill.number + literal(suffix, String),
        _json_object(
            dialect,
            bill_number=Bill.number,
            amount=_amount_text(),
            currency=Bill.currency,
            due_at=_utc_iso(dialect, Bill.due_at),
        ),
        literal(utc_now(), UTCDateTime()),
    ).where(Bill.id.in_(bill_ids))
    statement = (
        upsert_insert(session, Notification)
        .from_select(
            ["customer_id", "bill_id", "kind", "state", "dedup_key", "subject", "context", "created_at"], rows
        )
        .on_conflict_do_nothing(index_elements=["dedup_key"])
        # SQLAlchemy only keeps an INSERT's rowcount when asked to.
        .execution_options(preserve_rowcount=True)
    )
    return session.execute(statement).rowcount


def dispatch_queued_notifications(session: Session, *, batch_size: int = DEFAULT_DISPATCH_BATCH_SIZE) -> int:
    """Enqueue ``send_notification_batch`` for queued notifications never (or long ago) enqueued.

    Marks them ``enqueued_at`` now in the session's transaction and sends one message per
    ``batch_size`` ids **when that transaction commits**, so a worker never looks for a row it
    cannot see yet and a rollback sends nothing. Returns how many ids will be enqueued.
    """
    now = utc_now()
    # One UPDATE ... RETURNING decides which rows this dispatcher takes: two dispatchers running
    # at once never enqueue the same row twice.
    claimed = session.execute(
        update(Notification)
        .where(
            Notification.state == "queued",
            or_(Notification.enqueued_at.is_(None), Notification.enqueued_at < now - REDISPATCH_AFTER),
        )
        .values(enqueued_at=now)
        .returning(Notification.id)
        .execution_options(synchronize_session=False)
    )
    ids = sorted(claimed.scalars())
    batches = [ids[start : start + batch_size] for start in range(0, len(ids), batch_size)]
    if batches:
        _enqueue_after_commit(session, batches)
    return len(ids)


def _enqueue_after_commit(session: Session, batches: list[list[int]]) -> None:
    if _PENDING_BATCHES not in session.info:
        event.listen(session, "after_commit", _send_pending_batches)
        event.listen(session, "after_soft_rollback", _forget_pending_batches)
    session.info.setdefault(_PENDING_BATCHES, []).extend(batches)


def _send_pending_batches(session: Session) -> None:
    batches, session.info[_PENDING_BATCHES] = session.info.get(_PENDING_BATCHES, []), []
    for ids in batches:
        send_notification_batch.send(ids)


def _forget_pending_batches(session: Session, previous_transaction: object) -> None:
    # The enqueued_at marks were rolled back too, so the next dispatch takes these rows again.
    session.info[_PENDING_BATCHES] = []


def _json_object(dialect: str, **values: ColumnElement) -> ColumnElement:
    function = func.json_build_object if dialect == "postgresql" else func.json_object
    arguments = []
    for name, value in values.items():
        # Keys as SQL constants: PostgreSQL cannot type a bound parameter inside json_build_object.
        arguments += [literal_column(f"'{name}'"), value]
    return function(*arguments)


def _amount_text() -> ColumnElement:
    """``Bill.amount_minor`` as a decimal string with the currency's digits, in portable SQL."""
    return case(
        *[
            (Bill.currency.in_(currencies), _minor_to_text(exponent))
            for exponent, currencies in CURRENCIES_BY_EXPONENT.items()
            if exponent != COMMON_MINOR_EXPONENT
        ],
        else_=_minor_to_text(COMMON_MINOR_EXPONENT),
    )


def _minor_to_text(exponent: int) -> ColumnElement:
    whole = cast(Bill.amount_minor, String)
    if exponent == 0:
        return whole
    scale = 10**exponent
    # amount_minor is never negative (a CHECK constraint), so integer / and % split it exactly;
    # adding `scale` before dropping the first digit zero-pads the fraction on both databases.
    integer_part = cast(Bill.amount_minor // literal(scale, Integer), String)
    padded_fraction = cast(Bill.amount_minor % literal(scale, Integer) + literal(scale, Integer), String)
    return integer_part + "." + func.substr(padded_fraction, 2)


def _utc_iso(dialect: str, column: ColumnElement) -> ColumnElement:
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
    # SQLite keeps UTC wall time (see UTCDateTime).
    return func.strftime("%Y-%m-%dT%H:%M:%SZ", column)


# --- Sending ------------------------------------------------------------------------------------


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


# --- Clean-up -----------------------------------------------------------------------------------


def delete_sent_notifications(
    sessions: sessionmaker[Session], *, sent_before: datetime, batch_size: int = DEFAULT_CLEANUP_BATCH_SIZE
) -> int:
    """Delete ``sent`` notifications sent before ``sent_before``, ``batch_size`` per transaction."""
    deleted = 0
    while True:
        with sessions.begin() as session:
            oldest = (
                select(Notification.id)
                .where(Notification.state == "sent", Notification.sent_at < sent_before)
                .limit(batch_size)
            )
            # Short transactions: a million-row purge must not hold the write lock for minutes.
            count = session.execute(
                delete(Notification)
                .where(Notification.id.in_(oldest))
                .execution_options(synchronize_session=False)
            ).rowcount
        deleted += count
        if count < batch_size:
            return deleted


# --- Actors -------------------------------------------------------------------------------------


@dramatiq.actor(queue_name=queues.EMAIL)
def send_notification_email(notification_id: int) -> dict[str, Any]:
    """Send one notification e-mail (at most once; see the module docstring)."""
    with NotificationSender.from_context(current()) as sender:
        return {"notification_id": notification_id, "state": sender.send(notification_id)}


@dramatiq.actor(queue_name=queues.EMAIL)
def send_notification_batch(notification_ids: list[int]) -> dict[str, Any]:
    """Send several notifications over one connection; returns counts per resulting state."""
    with NotificationSender.from_context(current()) as sender:
        return {"notifications": len(notification_ids), "states": sender.send_many(notification_ids)}


@dramatiq.actor(queue_name=queues.EMAIL)
def cleanup_old_notifications(
    days: float = DEFAULT_RETENTION_DAYS, fire_time: str | None = None
) -> dict[str, Any]:
    """Delete sent notifications older than ``days`` before the fire time; returns how many."""
    if days < 0:
        raise PermanentError(f"days must not be negative, got {days}")
    sent_before = parse_fire_time(fire_time) - timedelta(days=days)
    deleted = delete_sent_notifications(current().sessions, sent_before=sent_before)
    return {"deleted": deleted, "sent_before": sent_before.astimezone(UTC).isoformat()}


__all__ = [
    "NotificationSender",
    "cleanup_old_notifications",
    "create_bill_reminders",
    "delete_sent_notifications",
    "dispatch_queued_notifications",
    "message_id_for",
    "send_notification_batch",
    "send_notification_email",
]
