"""The billing tables as SQLAlchemy 2 declarative models, all on one :class:`Base`.

Money is an integer ``amount_minor`` (BIGINT) plus a ``currency`` code (see :mod:`jobs.billing.money`);
every timestamp is a :class:`~jobs.platform.tables.UTCDateTime`. ``migrations/versions`` must create exactly
this schema with monitoring's access tables: ``tests/jobs/platform/test_database.py`` compares them.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    CHAR,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from jobs.platform.tables import Base, one_of, utc_now

LOCALES = ("en", "zh-CN")
BILL_STATUSES = ("pending", "paid", "overdue", "cancelled")
NOTIFICATION_STATES = ("queued", "sending", "sent", "unknown", "failed")
NOTIFICATION_KINDS = ("due_soon", "overdue", "generic")
#: The notification kinds the reminder policy sends about a bill (jobs.billing.notifications.policy).
BILL_REMINDER_KINDS = ("due_soon", "overdue")
#: Life of an export or a backup file: written, then usable, then removed by the clean-up job.
FILE_STATES = ("pending", "running", "ready", "failed", "expired")


class Customer(Base):
    """A billed customer; ``locale`` picks the language of e-mails and reports."""

    __tablename__ = "customers"
    __table_args__ = (CheckConstraint(one_of("locale", LOCALES), name="locale"),)

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
        CheckConstraint(one_of("status", BILL_STATUSES), name="status"),
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
        CheckConstraint(one_of("state", NOTIFICATION_STATES), name="state"),
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
    __table_args__ = (CheckConstraint(one_of("kind", BILL_REMINDER_KINDS), name="kind"),)

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
    #: The words of the report's content, for full-text search (jobs.billing.reports.catalogue).
    search_text: Mapped[str] = mapped_column(Text, default="")


class Export(Base):
    """A data export file (CSV, JSON, ...) written for an operator."""

    __tablename__ = "exports"
    __table_args__ = (CheckConstraint(one_of("state", FILE_STATES), name="state"),)

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
    __table_args__ = (CheckConstraint(one_of("state", FILE_STATES), name="state"),)

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
