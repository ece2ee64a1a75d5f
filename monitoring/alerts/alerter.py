"""The Alerter: evaluates rules once per period (claimed), folds repeats, hands the rest to sinks."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from jobs.platform import keys
from jobs.platform.defaults import ALERT_RULES
from jobs.platform.settings import Settings
from monitoring.alerts.model import Alert, AlertPolicy, Evaluation, SentAlert
from monitoring.alerts.rules import RULES
from monitoring.alerts.sinks import AlertSink, sinks_from_settings
from monitoring.records import QueueStats
from monitoring.store import TaskStore, now_ms

logger = logging.getLogger("monitoring.alerts")

#: Rules the workers evaluate: a dead scheduler cannot report its own death, nor the runs it
#: missed. The scheduler process evaluates the others, and missed_schedule as well (each missed
#: run is claimed once, and the rule's cursor moves atomically, so it is reported once).
WORKER_RULES = ("missed_schedule", "no_scheduler")
SCHEDULER_RULES = tuple(name for name in ALERT_RULES if name != "no_scheduler")
#: How far back a "since the last evaluation" rule reads when it has never run, in seconds.
DEFAULT_FIRST_LOOKBACK = 15 * 60
#: Events younger than this (ms) are left to the next evaluation: a record whose time was taken
#: just before the cursor moved may still be on its way to Redis.
SETTLE_MS = 1_000
#: How long a fold record outlives its last send, in seconds.
FOLD_RECORD_TTL = 7 * 24 * 3600
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


class Alerter:
    """Evaluates alert rules, folds repeats and hands what is new to the sinks.

    Parameters:
      store(TaskStore): the monitoring store (claims, fold records, cursors).
      policy(AlertPolicy): thresholds, interval, fold window, disabled rules. Default AlertPolicy().
      sinks(Sequence[AlertSink]): where alerts go; every alert is logged as well. Default none.
      monitor(TaskMonitor | None): the read model, for the rules that read queues and stats.
      count_unknown_notifications(callable | None): how many notifications are in state
        ``unknown``, for the rule of that name (the billing domain hands it in).
      detect_missed_schedules(callable | None): records the schedules' ticks nobody sent by their
        deadline (ScheduleManager.detect_missed), run before the ``missed_schedule`` rule reads.
    """

    def __init__(
        self,
        *,
        store: TaskStore,
        policy: AlertPolicy | None = None,
        sinks: Sequence[AlertSink] = (),
        monitor=None,
        count_unknown_notifications: Callable[[], int] | None = None,
        detect_missed_schedules: Callable[[], object] | None = None,
    ) -> None:
        self.store = store
        self.detect_missed_schedules = detect_missed_schedules
        self.client = store.client
        self.policy = policy or AlertPolicy()
        self.sinks = list(sinks)
        self.monitor = monitor
        self.count_unknown_notifications = count_unknown_notifications
        #: When this evaluator started (ms): no scheduler seen since then counts as silence.
        self.started_at = now_ms()
        self._fold = self.client.register_script(FOLD_SCRIPT)
        #: Reads shared by the rules of one evaluation (None outside an evaluation).
        self._shared: dict[str, Any] | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        store: TaskStore,
        monitor: Any,
        count_unknown_notifications: Callable[[], int] | None = None,
        detect_missed_schedules: Callable[[], object] | None = None,
    ) -> Alerter:
        """An Alerter with the configured policy and sinks."""
        return cls(
            store=store,
            policy=AlertPolicy.from_settings(settings),
            sinks=sinks_from_settings(settings),
            monitor=monitor,
            count_unknown_notifications=count_unknown_notifications,
            detect_missed_schedules=detect_missed_schedules,
        )

    def check_scheduler(self) -> None:
        """The workers' check (WORKER_RULES), once per period across every worker.

        The claim is one SET NX on the caller's thread; the evaluation and its sending run in a
        thread of their own, so that a slow webhook or mail server never delays a heartbeat.
        """
        if self.claim(WORKER_RULES):
            threading.Thread(
                target=self.evaluate,
                args=(WORKER_RULES,),
                kwargs={"claim": False},
                name="jobdeck-scheduler-check",
                daemon=True,
            ).start()

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
