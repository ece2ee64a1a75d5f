"""Alerts: rules over the read model, evaluated once per period, repeats folded, sent to sinks.

The scheduler process evaluates SCHEDULER_RULES every ``JOBDECK_ALERT_INTERVAL`` seconds; the
workers' heartbeat threads evaluate WORKER_RULES (``no_scheduler``: a dead scheduler cannot
report its own death). Each evaluation is claimed in Redis, so replicas never send twice.

Repeats of one alert (same rule and subject, e.g. ``failure_rate`` of actor ``send_bill``) are
folded: the first is sent, repeats within ``JOBDECK_ALERT_FOLD_WINDOW`` are only counted, and
the next one sent after the window says how many were folded. The decision is one Lua call,
so two evaluators can never both send the same alert in one window.

Sinks: a webhook (JSON POST with a Slack-compatible ``text``) and e-mail through jobs.platform.mail's
transport (SMTP when ``SMTP_URL`` is set, else the ``.eml`` outbox). Every alert is logged as
well. A failing sink is logged and never raises into the evaluator.
"""

from monitoring.alerts.alerter import SCHEDULER_RULES, WORKER_RULES, Alerter
from monitoring.alerts.model import Alert, AlertPolicy, AlertSinkError, Evaluation, SentAlert
from monitoring.alerts.rules import RULES
from monitoring.alerts.schedule_records import (
    last_scheduler_heartbeat,
    record_missed_schedule,
    record_scheduler_heartbeat,
)
from monitoring.alerts.sinks import AlertSink, EmailSink, WebhookSink, sinks_from_settings

__all__ = [
    "RULES",
    "SCHEDULER_RULES",
    "WORKER_RULES",
    "Alert",
    "AlertPolicy",
    "AlertSink",
    "AlertSinkError",
    "Alerter",
    "EmailSink",
    "Evaluation",
    "SentAlert",
    "WebhookSink",
    "last_scheduler_heartbeat",
    "record_missed_schedule",
    "record_scheduler_heartbeat",
    "sinks_from_settings",
]
