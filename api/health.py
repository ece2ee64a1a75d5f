"""GET /healthz: whether this web process can reach Redis and the database."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from jobs.platform.broker import check_redis
from jobs.platform.database import check_connection
from jobs.platform.errors import ServiceUnavailable

blueprint = Blueprint("health", __name__, description="Liveness of the web process and its services")


@blueprint.route("/healthz")
class Health(MethodView):
    """Report whether Redis and the database answer."""

    def get(self):
        """Check Redis and the database; 503 naming what is down."""
        runtime = current_app.extensions["jobdeck_runtime"]
        checks = {}
        for name, check in (
            ("redis", lambda: check_redis(runtime.broker)),
            ("database", lambda: check_connection(runtime.engine)),
        ):
            try:
                check()
                checks[name] = "ok"
            except ServiceUnavailable as error:
                checks[name] = str(error)
        healthy = all(value == "ok" for value in checks.values())
        return {"status": "ok" if healthy else "unavailable", "checks": checks}, 200 if healthy else 503
