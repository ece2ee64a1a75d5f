"""The billing tables as SQLAlchemy 2 declarative models, all on one :class:`Base`.

Money is an integer ``amount_minor`` (BIGINT) plus a ``currency`` code (see :mod:`jobs.billing.money`);
every timestamp is a :class:`UTCDateTime`. ``migrations/versions`` must create exactly this
schema: ``tests/jobs/test_database.py`` compares the two.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    CHAR,
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

LOCALES = ("en", "zh-CN")
BILL_STATUSES = ("pending", "paid", "overdue", "cancelled")
NOTIFICATION_STATES = ("queued", "sending", "sent", "unknown", "failed")
NOTIFICATION_KINDS = ("due_soon", "overdue", "generic")
#: The notification kinds the reminder policy sends about a bill (jobs.billing.notifications.policy).
BILL_REMINDER_KINDS = ("due_soon", "overdue")
TOKEN_ROLES = ("reader", "admin")
#: Life of an export or a backup file: written, then usable, then removed by the clean-up job.
FILE_STATES = ("pending", "running", "ready", "failed", "expired")

# Deterministic constraint names: SQLite batch migrations can only alter constraints that have names,
# and the same names on both databases keep migrations portable.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utc_now() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back as an aware UTC datetime; naive input is refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise ValueError(f"expected a datetime, got {type(value).__name__} {value!r}")
        if value.tzinfo is None or value.utcoffset() is None:
            # A naive time could be local or UTC; guessing would shift bills by hours.
            raise ValueError(f"naive datetime {value.isoformat()} refused: pass a timezone-aware datetime")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # SQLite keeps text without an offset; storing UTC wall time keeps ordering correct.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


class Base(DeclarativeBase):
    """The declarative base of every jobdeck table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


class Customer(Base):
    """A billed customer; ``locale`` picks the language of e-mails and reports."""

    __tablename__ = "customers"
    __table_args__ = (CheckConstraint(_one_of("locale", LOCALES), name="locale"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320), unique=True)
    locale: Mapped[str] = mapped_column(String(8), default="en")
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    bills: Mapped[list[Bill]] = relationship(back_populates="customer")


class Bill(Base):
    """A bill (invoice) issued to a customer, in one currency."""

    __tablename__ = "bills"
    __table_args__ = (
        CheckConstraint(_one_of("status", BILL_STATUSES), name="status"),
        CheckConstraint("amount_minor >= 0", name="amount_not_negative"),
        # The overdue and due-soon jobs scan by status and due date.
        Index("ix_bills_status_due_at", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(CHAR(3))
    issued_at: Mapped[datetime]
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="pending")
    paid_at: Mapped[datetime | None]
    #: When the bill was cancelled: reports count it as cancelled only in periods ending after this.
    #: NULL on a cancelled bill means the time is unknown (cancelled before it was recorded): such a
    #: bill counts as cancelled in every period, as it did then.
    cancelled_at: Mapped[datetime | None]

    customer: Mapped[Customer] = relationship(back_populates="bills")
    payments: Mapped[list[Payment]] = relationship(back_populates="bill")


class Payment(Base):
    """Money received against a bill; ``reference`` is the provider's id, unique so a replay is a no-op."""

    __tablename__ = "payments"
    __table_args__ = (CheckConstraint("amount_minor > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bill_id: Mapped[int] = mapped_column(ForeignKey("bills.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(CHAR(3))
    paid_at: Mapped[datetime] = mapped_column(index=True)
    reference: Mapped[str] = mapped_column(String(64), unique=True)

    bill: Mapped[Bill] = relationship(back_populates="payments")


class Notification(Base):
    """An e-mail to a customer; ``dedup_key`` makes sending the same reminder twice impossible."""

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint(_one_of("state", NOTIFICATION_STATES), name="state"),
        Index("ix_notifications_bill_id_kind", "bill_id", "kind"),
        # The outbox dispatcher looks for queued rows never enqueued, or enqueued long ago.
        Index("ix_notifications_state_enqueued_at", "state", "enqueued_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    bill_id: Mapped[int | None] = mapped_column(ForeignKey("bills.id"))
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="queued")
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)
    subject: Mapped[str] = mapped_column(String(300))
    #: What the template is rendered from (bill number, amount, due date, ...).
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    sent_at: Mapped[datetime | None]
    message_id: Mapped[str | None] = mapped_column(String(300))
    error: Mapped[str | None] = mapped_column(Text)
    #: When a send job for this row was last put on the queue; NULL means never (jobs.billing.notifications).
    enqueued_at: Mapped[datetime | None]
    #: The claim of the sender that last moved the row to ``sending``: a token only it knows (every
    #: later change of the row by it checks it), when it claimed, which process (broker id:pid) and
    #: the message it was running. See jobs.billing.notifications.sending.
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claimed_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claim_message_id: Mapped[str | None] = mapped_column(String(64))


class ReminderSent(Base):
    """A step of a bill's reminder policy handed to the outbox: the record that makes it go out once.

    Written with the step's notification; notification clean-up never deletes it.
    """

    __tablename__ = "reminders_sent"
    __table_args__ = (CheckConstraint(_one_of("kind", BILL_REMINDER_KINDS), name="kind"),)

    bill_id: Mapped[int] = mapped_column(ForeignKey("bills.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: The policy's step: 0 for due soon, the day of being overdue (1, 7, ...) for overdue.
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class Report(Base):
    """A generated report for one period; regenerating the same period replaces it."""

    __tablename__ = "reports"
    __table_args__ = (UniqueConstraint("kind", "period_starts_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    #: The instant the period starts (UTC): what makes a report unique, down to the hour.
    period_starts_at: Mapped[datetime]
    #: Local dates in ``timezone``; the period is [period_start, period_end).
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    timezone: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    csv_path: Mapped[str | None] = mapped_column(String(1024))
    html_path: Mapped[str | None] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    expires_at: Mapped[datetime | None]


class Export(Base):
    """A data export file (CSV, JSON, ...) written for an operator."""

    __tablename__ = "exports"
    __table_args__ = (CheckConstraint(_one_of("state", FILE_STATES), name="state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(16))
    filters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    path: Mapped[str | None] = mapped_column(String(1024))
    rows: Mapped[int | None] = mapped_column(BigInteger)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(CHAR(64))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    expires_at: Mapped[datetime | None]
    state: Mapped[str] = mapped_column(String(16), default="pending")


class Backup(Base):
    """A database backup file and what verifying it found."""

    __tablename__ = "backups"
    __table_args__ = (CheckConstraint(_one_of("state", FILE_STATES), name="state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str | None] = mapped_column(String(1024))
    engine: Mapped[str] = mapped_column(String(32))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(CHAR(64))
    #: Row count per table at backup time, e.g. {"bills": 1000000}.
    tables: Mapped[dict[str, Any]] = mapped_column(default=dict)
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    state: Mapped[str] = mapped_column(String(16), default="pending")


class ApiToken(Base):
    """An API bearer token; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"
    __table_args__ = (CheckConstraint(_one_of("role", TOKEN_ROLES), name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(CHAR(64), unique=True)
    role: Mapped[str] = mapped_column(String(16), default="reader")
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class AuditLog(Base):
    """One operator action (who did what to which target), kept for accountability."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utc_now, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(200))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
