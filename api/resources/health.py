"""/healthz (liveness) and /readyz (readiness: Redis and the database answer), open to all."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import Schema, fields

from api.blueprints import ResourceBlueprint
from api.resources import runtime
from jobs.platform.broker import check_redis
from jobs.platform.database import check_connection
from jobs.platform.errors import ServiceUnavailable

blueprint = ResourceBlueprint("health", __name__, description="Liveness and readiness of the web process")


class LivenessSchema(Schema):
    status = fields.String(required=True, metadata={"example": "ok"})


class ReadinessSchema(Schema):
    status = fields.String(required=True, metadata={"description": "ok or unavailable"})
    checks = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        metadata={"example": {"redis": "ok", "database": "ok"}, "description": "ok, or why not"},
    )


@blueprint.route("/healthz")
class Health(MethodView):
    @blueprint.response(200, LivenessSchema)
    @blueprint.doc(security=[])
    def get(self):
        """The web process is up and answering (it asks nothing of Redis or the database)."""
        return {"status": "ok"}


@blueprint.route("/readyz")
class Ready(MethodView):
    @blueprint.response(200, ReadinessSchema)
    @blueprint.alt_response(503, schema=ReadinessSchema, description="Redis or the database does not answer")
    @blueprint.doc(security=[])
    def get(self):
        """Whether Redis and the database answer; 503 naming what is down."""
        jobdeck = runtime()
        checks = {}
        for name, check in (
            ("redis", lambda: check_redis(jobdeck.broker)),
            ("database", lambda: check_connection(jobdeck.engine)),
        ):
            try:
                check()
                checks[name] = "ok"
            except ServiceUnavailable as error:
                checks[name] = str(error)
        ready = all(value == "ok" for value in checks.values())
        return {"status": "ok" if ready else "unavailable", "checks": checks}, 200 if ready else 503
