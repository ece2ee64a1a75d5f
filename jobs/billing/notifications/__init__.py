"""Customer e-mail: the notification outbox and the jobs that send and clean it (queue ``email``).

The reminder policy (:mod:`.policy`) says which reminder a bill is owed: due soon once, overdue
on days 1, 7, 14 and 30. A notification row is written first (``create_bill_reminders``, which
records the step in ``reminders_sent`` so that it is never owed again, whatever clean-up deletes),
then put on the queue by ``dispatch_queued_notifications`` once its transaction commits (a
transactional outbox: a crash in between leaves a ``queued`` row that the next dispatch picks up).
Sending follows ``queued → sending → sent`` with compare-and-set UPDATEs under the sender's claim
(:mod:`.claims`), so that Dramatiq's at-least-once delivery never becomes "at least once" for the
customer: only the claim's owner moves its row on; another sender waits for it, and one that finds
a stale claim (its owner stopped) cannot know whether the server took the message, so it marks
the row ``unknown`` for a person to check instead of sending it again.

The modules: :mod:`.policy` (the steps), :mod:`.outbox` (writing and dispatching rows),
:mod:`.claims` and :mod:`.sending` (the state machine of one e-mail), :mod:`.cleanup` (deleting
old rows) and :mod:`.actors` (the jobs). The actors are left out here: their module binds to the
broker, so only ``jobs.runtime.start()`` imports it.
"""

from jobs.billing.models import BILL_REMINDER_KINDS
from jobs.billing.notifications.claims import Claimant, NotificationBusy
from jobs.billing.notifications.cleanup import delete_sent_notifications
from jobs.billing.notifications.outbox import create_bill_reminders, dispatch_queued_notifications
from jobs.billing.notifications.policy import DUE_SOON_STEP, OVERDUE_REMINDER_DAYS
from jobs.billing.notifications.sending import (
    NotificationSender,
    NotificationsNotSent,
    count_unknown_notifications,
    default_templates,
    message_id_for,
)

__all__ = [
    "BILL_REMINDER_KINDS",
    "DUE_SOON_STEP",
    "OVERDUE_REMINDER_DAYS",
    "Claimant",
    "NotificationBusy",
    "NotificationSender",
    "NotificationsNotSent",
    "count_unknown_notifications",
    "create_bill_reminders",
    "default_templates",
    "delete_sent_notifications",
    "dispatch_queued_notifications",
    "message_id_for",
]
