"""Fixtures of the reminder tests: a recording SMTP server, a runtime sending to it, and a way to run
the e-mail batches the jobs enqueue in this process (so that every database backend is covered)."""

from __future__ import annotations

import pytest
from dramatiq import Message

from jobs.billing.notifications.actors import send_notification_batch
from tests.jobs.conftest import started
from tests.support.smtp import smtp_server


@pytest.fixture
def smtp():
    with smtp_server() as server:
        yield server


@pytest.fixture
def job_runtime(settings, database_url, engine, smtp):
    """A runtime on the test's database and SMTP server, as a worker would have."""
    yield from started(settings, database_url=database_url, smtp_url=smtp.url, smtp_rate=1000.0)


def run_queued_batches(runtime) -> int:
    """Take the send_notification_batch messages off the email queue and run them here; return how many."""
    client = runtime.broker.client
    payloads = client.hvals("dramatiq:email.msgs")
    client.delete("dramatiq:email", "dramatiq:email.msgs")
    for payload in payloads:
        message = Message.decode(payload)
        assert message.actor_name == "send_notification_batch"
        send_notification_batch.fn(*message.args, **message.kwargs)
    return len(payloads)
