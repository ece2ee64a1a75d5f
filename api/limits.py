"""Rate limits per token (flask-limiter, counters in Redis): generous for reads, tighter for writes.

Every request under /api/core/ counts against its token's read (GET) or write (POST) limit, whichever
its method is; a request without a token counts against its address. Past the limit the answer is
429 in the one error shape with ``Retry-After`` (seconds). The counters live in the broker's Redis
under jobdeck's rate-limit prefix; if Redis does not answer, the limit is not applied (the request
itself then fails with a 503 where it needs Redis).
"""

from __future__ import annotations

import hashlib
import math
import time

from flask import Flask, request
from flask_limiter import ApplicationLimit, Limiter, RequestLimit

from api.errors import error_response
from jobs.runtime import Runtime

#: Requests under this path are limited; health, metrics and the documents are not.
LIMITED_PREFIX = "/api/core/"


def limit_key() -> str:
    """The token's digest (never the token itself: it would sit in Redis) or the client's address."""
    authorization = request.authorization
    token = authorization.token if authorization is not None and authorization.type == "bearer" else None
    if token:
        return "token:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    return "address:" + (request.remote_addr or "unknown")


def exempt() -> bool:
    return not request.path.startswith(LIMITED_PREFIX)


def on_breach(limit: RequestLimit):
    # window[0] is when the window resets (reset_at rounds it up by a second more).
    retry_after = max(1, math.ceil(limit.window[0] - time.time()))
    response = error_response(
        429, "too_many_requests", f"rate limit of {limit.limit} reached; try again in {retry_after} s"
    )
    response.headers["Retry-After"] = str(retry_after)
    return response


def init_app(app: Flask, runtime: Runtime) -> Limiter:
    """Limit the app's API requests with the configured read and write rates."""
    settings = runtime.settings
    limiter = Limiter(
        limit_key,
        application_limits=[
            ApplicationLimit(settings.api_read_rate, scope="reads", methods=["GET"], exempt_when=exempt),
            ApplicationLimit(settings.api_write_rate, scope="writes", methods=["POST"], exempt_when=exempt),
        ],
        storage_uri=settings.redis_url,
        storage_options={
            "connection_pool": runtime.broker.client.connection_pool,
            "key_prefix": runtime.rate_limit_prefix,
        },
        strategy="fixed-window",
        swallow_errors=True,
        on_breach=on_breach,
    )
    limiter.init_app(app)
    return limiter
