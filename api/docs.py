"""The interactive API page (Swagger UI) served from the swagger-ui-bundle package: no internet needed."""

from __future__ import annotations

from flask import Blueprint, Flask, send_from_directory
from swagger_ui_bundle import swagger_ui_path

#: Where Swagger UI's scripts and styles are served; OPENAPI_SWAGGER_UI_URL points here, not at a CDN.
ASSETS_URL = "/api/docs/assets/"

blueprint = Blueprint("docs_assets", __name__)


@blueprint.get(ASSETS_URL + "<path:filename>")
def asset(filename: str):
    """One of Swagger UI's files, cached by the browser for a day."""
    return send_from_directory(str(swagger_ui_path), filename, max_age=86400)


def init_app(app: Flask) -> None:
    app.register_blueprint(blueprint)
