"""What an alert is, what an evaluation did, and the policy that decides when rules fire."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from jobs.platform.defaults import (
    DEFAULT_ALERT_FAILURE_RATE,
    DEFAULT_ALERT_FAILURE_RATE_MIN_TASKS,
    DEFAULT_ALERT_FAILURE_RATE_WINDOW_S,
    DEFAULT_ALERT_FOLD_WINDOW_S,
    DEFAULT_ALERT_INTERVAL_S,
    DEFAULT_ALERT_QUEUE_LATENCY_S,
    DEFAULT_ALERT_SCHEDULER_SILENCE_S,
)
from jobs.platform.errors import JobdeckError
from jobs.platform.settings import Settings
from monitoring.redaction import mask_secrets


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

    interval: int = DEFAULT_ALERT_INTERVAL_S
    fold_window: float = DEFAULT_ALERT_FOLD_WINDOW_S
    failure_rate: float = DEFAULT_ALERT_FAILURE_RATE
    failure_rate_window: int = DEFAULT_ALERT_FAILURE_RATE_WINDOW_S
    failure_rate_min_tasks: int = DEFAULT_ALERT_FAILURE_RATE_MIN_TASKS
    queue_latency: float = DEFAULT_ALERT_QUEUE_LATENCY_S
    scheduler_silence: float = DEFAULT_ALERT_SCHEDULER_SILENCE_S
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
