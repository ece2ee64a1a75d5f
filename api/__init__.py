"""The Flask application: REST API, health check and (later) the dashboard."""

from __future__ import annotations

from typing import Any

from flask import Flask

from api import metrics
from api.errors import JobdeckApi
from api.health import blueprint as health_blueprint
from jobs.runtime import start


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
        OPENAPI_SWAGGER_UI_URL="https://cdn.jsdelivr.net/npm/swagger-ui-dist/",
        JSON_SORT_KEYS=False,
    )
    app.config.update(config or {})
    app.extensions["jobdeck_runtime"] = app.config.get("RUNTIME") or start()

    api = JobdeckApi(app)
    api.register_blueprint(health_blueprint)
    metrics.init_app(app)
    return app
