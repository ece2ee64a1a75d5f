"""The Flask application: the REST API under /api/core/, its OpenAPI document and docs, health, metrics."""

from __future__ import annotations

from typing import Any

from flask import Flask, request
from werkzeug.exceptions import RequestEntityTooLarge

from api import docs, limits, metrics
from api.auth import SECURITY_SCHEMES
from api.errors import JobdeckApi
from api.resources import (
    actors,
    audit,
    backups,
    chains,
    exports,
    health,
    history,
    reports,
    schedules,
    tasks,
    workers,
)
from jobs.runtime import start

#: Every blueprint of the API, in the order of the OpenAPI document.
BLUEPRINTS = (
    tasks.blueprint,
    history.blueprint,
    chains.blueprint,
    workers.blueprint,
    actors.blueprint,
    schedules.blueprint,
    reports.blueprint,
    exports.blueprint,
    backups.blueprint,
    audit.blueprint,
    health.blueprint,
)


def refuse_large_bodies() -> None:
    """413 for a declared body over MAX_CONTENT_LENGTH, before a parser can read it as bad JSON."""
    limit = request.max_content_length
    if limit is not None and request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge(f"the body may be at most {limit} bytes")


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the web application; ``config`` overrides Flask settings (tests pass RUNTIME in)."""
    app = Flask(__name__)
    app.config.update(
        API_TITLE="jobdeck",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL=docs.ASSETS_URL,
        # Swagger UI would otherwise send the document to an outside validator for a badge.
        OPENAPI_SWAGGER_UI_CONFIG={"validatorUrl": None, "deepLinking": True},
        API_SPEC_OPTIONS={
            "info": {"description": "jobdeck's background jobs: send, watch and act on them."},
            "components": {"securitySchemes": SECURITY_SCHEMES},
        },
    )
    app.config.update(config or {})
    runtime = app.config.get("RUNTIME") or start()
    app.extensions["jobdeck_runtime"] = runtime
    if app.config.get("MAX_CONTENT_LENGTH") is None:
        app.config["MAX_CONTENT_LENGTH"] = runtime.settings.api_max_body
    # The original's paths end in a slash; the same path without it answers too, not a redirect.
    app.url_map.strict_slashes = False
    # Fields in the order the schemas declare them (task_id first), not sorted.
    app.json.sort_keys = False
    app.before_request(refuse_large_bodies)

    api = JobdeckApi(app)
    for blueprint in BLUEPRINTS:
        api.register_blueprint(blueprint)
    docs.init_app(app)
    metrics.init_app(app)
    limits.init_app(app, runtime)
    return app
