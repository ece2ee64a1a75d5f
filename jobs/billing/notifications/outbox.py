"""The notification outbox: reminder rows written in SQL, once per policy step, enqueued once they commit."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import (
    Insert,
    Integer,
    Select,
    String,
    case,
    cast,
    event,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from jobs.billing.models import BILL_REMINDER_KINDS, Bill, Notification, ReminderSent, utc_now
from jobs.billing.money import COMMON_MINOR_EXPONENT, CURRENCIES_BY_EXPONENT
from jobs.platform.actors import get_actor
from jobs.platform.database import upsert_insert
from jobs.platform.tables import UTCDateTime

#: A queued notification enqueued this long ago without being sent is enqueued again.
REDISPATCH_AFTER = timedelta(minutes=10)
DEFAULT_DISPATCH_BATCH_SIZE = 500
#: The operator-facing subject stored with a reminder; the e-mail's own subject is rendered in the
#: customer's language when it is sent, and replaces this one.
BILL_REMINDER_SUBJECTS = {"due_soon": "Bill {} is due soon", "overdue": "Bill {} is overdue"}
#: The actor that sends a batch (jobs.billing.notifications.actors). Looked up by name when the
#: transaction commits: the actors module may only be imported once the broker is set up.
SEND_BATCH_ACTOR = "send_notification_batch"
#: session.info key of the batches to enqueue once the session's transaction commits.
_PENDING_BATCHES = "jobdeck.notifications.pending_batches"


def create_bill_reminders(
    session: Session, *, kind: str, bill_ids: Select, step: int | ColumnElement[int]
) -> int:
    """Queue reminder ``step`` of ``kind`` for each bill ``bill_ids`` selects, once; return how many are new.

    ``step`` is a number or SQL on the bill's columns (the policy's ``overdue_step``). A bill is owed the
    step only if no step as late or later of ``kind`` is recorded for it in ``reminders_sent``; the
    notification row (dedup key ``bill:{id}:{kind}:{step}``) and that record are written together, in
    two INSERT ... SELECT ... ON CONFLICT DO NOTHING statements of the caller's transaction. Clean-up
    deletes old notifications but never the record, so no step is ever sent twice. The context holds
    what the templates need: bill number, amount as a decimal string, currency and due time (UTC).
    """
    if kind not in BILL_REMINDER_KINDS:
        raise ValueError(f"kind must be one of {', '.join(BILL_REMINDER_KINDS)}, got {kind!r}")
    step = literal(step, Integer) if isinstance(step, int) else step
    already = select(ReminderSent.bill_id).where(
        ReminderSent.bill_id == Bill.id, ReminderSent.kind == kind, ReminderSent.step >= step
    )
    owed = (Bill.id.in_(bill_ids), step.is_not(None), ~exists(already))
    now = utc_now()
    created = session.execute(_insert_notifications(session, kind, step, owed, now)).rowcount
    record = (
        upsert_insert(session, ReminderSent)
        .from_select(
            ["bill_id", "kind", "step", "created_at"],
            select(Bill.id, literal(kind, String), step, literal(now, UTCDateTime())).where(*owed),
        )
        .on_conflict_do_nothing(index_elements=["bill_id", "kind", "step"])
    )
    session.execute(record)
    return created


def _insert_notifications(
    session: Session,
    kind: str,
    step: ColumnElement[int],
    owed: tuple[ColumnElement[bool], ...],
    now: datetime,
) -> Insert:
    dialect = session.get_bind().dialect.name
    dedup_key = "bill:" + cast(Bill.id, String) + literal(f":{kind}:", String) + cast(step, String)
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
        literal(now, UTCDateTime()),
    ).where(*owed)
    return (
        upsert_insert(session, Notification)
        .from_select(
            ["customer_id", "bill_id", "kind", "state", "dedup_key", "subject", "context", "created_at"], rows
        )
        .on_conflict_do_nothing(index_elements=["dedup_key"])
        # SQLAlchemy only keeps an INSERT's rowcount when asked to.
        .execution_options(preserve_rowcount=True)
    )


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
    if not batches:
        return
    send_batch = get_actor(SEND_BATCH_ACTOR)
    for ids in batches:
        send_batch.send(ids)


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
