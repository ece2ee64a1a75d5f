"""Bearer tokens (flask-httpauth) with viewer and admin roles, and the audit of admin actions.

A view says what it needs with ``@viewer`` or ``@admin``: the token is checked by
``runtime.tokens`` (monitoring.access), the role by flask-httpauth, and the OpenAPI document
gets the operation's 401/403 responses. An admin action runs inside ``audited(...)``, which
writes who (the token's name), what, the target, from where and the outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from copy import deepcopy
from typing import Any

from flask import current_app, request
from flask_httpauth import HTTPTokenAuth

from api.errors import error_response
from monitoring.access import ADMIN, VIEWER, TokenInfo
from monitoring.audit import Action

#: The security scheme every operation under /api/core/ names in the OpenAPI document.
SECURITY_SCHEMES = {"bearerAuth": {"type": "http", "scheme": "bearer", "description": "A jobdeck API token"}}
SECURITY = [{"bearerAuth": []}]

auth = HTTPTokenAuth(scheme="Bearer")


@auth.verify_token
def verify_token(token: str) -> TokenInfo | None:
    return current_app.extensions["jobdeck_runtime"].tokens.verify(token)


@auth.get_user_roles
def token_roles(token: TokenInfo) -> tuple[str, ...]:
    return token.grants


@auth.error_handler
def refuse(status: int):
    if status == 403:
        return error_response(403, "forbidden", "this token's role may not do this; an admin token may")
    return error_response(401, "unauthorized", "give a valid API token: Authorization: Bearer <token>")


def viewer(view: Callable) -> Callable:
    """Any live token may call the view (viewers and admins)."""
    return _documented(auth.login_required(role=VIEWER)(view), (401,))


def admin(view: Callable) -> Callable:
    """Only an admin token may call the view."""
    return _documented(auth.login_required(role=ADMIN)(view), (401, 403))


def current_token() -> TokenInfo:
    return auth.current_user()


@contextmanager
def audited(action: str, target: str | None = None) -> Iterator[Action]:
    """Run an admin action and write it to the audit log with its outcome (see AuditLog.audited)."""
    runtime = current_app.extensions["jobdeck_runtime"]
    with runtime.audit.audited(
        actor=current_token().name, action=action, target=target, source=request.remote_addr
    ) as action_state:
        yield action_state


def _documented(view: Callable, statuses: tuple[int, ...]) -> Callable:
    """Add the auth errors, the rate limit's 429 and the 503 of a lost service to the OpenAPI responses."""
    names = {401: "UNAUTHORIZED", 403: "FORBIDDEN", 429: "TOO_MANY_REQUESTS", 503: "SERVICE_UNAVAILABLE"}
    apidoc: dict[str, Any] = deepcopy(getattr(view, "_apidoc", {}))
    responses = apidoc.setdefault("response", {}).setdefault("responses", {})
    for status in (*statuses, 429, 503):
        responses.setdefault(status, []).append(names[status])
    apidoc.setdefault("manual_doc", {})["security"] = SECURITY
    view._apidoc = apidoc
    return view
