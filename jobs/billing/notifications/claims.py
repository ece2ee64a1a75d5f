"""Who may move a notification on from ``sending``: the claim its sender wrote, and when it is stale.

The sender that moves a row from ``queued`` to ``sending`` writes a claim: a token only it knows,
the time, its process (broker id:pid) and the message it is running. Every later change it makes
checks the token, so it alone records how its send went — also over an ``unknown`` written by a
sender that judged its claim stale: the owner knows better than the guess. Any other sender that
meets the row leaves it to its owner (:class:`NotificationBusy`: it tries again later), unless the
claim is stale (:func:`stale_reason`):

- the claim was made for the very message now running again: Dramatiq delivered it again because
  the run that claimed stopped (its worker died);
- the claim is older than ``stale_after``, longer than any SMTP hand-over can take;
- the claim has no time: a row left in ``sending`` before claims were recorded.

A stale claim is taken over and the row marked ``unknown`` for a person: the mail server may or may
not have taken the message, and sending it again could deliver it twice.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from dramatiq.middleware import CurrentMessage

from jobs.billing.models import Notification, utc_now
from jobs.platform.context import JobContext
from jobs.platform.errors import TransientError
from jobs.platform.locks import process_name
from jobs.platform.mail import DEFAULT_SMTP_TIMEOUT

#: A claim this old is stale: well past the longest hand-over, MAIL, RCPT and DATA at up to
#: DEFAULT_SMTP_TIMEOUT seconds each.
DEFAULT_CLAIM_STALE_AFTER = timedelta(seconds=10 * DEFAULT_SMTP_TIMEOUT)


class NotificationBusy(TransientError):
    """Raised when another live sender holds a notification's claim; the job is tried again later."""


@dataclass(frozen=True)
class Claimant:
    """A sender of notifications: its process and the Dramatiq message it is running, if any.

    Parameters:
      process(str): the broker id and pid of a worker (``host:pid`` outside one).
      message_id(str | None): the message the sender runs; None outside a worker.
    """

    process: str
    message_id: str | None = None

    @classmethod
    def of(cls, context: JobContext) -> Claimant:
        """The claimant of the job running on this thread (Dramatiq's CurrentMessage middleware)."""
        message = CurrentMessage.get_current_message()
        return cls(process_name(context), message.message_id if message is not None else None)

    @classmethod
    def here(cls) -> Claimant:
        """This process, running no message (a test, a command)."""
        return cls(f"{socket.gethostname()}:{os.getpid()}")

    def new_claim(self) -> dict[str, Any]:
        """The column values of a fresh claim by this claimant, with a token of its own."""
        return {
            "claim_token": uuid.uuid4().hex,
            "claimed_at": utc_now(),
            "claimed_by": self.process,
            "claim_message_id": self.message_id,
        }


def stale_reason(notification: Notification, claimant: Claimant, stale_after: timedelta) -> str | None:
    """Why the claim of a row in ``sending`` is stale; None while its owner may still be sending."""
    if notification.claimed_at is None:
        return "found in state sending without a claim (left from before claims were recorded)"
    owner = notification.claimed_by
    if claimant.message_id is not None and notification.claim_message_id == claimant.message_id:
        return f"claimed by {owner} for this same message, delivered again because that run stopped"
    age = utc_now() - notification.claimed_at
    if age > stale_after:
        return f"claimed by {owner} {age.total_seconds():.0f} s ago, longer than any send takes"
    return None
