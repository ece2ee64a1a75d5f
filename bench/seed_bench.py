"""Seed 1,000,000 bills into a fresh temporary SQLite file and print how long it took (bar: < 60 s).

Run: ``.venv/bin/python bench/seed_bench.py [--bills N] [--customers N] [--keep]``
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from jobs.billing.seed import seed_demo
from jobs.platform.database import make_engine, upgrade

BAR_SECONDS = 60.0
DEFAULT_BILLS = 1_000_000
DEFAULT_CUSTOMERS = 50_000


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 1 when the bar is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bills", type=int, default=DEFAULT_BILLS)
    parser.add_argument("--customers", type=int, default=DEFAULT_CUSTOMERS)
    parser.add_argument("--keep", action="store_true", help="keep the database file and print its path")
    args = parser.parse_args(argv)

    directory = Path(tempfile.mkdtemp(prefix="jobdeck-seed-bench-"))
    database_url = f"sqlite:///{directory / 'bench.sqlite3'}"
    try:
        upgrade(database_url)
        engine = make_engine(database_url)
        started = time.perf_counter()
        written = seed_demo(engine, customers=args.customers, bills=args.bills)
        elapsed = time.perf_counter() - started
        engine.dispose()
        size_mb = (directory / "bench.sqlite3").stat().st_size / 1e6
    finally:
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
    print(
        f"seeded {written['customers']:,} customers, {written['bills']:,} bills, "
        f"{written['payments']:,} payments ({size_mb:,.0f} MB) in {elapsed:.1f} s"
    )
    print(f"statuses: {written['statuses']}")
    print(f"bar: < {BAR_SECONDS:.0f} s -> {'PASS' if elapsed < BAR_SECONDS else 'FAIL'}")
    if args.keep:
        print(f"database kept at {database_url}")
    return 0 if elapsed < BAR_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
