"""One JSON error shape for every error the API returns."""

from __future__ import annotations

from flask import jsonify
from flask_smorest import Api
from werkzeug.exceptions import HTTPException

from jobs.platform.errors import BadArguments, JobdeckError, ServiceUnavailable, UnknownJob

#: HTTP status for each domain error; anything else of ours is a 400.
STATUS_BY_ERROR = {UnknownJob: 404, BadArguments: 422, ServiceUnavailable: 503}


def error_body(status: int, code: str, message: str, errors: dict | None = None) -> dict:
    """The one error shape: ``{"error": {"status", "code", "message", "errors"?}}``."""
    body = {"status": status, "code": code, "message": message}
    if errors:
        body["errors"] = errors
    return {"error": body}


class JobdeckApi(Api):
    """flask-smorest's Api with jobdeck's error shape for HTTP and domain errors."""

    def handle_http_exception(self, error: HTTPException):
        """Render any HTTP error (including validation errors) in the one error shape."""
        data = getattr(error, "data", None) or {}
        body = error_body(
            error.code or 500,
            (error.name or "error").lower().replace(" ", "_"),
            error.description or "",
            data.get("messages"),
        )
        return jsonify(body), error.code

    def _register_error_handlers(self):
        super()._register_error_handlers()
        self._app.register_error_handler(JobdeckError, self.handle_jobdeck_error)

    def handle_jobdeck_error(self, error: JobdeckError):
        """Map a domain error to its HTTP status, never a 5xx for a bad request."""
        status = next((code for kind, code in STATUS_BY_ERROR.items() if isinstance(error, kind)), 400)
        return jsonify(error_body(status, type(error).__name__, str(error))), status
