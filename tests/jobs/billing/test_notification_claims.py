"""The double-send guard never leaves an e-mail unsent: only the sender owning a claim moves its row.

Real parts: an SMTP server on loopback whose DATA answer is held back (so that a second batch can
arrive while the first is being sent), worker processes (one of them SIGKILLed mid-send), Redis and
the databases. The server's own log is the evidence of what was sent.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from jobs.billing.models import Notification
from jobs.billing.notifications import NotificationSender
from jobs.platform.database import make_session_factory
from jobs.platform.errors import TransientError
from jobs.platform.mail import MailDeferred, SmtpServerAddress, SmtpTransport
from monitoring.actions import SUCCESS, TaskManager
from tests.conftest import wait_for
from tests.support.billing import add_bill, add_customer, add_reminder
from tests.support.smtp import RecordingSmtpServer

SHANGHAI = ZoneInfo("Asia/Shanghai")
GREYLISTED = "greylisted@example.com"


@contextmanager
def slow_smtp_server(
    *, answer_after: float, defer_once: tuple[str, ...] = ()
) -> Iterator[RecordingSmtpServer]:
    """The recording SMTP server, answering each DATA only ``answer_after`` seconds after taking it."""
    server = RecordingSmtpServer(defer_once=defer_once)
    # aiosmtpd looks the hooks up on the handler per connection; holding DATA back keeps the
    # sender inside its SMTP transaction, with its row in `sending`, for as long as the test needs.
    handler = server._handler
    answer = handler.handle_DATA

    async def handle_data_slowly(smtp, session, envelope):
        await asyncio.sleep(answer_after)
        return await answer(smtp, session, envelope)

    handler.handle_DATA = handle_data_slowly
    server.start()
    try:
        yield server
    finally:
        server.stop()


def one_reminder(sessions: sessionmaker[Session], email: str) -> int:
    with sessions.begin() as session:
        bill = add_bill(session, add_customer(session, email), "INV-1")
        return add_reminder(session, bill).id


def row(sessions: sessionmaker[Session], notification_id: int) -> Notification:
    with sessions() as session:
        return session.get(Notification, notification_id)


def state_of(sessions: sessionmaker[Session], notification_id: int) -> str:
    return row(sessions, notification_id).state


def smtp_sender(sessions: sessionmaker[Session], smtp: RecordingSmtpServer, **options) -> NotificationSender:
    transport = SmtpTransport(SmtpServerAddress.from_url(smtp.url), timeout=10)
    return NotificationSender(
        sessions=sessions, transport=transport, mail_from="billing@jobdeck.test", timezone=SHANGHAI, **options
    )


@pytest.fixture
def sessions(engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


# --- through real workers --------------------------------------------------------------------------


@pytest.mark.slow
def test_a_send_deferred_while_another_batch_arrives_ends_sent_exactly_once(
    runtime, start_worker, worker_sessions
):
    notification_id = one_reminder(worker_sessions, GREYLISTED)
    with slow_smtp_server(answer_after=2, defer_once=(GREYLISTED,)) as smtp:
        start_worker(threads=2, SMTP_URL=smtp.url)
        manager = TaskManager(broker=runtime.broker)

        # Given a batch in the middle of sending the reminder (its row in `sending`)
        first = manager.send_task("send_notification_batch", [[notification_id]])
        wait_for(lambda: state_of(worker_sessions, notification_id) == "sending", timeout=20, interval=0.02)

        # When the same batch is dispatched again while the server is about to defer the first try
        second = manager.send_task("send_notification_batch", [[notification_id]])
        outcomes = [manager.wait_for_result(message, timeout=60) for message in (first, second)]

        # Then both tasks succeed, the reminder is `sent`, and the server took it exactly once
        assert [outcome.status for outcome in outcomes] == [SUCCESS, SUCCESS], outcomes
        sent = row(worker_sessions, notification_id)
        assert sent.state == "sent", (sent.state, sent.error)
        assert smtp.message_id_counts() == {sent.message_id: 1}
        assert smtp.refusals() == [(GREYLISTED, 451)]


@pytest.mark.slow
def test_the_claim_of_a_sender_killed_mid_send_is_taken_over_and_never_sent_twice(
    runtime, start_worker, worker_sessions
):
    notification_id = one_reminder(worker_sessions, "ada@example.com")
    with slow_smtp_server(answer_after=6) as smtp:
        first = start_worker(SMTP_URL=smtp.url)
        manager = TaskManager(broker=runtime.broker)

        # Given a worker killed while the server was taking the reminder
        message = manager.send_task("send_notification_batch", [[notification_id]])
        wait_for(lambda: state_of(worker_sessions, notification_id) == "sending", timeout=20, interval=0.02)
        first.kill()

        # When another worker takes its message over
        start_worker(SMTP_URL=smtp.url)
        outcome = manager.wait_for_result(message, timeout=30)

        # Then the dead sender's claim was taken over: marked `unknown` for a person, not sent again
        assert outcome.status == SUCCESS, outcome.error
        taken_over = row(worker_sessions, notification_id)
        assert taken_over.state == "unknown"
        assert "not sent again" in taken_over.error
        time.sleep(6)  # the server finishes taking the killed sender's message
        assert sum(smtp.message_id_counts().values()) <= 1


# --- one sender against another, in this process ---------------------------------------------------------


def test_a_live_senders_claim_is_left_to_it_and_the_other_sender_retries(sessions):
    # Given a sender in the middle of handing the reminder to a server that will defer it
    notification_id = one_reminder(sessions, GREYLISTED)
    with slow_smtp_server(answer_after=1.5, defer_once=(GREYLISTED,)) as smtp:
        owner, other = smtp_sender(sessions, smtp), smtp_sender(sessions, smtp)
        outcome: list[BaseException] = []
        sending = threading.Thread(target=lambda: _record_error(outcome, owner.send, notification_id))
        sending.start()
        wait_for(lambda: state_of(sessions, notification_id) == "sending", timeout=10, interval=0.01)

        # When another sender meets the row meanwhile
        with pytest.raises(TransientError):
            other.send(notification_id)
        sending.join()

        # Then it left the row alone; the owner's deferral put it back in `queued` for the retry
        assert isinstance(outcome[0], MailDeferred)
        assert state_of(sessions, notification_id) == "queued"
        assert other.send(notification_id) == "sent"
        assert owner.send(notification_id) == "sent"
        assert smtp.message_id_counts() == {row(sessions, notification_id).message_id: 1}
        owner.close()
        other.close()


def test_a_claim_older_than_the_staleness_bound_is_taken_over(sessions):
    # Given a reminder claimed ten minutes ago by a sender that never finished
    notification_id = one_reminder(sessions, "ada@example.com")
    with sessions.begin() as session:
        session.execute(
            update(Notification)
            .where(Notification.id == notification_id)
            .values(
                state="sending",
                claim_token="a-dead-senders-claim",
                claimed_at=datetime.now(UTC) - timedelta(minutes=10),
                claimed_by="dead-broker:4242",
            )
        )
    with (
        slow_smtp_server(answer_after=0) as smtp,
        smtp_sender(sessions, smtp, claim_stale_after=timedelta(minutes=5)) as sender,
    ):
        # When a sender meets it
        state = sender.send(notification_id)

        # Then it takes the claim over and marks the row `unknown` (the server may have it), naming the owner
        assert state == "unknown"
        taken_over = row(sessions, notification_id)
        assert "dead-broker:4242" in taken_over.error and "not sent again" in taken_over.error
        assert smtp.messages() == []


def _record_error(errors: list[BaseException], function, *args) -> None:
    try:
        function(*args)
    except BaseException as error:  # noqa: BLE001  the test thread hands it to the test
        errors.append(error)
