"""Aborting running tasks (dramatiq-abort), without its poll before every message."""

from __future__ import annotations

from dramatiq_abort import Abortable


class RunningTaskAbort(Abortable):
    """dramatiq-abort's Abortable for running tasks only.

    Abortable polls Redis before every message for a cancellation; the monitoring recorder's
    start call already refuses revoked tasks in the same round trip that records STARTED, so
    that poll is skipped and only the abort of a running task is left to dramatiq-abort.
    """

    def before_process_message(self, broker, message):
        """Watch the message for an abort request while it runs."""
        if self.is_abortable(broker.get_actor(message.actor_name), message):
            self.manager.add_abortable(message.message_id)
