"""The names that stored messages and history refer to, and the process context, survive the layout."""

from __future__ import annotations

import subprocess
import sys

from jobs.platform import keys
from jobs.platform.queues import QUEUES
from tests.conftest import ROOT

#: Every actor with its queue, as messages queued by earlier releases name them.
ACTOR_QUEUES = {
    "backup_database": "default",
    "calculate_monthly_revenue": "finance",
    "check_pending_bills": "finance",
    "cleanup_cache": "default",
    "cleanup_expired_data": "default",
    "cleanup_old_notifications": "email",
    "export_data": "default",
    "generate_daily_report": "reports",
    "generate_hourly_report": "reports",
    "generate_monthly_report": "reports",
    "generate_weekly_report": "reports",
    "long_running_task": "default",
    "send_bill_reminders": "finance",
    "send_notification_batch": "email",
    "send_notification_email": "email",
    "test_task": "default",
}


def test_every_actor_keeps_its_name_and_queue(runtime) -> None:
    declared = {
        name: runtime.broker.get_actor(name).queue_name for name in runtime.broker.get_declared_actors()
    }

    assert {name: declared.get(name) for name in ACTOR_QUEUES} == ACTOR_QUEUES
    assert set(QUEUES) == {"finance", "reports", "email", "default"}
    assert set(QUEUES) <= set(runtime.broker.get_declared_queues())


def test_stored_records_keep_their_key_names() -> None:
    assert keys.PREFIX == "jobdeck:"
    assert keys.task("abc") == "jobdeck:task:abc"
    assert keys.history_by("actor", "test_task") == "jobdeck:history:actor:test_task"
    assert keys.RESULTS_NAMESPACE == "jobdeck:result"


def test_reading_the_context_before_start_is_an_error_not_a_quiet_broker() -> None:
    code = (
        "from jobs.platform.context import current\n"
        "from jobs.platform.errors import NotStarted\n"
        "try:\n"
        "    current()\n"
        "except NotStarted as error:\n"
        "    print('refused:', error)\n"
        "import dramatiq.broker\n"
        "print('global broker:', dramatiq.broker.global_broker)\n"
    )

    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert "refused: jobdeck is not started in this process" in result.stdout
    assert "global broker: None" in result.stdout
