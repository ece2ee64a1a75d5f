"""TaskManager: sending tasks and fetching their results, with the validation every face uses."""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from typing import Any

import dramatiq
import redis
from dramatiq.results import ResultFailure, ResultMissing, ResultTimeout

from jobs.broker import results_backend
from jobs.errors import BadArguments, ServiceUnavailable
from jobs.registry import get_actor

#: Task states, under Celery's names, which the API and its users already know.
PENDING, SCHEDULED, STARTED, RETRY, SUCCESS, FAILURE, REVOKED = (
    "PENDING",
    "SCHEDULED",
    "STARTED",
    "RETRY",
    "SUCCESS",
    "FAILURE",
    "REVOKED",
)


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


class TaskManager:
    """Sends tasks and fetches their results through the broker every jobdeck process shares.

    Parameters:
      broker(dramatiq.Broker): the broker from jobs.broker; default: Dramatiq's global broker.
    """

    def __init__(self, *, broker: dramatiq.Broker | None = None) -> None:
        self.broker = broker or dramatiq.get_broker()

    def send_task(
        self,
        name: str,
        args: list | tuple = (),
        kwargs: dict | None = None,
        *,
        delay: float | None = None,
    ) -> dramatiq.Message:
        """Validate and enqueue one task; ``delay`` in seconds. One Redis round trip."""
        actor = get_actor(name)
        kwargs = kwargs or {}
        check_arguments(actor, args, kwargs)
        if delay is not None and delay < 0:
            raise BadArguments("delay must not be negative")
        try:
            return actor.send_with_options(
                args=tuple(args), kwargs=kwargs, delay=None if delay is None else int(delay * 1000)
            )
        except redis.RedisError as error:
            raise ServiceUnavailable(f"Redis cannot be reached: {error}") from None

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


def check_arguments(actor: dramatiq.Actor, args: list | tuple, kwargs: dict) -> None:
    """Raise BadArguments unless the actor's function can take these arguments and they are JSON."""
    try:
        inspect.signature(actor.fn).bind(*args, **kwargs)
    except TypeError as error:
        raise BadArguments(f"{actor.actor_name} cannot take these arguments: {error}") from None
    try:
        json.dumps([list(args), kwargs])
    except (TypeError, ValueError) as error:
        raise BadArguments(f"arguments must be JSON values: {error}") from None
