"""/api/core/workers/: worker processes and queues, and purging a queue or its dead letters."""

from __future__ import annotations

from flask.views import MethodView

from api.auth import admin, audited, viewer
from api.blueprints import ResourceBlueprint
from api.resources import runtime
from api.schemas.cluster import PurgeOutcomeSchema, QueueListSchema, WorkerListSchema
from jobs.platform.errors import NotFound

blueprint = ResourceBlueprint(
    "workers", __name__, url_prefix="/api/core/workers", description="Worker processes and queues"
)


def known_queue(name: str) -> str:
    queues = runtime().settings.queues
    if name not in queues:
        raise NotFound(f"no queue is called {name!r}; the queues are: {', '.join(queues)}")
    return name


@blueprint.route("/")
class Workers(MethodView):
    @viewer
    @blueprint.response(200, WorkerListSchema)
    def get(self):
        """Every worker seen recently: host, pid, queues, threads, in flight, alive, last heartbeat."""
        return {"workers": runtime().monitor.get_worker_stats()}


@blueprint.route("/queues/")
class Queues(MethodView):
    @viewer
    @blueprint.response(200, QueueListSchema)
    def get(self):
        """Per queue: ready, delayed, in flight, dead-lettered, latency (s) and live consumers."""
        return {"queues": runtime().monitor.get_queue_stats()}


@blueprint.route("/queues/<name>/purge/")
class PurgeQueue(MethodView):
    @admin
    @blueprint.response(200, PurgeOutcomeSchema)
    @blueprint.errors(404)
    def post(self, name):
        """Remove every ready message of the queue; their tasks become REVOKED."""
        with audited("queue.purge", target=name) as action:
            purged = runtime().manager.purge_queue(known_queue(name))
            action.details["purged"] = purged
        return {"queue": name, "purged": purged}


@blueprint.route("/queues/<name>/dead/purge/")
class PurgeDeadLetters(MethodView):
    @admin
    @blueprint.response(200, PurgeOutcomeSchema)
    @blueprint.errors(404)
    def post(self, name):
        """Remove every dead-lettered message of the queue."""
        with audited("queue.purge_dead", target=name) as action:
            purged = runtime().manager.purge_dead_letters(known_queue(name))
            action.details["purged"] = purged
        return {"queue": name, "purged": purged}
