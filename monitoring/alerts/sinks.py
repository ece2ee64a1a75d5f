"""Where alerts go: a webhook (Slack-compatible JSON) and e-mail; a failing sink raises AlertSinkError."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from jobs.platform.mail import SmtpTransport, open_transport
from jobs.platform.settings import Settings
from monitoring.alerts.model import Alert, AlertSinkError
from monitoring.store import now_ms

DEFAULT_WEBHOOK_TIMEOUT = 5.0
#: Seconds an alert e-mail may wait on the mail server (the notification jobs wait longer).
DEFAULT_MAIL_TIMEOUT = 10.0


class AlertSink(Protocol):
    """Somewhere alerts go; ``send`` may raise, the Alerter logs it."""

    name: str

    def send(self, alert: Alert, count_folded: int) -> None: ...


class WebhookSink:
    """POSTs each alert as JSON (Slack-compatible ``text`` plus rule, subject, severity, details).

    Parameters:
      url(str): the http(s) address; its path is treated as a secret and never logged.
      timeout(float): seconds to connect and to wait for the answer. Default 5.
    """

    name = "webhook"

    def __init__(self, url: str, *, timeout: float = DEFAULT_WEBHOOK_TIMEOUT) -> None:
        self.url = url
        self.timeout = timeout

    def send(self, alert: Alert, count_folded: int) -> None:
        body = json.dumps(alert.payload(count_folded), default=str, ensure_ascii=False).encode()
        request = urllib.request.Request(
            self.url, data=body, method="POST", headers={"Content-Type": "application/json; charset=utf-8"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except urllib.error.HTTPError as error:
            raise AlertSinkError(f"{self} answered HTTP {error.code}") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", None) or error
            raise AlertSinkError(f"{self} cannot be reached: {reason}") from None

    def __str__(self) -> str:
        # A Slack webhook's path is its credential: logs show the host only.
        parts = urlsplit(self.url)
        return f"webhook {parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"


class EmailSink:
    """E-mails each alert to every recipient through jobs.platform.mail (SMTP, else the .eml outbox).

    Parameters:
      recipients(Sequence[str]): addresses.
      sender(str): the From address.
      smtp_url(str | None): the mail server, as SMTP_URL; None writes to ``outbox_dir``.
      outbox_dir(Path): the outbox folder.
      timeout(float): seconds per SMTP command. Default 10.
    """

    name = "email"

    def __init__(
        self,
        *,
        recipients: Sequence[str],
        sender: str,
        smtp_url: str | None,
        outbox_dir: Path,
        timeout: float = DEFAULT_MAIL_TIMEOUT,
    ) -> None:
        self.recipients = tuple(recipients)
        self.sender = sender
        self.smtp_url = smtp_url
        self.outbox_dir = outbox_dir
        self.timeout = timeout

    def send(self, alert: Alert, count_folded: int) -> None:
        transport = open_transport(self.smtp_url, self.outbox_dir)
        if isinstance(transport, SmtpTransport):
            transport.timeout = self.timeout
        failures = []
        try:
            for recipient in self.recipients:
                message = self.message(alert, count_folded, recipient)
                name = f"alert-{now_ms()}-{_safe(alert.rule)}-{uuid.uuid4().hex[:8]}"
                try:
                    transport.send(message, sender=self.sender, recipient=recipient, name=name)
                except Exception as error:  # one refused address must not stop the others
                    failures.append(f"{recipient}: {error}")
        finally:
            transport.close()
        if failures:
            raise AlertSinkError("e-mail not sent to " + "; ".join(failures))

    def message(self, alert: Alert, count_folded: int, recipient: str) -> EmailMessage:
        payload = alert.payload(count_folded)
        message = EmailMessage(policy=SMTP_POLICY)
        message["From"] = self.sender
        message["To"] = recipient
        message["Subject"] = payload["text"][:250]
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = make_msgid(domain="jobdeck.localhost")
        message.set_content(
            f"{payload['text']}\n\n"
            f"rule:         {alert.rule}\n"
            f"subject:      {alert.subject}\n"
            f"severity:     {alert.severity}\n"
            f"count folded: {count_folded}\n"
            f"at:           {payload['at']}\n\n"
            f"details:\n{json.dumps(payload['details'], indent=2, default=str, ensure_ascii=False)}\n"
        )
        return message

    def __str__(self) -> str:
        return f"e-mail to {len(self.recipients)} recipient(s)"


def sinks_from_settings(settings: Settings) -> list[AlertSink]:
    """The webhook when JOBDECK_ALERT_WEBHOOK_URL is set, e-mail when JOBDECK_ALERT_EMAILS is."""
    sinks: list[AlertSink] = []
    if settings.alert_webhook_url:
        sinks.append(WebhookSink(settings.alert_webhook_url))
    if settings.alert_emails:
        sinks.append(
            EmailSink(
                recipients=settings.alert_emails,
                sender=settings.mail_from,
                smtp_url=settings.smtp_url,
                outbox_dir=settings.outbox_dir,
            )
        )
    return sinks


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)
