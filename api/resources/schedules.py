"""/api/core/schedules/: the scheduler's schedules, and pausing, resuming or running one now (admin)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from flask.views import MethodView

from api.auth import admin, audited, current_token, viewer
from api.blueprints import ResourceBlueprint
from api.resources import runtime
from api.schemas.schedules import ScheduleActionSchema, ScheduleListSchema, ScheduleSchema, in_zone
from monitoring.audit import Action
from monitoring.schedules import ScheduleAction, ScheduleManager
from monitoring.schedules.records import PAUSE, RESUME, RUN_NOW

blueprint = ResourceBlueprint(
    "schedules", __name__, url_prefix="/api/core/schedules", description="Schedules the scheduler fires"
)


def act_on_schedule(
    manager: ScheduleManager,
    action: str,
    name: str,
    *,
    requested_by: str,
    audited: Callable[[str, str], AbstractContextManager[Action]],
) -> ScheduleAction:
    """Pause, resume or run ``name`` now (``action``) for ``requested_by``, inside ``audited``
    (the API's for a token, the CLI's for the operator); times moved to the schedules' zone."""
    acting = {PAUSE: manager.pause, RESUME: manager.resume, RUN_NOW: manager.run_now}[action]
    with audited(f"schedule.{action}", name) as audit:
        done = acting(name, requested_by=requested_by)
        audit.details.update(changed=done.changed, task_id=done.task_id)
    return in_zone(done, manager.monitor.timezone)


def act(action: str, name: str) -> ScheduleAction:
    """``action`` on ``name`` as this request's token, audited."""
    return act_on_schedule(
        runtime().schedule_manager, action, name, requested_by=current_token().name, audited=audited
    )


@blueprint.route("/")
class Schedules(MethodView):
    @viewer
    @blueprint.response(200, ScheduleListSchema)
    def get(self):
        """Every schedule: cron, zone, next and last run, last outcome, pause, recent ticks."""
        return {"schedules": runtime().schedule_monitor.list()}


@blueprint.route("/<name>/")
class ScheduleByName(MethodView):
    @viewer
    @blueprint.response(200, ScheduleSchema)
    @blueprint.errors(404)
    def get(self, name):
        """One schedule with its recent ticks."""
        return runtime().schedule_monitor.find(name)


@blueprint.route("/<name>/pause/")
class PauseSchedule(MethodView):
    @admin
    @blueprint.response(200, ScheduleActionSchema)
    @blueprint.errors(404)
    def post(self, name):
        """Pause the schedule in every scheduler process until resumed; its ticks are recorded paused."""
        return act(PAUSE, name)


@blueprint.route("/<name>/resume/")
class ResumeSchedule(MethodView):
    @admin
    @blueprint.response(200, ScheduleActionSchema)
    @blueprint.errors(404)
    def post(self, name):
        """Resume the schedule: its next tick is sent again (the ones due while paused are not)."""
        return act(RESUME, name)


@blueprint.route("/<name>/run/")
class RunScheduleNow(MethodView):
    @admin
    @blueprint.response(202, ScheduleActionSchema)
    @blueprint.errors(404)
    def post(self, name):
        """Send the schedule's job now, paused or not; task_id is the task sent."""
        return act(RUN_NOW, name)
