"""/api/core/tasks/: active tasks, sending, one task, revoking, retrying, its result."""

from __future__ import annotations

from flask.views import MethodView

from api.auth import admin, audited, viewer
from api.blueprints import ResourceBlueprint
from api.resources import runtime
from api.schemas.tasks import (
    ResultSchema,
    RetryOutcomeSchema,
    RevokeOutcomeSchema,
    SendTaskSchema,
    TaskListSchema,
    TaskSchema,
)
from jobs.platform.errors import UnknownTask
from monitoring.records import ACTIVE_STATES, TaskRecord

blueprint = ResourceBlueprint(
    "tasks", __name__, url_prefix="/api/core/tasks", description="Tasks: send, read, act"
)


def task_or_404(task_id: str) -> TaskRecord:
    task = runtime().monitor.get_task_status(task_id)
    if task is None:
        raise UnknownTask(f"no task {task_id!r} is known (never sent, or past its retention)")
    return task


@blueprint.route("/")
class Tasks(MethodView):
    @viewer
    @blueprint.response(200, TaskListSchema)
    def get(self):
        """List the active tasks (pending, scheduled, started, retrying), newest first."""
        tasks = runtime().monitor.get_all_tasks()
        return {"tasks": tasks, "count": len(tasks)}

    @admin
    @blueprint.arguments(SendTaskSchema, example={"task_name": "test_task", "args": ["hello"], "delay": 10})
    @blueprint.response(202, TaskSchema)
    @blueprint.errors(413)
    def post(self, sent):
        """Send a task; 202 with the task as recorded (PENDING, or SCHEDULED when delayed)."""
        with audited("task.send", target=sent["task_name"]) as action:
            message = runtime().manager.send_task(
                sent["task_name"],
                sent["args"],
                sent["kwargs"],
                delay=sent.get("delay"),
                eta=sent.get("eta"),
                queue=sent.get("queue"),
            )
            action.details["task_id"] = message.message_id
        return task_or_404(message.message_id)


@blueprint.route("/<task_id>/")
class TaskById(MethodView):
    @viewer
    @blueprint.response(200, TaskSchema)
    @blueprint.errors(404)
    def get(self, task_id):
        """One task: its state, result or error, times, arguments, progress, parent and timeline."""
        return task_or_404(task_id)


@blueprint.route("/<task_id>/revoke/")
class RevokeTask(MethodView):
    @admin
    @blueprint.response(200, RevokeOutcomeSchema)
    @blueprint.errors(404)
    def post(self, task_id):
        """Revoke a task: a waiting one never runs, a running one is aborted; a finished one stays."""
        with audited("task.revoke", target=task_id) as action:
            outcome = runtime().manager.revoke_task(task_id)
            action.details["revoked"] = outcome.done
        return {
            "task_id": task_id,
            "revoked": outcome.done,
            "status": outcome.status,
            "reason": outcome.detail,
        }


@blueprint.route("/<task_id>/retry/")
class RetryTask(MethodView):
    @admin
    @blueprint.response(202, RetryOutcomeSchema)
    @blueprint.errors(404, 409)
    def post(self, task_id):
        """Send a failed task again, exactly as first sent; 409 unless it failed."""
        with audited("task.retry", target=task_id) as action:
            outcome = runtime().manager.retry_task(task_id)
            action.details["new_task_id"] = outcome.new_task_id
        return {"task_id": task_id, "retried": outcome.done, "new_task_id": outcome.new_task_id}


@blueprint.route("/<task_id>/result/")
class TaskResult(MethodView):
    @viewer
    @blueprint.response(200, ResultSchema, description="The task finished: its result or error")
    @blueprint.alt_response(
        202, schema=ResultSchema, description="Not finished yet: ask again later", success=True
    )
    @blueprint.errors(404)
    def get(self, task_id):
        """The task's result; 202 while it is not finished."""
        outcome = runtime().manager.get_result(task_id)
        return outcome, 202 if outcome.status in ACTIVE_STATES else 200
