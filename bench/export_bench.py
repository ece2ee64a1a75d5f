"""Export 1,000,000 bills to CSV and print rows/s (bar: >= 100,000) and memory growth (bar: < 150 MB).

Seeds a fresh temporary SQLite file with ``jobs.billing.seed.seed_demo`` (about 35 s) unless
``--database-url`` names an already seeded database, then runs the same code as the
``export_data`` actor. Memory growth is the peak resident set size sampled every 20 ms while
exporting, minus the resident size just before.

Run: ``.venv/bin/python bench/export_bench.py [--bills N] [--database-url URL] [--keep]``
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from jobs.billing.exports.request import parse_export_request
from jobs.billing.exports.running import run_export
from jobs.billing.models import Bill
from jobs.billing.seed import seed_demo
from jobs.platform.database import make_engine, redact_url, upgrade
from jobs.platform.storage import LocalStorage

ROWS_PER_SECOND_BAR = 100_000
MEMORY_GROWTH_BAR_MB = 150.0
DEFAULT_BILLS = 1_000_000
DEFAULT_CUSTOMERS = 50_000
SAMPLE_INTERVAL = 0.02


def resident_mb() -> float:
    """This process's resident set size (VmRSS) in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


class PeakMemory:
    """Samples VmRSS in a thread; ``peak`` is the highest value seen."""

    def __init__(self) -> None:
        self.peak = resident_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, resident_mb())

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL):
            self.peak = max(self.peak, resident_mb())


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 1 when a bar is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bills", type=int, default=DEFAULT_BILLS)
    parser.add_argument("--customers", type=int, default=DEFAULT_CUSTOMERS)
    parser.add_argument("--database-url", help="an already seeded database (skips seeding)")
    parser.add_argument("--keep", action="store_true", help="keep the seeded database and print its URL")
    args = parser.parse_args(argv)

    directory = Path(tempfile.mkdtemp(prefix="jobdeck-export-bench-"))
    database_url = args.database_url or f"sqlite:///{directory / 'bench.sqlite3'}"
    try:
        engine = make_engine(database_url)
        if not args.database_url:
            upgrade(database_url)
            started = time.perf_counter()
            seed_demo(engine, customers=args.customers, bills=args.bills)
            print(f"seeded {args.bills:,} bills in {time.perf_counter() - started:.1f} s")
        with engine.connect() as connection:
            bills_in_database = connection.scalar(select(func.count()).select_from(Bill.__table__))
        request = parse_export_request("bills", "csv", None, ZoneInfo("UTC"))
        storage = LocalStorage(directory / "exports")
        before = resident_mb()
        with PeakMemory() as memory:
            started = time.perf_counter()
            summary = run_export(engine, storage, request, ttl_days=1)
            elapsed = time.perf_counter() - started
        engine.dispose()
    finally:
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
    rows_per_second = summary["rows"] / elapsed
    growth = memory.peak - before
    # A fast export that loses rows is no pass.
    speed_ok = rows_per_second >= ROWS_PER_SECOND_BAR and summary["rows"] == bills_in_database
    memory_ok = growth < MEMORY_GROWTH_BAR_MB
    print(f"database: {redact_url(database_url)}")
    print(
        f"exported {summary['rows']:,} of {bills_in_database:,} bills "
        f"to CSV ({summary['size_bytes'] / 1e6:,.0f} MB) "
        f"in {elapsed:.2f} s -> {rows_per_second:,.0f} rows/s; "
        f"bar >= {ROWS_PER_SECOND_BAR:,} -> {'PASS' if speed_ok else 'FAIL'}"
    )
    print(
        f"memory: {before:,.0f} MB before, {memory.peak:,.0f} MB peak -> growth {growth:,.1f} MB; "
        f"bar < {MEMORY_GROWTH_BAR_MB:.0f} MB -> {'PASS' if memory_ok else 'FAIL'}"
    )
    if args.keep:
        print(f"database kept at {database_url}")
    return 0 if speed_ok and memory_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
