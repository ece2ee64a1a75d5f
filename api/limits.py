"""Rate limits per token, counted in Redis: generous for reads, tighter for writes.

Every request under /api/core/ counts against its token's read (GET) or write (POST) limit; a
request without a token counts against its address. Past the limit the answer is 429 in the one
error shape with ``Retry-After`` (seconds). The counters are fixed windows in the broker's Redis
under jobdeck's rate-limit prefix, one round trip per request; if Redis does not answer, the limit
is not applied (the request itself then fails with a 503 where it needs Redis).

This is ``limits``, the library under flask-limiter, called from one before-request hook:
flask-limiter's own per-request bookkeeping (resolving, filtering and re-evaluating its limits on
every request, exempt or not) cost as much as the rest of a task read (docs/performance.md).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time

import redis
from flask import Flask, request
from limits import RateLimitItem, parse_many
from limits.storage import RedisStorage
from limits.strategies import FixedWindowRateLimiter

from api.errors import error_response
from jobs.runtime import Runtime

logger = logging.getLogger(__name__)

#: Requests under this path are limited; health, metrics and the documents are not.
LIMITED_PREFIX = "/api/core/"
READ_METHODS = ("GET", "HEAD")


def limit_key() -> str:
    """The token's digest (never the token itself: it would sit in Redis) or the client's address."""
    authorization = request.authorization
    token = authorization.token if authorization is not None and authorization.type == "bearer" else None
    if token:
        return "token:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    return "address:" + (request.remote_addr or "unknown")


class TokenRateLimits:
    """The app's read and write limits, checked before each API request.

    Parameters:
      runtime(Runtime): for the broker's Redis, the key prefix and the configured rates.
    """

    def __init__(self, runtime: Runtime) -> None:
        storage = RedisStorage(
            runtime.settings.redis_url,
            connection_pool=runtime.broker.client.connection_pool,
            key_prefix=runtime.rate_limit_prefix,
        )
        self.limiter = FixedWindowRateLimiter(storage)
        self.limits: dict[str, list[RateLimitItem]] = {
            "reads": parse_many(runtime.settings.api_read_rate),
            "writes": parse_many(runtime.settings.api_write_rate),
        }

    def check(self):
        """Count the request; a 429 response once a limit is reached, else None (go on)."""
        if not request.path.startswith(LIMITED_PREFIX):
            return None
        scope = "reads" if request.method in READ_METHODS else "writes"
        key = limit_key()
        try:
            for item in self.limits[scope]:
                if not self.limiter.hit(item, scope, key):
                    return self._refusal(item, scope, key)
        except redis.RedisError as error:
            logger.warning("Rate limits not applied, Redis did not answer: %s", type(error).__name__)
        return None

    def _refusal(self, item: RateLimitItem, scope: str, key: str):
        reset_at = self.limiter.get_window_stats(item, scope, key).reset_time
        retry_after = max(1, math.ceil(reset_at - time.time()))
        response = error_response(
            429, "too_many_requests", f"rate limit of {item} reached; try again in {retry_after} s"
        )
        response.headers["Retry-After"] = str(retry_after)
        return response


def init_app(app: Flask, runtime: Runtime) -> TokenRateLimits:
    """Limit the app's API requests with the configured read and write rates."""
    limits = TokenRateLimits(runtime)
    app.before_request(limits.check)
    return limits
