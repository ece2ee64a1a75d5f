"""Entry point of the scheduler process: ``python -m scheduler``."""

from __future__ import annotations

import sys

from scheduler.process import run

if __name__ == "__main__":
    sys.exit(run())
