"""The module the worker command loads: ``dramatiq jobs.worker``.

It reads the settings, builds the broker and imports every actor. A bad setting stops the
worker with one line naming the variable.
"""

from __future__ import annotations

import sys

from jobs.platform.errors import JobdeckError
from jobs.runtime import start

try:
    broker = start().broker
except JobdeckError as error:
    print(f"jobdeck worker: {error}", file=sys.stderr)
    sys.exit(2)
