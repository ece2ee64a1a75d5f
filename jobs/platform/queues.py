"""jobdeck's four queues, named once: actors, settings and the worker command use these."""

from __future__ import annotations

FINANCE = "finance"
REPORTS = "reports"
EMAIL = "email"
DEFAULT = "default"

#: Every queue, in the order a worker polls them.
QUEUES = (FINANCE, REPORTS, EMAIL, DEFAULT)
