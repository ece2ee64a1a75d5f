"""A worker process stops gracefully on SIGTERM, however many times the platform sends it.

A PaaS stops a dyno by sending SIGTERM to every process in it at once, then SIGKILL about 30 s
later. A Dramatiq worker process then gets SIGTERM twice, the platform's and its parent's relay,
and Dramatiq treats the second as "kill now": every running job is cut a millisecond after the
stop began (Celery documents REMAP_SIGTERM, RQ ships a HerokuWorker, for the same reason). Here a
worker process takes the first SIGTERM (or SIGHUP) as the start of its graceful stop and logs and
ignores the repeats; the shutdown window (``--worker-shutdown-timeout``) bounds the stop, and the
platform's SIGKILL remains the last word.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

#: The signals a Dramatiq worker process stops on.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def ignore_repeated_stop_signals() -> None:
    """Wrap this process's stop-signal handlers so that only the first stop signal reaches them."""
    stopping = False

    def once(handler: Callable[[int, Any], Any]) -> Callable[[int, Any], Any]:
        def handle(signum: int, frame: Any) -> Any:
            nonlocal stopping
            if stopping:
                logger.info("Already stopping; %s ignored.", signal.Signals(signum).name)
                return None
            stopping = True
            return handler(signum, frame)

        return handle

    for signum in STOP_SIGNALS:
        handler = signal.getsignal(signum)
        if callable(handler):
            signal.signal(signum, once(handler))
