"""One JSON error shape for every error the API returns: ``{"error": {"code", "message", "details"}}``.

flask-smorest documents it (``ERROR_SCHEMA``) for every error status an operation declares. Domain
errors map to their status here, once; a lost Redis or database connection is a 503; anything
unexpected is a 500 that says only that (the traceback goes to the log, never to the client).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import redis
from flask import Response, jsonify
from flask_smorest import Api
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

from api.schemas.errors import ErrorSchema
from jobs.platform.errors import (
    ActionRefused,
    AlreadyExists,
    BadArguments,
    JobdeckError,
    NotFound,
    NotReady,
    ServiceUnavailable,
    UnknownJob,
)

logger = logging.getLogger(__name__)

#: HTTP status of each domain error (the first that matches); any other of ours is a 400.
STATUS_BY_ERROR = (
    (NotFound, 404),
    (UnknownJob, 400),
    (BadArguments, 400),
    (ActionRefused, 409),
    (AlreadyExists, 409),
    (NotReady, 409),
    (ServiceUnavailable, 503),
)
#: The ``code`` of HTTP errors whose werkzeug name says less than it should.
CODE_BY_STATUS = {400: "bad_request", 422: "validation_error", 500: "internal_error"}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The one error shape."""
    return {"error": {"code": code, "message": message, "details": details}}


def error_response(status: int, code: str, message: str, details: Any = None) -> Response:
    response = jsonify(error_body(code, message, details))
    response.status_code = status
    return response


def snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class JobdeckApi(Api):
    """flask-smorest's Api with jobdeck's error shape for HTTP, domain and connection errors."""

    ERROR_SCHEMA = ErrorSchema
    # Each operation lists the errors it can answer; a catch-all "default" would hide a wrong status.
    DEFAULT_ERROR_RESPONSE_NAME = None

    def handle_http_exception(self, error: HTTPException):
        """Render any HTTP error (validation errors, 404, 405, 413, 429, ...) in the one shape."""
        if isinstance(error, InternalServerError):
            return self.handle_unexpected_error(error.original_exception or error)
        data = getattr(error, "data", None) or {}
        status = error.code or 500
        details = data.get("messages") or data.get("errors")
        if details is not None:
            message = "the request does not fit the operation's schema; details says where"
            code = "validation_error"
        else:
            message = error.description or error.name
            code = CODE_BY_STATUS.get(status) or snake_case((error.name or "error").replace(" ", ""))
        response = error_response(status, code, message, details)
        for name, value in (data.get("headers") or {}).items():
            response.headers[name] = value
        if status == 405 and hasattr(error, "valid_methods") and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response

    def _register_error_handlers(self):
        super()._register_error_handlers()
        self._app.register_error_handler(JobdeckError, self.handle_jobdeck_error)
        self._app.register_error_handler(redis.RedisError, self.handle_connection_error)
        self._app.register_error_handler(OperationalError, self.handle_connection_error)

    def handle_jobdeck_error(self, error: JobdeckError) -> Response:
        """Map a domain error to its HTTP status, never a 5xx for a bad request."""
        status = next((code for kind, code in STATUS_BY_ERROR if isinstance(error, kind)), 400)
        return error_response(status, snake_case(type(error).__name__), str(error))

    def handle_connection_error(self, error: Exception) -> Response:
        """Redis or the database did not answer: 503, naming which, without the driver's text."""
        service = "Redis" if isinstance(error, redis.RedisError) else "the database"
        logger.warning("%s did not answer: %s", service, type(error).__name__)
        return error_response(503, "service_unavailable", f"{service} cannot be reached; try again shortly")

    def handle_unexpected_error(self, error: BaseException) -> Response:
        logger.error("Unexpected error answering a request", exc_info=error)
        return error_response(
            500, "internal_error", "an unexpected error happened; it is in the server's log"
        )
