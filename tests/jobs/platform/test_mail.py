"""Mail transports, the rate limiter and the SMTP URL, against a real SMTP server on loopback."""

from __future__ import annotations

import threading
import time
from datetime import date
from email import message_from_bytes, policy

import pytest

from jobs.billing import TEMPLATES_DIR
from jobs.platform.mail import (
    MailDeferred,
    MailError,
    MailRejected,
    MailTemplates,
    OutboxTransport,
    RateLimiter,
    RenderedMail,
    SmtpServerAddress,
    SmtpTransport,
    build_message,
    open_transport,
)
from tests.support.smtp import smtp_server


def a_message(message_id: str = "<m1@jobdeck>", recipient: str = "ada@example.com"):
    return build_message(
        RenderedMail(subject="Hello 你好", text="plain body\n", html="<p>html body</p>\n"),
        sender="billing@jobdeck.test",
        recipient=recipient,
        recipient_name="Ada",
        message_id=message_id,
        date="Mon, 10 Mar 2025 09:00:00 +0800",
    )


def test_smtp_url_is_parsed_and_shown_without_its_password() -> None:
    address = SmtpServerAddress.from_url("smtp://mail%40user:p%3Ass@mail.example.com:2525")

    assert (address.host, address.port, address.implicit_tls) == ("mail.example.com", 2525, False)
    assert (address.username, address.password) == ("mail@user", "p:ss")
    assert "p:ss" not in str(address) and "p%3Ass" not in str(address)
    assert SmtpServerAddress.from_url("smtps://relay.example.com").port == 465
    assert SmtpServerAddress.from_url("smtp://relay.example.com").port == 25
    with pytest.raises(MailError, match="SMTP_URL"):
        SmtpServerAddress.from_url("http://relay.example.com")


def test_no_smtp_url_means_the_outbox_folder(tmp_path) -> None:
    assert isinstance(open_transport(None, tmp_path), OutboxTransport)
    assert isinstance(open_transport("smtp://127.0.0.1:25", tmp_path), SmtpTransport)


def test_outbox_writes_a_complete_eml_atomically(tmp_path) -> None:
    transport = OutboxTransport(tmp_path / "outbox")

    transport.send(
        a_message(), sender="billing@jobdeck.test", recipient="ada@example.com", name="notification-7"
    )

    assert [path.name for path in (tmp_path / "outbox").iterdir()] == ["notification-7.eml"]
    written = message_from_bytes(
        (tmp_path / "outbox" / "notification-7.eml").read_bytes(), policy=policy.default
    )
    assert written["Message-ID"] == "<m1@jobdeck>"
    assert written["Subject"] == "Hello 你好"
    assert written.get_body(("html",)).get_content().rstrip() == "<p>html body</p>"


def test_smtp_transport_delivers_over_one_connection() -> None:
    with smtp_server() as server:
        transport = SmtpTransport(SmtpServerAddress.from_url(server.url), timeout=5)
        for number in range(3):
            transport.send(
                a_message(f"<m{number}@jobdeck>"),
                sender="billing@jobdeck.test",
                recipient="ada@example.com",
                name="x",
            )
        transport.close()

    assert server.message_id_counts() == {"<m0@jobdeck>": 1, "<m1@jobdeck>": 1, "<m2@jobdeck>": 1}
    assert server.messages()[0].message.get_body(("plain",)).get_content().rstrip() == "plain body"


def test_smtp_transport_tells_deferred_from_rejected_and_keeps_going() -> None:
    with smtp_server(defer_once={"later@example.com"}, reject={"nobody@example.com"}) as server:
        transport = SmtpTransport(SmtpServerAddress.from_url(server.url), timeout=5)
        send = lambda message_id, to: transport.send(  # noqa: E731
            a_message(message_id, to), sender="billing@jobdeck.test", recipient=to, name="x"
        )
        with pytest.raises(MailDeferred, match="451"):
            send("<a@jobdeck>", "later@example.com")
        with pytest.raises(MailRejected, match="550"):
            send("<b@jobdeck>", "nobody@example.com")
        # The same connection still works after both refusals.
        send("<a@jobdeck>", "later@example.com")
        transport.close()

    assert server.message_id_counts() == {"<a@jobdeck>": 1}


def test_rate_limiter_spaces_calls_across_threads() -> None:
    limiter = RateLimiter(20)  # one call every 50 ms
    times: list[float] = []
    lock = threading.Lock()

    def call() -> None:
        limiter.wait()
        with lock:
            times.append(time.monotonic())

    threads = [threading.Thread(target=call) for _ in range(8)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # The k-th call never returns before its slot, k intervals after the first; a loaded machine
    # may wake a caller late (so two can return close together), never early.
    times.sort()
    assert all(at - started >= index * 0.05 - 0.01 for index, at in enumerate(times))


def test_the_process_shares_one_limiter_per_rate(runtime) -> None:
    assert runtime.rate_limiter(7.0) is runtime.rate_limiter(7.0)
    assert runtime.rate_limiter(7.0) is not runtime.rate_limiter(8.0)
    with pytest.raises(ValueError):
        RateLimiter(0)


def test_every_kind_has_templates_in_every_locale() -> None:
    templates = MailTemplates(TEMPLATES_DIR / "notifications")
    context = {
        "customer_name": "Ada",
        "bill_number": "INV-1",
        "amount": "1.00 USD",
        "due_date": date(2025, 3, 1),
        "subject": "Hello",
        "body": "First.\n\nSecond.",
    }
    for locale in ("en", "zh-CN"):
        for kind in ("due_soon", "overdue", "generic"):
            rendered = templates.render(locale, kind, context)
            assert rendered.subject and "\n" not in rendered.subject
            assert "Ada" in rendered.text and "Ada" in rendered.html
