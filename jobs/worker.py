"""The module the worker command loads: ``dramatiq jobs.worker``.

It reads the settings, builds the broker and imports every actor. A bad setting stops the
worker with one line naming the variable. Dramatiq imports it in each worker process after
installing its signal handlers, so a repeated SIGTERM (a platform signals every process of a
dyno, and the dramatiq parent relays it) no longer cuts the running jobs (jobs.platform.shutdown).
"""

from __future__ import annotations

import sys

from jobs.platform.errors import JobdeckError
from jobs.platform.shutdown import ignore_repeated_stop_signals
from jobs.runtime import start

try:
    broker = start().broker
except JobdeckError as error:
    print(f"jobdeck worker: {error}", file=sys.stderr)
    sys.exit(2)
ignore_repeated_stop_signals()
