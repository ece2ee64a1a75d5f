"""Alert rules against a real Redis, real workers, a real scheduler process, SQLite, a real
webhook receiver and a real SMTP server: each rule fires, repeats fold, replicas send once."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from jobs.billing.notifications import count_unknown_notifications
from jobs.platform import keys
from jobs.platform.defaults import ALERT_RULES
from jobs.platform.errors import SettingsError
from jobs.platform.settings import load_settings
from monitoring.alerts import (
    RULES,
    Alert,
    Alerter,
    AlertPolicy,
    EmailSink,
    WebhookSink,
    last_scheduler_heartbeat,
    record_missed_schedule,
    sinks_from_settings,
)
from tests.conftest import ROOT, process_environment, wait_for
from tests.monitoring.test_recorder import finished
from tests.support.smtp import smtp_server

pytestmark = pytest.mark.slow


@pytest.fixture
def environment(environment, webhook):
    """The suite's environment, with alerts going to this test's webhook receiver."""
    return {**environment, "JOBDECK_ALERT_WEBHOOK_URL": webhook.url}


def make_alerter(runtime, sinks=None, **policy) -> Alerter:
    """An Alerter on the test's runtime, with some thresholds changed."""
    return Alerter(
        store=runtime.store,
        policy=replace(AlertPolicy.from_settings(runtime.settings), **policy),
        sinks=sinks_from_settings(runtime.settings) if sinks is None else sinks,
        monitor=runtime.monitor,
        count_unknown_notifications=lambda: count_unknown_notifications(runtime.sessions),
    )


def posts_of(webhook, rule: str) -> list[dict]:
    return [post for post in webhook.posts() if post["rule"] == rule]


def test_every_rule_named_in_the_settings_is_implemented():
    assert tuple(RULES) == ALERT_RULES


def test_alert_settings_have_defaults_and_a_bad_value_names_its_variable(tmp_path):
    defaults = load_settings({"JOBDECK_VAR_DIR": str(tmp_path)}, dotenv=False)
    custom = load_settings(
        {
            "JOBDECK_ALERT_EMAILS": "ops@example.com, cfo@example.com",
            "JOBDECK_ALERTS_DISABLED": "no_consumer,queue_latency",
            "JOBDECK_ALERT_FAILURE_RATE": "0.25",
            "JOBDECK_ALERT_WEBHOOK_URL": "https://hooks.example.com/T000/B000/xyz",
        },
        dotenv=False,
    )

    assert defaults.alert_webhook_url is None and defaults.alert_emails == ()
    assert (defaults.alert_interval, defaults.alert_fold_window) == (60, 600)
    assert (defaults.alert_failure_rate, defaults.alert_failure_rate_window) == (0.5, 900)
    assert defaults.alert_failure_rate_min_tasks == 10
    assert (defaults.alert_queue_latency, defaults.alert_scheduler_silence) == (300, 180)
    assert defaults.alerts_disabled == frozenset()
    assert custom.alert_emails == ("ops@example.com", "cfo@example.com")
    assert custom.alerts_disabled == {"no_consumer", "queue_latency"}
    assert custom.alert_failure_rate == 0.25
    for variable, value, expected in [
        ("JOBDECK_ALERTS_DISABLED", "no_such_rule", "JOBDECK_ALERTS_DISABLED must name rules"),
        ("JOBDECK_ALERT_EMAILS", "ops", "JOBDECK_ALERT_EMAILS must be e-mail addresses"),
        ("JOBDECK_ALERT_FAILURE_RATE", "50", "JOBDECK_ALERT_FAILURE_RATE must be a fraction"),
        ("JOBDECK_ALERT_WEBHOOK_URL", "hooks.example.com", "JOBDECK_ALERT_WEBHOOK_URL must be a URL"),
        ("JOBDECK_ALERT_FOLD_WINDOW", "0", "JOBDECK_ALERT_FOLD_WINDOW must be greater than 0"),
    ]:
        with pytest.raises(SettingsError) as raised:
            load_settings({variable: value}, dotenv=False)
        assert str(raised.value).startswith(expected)


def test_a_final_failure_and_a_high_failure_rate_alert(runtime, start_worker, webhook):
    start_worker(JOBDECK_MAX_RETRIES="0")
    messages = [runtime.manager.send_task("flaky", [f"alert-{n}"]) for n in range(2)]
    for message in messages:
        assert finished(runtime, message.message_id).status == "FAILURE"
    alerter = make_alerter(runtime, failure_rate_min_tasks=2)
    time.sleep(1.1)  # failures younger than a second are left to the next evaluation

    first = alerter.evaluate(claim=False)
    second = alerter.evaluate(claim=False)

    [failed] = posts_of(webhook, "task_failed")
    assert failed["subject"] == "flaky" and failed["severity"] == "error"
    assert failed["details"]["failed"] == 2
    assert sorted(failed["details"]["task_ids"]) == sorted(m.message_id for m in messages)
    assert failed["details"]["errors"] == ["RuntimeError: attempt 1 failed on purpose"]
    assert failed["text"].startswith("[jobdeck] ERROR task_failed (flaky): 2 tasks of flaky failed")
    [rate] = posts_of(webhook, "failure_rate")
    assert rate["subject"] == "flaky"
    assert rate["details"]["failure_rate"] == 1.0 and rate["details"]["finished"] == 2
    assert {alert.rule for alert in first.raised} == {"task_failed", "failure_rate"}
    # The failures were read once; the rate still holds but its repeat is folded.
    assert [alert.rule for alert in second.raised] == ["failure_rate"] and second.sent == []


def test_a_task_on_a_killed_worker_alerts_as_orphaned(runtime, start_worker, webhook):
    worker = start_worker()
    message = runtime.manager.send_task("sleeper", ["orphan-alert"], {"seconds": 60})
    wait_for(lambda: runtime.monitor.get_task_status(message.message_id).status == "STARTED", timeout=20)
    worker.kill()
    wait_for(lambda: not any(record.alive for record in runtime.monitor.get_worker_stats()), timeout=15)

    make_alerter(runtime).evaluate(claim=False)

    [orphaned] = posts_of(webhook, "orphaned_tasks")
    assert orphaned["details"]["task_ids"] == [message.message_id]
    assert orphaned["details"]["actors"] == ["sleeper"]
    assert orphaned["subject"] == runtime.monitor.get_task_status(message.message_id).worker


def test_waiting_work_without_a_consumer_alerts_latency_and_no_consumer(runtime, webhook):
    runtime.manager.send_task("test_task", ["nobody-listens"])
    time.sleep(1.2)

    make_alerter(runtime, queue_latency=1).evaluate(claim=False)

    [latency] = posts_of(webhook, "queue_latency")
    [consumer] = posts_of(webhook, "no_consumer")
    assert latency["subject"] == "default" and latency["details"]["latency_seconds"] >= 1
    assert consumer["subject"] == "default" and consumer["severity"] == "critical"
    assert consumer["details"]["ready"] == 1


def test_a_notification_in_state_unknown_alerts(runtime, environment, webhook):
    from jobs.billing.models import Customer, Notification
    from jobs.platform.database import upgrade

    upgrade(environment["DATABASE_URL"])
    with runtime.sessions.begin() as session:
        customer = Customer(name="Ada", email="ada@example.com", created_at=datetime.now(UTC))
        session.add(customer)
        session.flush()
        session.add(
            Notification(
                customer_id=customer.id, kind="generic", dedup_key="k1", subject="s", state="unknown"
            )
        )
        session.add(
            Notification(customer_id=customer.id, kind="generic", dedup_key="k2", subject="s", state="sent")
        )

    make_alerter(runtime).evaluate(claim=False)

    [unknown] = posts_of(webhook, "notification_unknown")
    assert unknown["details"] == {"count": 1}
    assert "1 notification in state unknown" in unknown["text"]


def test_a_missed_schedule_recorded_by_the_scheduler_alerts_once(runtime, webhook):
    fire_time = datetime(2025, 3, 1, 1, 0, tzinfo=UTC)
    assert record_missed_schedule(runtime.store, "monthly_bills", fire_time)
    assert not record_missed_schedule(runtime.store, "monthly_bills", fire_time)
    alerter = make_alerter(runtime)
    time.sleep(1.1)

    alerter.evaluate(claim=False)
    again = alerter.evaluate(claim=False)

    [missed] = posts_of(webhook, "missed_schedule")
    assert missed["subject"] == "monthly_bills"
    assert missed["details"]["fire_times"] == ["2025-03-01T01:00:00+00:00"]
    assert "missed_schedule" not in {alert.rule for alert in again.raised}


def test_repeats_are_folded_and_the_next_message_counts_them(runtime, webhook):
    runtime.manager.send_task("test_task", ["folded"])
    alerter = make_alerter(runtime, fold_window=2)

    alerter.evaluate(claim=False)
    alerter.evaluate(claim=False)
    folded_meanwhile = posts_of(webhook, "no_consumer")
    time.sleep(2.1)
    alerter.evaluate(claim=False)

    assert [post["count_folded"] for post in folded_meanwhile] == [0]
    first, after_window = posts_of(webhook, "no_consumer")
    assert after_window["count_folded"] == 1
    assert after_window["text"].endswith("(1 repeat folded since the last message)")


def test_two_evaluators_racing_for_one_period_send_once(runtime, webhook):
    runtime.manager.send_task("test_task", ["raced"])
    alerters = [make_alerter(runtime, interval=60) for _ in range(2)]
    # Both start in the same minute (not right at its end).
    if time.time() % 60 > 55:
        time.sleep(60 - time.time() % 60)
    barrier = threading.Barrier(2)
    evaluations = []

    def evaluate(alerter):
        barrier.wait()
        evaluations.append(alerter.evaluate())

    threads = [threading.Thread(target=evaluate, args=(alerter,)) for alerter in alerters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(evaluation.claimed for evaluation in evaluations) == [False, True]
    assert len(posts_of(webhook, "no_consumer")) == 1


def test_a_disabled_rule_sends_nothing(runtime, webhook, environment):
    runtime.manager.send_task("test_task", ["disabled"])
    settings = load_settings({**environment, "JOBDECK_ALERTS_DISABLED": "no_consumer"}, dotenv=False)

    evaluation = make_alerter(runtime, disabled=settings.alerts_disabled).evaluate(claim=False)

    assert "no_consumer" not in {alert.rule for alert in evaluation.raised}
    assert posts_of(webhook, "no_consumer") == []
    assert make_alerter(runtime).check("no_consumer")  # the same state alerts when the rule is on


def test_alerts_are_mailed_over_smtp_with_secrets_masked(runtime, webhook):
    with smtp_server() as server:
        settings = runtime.settings.with_overrides(
            smtp_url=server.url, alert_emails=("ops@example.com", "cfo@example.com")
        )
        alerter = make_alerter(runtime, sinks=sinks_from_settings(settings))
        alert = Alert("task_failed", "charge_card", "error", "1 task failed", {"password": "hunter2", "n": 1})

        assert alerter.dispatch(alert) == 0

        messages = server.messages()
    assert sorted(recipient for m in messages for recipient in m.recipients) == [
        "cfo@example.com",
        "ops@example.com",
    ]
    body = messages[0].message.get_body(("plain",)).get_content()
    assert messages[0].message["Subject"].startswith("[jobdeck] ERROR task_failed (charge_card)")
    assert '"password": "***"' in body and "hunter2" not in body
    [post] = webhook.posts()
    assert post["details"] == {"password": "***", "n": 1} and "hunter2" not in repr(post)


def test_a_failing_sink_is_logged_and_the_others_still_send(runtime, tmp_path, caplog):
    dead_webhook = WebhookSink("http://127.0.0.1:9/hooks/T0/secret-path", timeout=1)
    outbox = EmailSink(
        recipients=("ops@example.com",),
        sender="alerts@example.com",
        smtp_url=None,
        outbox_dir=tmp_path / "out",
    )
    alerter = make_alerter(runtime, sinks=[dead_webhook, outbox])

    with caplog.at_level(logging.WARNING, logger="monitoring.alerts"):
        count = alerter.dispatch(Alert("no_consumer", "default", "critical", "1 message waiting"))

    assert count == 0
    assert len(list((tmp_path / "out").glob("alert-*.eml"))) == 1
    assert "not sent by webhook: webhook http://127.0.0.1:9 cannot be reached" in caplog.text
    assert "secret-path" not in caplog.text


def test_a_worker_reports_no_scheduler_when_the_scheduler_stops(
    runtime, environment, start_worker, webhook, tmp_path
):
    fast = {"JOBDECK_ALERT_INTERVAL": "1", "JOBDECK_ALERT_SCHEDULER_SILENCE": "3"}
    record_missed_schedule(runtime.store, "daily_report", datetime(2025, 3, 1, tzinfo=UTC))
    log_path = tmp_path / "scheduler.log"
    with log_path.open("wb") as log:
        scheduler = subprocess.Popen(
            [sys.executable, "-m", "scheduler"],
            cwd=ROOT,
            env=process_environment({**environment, **fast}),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: last_scheduler_heartbeat(runtime.store), timeout=20)
        # The scheduler evaluates the rules: the missed run it was told about reaches the webhook.
        wait_for(lambda: posts_of(webhook, "missed_schedule"), timeout=10)
        start_worker(**fast)
        time.sleep(2)
        assert posts_of(webhook, "no_scheduler") == []

        scheduler.send_signal(signal.SIGTERM)
        assert scheduler.wait(timeout=10) == 0
        [alert] = wait_for(lambda: posts_of(webhook, "no_scheduler"), timeout=15)
    finally:
        scheduler.kill()

    assert alert["subject"] == "scheduler" and alert["severity"] == "critical"
    assert alert["details"]["silent_seconds"] >= 3
    time.sleep(2)
    assert len(posts_of(webhook, "no_scheduler")) == 1  # checked every second, folded
    assert runtime.store.client.exists(keys.SCHEDULER_HEARTBEAT)
