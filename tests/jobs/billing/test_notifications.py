"""The notification outbox and sending, on real databases and a real SMTP server on loopback."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from dramatiq import Message
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from jobs.billing.models import Bill, Customer, Notification, ReminderSent
from jobs.billing.notifications import (
    DUE_SOON_STEP,
    NotificationSender,
    create_bill_reminders,
    delete_sent_notifications,
    dispatch_queued_notifications,
    message_id_for,
)
from jobs.platform.database import make_session_factory
from jobs.platform.errors import PermanentError, TransientError
from jobs.platform.mail import MailDeferred, MailRejected, OutboxTransport, SmtpServerAddress, SmtpTransport
from jobs.platform.redis_server import free_port
from monitoring.actions import FAILURE, SUCCESS, TaskManager
from tests.support.billing import DUE_AT, add_bill, add_customer
from tests.support.smtp import smtp_server

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: The overdue reminder step the tests queue (the policy's first day overdue).
DAY_1 = 1


# --- helpers ----------------------------------------------------------------------------------------


def add_many_bills(
    session: Session, count: int, *, status: str = "overdue", due_at: datetime = DUE_AT
) -> None:
    """``count`` customers with one bill each, in two bulk INSERTs."""
    now = datetime.now(UTC)
    session.execute(
        insert(Customer),
        [
            {
                "id": index,
                "name": f"Customer {index}",
                "email": f"c{index}@example.com",
                "locale": "en",
                "created_at": now,
            }
            for index in range(1, count + 1)
        ],
    )
    session.execute(
        insert(Bill),
        [
            {
                "id": index,
                "number": f"INV-{index:06d}",
                "customer_id": index,
                "amount_minor": 10_000 + index,
                "currency": "USD",
                "issued_at": due_at - timedelta(days=30),
                "due_at": due_at,
                "status": status,
            }
            for index in range(1, count + 1)
        ],
    )


def queue_reminder(sessions: sessionmaker[Session], bill_id: int, kind: str = "overdue") -> int:
    """Queue the reminder of one bill through the real outbox function; return its notification id."""
    with sessions.begin() as session:
        create_bill_reminders(
            session, kind=kind, bill_ids=select(Bill.id).where(Bill.id == bill_id), step=DAY_1
        )
        return session.scalar(
            select(Notification.id).where(Notification.bill_id == bill_id, Notification.kind == kind)
        )


def notification(sessions: sessionmaker[Session], notification_id: int) -> Notification:
    with sessions() as session:
        return session.get(Notification, notification_id)


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def smtp():
    with smtp_server(defer_once={"greylisted@example.com"}, reject={"nobody@example.com"}) as server:
        yield server


@pytest.fixture
def smtp_sender(sessions, smtp):
    transport = SmtpTransport(SmtpServerAddress.from_url(smtp.url), timeout=5)
    with NotificationSender(
        sessions=sessions, transport=transport, mail_from="billing@jobdeck.test", timezone=SHANGHAI
    ) as sender:
        yield sender


def outbox_sender(sessions, folder: Path) -> NotificationSender:
    return NotificationSender(
        sessions=sessions,
        transport=OutboxTransport(folder),
        mail_from="billing@jobdeck.test",
        timezone=SHANGHAI,
    )


def read_eml(path: Path):
    return message_from_bytes(path.read_bytes(), policy=policy.default)


# --- creating reminders ---------------------------------------------------------------------------


def test_create_bill_reminders_fills_the_template_context_and_dedups(sessions) -> None:
    # Given bills in currencies with 2, 0 and 3 minor digits, and one not selected
    with sessions.begin() as session:
        customer = add_customer(session, "ada@example.com")
        usd = add_bill(session, customer, "INV-USD", "1234.05", "USD").id
        jpy = add_bill(session, customer, "INV-JPY", "30000", "JPY").id
        bhd = add_bill(session, customer, "INV-BHD", "1.005", "BHD").id
        add_bill(session, customer, "INV-PAID", "1.00", "USD", status="paid")
    selected = select(Bill.id).where(Bill.status == "pending")

    # When the due-soon reminders are created twice
    with sessions.begin() as session:
        first = create_bill_reminders(session, kind="due_soon", bill_ids=selected, step=DUE_SOON_STEP)
    with sessions.begin() as session:
        second = create_bill_reminders(session, kind="due_soon", bill_ids=selected, step=DUE_SOON_STEP)

    # Then one queued row per selected bill, with exact decimal amounts, and nothing the second time
    assert (first, second) == (3, 0)
    with sessions() as session:
        rows = {row.bill_id: row for row in session.scalars(select(Notification))}
    assert set(rows) == {usd, jpy, bhd}
    assert rows[usd].dedup_key == f"bill:{usd}:due_soon:0"
    assert rows[usd].state == "queued" and rows[usd].enqueued_at is None
    assert rows[usd].customer_id == customer.id
    assert rows[usd].subject == "Bill INV-USD is due soon"
    assert rows[usd].context == {
        "bill_number": "INV-USD",
        "amount": "1234.05",
        "currency": "USD",
        "due_at": "2025-03-12T16:30:00Z",
    }
    assert rows[jpy].context["amount"] == "30000"
    assert rows[bhd].context["amount"] == "1.005"


def test_another_kind_or_a_later_step_is_a_new_reminder_an_earlier_step_is_not(sessions) -> None:
    with sessions.begin() as session:
        add_bill(session, add_customer(session, "ada@example.com"), "INV-1")
    bills = select(Bill.id)

    with sessions.begin() as session:
        counts = [
            create_bill_reminders(session, kind="due_soon", bill_ids=bills, step=DUE_SOON_STEP),
            create_bill_reminders(session, kind="overdue", bill_ids=bills, step=1),
            create_bill_reminders(session, kind="overdue", bill_ids=bills, step=14),
            create_bill_reminders(session, kind="overdue", bill_ids=bills, step=7),  # after 14: never
            create_bill_reminders(session, kind="overdue", bill_ids=bills, step=14),
        ]

    assert counts == [1, 1, 1, 0, 0]
    with sessions() as session:
        recorded = session.execute(select(ReminderSent.kind, ReminderSent.step)).all()
    assert sorted(recorded) == [("due_soon", 0), ("overdue", 1), ("overdue", 14)]


def test_unknown_reminder_kind_is_refused(sessions) -> None:
    with sessions() as session, pytest.raises(ValueError, match="kind must be one of"):
        create_bill_reminders(session, kind="spam", bill_ids=select(Bill.id), step=DAY_1)


def test_ten_thousand_reminders_are_created_in_one_statement(sessions) -> None:
    with sessions.begin() as session:
        add_many_bills(session, 10_000)

    started = time.perf_counter()
    with sessions.begin() as session:
        created = create_bill_reminders(session, kind="overdue", bill_ids=select(Bill.id), step=DAY_1)
    elapsed = time.perf_counter() - started

    assert created == 10_000
    assert elapsed < 2.0, f"{elapsed:.2f} s"


# --- dispatching ----------------------------------------------------------------------------------


def queued_batches(runtime) -> list[list[int]]:
    """The id lists of the send_notification_batch messages waiting on the email queue."""
    payloads = runtime.broker.client.hvals("dramatiq:email.msgs")
    messages = [Message.decode(payload) for payload in payloads]
    assert {message.actor_name for message in messages} <= {"send_notification_batch"}
    return sorted(message.args[0] for message in messages)


def test_dispatch_enqueues_one_message_per_batch_when_the_transaction_commits(sessions, runtime) -> None:
    # Given 1,200 queued notifications
    with sessions.begin() as session:
        add_many_bills(session, 1_200)
        create_bill_reminders(session, kind="overdue", bill_ids=select(Bill.id), step=DAY_1)

    # When they are dispatched in batches of 500
    with sessions.begin() as session:
        dispatched = dispatch_queued_notifications(session, batch_size=500)
        # Then nothing is on the queue before the commit: a worker could not see the rows yet
        assert queued_batches(runtime) == []

    # And after it, three messages carry all 1,200 ids, each row marked enqueued
    batches = queued_batches(runtime)
    assert dispatched == 1_200
    assert [len(batch) for batch in batches] == [500, 500, 200]
    with sessions() as session:
        all_ids = sorted(session.scalars(select(Notification.id)))
        assert sorted(id_ for batch in batches for id_ in batch) == all_ids
        assert session.scalar(select(Notification.id).where(Notification.enqueued_at.is_(None))) is None

    # And a second dispatch finds nothing to do
    with sessions.begin() as session:
        assert dispatch_queued_notifications(session) == 0
    assert len(queued_batches(runtime)) == 3


def test_dispatch_rolled_back_sends_nothing_and_the_next_one_sends(sessions, runtime) -> None:
    with sessions.begin() as session:
        add_many_bills(session, 3)
        create_bill_reminders(session, kind="overdue", bill_ids=select(Bill.id), step=DAY_1)

    with sessions() as session:
        assert dispatch_queued_notifications(session) == 3
        session.rollback()
    assert queued_batches(runtime) == []

    with sessions.begin() as session:
        assert dispatch_queued_notifications(session) == 3
    assert [len(batch) for batch in queued_batches(runtime)] == [3]


def test_dispatch_takes_again_rows_enqueued_long_ago_but_never_sent(sessions, runtime) -> None:
    # Given a queued row whose message was lost 11 minutes ago, and one enqueued a minute ago
    with sessions.begin() as session:
        add_many_bills(session, 2)
        create_bill_reminders(session, kind="overdue", bill_ids=select(Bill.id), step=DAY_1)
        now = datetime.now(UTC)
        session.execute(
            update(Notification)
            .where(Notification.bill_id == 1)
            .values(enqueued_at=now - timedelta(minutes=11))
        )
        session.execute(
            update(Notification)
            .where(Notification.bill_id == 2)
            .values(enqueued_at=now - timedelta(minutes=1))
        )

    with sessions.begin() as session:
        dispatched = dispatch_queued_notifications(session)

    with sessions() as session:
        stale_id = session.scalar(select(Notification.id).where(Notification.bill_id == 1))
    assert dispatched == 1
    assert queued_batches(runtime) == [[stale_id]]


# --- rendering and the outbox folder --------------------------------------------------------------


def test_reminders_render_in_english_and_chinese_into_the_outbox(sessions, tmp_path) -> None:
    # Given an English and a Chinese customer with an overdue bill each
    with sessions.begin() as session:
        ada = add_bill(session, add_customer(session, "ada@example.com"), "INV-EN", "1234.50", "USD").id
        li = add_customer(session, "li.na@example.com", name="李娜", locale="zh-CN")
        li_bill = add_bill(session, li, "INV-ZH", "1500", "CNY").id
    en_id, zh_id = queue_reminder(sessions, ada), queue_reminder(sessions, li_bill)

    # When both are sent with no SMTP server configured
    with outbox_sender(sessions, tmp_path / "outbox") as sender:
        states = [sender.send(en_id), sender.send(zh_id)]

    # Then each is an .eml file named after the notification, in the customer's language
    assert states == ["sent", "sent"]
    assert sorted(path.name for path in (tmp_path / "outbox").iterdir()) == sorted(
        [f"notification-{en_id}.eml", f"notification-{zh_id}.eml"]
    )
    english = read_eml(tmp_path / "outbox" / f"notification-{en_id}.eml")
    assert english["Subject"] == "Bill INV-EN is overdue"
    assert english["To"].addresses[0].addr_spec == "ada@example.com"
    text = english.get_body(("plain",)).get_content()
    html = english.get_body(("html",)).get_content()
    # Due 16:30 UTC on 12 March is 13 March in Shanghai, the configured zone.
    assert "1,234.50 USD" in text and "13 March 2025" in text
    assert "<strong>INV-EN</strong>" in html and 'lang="en"' in html

    chinese = read_eml(tmp_path / "outbox" / f"notification-{zh_id}.eml")
    assert chinese["Subject"] == "账单 INV-ZH 已逾期"
    assert chinese["To"].addresses[0].display_name == "李娜"
    zh_text = chinese.get_body(("plain",)).get_content()
    assert "李娜，您好" in zh_text and "1,500.00 CNY" in zh_text and "2025年3月13日" in zh_text
    assert 'lang="zh-CN"' in chinese.get_body(("html",)).get_content()

    # And the rows record what was sent
    row = notification(sessions, zh_id)
    assert row.state == "sent" and row.sent_at is not None and row.subject == "账单 INV-ZH 已逾期"
    assert row.message_id == chinese["Message-ID"]


def test_html_escapes_customer_data(sessions, tmp_path) -> None:
    with sessions.begin() as session:
        customer = add_customer(session, "evil@example.com", name="<script>alert(1)</script>")
        bill_id = add_bill(session, customer, "INV-1").id
    notification_id = queue_reminder(sessions, bill_id)

    with outbox_sender(sessions, tmp_path) as sender:
        sender.send(notification_id)

    html = read_eml(tmp_path / f"notification-{notification_id}.eml").get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_message_id_is_stable_and_unique_per_notification(sessions, tmp_path) -> None:
    with sessions.begin() as session:
        customer = add_customer(session, "ada@example.com")
        first_bill, second_bill = (
            add_bill(session, customer, "INV-1").id,
            add_bill(session, customer, "INV-2").id,
        )
    first, second = queue_reminder(sessions, first_bill), queue_reminder(sessions, second_bill)

    with outbox_sender(sessions, tmp_path) as sender:
        sender.send(first)

    written = read_eml(tmp_path / f"notification-{first}.eml")["Message-ID"]
    assert (
        written
        == message_id_for(notification(sessions, first))
        == message_id_for(notification(sessions, first))
    )
    assert written.startswith(f"<notification-{first}.") and written.endswith("@jobdeck>")
    assert message_id_for(notification(sessions, second)) != written


# --- SMTP outcomes --------------------------------------------------------------------------------


def test_sent_over_smtp_with_the_notifications_message_id(sessions, smtp, smtp_sender) -> None:
    with sessions.begin() as session:
        bill_id = add_bill(session, add_customer(session, "ada@example.com"), "INV-1").id
    notification_id = queue_reminder(sessions, bill_id)

    assert smtp_sender.send(notification_id) == "sent"

    [received] = smtp.messages()
    assert received.recipients == ("ada@example.com",)
    assert received.sender == "billing@jobdeck.test"
    assert received.message_id == notification(sessions, notification_id).message_id
    assert received.message["Subject"] == "Bill INV-1 is overdue"


def test_deferred_once_is_queued_again_then_delivered_exactly_once(sessions, smtp, smtp_sender) -> None:
    # Given a recipient whose server answers the first attempt with 451
    with sessions.begin() as session:
        bill_id = add_bill(session, add_customer(session, "greylisted@example.com"), "INV-1").id
    notification_id = queue_reminder(sessions, bill_id)

    # When the first attempt fails
    with pytest.raises(MailDeferred, match="451") as raised:
        smtp_sender.send(notification_id)

    # Then the error is retryable and the notification waits in `queued`
    assert isinstance(raised.value, TransientError)
    row = notification(sessions, notification_id)
    assert row.state == "queued" and "451" in row.error

    # When the retry comes (and then a duplicate delivery of the same job)
    assert smtp_sender.send(notification_id) == "sent"
    assert smtp_sender.send(notification_id) == "sent"

    # Then the server took it exactly once
    assert smtp.message_id_counts() == {row.message_id: 1}
    assert smtp.refusals() == [("greylisted@example.com", 451)]
    assert notification(sessions, notification_id).error is None


def test_rejected_address_fails_for_good_and_is_not_tried_again(sessions, smtp, smtp_sender) -> None:
    with sessions.begin() as session:
        bill_id = add_bill(session, add_customer(session, "nobody@example.com"), "INV-1").id
    notification_id = queue_reminder(sessions, bill_id)

    with pytest.raises(MailRejected, match="550") as raised:
        smtp_sender.send(notification_id)
    again = smtp_sender.send(notification_id)

    assert isinstance(raised.value, PermanentError)  # JobRetries never retries these
    row = notification(sessions, notification_id)
    assert row.state == "failed" and "550" in row.error
    assert again == "failed"
    assert smtp.refusals() == [("nobody@example.com", 550)]
    assert smtp.messages() == []


def test_sending_found_on_redelivery_becomes_unknown_and_is_not_sent(
    sessions, smtp, smtp_sender, caplog
) -> None:
    # Given a notification a worker claimed and then died with (state `sending`)
    with sessions.begin() as session:
        bill_id = add_bill(session, add_customer(session, "ada@example.com"), "INV-1").id
    notification_id = queue_reminder(sessions, bill_id)
    with sessions.begin() as session:
        session.execute(
            update(Notification).where(Notification.id == notification_id).values(state="sending")
        )

    # When its job is delivered again
    with caplog.at_level(logging.ERROR, logger="jobs.billing.notifications"):
        state = smtp_sender.send(notification_id)

    # Then it is marked unknown, an error is logged, and nothing is sent
    assert state == "unknown"
    row = notification(sessions, notification_id)
    assert row.state == "unknown" and "not sent again" in row.error
    assert smtp.messages() == []
    assert any(f"Notification {notification_id}" in record.getMessage() for record in caplog.records)
    assert smtp_sender.send(notification_id) == "unknown"
    assert smtp.messages() == []


def test_a_batch_sends_the_rest_when_one_fails_and_its_retry_skips_what_was_sent(
    sessions, smtp, smtp_sender
) -> None:
    # Given three notifications: a good one, a greylisted one and a rejected one
    with sessions.begin() as session:
        bills = [
            add_bill(session, add_customer(session, email), f"INV-{index}").id
            for index, email in enumerate(["ada@example.com", "greylisted@example.com", "nobody@example.com"])
        ]
    ids = [queue_reminder(sessions, bill_id) for bill_id in bills]

    # When the batch runs, it goes through every one and then raises a retryable error
    with pytest.raises(TransientError, match="2 of 3"):
        smtp_sender.send_many(ids)
    states = [notification(sessions, id_).state for id_ in ids]
    assert states == ["sent", "queued", "failed"]

    # When the batch is retried, only the deferred one is sent
    assert smtp_sender.send_many(ids) == {"sent": 2, "failed": 1}
    assert [notification(sessions, id_).state for id_ in ids] == ["sent", "sent", "failed"]
    assert sorted(smtp.message_id_counts().values()) == [1, 1]


def test_only_permanent_failures_fail_the_batch_without_retry(sessions, smtp, smtp_sender) -> None:
    with sessions.begin() as session:
        bill_id = add_bill(session, add_customer(session, "nobody@example.com"), "INV-1").id
    notification_id = queue_reminder(sessions, bill_id)

    with pytest.raises(PermanentError, match="1 of 1"):
        smtp_sender.send_many([notification_id])


def test_unreachable_server_leaves_it_queued_and_never_shows_the_password(sessions) -> None:
    with sessions.begin() as session:
        bill_id = add_bill(session, add_customer(session, "ada@example.com"), "INV-1").id
    notification_id = queue_reminder(sessions, bill_id)
    address = SmtpServerAddress.from_url(f"smtp://mailer:s3cr%40t-pw@127.0.0.1:{free_port()}")
    sender = NotificationSender(
        sessions=sessions,
        transport=SmtpTransport(address, timeout=2),
        mail_from="b@x.test",
        timezone=SHANGHAI,
    )

    with pytest.raises(MailDeferred) as raised:
        sender.send(notification_id)

    assert address.password == "s3cr@t-pw"
    assert "s3cr" not in str(raised.value) and "mailer@127.0.0.1" in str(raised.value)
    assert notification(sessions, notification_id).state == "queued"


# --- clean-up -------------------------------------------------------------------------------------


def test_cleanup_deletes_only_old_sent_notifications(sessions) -> None:
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=91), now - timedelta(days=89)
    with sessions.begin() as session:
        customer = add_customer(session, "ada@example.com")
        rows = [
            ("sent", old),
            ("sent", old),
            ("sent", old),
            ("sent", recent),
            ("failed", old),
            ("unknown", old),
            ("queued", None),
        ]
        for index, (state, sent_at) in enumerate(rows):
            session.add(
                Notification(
                    customer_id=customer.id,
                    kind="generic",
                    dedup_key=f"k{index}",
                    subject="s",
                    state=state,
                    sent_at=sent_at,
                    created_at=old,
                )
            )

    deleted = delete_sent_notifications(sessions, sent_before=now - timedelta(days=90), batch_size=2)

    assert deleted == 3
    with sessions() as session:
        left = sorted((row.state, row.dedup_key) for row in session.scalars(select(Notification)))
    assert left == [("failed", "k4"), ("queued", "k6"), ("sent", "k3"), ("unknown", "k5")]
    assert delete_sent_notifications(sessions, sent_before=now - timedelta(days=90)) == 0


# --- through a real worker ------------------------------------------------------------------------


@pytest.mark.slow
def test_a_worker_retries_a_deferred_mail_and_never_retries_a_rejected_one(
    runtime, start_worker, worker_sessions, smtp
) -> None:
    import jobs.billing.notifications.actors  # noqa: F401  binds the actors to this test's broker

    # Given a greylisted and a rejected recipient
    with worker_sessions.begin() as session:
        later = add_bill(session, add_customer(session, "greylisted@example.com"), "INV-1").id
        never = add_bill(session, add_customer(session, "nobody@example.com"), "INV-2").id
    later_id, never_id = queue_reminder(worker_sessions, later), queue_reminder(worker_sessions, never)
    start_worker(modules=("jobs.billing.notifications.actors",), SMTP_URL=smtp.url)
    manager = TaskManager(broker=runtime.broker)

    # When a worker sends both
    delivered = manager.send_task("send_notification_email", [later_id])
    refused = manager.send_task("send_notification_email", [never_id])
    delivered_outcome = manager.wait_for_result(delivered, timeout=30)
    refused_outcome = manager.wait_for_result(refused, timeout=30)

    # Then the deferred one was retried and delivered once, the rejected one tried once and failed
    assert delivered_outcome.status == SUCCESS
    assert delivered_outcome.result == {"notification_id": later_id, "state": "sent"}
    assert refused_outcome.status == FAILURE and refused_outcome.error.startswith("MailRejected")
    assert smtp.message_id_counts() == {notification(worker_sessions, later_id).message_id: 1}
    assert sorted(smtp.refusals()) == [("greylisted@example.com", 451), ("nobody@example.com", 550)]
    assert notification(worker_sessions, never_id).state == "failed"
