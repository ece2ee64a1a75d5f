"""The middleware that records every message's life in the TaskStore.

Monitoring must never hurt a job: every hook logs and swallows its own failures, and raises
SkipMessage only on purpose (a revoked task, a task already finished, a poison message).
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.broker import Broker
from dramatiq.common import q_name
from dramatiq.middleware import CurrentMessage, Middleware, SkipMessage
from dramatiq_abort import Abort

from jobs.platform.broker import (
    AckOffer,
    RecordingRedisBroker,
    hand_back_now,
    hand_back_on_ack,
    on_worker_thread,
    ride_on_ack,
)
from jobs.platform.defaults import DEFAULT_DISPLAY_LIMIT, DEFAULT_HEARTBEAT_INTERVAL_S
from monitoring.heartbeat import WorkerHeartbeat
from monitoring.redaction import fingerprint, summarise
from monitoring.store import TaskStore, duration_bucket, now_ms

#: Tries of the start record (also the revocation check) before a message is handed back, and
#: the first wait between them in seconds (doubling).
START_RECORD_TRIES = 3
START_RECORD_FIRST_WAIT = 0.5
#: Set on the MessageProxy once its finish was recorded with a nack (so after_nack need not).
SETTLED_BY_NACK = "jobdeck_settled_by_nack"

#: Message options that belong to one delivery, not to what the producer sent.
DELIVERY_OPTIONS = frozenset(
    {
        "retries",
        "traceback",
        "requeue_timestamp",
        "redis_message_id",
        "eta",
        "transient_since",
        "transient_attempts",
    }
)


def original_message(message: dramatiq.Message) -> str:
    """The message as its producer sent it, as JSON: what a retry resends."""
    data = message.asdict()
    data["queue_name"] = q_name(message.queue_name)
    data["options"] = {name: value for name, value in data["options"].items() if name not in DELIVERY_OPTIONS}
    return json.dumps(data, default=str)


def _failure_message(message: dramatiq.Message) -> dict[str, str]:
    """What a retry needs of a failed message: what was sent, and where the broker keeps it."""
    return {
        "message": original_message(message),
        "broker_message_id": message.options.get("redis_message_id"),
    }


def _names(message: dramatiq.Message) -> dict[str, str]:
    return {"actor": message.actor_name, "queue": q_name(message.queue_name)}


def pipeline_names(message: dramatiq.Message) -> list[str]:
    """The actor names that follow this message in its pipeline, in order."""
    names = []
    target = message.options.get("pipe_target")
    while target:
        names.append(target["actor_name"])
        target = target.get("options", {}).get("pipe_target")
    return names


class TaskRecorder(Middleware):
    """Records PENDING/SCHEDULED, STARTED, RETRY, SUCCESS, FAILURE and REVOKED for every message.

    Parameters:
      store(TaskStore): where records go.
      display_limit(int): characters of arguments and results kept for display. Default 2,000.
      heartbeat_interval(float): seconds between worker heartbeats. Default 5.
      scheduler_check(callable): called by the heartbeat thread to check on the scheduler
        (the runtime hands in the alerter's); default None, no check.
    """

    def __init__(
        self,
        *,
        store: TaskStore,
        display_limit: int = DEFAULT_DISPLAY_LIMIT,
        heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL_S,
        scheduler_check: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.scheduler_check = scheduler_check
        self.display_limit = display_limit
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat: WorkerHeartbeat | None = None
        #: message id -> (monotonic start, attempt number), for the finish record.
        self.started: dict[str, tuple[float, int]] = {}
        #: message id -> the message, while it runs (a stopping worker hands these back).
        self.running: dict[str, dramatiq.Message] = {}
        self.skipped_on_purpose: set[str] = set()
        self.lock = threading.Lock()
        #: The message whose enqueue record went with its enqueue, on this thread.
        self.riding = threading.local()
        self.logger = dramatiq.get_logger(__name__, type(self))

    def _record(self, command: str, message: dramatiq.Message, data: dict[str, Any]) -> Any:
        try:
            return self.store.record(command, message.message_id, data)
        except Exception:
            self.logger.warning("Could not record %s of %s.", command, message.message_id, exc_info=True)
            return None

    def _record_start(self, broker: Broker, message: dramatiq.Message, data: dict[str, Any]) -> Any:
        """The start record; on a worker thread, on its kept connection (jobs.platform.broker)."""
        if not on_worker_thread(broker):
            return self._record("start", message, data)
        try:
            (reply,) = broker.kept_connections.execute(
                [self.store.record_command("start", message.message_id, data)]
            )
        except Exception:
            self.logger.warning("Could not record start of %s.", message.message_id, exc_info=True)
            return None
        return self._checked("start", message, data, reply)

    def _checked(self, command: str, message: dramatiq.Message, data: dict[str, Any], reply: Any) -> Any:
        """A reply of a record sent along with other commands, as text (None, logged, on an error)."""
        try:
            return self.store.checked_reply(command, message.message_id, data, reply)
        except Exception as error:
            self.logger.warning("Could not record %s of %s: %s", command, message.message_id, error)
            return None

    def _description(self, message: dramatiq.Message) -> dict[str, Any]:
        """What a task record starts with: names and the arguments for display."""
        return {
            **_names(message),
            "args": summarise(list(message.args), self.display_limit),
            "kwargs": summarise(message.kwargs, self.display_limit),
        }

    def before_enqueue(self, broker: Broker, message: dramatiq.Message, delay: int | None) -> None:
        """On a RecordingRedisBroker, send the enqueue record with the enqueue itself.

        Not before this process has loaded the record script: loading it is a round trip that
        must not come before the enqueue (after_enqueue records the first one directly).
        """
        if not isinstance(broker, RecordingRedisBroker) or not self.store.script_loaded:
            return
        try:
            data = self._enqueue_data(message, delay)
            command = self.store.record_command("enqueue", message.message_id, data)
        except Exception:
            self.logger.warning("Could not record enqueue of %s.", message.message_id, exc_info=True)
            return
        if broker.ride_on_enqueue(command, lambda reply: self._checked("enqueue", message, data, reply)):
            self.riding.message_id = message.message_id

    def after_enqueue(self, broker: Broker, message: dramatiq.Message, delay: int | None) -> None:
        """Record PENDING, or SCHEDULED with its eta (unless that went with the enqueue)."""
        if getattr(self.riding, "message_id", None) == message.message_id:
            self.riding.message_id = None
            return
        self._record("enqueue", message, self._enqueue_data(message, delay))

    def _enqueue_data(self, message: dramatiq.Message, delay: int | None) -> dict[str, Any]:
        """PENDING, or SCHEDULED with its eta; for a retry only when it runs next."""
        current = CurrentMessage.get_current_message()
        eta = message.options.get("eta") if delay else None
        if current is not None and current.message_id == message.message_id:
            return {"eta": eta}
        pipeline = pipeline_names(message)
        return {
            **self._description(message),
            "eta": eta,
            "parent_id": current.message_id if current is not None else None,
            "pipeline": json.dumps(pipeline) if pipeline else None,
            "group_id": message.options.get("group_completion_uuid"),
            "retry_of": message.options.get("retry_of"),
        }

    def before_process_message(self, broker: Broker, message: dramatiq.Message) -> None:
        """Record STARTED; skip a revoked, finished or poison message, or one it cannot check."""
        retries = message.options.get("retries", 0)
        data = {
            **_names(message),
            "worker": broker.broker_id,
            "attempt": retries + 1,
            "retries": retries,
            "broker_message_id": message.options.get("redis_message_id"),
        }
        outcome = self._checked_start(broker, message, data)
        if outcome is None:
            # The start record is also the revocation check: a task it could not check must not
            # run (it may be revoked), nor be dropped. It goes back on its queue (issue 9, item 6).
            with self.lock:
                self.skipped_on_purpose.add(message.message_id)
            hand_back_on_ack(message)
            raise SkipMessage(f"task {message.message_id} could not be checked; handed back to its queue")
        if outcome in ("revoked", "finished", "poison"):
            with self.lock:
                self.skipped_on_purpose.add(message.message_id)
            if outcome == "poison":
                message.fail()
                self._record("mark", message, _failure_message(message))
            raise SkipMessage(f"task {message.message_id} is {outcome}")
        if outcome == "created":
            # Its enqueue was never recorded (or has expired): add what was sent.
            self._record("mark", message, self._description(message))
        with self.lock:
            self.started[message.message_id] = (time.monotonic(), retries + 1)
            self.running[message.message_id] = message
        if self.heartbeat is not None:
            self.heartbeat.task_started()

    def _checked_start(self, broker: Broker, message: dramatiq.Message, data: dict[str, Any]) -> Any:
        """The start record's outcome, tried a few times over about two seconds; None if it failed."""
        for attempt in range(START_RECORD_TRIES):
            outcome = self._record_start(broker, message, data)
            if outcome is not None:
                return outcome
            if attempt + 1 < START_RECORD_TRIES:
                time.sleep(START_RECORD_FIRST_WAIT * 2**attempt)
        return None

    def after_process_message(
        self, broker: Broker, message: dramatiq.Message, *, result=None, exception=None
    ):
        """Record SUCCESS, RETRY, FAILURE or REVOKED, with duration, result or error."""
        with self.lock:
            started, attempt = self.started.pop(message.message_id, (None, None))
            self.running.pop(message.message_id, None)
        duration_ms = int((time.monotonic() - started) * 1000) if started is not None else 0
        data: dict[str, Any] = {
            **_names(message),
            "duration_ms": duration_ms,
            "bucket": duration_bucket(duration_ms),
            "retries": message.options.get("retries", 0),
            "attempt": attempt,
            "worker": broker.broker_id,
        }
        if exception is None:
            data.update(state="SUCCESS", result=summarise(result, self.display_limit))
        else:
            data.update(self._error(message, exception))
        if on_worker_thread(broker):
            # The worker thread acks next: the record rides on that round trip.
            ride_on_ack(message, FinishRecord(self, message, data))
        else:
            self._record("finish", message, data)
        if self.heartbeat is not None:
            self.heartbeat.task_finished()

    def _error(self, message: dramatiq.Message, exception: BaseException) -> dict[str, Any]:
        error_type = type(exception).__name__
        error_message = str(exception)[: self.display_limit]
        if isinstance(exception, Abort):
            state = "REVOKED"
        elif message.failed:
            state = "FAILURE"
        else:
            state = "RETRY"
        error = {
            "state": state,
            "error_type": error_type,
            "error_message": error_message,
            "traceback": "".join(traceback.format_exception(exception))[-8_000:],
        }
        if state == "FAILURE":
            error.update(fingerprint=fingerprint(error_type, error_message), **_failure_message(message))
        return error

    def after_skip_message(self, broker: Broker, message: dramatiq.Message) -> None:
        """Record a message another middleware skipped (an expired one fails)."""
        with self.lock:
            on_purpose = message.message_id in self.skipped_on_purpose
            self.skipped_on_purpose.discard(message.message_id)
            self.started.pop(message.message_id, None)
            self.running.pop(message.message_id, None)
        if on_purpose:
            return
        if message.failed:
            self._record(
                "finish",
                message,
                {
                    **self._description(message),
                    "state": "FAILURE",
                    "error_type": "Skipped",
                    "error_message": "skipped by the broker (e.g. past its age limit)",
                    "duration_ms": 0,
                    "bucket": 0,
                    **_failure_message(message),
                },
            )
        if self.heartbeat is not None:
            self.heartbeat.task_finished()

    def after_nack(self, broker: Broker, message: dramatiq.Message) -> None:
        """Note that the broker dead-lettered the message (unless the nack itself recorded it)."""
        if not message.__dict__.get(SETTLED_BY_NACK):
            self._record("mark", message, {"dead_lettered_at": now_ms()})

    def after_report_progress(
        self, broker: Broker, message: dramatiq.Message, percent: float, text: str
    ) -> None:
        """Store the job's progress on its task."""
        self._record("progress", message, {"progress": round(percent, 1), "text": text[:200]})

    def after_worker_boot(self, broker: Broker, worker: dramatiq.Worker) -> None:
        """Start this worker process's heartbeat."""
        self.heartbeat = WorkerHeartbeat(
            store=self.store,
            broker=broker,
            worker=worker,
            interval=self.heartbeat_interval,
            scheduler_check=self.scheduler_check,
        )
        self.heartbeat.start()

    def before_worker_shutdown(self, broker: Broker, worker: dramatiq.Worker) -> None:
        """Note that the worker is stopping: it still beats while its running tasks finish."""
        if self.heartbeat is not None:
            self.heartbeat.mark_stopping()

    def after_worker_shutdown(self, broker: Broker, worker: dramatiq.Worker) -> None:
        """Hand back what did not finish in the shutdown window, then say goodbye.

        A task still running now is cut when the process exits: its message goes back on its
        queue at once (not after the broker's redelivery timeout) and the task waits again,
        recorded as interrupted by the shutdown, never as a crash. Saying goodbye last keeps the
        worker shown alive, and its tasks not orphaned, for as long as they run.
        """
        with self.lock:
            unfinished = list(self.running.values())
        for message in unfinished:
            self._record("interrupt", message, {"worker": broker.broker_id, "reason": "shutdown"})
            try:
                hand_back_now(broker, message)
            except Exception:
                self.logger.warning("Could not hand %s back to its queue.", message.message_id, exc_info=True)
        if self.heartbeat is not None:
            self.heartbeat.stop()


class FinishRecord:
    """A task's SUCCESS/RETRY/FAILURE record, sent with its message's ack or nack."""

    def __init__(self, recorder: TaskRecorder, message: dramatiq.Message, data: dict[str, Any]) -> None:
        self.recorder, self.message, self.data = recorder, message, data

    def commands(self, settle: str, offer: AckOffer | None) -> list[tuple]:
        if settle == "nack":
            self.data = {**self.data, "dead_lettered_at": now_ms()}
        # The finish record carries the ack when it may (record.lua acks last, as Dramatiq does).
        acknowledgement = offer.take() if offer is not None else ()
        return [
            self.recorder.store.record_command("finish", self.message.message_id, self.data, *acknowledgement)
        ]

    def replied(self, settle: str, replies: list[Any]) -> None:
        self.recorder._checked("finish", self.message, self.data, replies[0])
        self.message.__dict__[SETTLED_BY_NACK] = settle == "nack"
