"""Alerts: rules over the read model, evaluated once per period, repeats folded, sent to sinks.

The scheduler process evaluates SCHEDULER_RULES every ``JOBDECK_ALERT_INTERVAL`` seconds; the
workers' heartbeat threads evaluate WORKER_RULES (``no_scheduler``: a dead scheduler cannot
report its own death). Each evaluation is claimed in Redis, so replicas never send twice.

Repeats of one alert (same rule and subject, e.g. ``failure_rate`` of actor ``send_bill``) are
folded: the first is sent, repeats within ``JOBDECK_ALERT_FOLD_WINDOW`` are only counted, and
the next one sent after the window says how many were folded. The decision is one Lua call,
so two evaluators can never both send the same alert in one window.

Sinks: a webhook (JSON POST with a Slack-compatible ``text``) and e-mail through jobs.mail's
transport (SMTP when ``SMTP_URL`` is set, else the ``.eml`` outbox). Every alert is logged as
well. A failing sink is logged and never raises into the evaluator.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.error
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from jobs.errors import JobdeckError
from jobs.settings import (
    ALERT_RULES,
    DEFAULT_ALERT_FAILURE_RATE,
    DEFAULT_ALERT_FAILURE_RATE_MIN_TASKS,
    DEFAULT_ALERT_FAILURE_RATE_WINDOW,
    DEFAULT_ALERT_FOLD_WINDOW,
    DEFAULT_ALERT_INTERVAL,
    DEFAULT_ALERT_QUEUE_LATENCY,
    DEFAULT_ALERT_SCHEDULER_SILENCE,
    Settings,
)
from monitoring import keys
from monitoring.display import mask_secrets
from monitoring.records import QueueStats, TaskRecord, from_ms
from monitoring.store import TaskStore, now_ms, reply_text

logger = logging.getLogger(__name__)

#: Rules the scheduler process evaluates; the workers evaluate WORKER_RULES.
WORKER_RULES = ("no_scheduler",)
SCHEDULER_RULES = tuple(name for name in ALERT_RULES if name not in WORKER_RULES)
DEFAULT_WEBHOOK_TIMEOUT = 5.0
#: Seconds an alert e-mail may wait on the mail server (the notification jobs wait longer).
DEFAULT_MAIL_TIMEOUT = 10.0
#: How far back a "since the last evaluation" rule reads when it has never run, in seconds.
DEFAULT_FIRST_LOOKBACK = 15 * 60
#: Events younger than this (ms) are left to the next evaluation: a record whose time was taken
#: just before the cursor moved may still be on its way to Redis.
SETTLE_MS = 1_000
#: Most failed tasks or started tasks one evaluation loads.
MAX_LOADED = 500
#: Task ids and errors listed in one alert.
MAX_LISTED = 10
#: How long a fold record outlives its last send, in seconds.
FOLD_RECORD_TTL = 7 * 24 * 3600
#: How long the scheduler heartbeat is kept after the last tick, in seconds.
SCHEDULER_HEARTBEAT_TTL = 30 * 24 * 3600
FOLD_SCRIPT = """
-- KEYS[1]: the alert's fold record. ARGV: now (ms), fold window (ms), record ttl (ms).
-- Returns the repeats folded since the last send when the alert is to be sent now, else -1.
local now = tonumber(ARGV[1])
local sent = tonumber(redis.call('HGET', KEYS[1], 'sent_at'))
if sent and now - sent < tonumber(ARGV[2]) then
  redis.call('HINCRBY', KEYS[1], 'folded', 1)
  return -1
end
local folded = tonumber(redis.call('HGET', KEYS[1], 'folded') or '0')
redis.call('HSET', KEYS[1], 'sent_at', ARGV[1], 'folded', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return folded
"""


class AlertSinkError(JobdeckError):
    """Raised when a sink could not deliver an alert (the Alerter logs it; it never propagates)."""


@dataclass(frozen=True)
class Alert:
    """One alert raised by a rule; ``subject`` is what it is about (an actor, a queue, a worker)."""

    rule: str
    subject: str
    severity: str
    summary: str
    details: dict[str, Any] = field(default_factory=dict)

    def text(self, count_folded: int = 0) -> str:
        """One line for a chat channel or an e-mail subject."""
        text = f"[jobdeck] {self.severity.upper()} {self.rule} ({self.subject}): {self.summary}"
        if count_folded:
            text += (
                f" ({count_folded} repeat{'s' if count_folded != 1 else ''} folded since the last message)"
            )
        return text

    def payload(self, count_folded: int = 0) -> dict[str, Any]:
        """The webhook's JSON: Slack's ``text`` plus the structured fields; secrets masked."""
        return {
            "text": self.text(count_folded),
            "rule": self.rule,
            "subject": self.subject,
            "severity": self.severity,
            "summary": self.summary,
            "details": mask_secrets(self.details),
            "count_folded": count_folded,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }


@dataclass(frozen=True)
class SentAlert:
    """An alert that was sent, with the number of its repeats folded before it."""

    alert: Alert
    count_folded: int


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation did: ``claimed`` is False when another process had this period."""

    claimed: bool
    raised: list[Alert] = field(default_factory=list)
    sent: list[SentAlert] = field(default_factory=list)


@dataclass(frozen=True)
class AlertPolicy:
    """When rules fire and how often alerts are sent.

    Parameters:
      interval(int): seconds between evaluations (and the claim period). Default 60.
      fold_window(float): seconds during which repeats of a sent alert are only counted. Default 600.
      failure_rate(float): an actor's failure rate (0-1) above which it alerts. Default 0.5.
      failure_rate_window(int): seconds over which the failure rate is computed. Default 900.
      failure_rate_min_tasks(int): finished tasks in the window before the rate counts. Default 10.
      queue_latency(float): seconds the oldest waiting message may wait. Default 300.
      scheduler_silence(float): seconds without a scheduler heartbeat before alerting. Default 180.
      disabled(frozenset): names of rules that never fire. Default none.
    """

    interval: int = DEFAULT_ALERT_INTERVAL
    fold_window: float = DEFAULT_ALERT_FOLD_WINDOW
    failure_rate: float = DEFAULT_ALERT_FAILURE_RATE
    failure_rate_window: int = DEFAULT_ALERT_FAILURE_RATE_WINDOW
    failure_rate_min_tasks: int = DEFAULT_ALERT_FAILURE_RATE_MIN_TASKS
    queue_latency: float = DEFAULT_ALERT_QUEUE_LATENCY
    scheduler_silence: float = DEFAULT_ALERT_SCHEDULER_SILENCE
    disabled: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: Settings) -> AlertPolicy:
        return cls(
            interval=settings.alert_interval,
            fold_window=settings.alert_fold_window,
            failure_rate=settings.alert_failure_rate,
            failure_rate_window=settings.alert_failure_rate_window,
            failure_rate_min_tasks=settings.alert_failure_rate_min_tasks,
            queue_latency=settings.alert_queue_latency,
            scheduler_silence=settings.alert_scheduler_silence,
            disabled=settings.alerts_disabled,
        )


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
    """E-mails each alert to every recipient through jobs.mail (SMTP, else the .eml outbox).

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
        from jobs.mail import SmtpTransport, open_transport

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


class Alerter:
    """Evaluates alert rules, folds repeats and hands what is new to the sinks.

    Parameters:
      store(TaskStore): the monitoring store (claims, fold records, cursors).
      policy(AlertPolicy): thresholds, interval, fold window, disabled rules. Default AlertPolicy().
      sinks(Sequence[AlertSink]): where alerts go; every alert is logged as well. Default none.
      monitor(TaskMonitor | None): the read model, for the rules that read queues and stats.
      sessions(sessionmaker | None): the billing database, for ``notification_unknown``.
    """

    def __init__(
        self,
        *,
        store: TaskStore,
        policy: AlertPolicy | None = None,
        sinks: Sequence[AlertSink] = (),
        monitor=None,
        sessions=None,
    ) -> None:
        self.store = store
        self.client = store.client
        self.policy = policy or AlertPolicy()
        self.sinks = list(sinks)
        self.monitor = monitor
        self.sessions = sessions
        #: When this evaluator started (ms): no scheduler seen since then counts as silence.
        self.started_at = now_ms()
        self._fold = self.client.register_script(FOLD_SCRIPT)
        #: Reads shared by the rules of one evaluation (None outside an evaluation).
        self._shared: dict[str, Any] | None = None

    @classmethod
    def from_runtime(cls, runtime, *, store: TaskStore | None = None) -> Alerter:
        """An Alerter on a jobs.runtime.Runtime: its store, read model, database and settings."""
        return cls(
            store=store or runtime.store,
            policy=AlertPolicy.from_settings(runtime.settings),
            sinks=sinks_from_settings(runtime.settings),
            monitor=runtime.monitor,
            sessions=runtime.sessions,
        )

    def claim(self, rules: Sequence[str] = SCHEDULER_RULES) -> bool:
        """Claim this period's evaluation of ``rules``; False if another process has it."""
        name = "alerts" if tuple(rules) == SCHEDULER_RULES else "alerts:" + ",".join(rules)
        return self.store.claim(name, max(1, int(self.policy.interval)))

    def evaluate(self, rules: Sequence[str] = SCHEDULER_RULES, *, claim: bool = True) -> Evaluation:
        """Check ``rules`` once and send what is not folded; never raises.

        With ``claim`` (the default) nothing happens unless this process claims the period.
        """
        try:
            if claim and not self.claim(rules):
                return Evaluation(claimed=False)
        except Exception:
            logger.warning("Could not claim the alert evaluation.", exc_info=True)
            return Evaluation(claimed=False)
        self._shared = {}
        try:
            raised = [alert for name in rules for alert in self.check(name)]
        finally:
            self._shared = None
        sent = []
        for alert in raised:
            count_folded = self.dispatch(alert)
            if count_folded is not None:
                sent.append(SentAlert(alert, count_folded))
        return Evaluation(claimed=True, raised=raised, sent=sent)

    def check(self, rule: str) -> list[Alert]:
        """The alerts one rule raises now (none when it is disabled or cannot be read); sends nothing."""
        if rule in self.policy.disabled:
            return []
        try:
            return RULES[rule](self)
        except Exception as error:
            # One line, not a traceback: an unreachable database would repeat it every interval.
            reason = str(error).splitlines()[0] if str(error) else ""
            logger.warning("Alert rule %s could not be evaluated: %s: %s", rule, type(error).__name__, reason)
            return []

    def queue_stats(self) -> list[QueueStats]:
        """The queues' figures; read once per evaluation, however many rules look at them."""
        if self._shared is None:
            return self.monitor.get_queue_stats()
        if "queues" not in self._shared:
            self._shared["queues"] = self.monitor.get_queue_stats()
        return self._shared["queues"]

    def dispatch(self, alert: Alert) -> int | None:
        """Fold or send one alert: the repeats folded before it when sent, None when folded."""
        try:
            folded = self._fold(
                keys=[keys.alert_fold(alert.rule, alert.subject)],
                args=[now_ms(), int(self.policy.fold_window * 1000), FOLD_RECORD_TTL * 1000],
            )
        except Exception:
            logger.warning("Could not fold alert %s (%s).", alert.rule, alert.subject, exc_info=True)
            return None
        if int(folded) < 0:
            return None
        count_folded = int(folded)
        logger.warning("%s", alert.text(count_folded))
        for sink in self.sinks:
            try:
                sink.send(alert, count_folded)
            except Exception as error:
                # The sink's own message: sinks keep credentials out of it.
                logger.warning("Alert %s not sent by %s: %s", alert.rule, sink.name, error)
        return count_folded

    def advance_cursor(self, rule: str) -> tuple[int, int]:
        """Move ``rule``'s cursor to now (less SETTLE_MS); return the (since, until) it covers, in ms."""
        until = now_ms() - SETTLE_MS
        pipeline = self.client.pipeline(transaction=True)
        pipeline.get(keys.alert_cursor(rule))
        pipeline.set(keys.alert_cursor(rule), until)
        previous, _ = pipeline.execute()
        since = int(previous) if previous else until - DEFAULT_FIRST_LOOKBACK * 1000
        return since, until


def record_scheduler_heartbeat(store: TaskStore) -> None:
    """Note that a scheduler process is alive (it calls this every tick). One round trip."""
    store.client.set(keys.SCHEDULER_HEARTBEAT, now_ms(), ex=SCHEDULER_HEARTBEAT_TTL)


def last_scheduler_heartbeat(store: TaskStore) -> datetime | None:
    """When a scheduler process last ticked, or None if none did recently. One round trip."""
    return from_ms(reply_text(store.client.get(keys.SCHEDULER_HEARTBEAT)))


def record_missed_schedule(store: TaskStore, name: str, fire_time: datetime) -> bool:
    """Record that schedule ``name`` did not run at ``fire_time``; False if already recorded.

    The scheduler calls this; the ``missed_schedule`` rule reports it at its next evaluation.
    Entries are kept as long as failures are. One round trip.
    """
    member = json.dumps(
        {"schedule": name, "fire_time": fire_time.astimezone(UTC).isoformat()}, sort_keys=True
    )
    now = now_ms()
    pipeline = store.client.pipeline(transaction=False)
    pipeline.zadd(keys.MISSED_SCHEDULES, {member: now}, nx=True)
    pipeline.zremrangebyscore(keys.MISSED_SCHEDULES, "-inf", now - store.retention.failure * 1000)
    added, _ = pipeline.execute()
    return bool(added)


# The rules: each reads the store or the database and returns the alerts it raises now.


def task_failed(alerter: Alerter) -> list[Alert]:
    """Tasks that failed after their last retry since the last evaluation, one alert per actor."""
    since, until = alerter.advance_cursor("task_failed")
    if until <= since:
        return []
    groups = [
        fingerprint.decode()
        for fingerprint, raw in alerter.client.hscan_iter(keys.FAILURE_GROUPS)
        if json.loads(raw).get("last", 0) > since
    ]
    pipeline = alerter.client.pipeline(transaction=False)
    for fingerprint in groups:
        pipeline.zrangebyscore(keys.failure_group(fingerprint), f"({since}", until)
    task_ids = [member.decode() for members in pipeline.execute() for member in members]
    by_actor: dict[str, list[dict[str, str]]] = defaultdict(list)
    for record in alerter.store.load_many(task_ids[:MAX_LOADED]):
        by_actor[record.get("actor", "?")].append(record)
    alerts = []
    for actor, records in sorted(by_actor.items()):
        errors = sorted({f"{r.get('error_type', '')}: {r.get('error_message', '')}" for r in records})
        alerts.append(
            Alert(
                "task_failed",
                actor,
                "error",
                f"{_count(len(records), 'task')} of {actor} failed after the last retry",
                {
                    "actor": actor,
                    "failed": len(records),
                    "errors": errors[:MAX_LISTED],
                    "task_ids": [record["id"] for record in records][:MAX_LISTED],
                },
            )
        )
    return alerts


def failure_rate(alerter: Alerter) -> list[Alert]:
    """Actors whose failure rate over the window is above the threshold."""
    policy = alerter.policy
    alerts = []
    for actor, figures in alerter.monitor.get_task_stats(policy.failure_rate_window).items():
        finished = figures["succeeded"] + figures["failed"]
        if finished >= policy.failure_rate_min_tasks and figures["failure_rate"] > policy.failure_rate:
            alerts.append(
                Alert(
                    "failure_rate",
                    actor,
                    "warning",
                    f"{figures['failure_rate']:.0%} of {actor}'s tasks failed in the last "
                    f"{_duration(policy.failure_rate_window)} ({figures['failed']} of {finished}; "
                    f"threshold {policy.failure_rate:.0%})",
                    {
                        "actor": actor,
                        "failure_rate": figures["failure_rate"],
                        "failed": figures["failed"],
                        "finished": finished,
                        "window_seconds": policy.failure_rate_window,
                        "threshold": policy.failure_rate,
                    },
                )
            )
    return alerts


def queue_latency(alerter: Alerter) -> list[Alert]:
    """Queues whose oldest waiting message is older than the threshold."""
    threshold = alerter.policy.queue_latency
    return [
        Alert(
            "queue_latency",
            queue.name,
            "warning",
            f"the oldest message waiting in {queue.name} is {_duration(queue.latency)} old "
            f"(threshold {_duration(threshold)}; {queue.ready} waiting)",
            {"queue": queue.name, "latency_seconds": round(queue.latency, 1), "ready": queue.ready},
        )
        for queue in alerter.queue_stats()
        if queue.latency > threshold
    ]


def no_consumer(alerter: Alerter) -> list[Alert]:
    """Queues with messages ready to run and no live worker consuming them."""
    return [
        Alert(
            "no_consumer",
            queue.name,
            "critical",
            f"{_count(queue.ready, 'message')} waiting in {queue.name} and no live worker consumes it",
            {"queue": queue.name, "ready": queue.ready, "latency_seconds": round(queue.latency, 1)},
        )
        for queue in alerter.queue_stats()
        if queue.ready > 0 and queue.consumers == 0
    ]


def orphaned_tasks(alerter: Alerter) -> list[Alert]:
    """Tasks still STARTED on a worker that died, one alert per dead worker."""
    by_worker: dict[str, list[TaskRecord]] = defaultdict(list)
    for task in alerter.monitor.get_orphaned_tasks():
        by_worker[task.worker or "?"].append(task)
    return [
        Alert(
            "orphaned_tasks",
            worker,
            "warning",
            f"{_count(len(tasks), 'task')} left STARTED on worker {worker}, which died",
            {
                "worker": worker,
                "orphaned": len(tasks),
                "actors": sorted({task.task_name for task in tasks}),
                "task_ids": [task.task_id for task in tasks][:MAX_LISTED],
            },
        )
        for worker, tasks in sorted(by_worker.items())
    ]


def notification_unknown(alerter: Alerter) -> list[Alert]:
    """Notifications whose delivery is unknown: a person must check before anything is resent."""
    from sqlalchemy import func, select

    from jobs.models import Notification

    with alerter.sessions() as session:
        count = session.scalar(
            select(func.count()).select_from(Notification).where(Notification.state == "unknown")
        )
    if not count:
        return []
    return [
        Alert(
            "notification_unknown",
            "notifications",
            "warning",
            f"{_count(count, 'notification')} in state unknown: the mail server may or may not have "
            "taken them; check before sending again",
            {"count": count},
        )
    ]


def missed_schedule(alerter: Alerter) -> list[Alert]:
    """Schedules the scheduler recorded as missed since the last evaluation, one alert per schedule."""
    since, until = alerter.advance_cursor("missed_schedule")
    if until <= since:
        return []
    by_schedule: dict[str, list[str]] = defaultdict(list)
    for member in alerter.client.zrangebyscore(keys.MISSED_SCHEDULES, f"({since}", until):
        entry = json.loads(member)
        by_schedule[entry["schedule"]].append(entry["fire_time"])
    return [
        Alert(
            "missed_schedule",
            name,
            "error",
            f"schedule {name} missed {_count(len(times), 'run')} (last due {max(times)})",
            {"schedule": name, "missed": len(times), "fire_times": sorted(times)[-MAX_LISTED:]},
        )
        for name, times in sorted(by_schedule.items())
    ]


def no_scheduler(alerter: Alerter) -> list[Alert]:
    """No scheduler heartbeat for longer than the threshold (evaluated by workers)."""
    last = reply_text(alerter.client.get(keys.SCHEDULER_HEARTBEAT))
    reference = int(last) if last else alerter.started_at
    silent = (now_ms() - reference) / 1000
    threshold = alerter.policy.scheduler_silence
    if silent <= threshold:
        return []
    if last:
        summary = (
            f"no scheduler heartbeat for {_duration(silent)} (threshold {_duration(threshold)}): "
            "schedules are not firing"
        )
    else:
        summary = f"no scheduler heartbeat seen in {_duration(silent)}: is a scheduler process running?"
    return [
        Alert(
            "no_scheduler",
            "scheduler",
            "critical",
            summary,
            {
                "last_heartbeat": from_ms(last).isoformat() if last else None,
                "silent_seconds": round(silent),
                "threshold_seconds": threshold,
            },
        )
    ]


#: Every rule by name, in jobs.settings.ALERT_RULES order.
RULES: dict[str, Callable[[Alerter], list[Alert]]] = {
    "task_failed": task_failed,
    "failure_rate": failure_rate,
    "queue_latency": queue_latency,
    "no_consumer": no_consumer,
    "orphaned_tasks": orphaned_tasks,
    "notification_unknown": notification_unknown,
    "missed_schedule": missed_schedule,
    "no_scheduler": no_scheduler,
}


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)
