"""Soft and hard time limits.

At the soft limit the job's thread receives :class:`SoftTimeLimitExceeded`, which it may catch
to clean up. A thread that is still running at the hard limit (it caught the soft exception, or
is blocked in a system call that no asynchronous exception can interrupt) cannot be stopped from
inside the process, so the watchdog:

1. fails the message with :class:`HardTimeLimitExceeded`, running every middleware's
   ``after_process_message`` and ``after_nack`` hooks as if the job had raised it (the task is
   recorded as failed by time-out and its result backend entry says so);
2. moves the message to the queue's dead-letter set, so it is not redelivered;
3. recycles the worker process: it sends SIGHUP to the ``dramatiq`` parent process, which
   restarts its worker processes (each finishes its other messages within the shutdown timeout);
   if this process has not exited ``DEFAULT_EXIT_GRACE`` seconds later, it exits at once.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from dataclasses import dataclass

import dramatiq
from dramatiq.middleware import Middleware, TimeLimitExceeded
from dramatiq.middleware.threading import raise_thread_exception

from jobs.platform.defaults import DEFAULT_SOFT_TIME_LIMIT_S, DEFAULT_TIME_LIMIT_S

DEFAULT_SOFT_LIMIT_MS = DEFAULT_SOFT_TIME_LIMIT_S * 1000
DEFAULT_HARD_LIMIT_MS = DEFAULT_TIME_LIMIT_S * 1000
#: How long a process whose job hit the hard limit may take to stop before it is made to.
DEFAULT_EXIT_GRACE = 30.0
#: Exit code of a worker process recycled after a hard time-out (Dramatiq's RET_KILLED).
RECYCLED_EXIT_CODE = 1


class SoftTimeLimitExceeded(TimeLimitExceeded):
    """Raised inside a job that ran past its soft time limit; catch it to clean up."""


class HardTimeLimitExceeded(TimeLimitExceeded):
    """Raised (recorded) for a job still running at its hard time limit; its process is recycled."""


@dataclass
class _RunningMessage:
    message: dramatiq.Message
    soft_deadline: float
    hard_deadline: float
    soft_sent: bool = False


class TimeLimits(Middleware):
    """Soft and hard time limits per message, in milliseconds; per actor with the same option names.

    Parameters:
      soft_time_limit(int): milliseconds until SoftTimeLimitExceeded is raised in the job. Default 25 min.
      time_limit(int): milliseconds until the message is failed and the process recycled. Default 30 min.
      interval(float): seconds between watchdog checks. Default: a tenth of the soft limit, at most 1 s.
      exit_grace(float): seconds the recycled process may take to stop. Default 30.
    """

    def __init__(
        self,
        *,
        soft_time_limit: int = DEFAULT_SOFT_LIMIT_MS,
        time_limit: int = DEFAULT_HARD_LIMIT_MS,
        interval: float | None = None,
        exit_grace: float = DEFAULT_EXIT_GRACE,
    ) -> None:
        self.soft_time_limit = soft_time_limit
        self.time_limit = time_limit
        self.interval = interval or min(1.0, soft_time_limit / 10_000)
        self.exit_grace = exit_grace
        self.running: dict[int, _RunningMessage] = {}
        self.lock = threading.Lock()
        self.logger = dramatiq.get_logger(__name__, type(self))

    @property
    def actor_options(self) -> set[str]:
        return {"time_limit", "soft_time_limit"}

    def after_process_boot(self, broker):
        """Start the watchdog thread in each worker process."""
        threading.Thread(target=self._watch, args=(broker,), name="jobdeck-time-limits", daemon=True).start()

    def before_process_message(self, broker, message):
        """Start the clock for this thread's message."""
        actor = broker.get_actor(message.actor_name)
        soft = message.options.get("soft_time_limit") or actor.options.get(
            "soft_time_limit", self.soft_time_limit
        )
        hard = message.options.get("time_limit") or actor.options.get("time_limit", self.time_limit)
        now = time.monotonic()
        with self.lock:
            self.running[threading.get_ident()] = _RunningMessage(
                message, now + soft / 1000, now + hard / 1000
            )

    def after_process_message(self, broker, message, *, result=None, exception=None):
        """Stop the clock for this thread's message."""
        with self.lock:
            entry = self.running.get(threading.get_ident())
            if entry is not None and entry.message.message_id == message.message_id:
                del self.running[threading.get_ident()]

    after_skip_message = after_process_message

    def _watch(self, broker) -> None:
        while True:
            time.sleep(self.interval)
            try:
                self._check(broker)
            except Exception:
                self.logger.exception("Time limit check failed.")

    def _check(self, broker) -> None:
        now = time.monotonic()
        with self.lock:
            entries = list(self.running.items())
        for thread_id, entry in entries:
            if now >= entry.hard_deadline:
                with self.lock:
                    self.running.pop(thread_id, None)
                self._fail_and_recycle(broker, entry.message)
                return
            if now >= entry.soft_deadline and not entry.soft_sent:
                entry.soft_sent = True
                self.logger.warning("Soft time limit exceeded by message %r.", entry.message.message_id)
                raise_thread_exception(thread_id, SoftTimeLimitExceeded)

    def _fail_and_recycle(self, broker, message) -> None:
        self.logger.error(
            "Hard time limit exceeded by message %r; recycling this process.", message.message_id
        )
        exception = HardTimeLimitExceeded(f"{message.actor_name} ran past its hard time limit")
        message.stuff_exception(exception)
        broker.emit_after("process_message", message, exception=exception)
        broker.do_nack(message.queue_name, message.options["redis_message_id"])
        broker.emit_after("nack", message)
        self._recycle_process()

    def _recycle_process(self) -> None:
        # Only a process started by the dramatiq command has a parent that restarts it on SIGHUP;
        # anywhere else (an in-process worker in a test) the stuck thread is left to finish.
        if multiprocessing.parent_process() is None:
            return
        os.kill(os.getppid(), signal.SIGHUP)
        threading.Timer(self.exit_grace, os._exit, args=(RECYCLED_EXIT_CODE,)).start()
