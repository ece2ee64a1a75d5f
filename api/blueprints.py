"""The blueprint every API resource is: 400 for bad input, unknown fields refused, errors documented."""

from __future__ import annotations

from collections.abc import Callable

import flask_smorest
from marshmallow import RAISE
from webargs.flaskparser import FlaskParser

#: The name of each error response flask-smorest registers (they all use the one error schema).
RESPONSE_NAMES = {
    400: "BAD_REQUEST",
    404: "NOT_FOUND",
    409: "CONFLICT",
    413: "REQUEST_ENTITY_TOO_LARGE",
    503: "SERVICE_UNAVAILABLE",
}


class StrictParser(FlaskParser):
    """webargs' Flask parser answering 400 (not 422) and refusing unknown fields in bodies and queries."""

    DEFAULT_VALIDATION_STATUS = 400
    DEFAULT_UNKNOWN_BY_LOCATION = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "json": RAISE,
        "query": RAISE,
        "querystring": RAISE,
        "form": RAISE,
    }


class ResourceBlueprint(flask_smorest.Blueprint):
    """One API resource: its views, their schemas, and the errors each can answer."""

    ARGUMENTS_PARSER = StrictParser()

    def errors(self, *statuses: int) -> Callable:
        """Document the error statuses a view can answer besides 401/403/429 (see api.auth)."""

        def decorator(view: Callable) -> Callable:
            for status in statuses:
                view = self.alt_response(status, response=RESPONSE_NAMES[status])(view)
            return view

        return decorator
