"""TaskManager: sending, revoking and retrying tasks, and fetching results, for every face."""

from __future__ import annotations

import inspect
import json
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import dramatiq
import redis
from dramatiq.results import ResultFailure, ResultMissing, ResultTimeout
from dramatiq_abort import abort

from jobs.platform import keys
from jobs.platform.actors import get_actor
from jobs.platform.errors import ActionRefused, BadArguments, ServiceUnavailable, UnknownTask
from jobs.platform.results import results_backend
from monitoring.queries import TaskMonitor
from monitoring.records import (
    ACTIVE_STATES,
    FAILURE,
    PENDING,
    RETRY,
    REVOKED,
    SCHEDULED,
    STARTED,
    SUCCESS,
    TaskRecord,
)
from monitoring.store import TaskStore, now_ms

#: The longest delay Dramatiq's Redis broker accepts.
MAX_DELAY = 7 * 24 * 3600
PURGE_BATCH = 1_000
#: Most tasks one group action touches; run it again for more.
MAX_GROUP_ACTION = 10_000
#: Seconds an eta may lie in the past (the sender's clock a little behind) and still mean "now".
ETA_TOLERANCE = 5.0


@dataclass(frozen=True)
class TaskOutcome:
    """What became of a task: its state, and its result or error once finished."""

    task_id: str
    task_name: str
    status: str
    result: Any = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "task_name": self.task_name,
            "status": self.status,
            "result": self.result,
            "error": self.error,
        }


@dataclass(frozen=True)
class ActionOutcome:
    """The answer to revoke or retry: whether it was done, and the task's state."""

    task_id: str
    done: bool
    status: str
    detail: str
    new_task_id: str | None = None


def parse_json_arguments(args_text: str | None, kwargs_text: str | None) -> tuple[list, dict]:
    """Parse --args / --kwargs style JSON text into a list and a dict, or raise BadArguments."""
    args = _parse_json(args_text, "args", list, []) if args_text else []
    kwargs = _parse_json(kwargs_text, "kwargs", dict, {}) if kwargs_text else {}
    return args, kwargs


def _parse_json(text: str, what: str, kind: type, empty: Any) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise BadArguments(f"{what} is not valid JSON: {error.msg} at position {error.pos}") from None
    if value is None:
        return empty
    if not isinstance(value, kind):
        raise BadArguments(f"{what} must be a JSON {'array' if kind is list else 'object'}")
    return value


def check_arguments(actor: dramatiq.Actor, args: list | tuple, kwargs: dict) -> None:
    """Raise BadArguments unless the actor's function can take these arguments and they are JSON."""
    try:
        inspect.signature(actor.fn).bind(*args, **kwargs)
    except TypeError as error:
        raise BadArguments(f"{actor.actor_name} cannot take these arguments: {error}") from None
    try:
        json.dumps([list(args), kwargs], allow_nan=False)
    except (TypeError, ValueError) as error:
        raise BadArguments(f"arguments must be JSON values: {error}") from None


class TaskManager:
    """Acts on tasks: send, chain, revoke, retry, purge, results.

    Revoking a running task and purging are carried out by other processes (the worker running
    it aborts it); the call returns once the request is recorded.

    Parameters:
      broker(dramatiq.Broker): the broker from jobs.platform.broker.
      store(TaskStore): the monitoring store. Default: one on the broker's Redis, default retention.
      monitor(TaskMonitor): the read model, for group actions. Default: one on ``store``.
      queues(tuple[str, ...]): the queues a task may be sent to. Default: the broker's queues.
    """

    def __init__(
        self,
        *,
        broker: dramatiq.Broker,
        store: TaskStore | None = None,
        monitor: TaskMonitor | None = None,
        queues: tuple[str, ...] | None = None,
    ) -> None:
        self.broker = broker
        self.store = store or TaskStore(broker.client)
        self.monitor = monitor or TaskMonitor(store=self.store, broker=broker)
        self.queues = queues or tuple(
            sorted(name for name in broker.get_declared_queues() if not name.endswith((".DQ", ".XQ")))
        )

    def send_task(
        self,
        name: str,
        args: list | tuple = (),
        kwargs: dict | None = None,
        *,
        delay: float | None = None,
        eta: datetime | None = None,
        queue: str | None = None,
    ) -> dramatiq.Message:
        """Validate and enqueue one task; ``delay`` in seconds or an aware ``eta``. One round trip."""
        message = self.build_message(name, args, kwargs, queue=queue)
        return self._enqueue(message, _delay_ms(delay, eta))

    def build_message(
        self, name: str, args: list | tuple = (), kwargs: dict | None = None, *, queue: str | None = None
    ) -> dramatiq.Message:
        """A validated message for the actor ``name``, not yet sent."""
        actor = get_actor(name)
        kwargs = kwargs or {}
        check_arguments(actor, args, kwargs)
        message = actor.message_with_options(args=tuple(args), kwargs=kwargs)
        if queue is not None:
            if queue not in self.queues:
                raise BadArguments(f"no queue is called {queue!r}; the queues are: {', '.join(self.queues)}")
            message = message.copy(queue_name=queue)
        return message

    def send_chain(self, steps: list[dict[str, Any]]) -> list[dramatiq.Message]:
        """Send a pipeline: each step's result is passed to the next as its last argument."""
        if len(steps) < 2:
            raise BadArguments("a chain needs at least two steps")
        messages = [
            self.build_message(step["name"], step.get("args", ()), step.get("kwargs")) for step in steps
        ]
        try:
            pipeline = dramatiq.pipeline(messages, broker=self.broker).run()
        except redis.RedisError as error:
            raise ServiceUnavailable(f"Redis cannot be reached: {error}") from None
        return list(pipeline.messages)

    def revoke_task(self, task_id: str) -> ActionOutcome:
        """Revoke a task: a waiting one never runs, a running one is aborted and not retried."""
        record = self._require(task_id)
        eta_ms = int(record.eta.timestamp() * 1000) if record.eta else now_ms()
        ttl_ms = max(eta_ms - now_ms(), 0) + self.store.retention.failure * 1000
        previous = self.store.record("revoke", task_id, {"ttl_ms": ttl_ms})
        if previous in (SUCCESS, FAILURE, REVOKED):
            return ActionOutcome(task_id, False, previous, f"not revoked: already {previous}")
        if previous == STARTED:
            abort(task_id, abort_ttl=ttl_ms)
            return ActionOutcome(task_id, True, STARTED, "abort requested; the task ends REVOKED")
        return ActionOutcome(task_id, True, REVOKED, f"revoked while {previous}; it will not run")

    def retry_task(self, task_id: str) -> ActionOutcome:
        """Send a failed task again, exactly as first sent, as a new task linked to the original."""
        raw = self.store.load(task_id, with_message=True)
        if raw is None:
            raise UnknownTask(f"no task {task_id!r} is known (never sent, or past its retention)")
        if raw.get("state") != FAILURE or "message" not in raw:
            raise ActionRefused(f"only a failed task can be retried; {task_id} is {raw.get('state')}")
        if raw.get("retried_as"):
            # A client repeating its request (a lost answer) must not send the task a third time.
            raise ActionRefused(f"{task_id} was retried already, as {raw['retried_as']}")
        original = json.loads(raw["message"])
        message = dramatiq.Message(
            queue_name=original["queue_name"],
            actor_name=original["actor_name"],
            args=tuple(original["args"]),
            kwargs=original["kwargs"],
            options={**original["options"], "retry_of": task_id},
            message_id=str(uuid.uuid4()),
        )
        self._enqueue(message, None)
        self._forget_dead_letter(raw)
        self.store.record("mark", task_id, {"retried_as": message.message_id})
        return ActionOutcome(task_id, True, FAILURE, "sent again", new_task_id=message.message_id)

    def revoke_many(self, task_ids: list[str], *, dry_run: bool = False) -> dict[str, Any]:
        """Revoke each task still waiting or running; with ``dry_run``, only count them."""
        return self._act_on_many(task_ids, self.revoke_task, ACTIVE_STATES, dry_run)

    def retry_many(self, task_ids: list[str], *, dry_run: bool = False) -> dict[str, Any]:
        """Retry each failed task not retried yet; with ``dry_run``, only count them."""
        return self._act_on_many(task_ids, self.retry_task, (FAILURE,), dry_run)

    def retry_failure_group(self, fingerprint: str, *, dry_run: bool = False) -> dict[str, Any]:
        """Retry every failed task of one failure group (see TaskMonitor.get_failure_groups)."""
        task_ids = self.monitor.failure_group_task_ids(fingerprint, MAX_GROUP_ACTION)
        return self.retry_many(task_ids, dry_run=dry_run)

    def retry_matching(self, *, dry_run: bool = False, **filters: Any) -> dict[str, Any]:
        """Retry every failed task matching history filters (TaskMonitor.get_task_history's)."""
        return self.retry_many(self._matching({**filters, "state": FAILURE}), dry_run=dry_run)

    def revoke_matching(self, *, dry_run: bool = False, **filters: Any) -> dict[str, Any]:
        """Revoke every waiting or running task matching history filters."""
        return self.revoke_many(self._matching(filters), dry_run=dry_run)

    def _matching(self, filters: dict[str, Any]) -> list[str]:
        monitor = self.monitor
        task_ids: list[str] = []
        cursor = None
        while len(task_ids) < MAX_GROUP_ACTION:
            page = monitor.get_task_history(**filters, limit=500, cursor=cursor)
            task_ids.extend(task.task_id for task in page.tasks)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        return task_ids[:MAX_GROUP_ACTION]

    def purge_queue(self, queue: str) -> int:
        """Remove every ready message of a queue; their tasks become REVOKED. Returns how many."""
        return self._purge(queue, dead_letters=False)

    def purge_dead_letters(self, queue: str) -> int:
        """Remove every dead-lettered message of a queue. Returns how many."""
        return self._purge(queue, dead_letters=True)

    def get_result(self, task_id: str, *, wait: float = 0) -> TaskOutcome:
        """The task's result, its failure, or its current state if not finished within ``wait`` s."""
        record = self._require(task_id)
        if record.status in (PENDING, SCHEDULED, STARTED, RETRY) and wait > 0:
            message = dramatiq.Message(
                queue_name=record.queue,
                actor_name=record.task_name,
                args=(),
                kwargs={},
                options={},
                message_id=task_id,
            )
            outcome = self.wait_for_result(message, timeout=wait)
            if outcome.status != PENDING:
                return outcome
            record = self._require(task_id)
        if record.status == FAILURE:
            return TaskOutcome(
                task_id, record.task_name, FAILURE, error=f"{record.error_type}: {record.error_message}"
            )
        return TaskOutcome(
            task_id,
            record.task_name,
            record.status,
            result=record.result if record.status == SUCCESS else None,
        )

    def wait_for_result(self, message: dramatiq.Message, *, timeout: float) -> TaskOutcome:
        """Block up to ``timeout`` seconds for the message's result; PENDING if it is not done."""
        backend = results_backend(self.broker)
        outcome = dict(task_id=message.message_id, task_name=message.actor_name)
        try:
            result = backend.get_result(message, block=True, timeout=int(timeout * 1000))
        except ResultFailure as failure:
            return TaskOutcome(
                **outcome, status=FAILURE, error=f"{failure.orig_exc_type}: {failure.orig_exc_msg}"
            )
        except (ResultTimeout, ResultMissing, redis.TimeoutError):
            return TaskOutcome(**outcome, status=PENDING)
        except redis.RedisError as error:
            raise ServiceUnavailable(f"Redis cannot be reached: {error}") from None
        return TaskOutcome(**outcome, status=SUCCESS, result=result)

    def _require(self, task_id: str) -> TaskRecord:
        raw = self.store.load(task_id)
        if raw is None:
            raise UnknownTask(f"no task {task_id!r} is known (never sent, or past its retention)")
        return TaskRecord.from_store(raw)

    def _enqueue(self, message: dramatiq.Message, delay_ms: int | None) -> dramatiq.Message:
        try:
            return self.broker.enqueue(message, delay=delay_ms)
        except redis.RedisError as error:
            raise ServiceUnavailable(f"Redis cannot be reached: {error}") from None

    def _forget_dead_letter(self, raw: dict[str, str]) -> None:
        broker_message_id = raw.get("broker_message_id")
        if not broker_message_id:
            return
        namespace = self.broker.namespace
        pipeline = self.store.client.pipeline(transaction=True)
        pipeline.zrem(keys.broker_dead(namespace, raw["queue"]), broker_message_id)
        pipeline.hdel(keys.broker_dead_messages(namespace, raw["queue"]), broker_message_id)
        pipeline.execute()

    def _act_on_many(self, task_ids, action, states, dry_run: bool) -> dict[str, Any]:
        """``matched`` and ``done`` counts, and ``task_ids``: those acted on (a dry run: those matched)."""
        eligible = [
            raw["id"]
            for raw in self.store.load_many(task_ids)
            if raw.get("state") in states and "retried_as" not in raw
        ]
        if dry_run:
            return {"matched": len(eligible), "done": 0, "task_ids": eligible}
        done = [task_id for task_id in eligible if action(task_id).done]
        return {"matched": len(eligible), "done": len(done), "task_ids": done}

    def _purge(self, queue: str, *, dead_letters: bool) -> int:
        if queue not in self.queues:
            raise BadArguments(f"no queue is called {queue!r}; the queues are: {', '.join(self.queues)}")
        namespace = self.broker.namespace
        client = self.store.client
        messages_key = (keys.broker_dead_messages if dead_letters else keys.broker_messages)(namespace, queue)
        removed = 0
        while True:
            if dead_letters:
                popped = [
                    member for member, _ in client.zpopmin(keys.broker_dead(namespace, queue), PURGE_BATCH)
                ]
            else:
                popped = client.lpop(keys.broker_queue(namespace, queue), PURGE_BATCH) or []
            if not popped:
                return removed
            pipeline = client.pipeline(transaction=False)
            pipeline.hmget(messages_key, popped)
            pipeline.hdel(messages_key, *popped)
            bodies, _ = pipeline.execute()
            if not dead_letters:
                self._mark_purged(bodies)
            removed += len(popped)

    def _mark_purged(self, bodies: list[bytes | None]) -> None:
        pipeline = self.store.client.pipeline(transaction=False)
        for body in bodies:
            if body is not None:
                task_id = dramatiq.Message.decode(body).message_id
                self.store.record(
                    "revoke", task_id, {"ttl_ms": self.store.retention.success * 1000}, pipeline=pipeline
                )
        pipeline.execute()


def _delay_ms(delay: float | None, eta: datetime | None) -> int | None:
    if delay is not None and eta is not None:
        raise BadArguments("give a delay or an eta, not both")
    if eta is not None:
        if eta.tzinfo is None:
            raise BadArguments("eta must include its UTC offset")
        delay = eta.timestamp() - time.time()
        if delay < -ETA_TOLERANCE:
            raise BadArguments(f"eta is in the past (by more than {ETA_TOLERANCE:g} s)")
        delay = max(delay, 0.0)
    if delay is None:
        return None
    if delay < 0:
        raise BadArguments("delay must not be negative")
    if delay > MAX_DELAY:
        raise BadArguments(f"delay must be at most {MAX_DELAY} seconds (7 days)")
    return int(delay * 1000)
