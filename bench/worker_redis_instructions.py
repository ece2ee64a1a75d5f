"""Redis instructions per message while real workers drain a queue (issue 9). Not a test.

    python bench/worker_redis_instructions.py [--jobs 3000] [--tree PATH]

Runs redis-server under valgrind's callgrind, sends ``--jobs`` no-op messages (jobdeck's, with
every record on, then plain Dramatiq + Results'), zeroes the counts, lets real ``dramatiq`` workers
(2 processes x 8 threads) drain the queue, and prints the instructions Redis executed per message
while they did: every fetch, start and finish record, result and ack. ``--tree`` points jobdeck's
side at another source tree (a worktree of an older commit, for a before figure). Unlike CPU
times on a shared machine, instruction counts do not move with the machine's load; they leave
out the kernel's share (the socket calls), which both sides pay alike per round trip.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))

from bench.record_instructions import start_under_callgrind  # noqa: E402
from jobs.platform.redis_server import free_port  # noqa: E402


def instructions_per_message(kind: str, jobs: int, tree: Path) -> float:
    work = Path(tempfile.mkdtemp(prefix="jobdeck-bench-worker-callgrind-"))
    output = work / "callgrind.out"
    port = free_port()
    server, client = start_under_callgrind("redis-server", output, port)
    url = f"redis://127.0.0.1:{port}/0"
    env = {
        **os.environ,
        "REDIS_URL": url,
        "RESULTS_REDIS_URL": url,
        "JOBDECK_VAR_DIR": str(work / "var"),
        "PYTHONPATH": str(tree),
    }
    module = "bench.noop_jobdeck" if kind == "jobdeck" else "bench.noop_plain"
    send = ("from jobs.runtime import start; start()\n" if kind == "jobdeck" else "") + (
        f"import {module} as m\n[m.noop.send() for _ in range({jobs})]\n"
    )
    subprocess.run([sys.executable, "-c", send], env=env, cwd=tree, check=True)
    subprocess.run(["callgrind_control", "--zero", str(server.pid)], check=True, capture_output=True)
    command = [str(BIN / "dramatiq"), *(["jobs.worker"] if kind == "jobdeck" else []), module]
    command += ["--processes", "2", "--threads", "8", "--queues", "default"]
    worker = subprocess.Popen(
        command, env=env, cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while client.hlen("dramatiq:default.msgs") > 0:
            time.sleep(0.2)
        subprocess.run(["callgrind_control", "--dump", str(server.pid)], check=True, capture_output=True)
    finally:
        worker.terminate()
        worker.wait(60)
        with contextlib.suppress(redis.ConnectionError):
            client.shutdown(nosave=True)
        server.wait()
    # The dump after zeroing holds the workers' phase only (callgrind numbers it .1).
    dumped = next(path for path in work.glob("callgrind.out.*") if path.suffix != ".out")
    summary = re.search(r"^summary: (\d+)$", dumped.read_text(), re.MULTILINE)
    return int(summary.group(1)) / jobs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--tree", type=Path, default=ROOT)
    arguments = parser.parse_args()
    jobdeck = instructions_per_message("jobdeck", arguments.jobs, arguments.tree.resolve())
    plain = instructions_per_message("plain", arguments.jobs, ROOT)
    print(f"tree: {arguments.tree.resolve()}")
    print(f"Redis instructions per message, workers draining {arguments.jobs} no-ops:")
    print(f"  plain Dramatiq + Results: {plain:,.0f}")
    print(f"  jobdeck, every record on: {jobdeck:,.0f} ({jobdeck / plain:.2f} x plain)")


if __name__ == "__main__":
    main()
