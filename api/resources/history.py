"""/api/core/tasks/ stats, history, failures and bulk actions: the read model over many tasks."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import request
from flask.views import MethodView

from api.auth import admin, audited, viewer
from api.blueprints import ResourceBlueprint
from api.resources import runtime
from api.schemas.tasks import (
    BulkActionSchema,
    BulkOutcomeSchema,
    FailureGroupListSchema,
    HistoryPageSchema,
    HistoryQuerySchema,
    StatsQuerySchema,
    StatsSchema,
)

blueprint = ResourceBlueprint(
    "history", __name__, url_prefix="/api/core/tasks", description="Task statistics, history and failures"
)
#: The API's history filter names, and the read model's for each.
FILTER_ARGUMENTS = {
    "actor": "actor",
    "queue": "queue",
    "status": "state",
    "since": "since",
    "until": "until",
    "q": "search",
}


def history_filters(arguments: dict[str, Any]) -> dict[str, Any]:
    """TaskMonitor.get_task_history's keyword arguments for the API's filters."""
    return {FILTER_ARGUMENTS[name]: value for name, value in arguments.items() if name in FILTER_ARGUMENTS}


@blueprint.route("/stats/")
class TaskStats(MethodView):
    @viewer
    @blueprint.arguments(StatsQuerySchema, location="query")
    @blueprint.response(200, StatsSchema)
    def get(self, query):
        """Per actor over the last ``window`` seconds: counts, failure rate, p50/p95 duration.

        Read from counters, never from history; cached for a few seconds.
        """
        window = query["window"]
        jobdeck = runtime()
        stats = jobdeck.cache.remember(
            f"stats:{window}",
            jobdeck.settings.api_stats_cache,
            lambda: jobdeck.monitor.get_task_stats(window),
        )
        return {"window": window, "actors": [{"actor": actor, **figures} for actor, figures in stats.items()]}


@blueprint.route("/history/")
class TaskHistory(MethodView):
    @viewer
    @blueprint.arguments(HistoryQuerySchema, location="query")
    @blueprint.response(
        200,
        HistoryPageSchema,
        headers={"Link": {"description": 'The next page: <url>; rel="next"', "schema": {"type": "string"}}},
    )
    def get(self, query):
        """Tasks newest first, filtered by actor, queue, status, time and text; cursor paging."""
        page = runtime().monitor.get_task_history(
            **history_filters(query), limit=query["limit"], cursor=query.get("cursor")
        )
        headers = {}
        if page.next_cursor is not None:
            following = {**request.args.to_dict(), "cursor": page.next_cursor}
            headers["Link"] = f'<{request.base_url}?{urlencode(following)}>; rel="next"'
        return {"tasks": page.tasks, "next_cursor": page.next_cursor}, 200, headers


@blueprint.route("/failures/")
class TaskFailures(MethodView):
    @viewer
    @blueprint.response(200, FailureGroupListSchema)
    def get(self):
        """Failures grouped by exception type and message: count, first and last seen, a sample error."""
        return {"groups": runtime().monitor.get_failure_groups()}


@blueprint.route("/bulk/")
class BulkAction(MethodView):
    @admin
    @blueprint.arguments(
        BulkActionSchema, example={"action": "retry", "actor": "send_notification_email", "dry_run": True}
    )
    @blueprint.response(200, BulkOutcomeSchema)
    @blueprint.errors(413)
    def post(self, bulk):
        """Retry or revoke many tasks (a failure group, or history filters); a dry run only counts them."""
        manager = runtime().manager
        action_name, dry_run = bulk["action"], bulk["dry_run"]
        target = bulk.get("fingerprint") or urlencode(
            {name: str(value) for name, value in bulk.items() if name in FILTER_ARGUMENTS}
        )
        with audited(f"tasks.bulk_{action_name}", target=target) as action:
            if "fingerprint" in bulk:
                outcome = manager.retry_failure_group(bulk["fingerprint"], dry_run=dry_run)
            elif action_name == "retry":
                outcome = manager.retry_matching(dry_run=dry_run, **history_filters(bulk))
            else:
                outcome = manager.revoke_matching(dry_run=dry_run, **history_filters(bulk))
            action.details.update(dry_run=dry_run, matched=outcome["matched"], done=outcome["done"])
        return {"action": action_name, "dry_run": dry_run, **outcome}
