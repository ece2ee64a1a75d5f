"""The e-mail jobs (queue ``email``): thin wrappers over :mod:`.sending` and :mod:`.cleanup`.

Imported by ``jobs.runtime.start()`` once the broker is set up (see ``ACTOR_MODULES``); the
outbox enqueues ``send_notification_batch`` by name, so nothing else needs this module.
"""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

import dramatiq
from periodiq import cron

from jobs.billing.notifications.cleanup import DEFAULT_RETENTION_DAYS, delete_sent_notifications
from jobs.billing.notifications.sending import NotificationSender
from jobs.billing.periods import parse_fire_time
from jobs.platform import queues
from jobs.platform.context import current
from jobs.platform.errors import PermanentError


@dramatiq.actor(queue_name=queues.EMAIL)
def send_notification_email(notification_id: int) -> dict[str, Any]:
    """Send one notification e-mail (at most once; see jobs.billing.notifications.sending)."""
    with NotificationSender.from_context(current()) as sender:
        return {"notification_id": notification_id, "state": sender.send(notification_id)}


@dramatiq.actor(queue_name=queues.EMAIL)
def send_notification_batch(notification_ids: list[int]) -> dict[str, Any]:
    """Send several notifications over one connection; returns counts per resulting state."""
    with NotificationSender.from_context(current()) as sender:
        return {"notifications": len(notification_ids), "states": sender.send_many(notification_ids)}


# Daily at 02:00; a scheduler back within 6 hours still runs the night's clean-up.
@dramatiq.actor(queue_name=queues.EMAIL, periodic=cron("0 2 * * *"), schedule_window=6 * 3600)
def cleanup_old_notifications(
    days: float = DEFAULT_RETENTION_DAYS, fire_time: str | None = None
) -> dict[str, Any]:
    """Delete sent notifications older than ``days`` before the fire time; returns how many."""
    if days < 0:
        raise PermanentError(f"days must not be negative, got {days}")
    sent_before = parse_fire_time(fire_time) - timedelta(days=days)
    deleted = delete_sent_notifications(current().sessions, sent_before=sent_before)
    return {"deleted": deleted, "sent_before": sent_before.astimezone(UTC).isoformat()}
