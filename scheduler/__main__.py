"""Entry point of the scheduler process: ``python -m scheduler [--list] [MODULE ...]``."""

from __future__ import annotations

import sys

from scheduler.process import run

if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
