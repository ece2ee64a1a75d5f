"""Every Redis key jobdeck itself writes, with its Redis type. No other module formats a key.

Dramatiq's own keys (``dramatiq:*``: queues, delay queues, dead letters, heartbeats) belong to
the broker and are read through it.

    jobdeck:cache:<name>                 STRING  web-process cache entries (Flask-Caching)
"""

from __future__ import annotations

#: Everything jobdeck writes to Redis starts with this.
PREFIX = "jobdeck:"
#: The web process's cache entries; cleanup_cache deletes under this prefix only.
CACHE_PREFIX = PREFIX + "cache:"
