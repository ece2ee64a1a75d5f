"""Monitoring benchmarks (issue 4). Not a test: prints figures and their bars.

    python bench/monitoring_bench.py throughput [--jobs 50000] [--runs 5]
    python bench/monitoring_bench.py reads [--tasks 1000000]

throughput: no-op jobs through real workers (2 processes x 8 threads), jobdeck as deployed (every
record, counter and heartbeat on; Dramatiq's per-process Prometheus off, its default) versus
plain Dramatiq with Results only, interleaved runs on one Redis, each timed from when both
worker processes fetch (so start-up is not timed); the figure is the ratio of median
throughputs (bar >= 1.0). It also reports Redis memory per
retained task.
reads: with N task records in the store, p95 latency of one task's status, a 50-row history
page (unfiltered, by actor, by state) and stats for all actors (bar < 20 ms each).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import dramatiq
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jobs.platform.redis_server import free_port, start_embedded_redis  # noqa: E402

BIN = Path(sys.executable).parent
#: Issue 9: jobdeck with all its monitoring at least as fast as plain Dramatiq with Results.
THROUGHPUT_BAR = 1.0
WORKER_PROCESSES = 2
READ_BAR_MS = 20.0
#: A worker's id as Dramatiq's Redis broker makes it (a UUID): its length decides how Redis
#: encodes a task's hash, and so the memory a task takes.
WORKER = "4f1d7c9e-3b2a-4e8f-9c6d-1a2b3c4d5e6f"


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, {platform.system()}"


def environment(redis_url: str, work: Path) -> dict[str, str]:
    return {
        **os.environ,
        "REDIS_URL": redis_url,
        # Results on the broker's database, jobdeck's default, for both sides alike.
        "RESULTS_REDIS_URL": redis_url,
        "JOBDECK_VAR_DIR": str(work / "var"),
        "PYTHONPATH": str(ROOT),
        "dramatiq_prom_db": str(work / "prometheus"),
        "dramatiq_prom_port": str(free_port()),
    }


@dataclass
class Run:
    rate: float  # messages per second
    enqueue_rate: float  # messages sent per second by one producer thread
    worker_cpu_us: float  # CPU time of the worker processes per message
    redis_cpu_us: float  # CPU time of the Redis server per message
    connections: int  # most Redis connections the workers held at once


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of one process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [pid, *(descendant for child in children for descendant in process_tree(int(child)))]


def one_run(kind: str, jobs: int, redis_url: str, work: Path) -> Run:
    """Enqueue ``jobs`` no-ops, start the workers, measure messages per second and CPU per message."""
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    env = environment(redis_url, work)
    (work / "prometheus").mkdir(parents=True, exist_ok=True)
    module = "bench.noop_jobdeck" if kind == "jobdeck" else "bench.noop_plain"
    enqueue = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
        + ("from jobs.runtime import start; start()\n" if kind == "jobdeck" else "")
        + f"import {module} as m\n"
        + "import time\n"
        + "began = time.perf_counter()\n"
        + f"[m.noop.send() for _ in range({jobs})]\n"
        + f"print({jobs} / (time.perf_counter() - began))\n"
    )
    sent = subprocess.run([sys.executable, "-c", enqueue], env=env, check=True, cwd=ROOT, capture_output=True)
    enqueue_rate = float(sent.stdout.decode().split()[-1])
    messages = "dramatiq:default.msgs"
    assert client.hlen(messages) == jobs
    heartbeats = "dramatiq:__heartbeats__"
    beating_before = client.zcard(heartbeats)  # the producer: every dispatch call beats
    command = [str(BIN / "dramatiq"), "jobs.worker" if kind == "jobdeck" else module]
    if kind == "jobdeck":
        command.append(module)
    command += ["--processes", str(WORKER_PROCESSES), "--threads", "8", "--queues", "default"]
    worker = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    redis_pid = client.info("server")["process_id"]
    try:
        # The window opens once both worker processes fetch (each then beats in Dramatiq's heartbeat
        # set), so that neither side's start-up (imports, first connections) is timed as throughput.
        while client.hlen(messages) == jobs or client.zcard(heartbeats) < beating_before + WORKER_PROCESSES:
            time.sleep(0.005)
        started, remaining_at_start = time.perf_counter(), client.hlen(messages)
        workers = process_tree(worker.pid)
        worker_cpu, redis_cpu = sum(map(cpu_seconds, workers)), cpu_seconds(redis_pid)
        peak_connections = 0
        while (remaining := client.hlen(messages)) > 0:
            peak_connections = max(peak_connections, client.info("clients")["connected_clients"] - 1)
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        worker_cpu = sum(map(cpu_seconds, workers)) - worker_cpu
        redis_cpu = cpu_seconds(redis_pid) - redis_cpu
    finally:
        worker.terminate()
        worker.wait(60)
    if kind == "jobdeck":
        check_everything_recorded(jobs, env)
    done = remaining_at_start - remaining
    return Run(
        done / elapsed, enqueue_rate, worker_cpu * 1e6 / done, redis_cpu * 1e6 / done, peak_connections
    )


def check_everything_recorded(jobs: int, env: dict[str, str]) -> None:
    """A fast run must not be a run that skipped its records: every task SUCCESS, with its result."""
    from jobs.platform.settings import load_settings
    from jobs.runtime import start

    runtime = start(load_settings(env, dotenv=False))
    succeeded = runtime.monitor.count_tasks_by_state()["SUCCESS"]
    newest = runtime.monitor.get_task_history(limit=1).tasks[0]
    message = dramatiq.Message(
        queue_name=newest.queue,
        actor_name=newest.task_name,
        args=(),
        kwargs={},
        options={},
        message_id=newest.task_id,
    )
    result = runtime.manager.wait_for_result(message, timeout=1)  # from Dramatiq's results backend
    if succeeded != jobs or result.status != "SUCCESS":
        raise SystemExit(f"jobdeck recorded {succeeded} of {jobs} tasks as SUCCESS (newest: {result.status})")


def memory_per_task(redis_url: str, tasks: int = 20_000) -> float:
    """Bytes of Redis memory per retained successful task record (all indexes and counters)."""
    from jobs.platform.settings import load_settings
    from jobs.runtime import start

    client = redis.Redis.from_url(redis_url)
    client.flushall()
    runtime = start(load_settings({"REDIS_URL": redis_url}, dotenv=False))
    populate(runtime.store, tasks // 2, seed=1)
    before = client.info("memory")["used_memory"]
    populate(runtime.store, tasks // 2, seed=2)
    return (client.info("memory")["used_memory"] - before) / (tasks // 2)


def memory_per_result(redis_url: str, results: int = 10_000) -> float:
    """Bytes of Redis memory per no-op result kept by Dramatiq's results backend."""
    from jobs.platform.results import results_backend
    from jobs.platform.settings import load_settings
    from jobs.runtime import start

    client = redis.Redis.from_url(redis_url)
    client.flushall()
    backend = results_backend(start(load_settings({"REDIS_URL": redis_url}, dotenv=False)).broker)
    before = client.info("memory")["used_memory"]
    for _ in range(results):
        message = dramatiq.Message(queue_name="default", actor_name="noop", args=(), kwargs={}, options={})
        backend.store_result(message, None, 86_400_000)
    return (client.info("memory")["used_memory"] - before) / results


def populate(store, tasks: int, *, seed: int, batch: int = 1_000) -> None:
    """Record ``tasks`` finished tasks the way workers do (enqueue, start, finish), pipelined."""
    from monitoring.store import duration_bucket

    rng = random.Random(seed)
    actors = [f"actor_{n}" for n in range(15)]
    for first in range(0, tasks, batch):
        pipeline = store.client.pipeline(transaction=False)
        for number in range(first, min(first + batch, tasks)):
            task_id = f"{seed}-{number:08d}"
            actor = rng.choice(actors)
            description = {"actor": actor, "queue": "default", "args": f'["{number}"]', "kwargs": '{"n": 1}'}
            store.record("enqueue", task_id, description, pipeline=pipeline)
            store.record(
                "start",
                task_id,
                {**description, "worker": WORKER, "attempt": 1, "retries": 0},
                pipeline=pipeline,
            )
            failed = rng.random() < 0.02
            duration = int(rng.expovariate(1 / 40))
            store.record(
                "finish",
                task_id,
                {
                    **description,
                    "state": "FAILURE" if failed else "SUCCESS",
                    "duration_ms": duration,
                    "bucket": duration_bucket(duration),
                    "retries": 0,
                    "attempt": 1,
                    "worker": WORKER,
                    "result": '{"ok": true}',
                    "error_type": "ValueError" if failed else None,
                    "error_message": f"bad value {number}" if failed else None,
                    "fingerprint": "f00d" if failed else None,
                },
                pipeline=pipeline,
            )
        pipeline.execute()


def throughput(arguments: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="jobdeck-bench-"))
    redis_url = start_embedded_redis(work / "redis", persistent=False)
    figures: dict[str, list[Run]] = {"plain": [], "jobdeck": []}
    for run in range(arguments.runs):
        for kind in ("plain", "jobdeck") if run % 2 == 0 else ("jobdeck", "plain"):
            measured = one_run(kind, arguments.jobs, redis_url, work)
            figures[kind].append(measured)
            print(
                f"run {run + 1} {kind:8s} {measured.rate:8.0f} jobs/s   sent {measured.enqueue_rate:5.0f}/s"
                f"   CPU per message: workers {measured.worker_cpu_us:4.0f} µs,"
                f" Redis {measured.redis_cpu_us:4.0f} µs",
                flush=True,
            )
    plain, jobdeck = (statistics.median(run.rate for run in figures[kind]) for kind in ("plain", "jobdeck"))
    ratio = jobdeck / plain
    print(f"machine: {machine()}")
    print(f"median plain Dramatiq + Results: {plain:.0f} jobs/s")
    print(f"median jobdeck, all monitoring:  {jobdeck:.0f} jobs/s")
    verdict = "PASS" if ratio >= THROUGHPUT_BAR else "FAIL"
    print(f"ratio {ratio:.2f} (bar >= {THROUGHPUT_BAR:.2f}): {verdict}")
    sending = {kind: statistics.median(run.enqueue_rate for run in figures[kind]) for kind in figures}
    print(
        f"sending (one producer thread): plain {sending['plain']:.0f}/s, jobdeck {sending['jobdeck']:.0f}/s, "
        f"ratio {sending['jobdeck'] / sending['plain']:.2f} (no bar)"
    )
    for kind in ("plain", "jobdeck"):
        worker_cpu = statistics.median(run.worker_cpu_us for run in figures[kind])
        redis_cpu = statistics.median(run.redis_cpu_us for run in figures[kind])
        connections = max(run.connections for run in figures[kind])
        print(
            f"median CPU per message, {kind}: workers {worker_cpu:.0f} µs, Redis {redis_cpu:.0f} µs; "
            f"at most {connections} Redis connections"
        )
    print(f"Redis memory per retained task: {memory_per_task(redis_url):.0f} bytes")
    print(f"Redis memory per no-op result (Dramatiq's backend): {memory_per_result(redis_url):.0f} bytes")
    redis.Redis.from_url(redis_url).shutdown(nosave=True)


def reads(arguments: argparse.Namespace) -> None:
    from jobs.platform.settings import load_settings
    from jobs.runtime import start

    work = Path(tempfile.mkdtemp(prefix="jobdeck-bench-"))
    redis_url = start_embedded_redis(work / "redis", persistent=False)
    runtime = start(load_settings({"REDIS_URL": redis_url, "JOBDECK_VAR_DIR": str(work)}, dotenv=False))
    started = time.perf_counter()
    populate(runtime.store, arguments.tasks, seed=7)
    print(
        f"recorded {arguments.tasks} tasks in {time.perf_counter() - started:.0f} s "
        f"({redis.Redis.from_url(redis_url).info('memory')['used_memory_human']} in Redis)"
    )
    monitor = runtime.monitor
    rng = random.Random(3)
    probes = {
        "one task's status": lambda: monitor.get_task_status(f"7-{rng.randrange(arguments.tasks):08d}"),
        "history page, unfiltered": lambda: monitor.get_task_history(limit=50),
        "history page, by actor": lambda: monitor.get_task_history(actor="actor_3", limit=50),
        "history page, by state": lambda: monitor.get_task_history(state="FAILURE", limit=50),
        "stats for all actors (1 h)": lambda: monitor.get_task_stats(window=3600),
    }
    print(f"machine: {machine()}")
    for name, probe in probes.items():
        timings = []
        for _ in range(200):
            began = time.perf_counter()
            probe()
            timings.append((time.perf_counter() - began) * 1000)
        p95 = statistics.quantiles(timings, n=20)[18]
        verdict = "PASS" if p95 < READ_BAR_MS else "FAIL"
        print(
            f"{name:28s} p50 {statistics.median(timings):6.2f} ms  p95 {p95:6.2f} ms "
            f"(bar < {READ_BAR_MS:.0f} ms): {verdict}"
        )
    redis.Redis.from_url(redis_url).shutdown(nosave=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("throughput")
    run.add_argument("--jobs", type=int, default=50_000)
    run.add_argument("--runs", type=int, default=5)
    run.set_defaults(handler=throughput)
    read = commands.add_parser("reads")
    read.add_argument("--tasks", type=int, default=1_000_000)
    read.set_defaults(handler=reads)
    arguments = parser.parse_args()
    arguments.handler(arguments)


if __name__ == "__main__":
    main()
