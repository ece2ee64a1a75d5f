"""REST API benchmark (issue 11). Not a test: prints figures and their bars.

    python bench/api_bench.py [--tasks 1000000] [--seconds 10] [--runs 3] [--steady-seconds 20]

With N finished tasks recorded in Redis (the store's own records, pipelined: bench/monitoring_bench.py's
populate), jobdeck's web process and the floor (bench/api_floor.py: a bare Flask endpoint doing one
HGETALL) are each served by gunicorn with the Procfile's settings (2 workers x 4 threads), one at a
time, and loaded from one core (taskset):
- maximum throughput of GET /api/core/tasks/<id>/ (random ids, a valid admin token) at concurrency 16
  with wrk, as a ratio to the floor's in the same run (bar >= 0.6, aim 0.8), with p50/p95/p99;
- a steady 100 requests/s (an open-loop Python client) of GET status and of POST /api/core/tasks/:
  p95 beside the floor's GET.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.monitoring_bench import machine, populate  # noqa: E402
from jobs.platform.redis_server import free_port, start_embedded_redis  # noqa: E402

BIN = Path(sys.executable).parent
RATIO_BAR, RATIO_AIM = 0.6, 0.8
CONCURRENCY = 16
STEADY_RATE = 100
WARM_UP_SECONDS = 3
SEED = 7
#: The load generator's core; gunicorn and Redis keep the scheduler's choice.
LOAD_CORE = "1"
WRK_SCRIPT = """
math.randomseed(42)
local tasks = tonumber(os.getenv("BENCH_TASKS"))
local prefix = os.getenv("BENCH_PATH")
request = function()
  return wrk.format("GET", string.format("%s%d-%08d/", prefix, 7, math.random(0, tasks - 1)))
end
done = function(summary, latency, requests)
  io.write(string.format('{"rps": %f, "p50": %f, "p95": %f, "p99": %f, "errors": %d, "non2xx": %d}\\n',
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, summary.errors.status))
end
"""


def environment(redis_url: str, work: Path) -> dict[str, str]:
    return {
        **os.environ,
        "REDIS_URL": redis_url,
        "JOBDECK_VAR_DIR": str(work / "var"),
        "DATABASE_URL": f"sqlite:///{work / 'var' / 'jobdeck.sqlite3'}",
        # The benchmark measures the stack, not the rate limiter's refusals (which still count).
        "JOBDECK_API_READ_RATE": "100000000/minute",
        "JOBDECK_API_WRITE_RATE": "100000000/minute",
        "PYTHONPATH": str(ROOT),
    }


class Gunicorn:
    """gunicorn serving ``app`` with the Procfile's web settings, on a free port."""

    def __init__(self, app: str, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        command = [
            str(BIN / "gunicorn"),
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            "2",
            "--threads",
            "4",
            "--graceful-timeout",
            "25",
            app,
        ]
        self.log = log.open("wb")
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                http.client.HTTPConnection("127.0.0.1", self.port, timeout=1).request("GET", "/healthz")
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise SystemExit(f"gunicorn {app} did not start; see {log}") from None
                time.sleep(0.2)
        time.sleep(1)  # both workers up

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(30)
        self.log.close()


def wrk(port: int, path: str, headers: dict[str, str], tasks: int, seconds: int, work: Path) -> dict:
    script = work / "bench.lua"
    script.write_text(WRK_SCRIPT)
    command = [
        "taskset",
        "-c",
        LOAD_CORE,
        "wrk",
        "-t1",
        f"-c{CONCURRENCY}",
        f"-d{seconds}s",
        "-s",
        str(script),
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    done = subprocess.run(
        [*command, f"http://127.0.0.1:{port}"],
        env={**os.environ, "BENCH_TASKS": str(tasks), "BENCH_PATH": path},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def steady(port: int, requests: list[tuple[str, str, bytes | None]], headers: dict[str, str]) -> dict:
    """Send ``requests`` at STEADY_RATE per second on time (open loop); latencies in ms."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    latencies, statuses = [], []
    start = time.perf_counter()
    for number, (method, path, body) in enumerate(requests):
        due = start + number / STEADY_RATE
        time.sleep(max(0.0, due - time.perf_counter()))
        began = time.perf_counter()
        connection.request(method, path, body=body, headers={**headers, "Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        # From when it was due: a late start (the one before took too long) counts against it.
        latencies.append((time.perf_counter() - min(began, due)) * 1000)
        statuses.append(response.status)
    cuts = statistics.quantiles(latencies, n=100)
    return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98], "statuses": sorted(set(statuses))}


def steady_in_child(port: int, kind: str, seconds: int, tasks: int, headers: dict[str, str]) -> dict:
    """Run the steady client pinned to the load core, in its own process."""
    done = subprocess.run(
        [
            "taskset",
            "-c",
            LOAD_CORE,
            sys.executable,
            __file__,
            "--steady-client",
            kind,
            str(port),
            str(seconds),
            str(tasks),
        ],
        env={**os.environ, "BENCH_HEADERS": json.dumps(headers)},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def steady_client(kind: str, port: int, seconds: int, tasks: int) -> None:
    headers = json.loads(os.environ["BENCH_HEADERS"])
    count = seconds * STEADY_RATE
    step = max(1, tasks // count)
    if kind == "send":
        body = json.dumps({"task_name": "test_task", "args": ["bench"]}).encode()
        plan = [("POST", "/api/core/tasks/", body)] * count
    else:
        prefix = "/floor/tasks/" if kind == "floor" else "/api/core/tasks/"
        plan = [("GET", f"{prefix}{SEED}-{(number * step) % tasks:08d}/", None) for number in range(count)]
    print(json.dumps(steady(port, plan, headers)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steady-seconds", type=int, default=20)
    parser.add_argument("--steady-client", nargs=4, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.steady_client:
        kind, port, seconds, tasks = arguments.steady_client
        steady_client(kind, int(port), int(seconds), int(tasks))
        return
    run(arguments)


def run(arguments: argparse.Namespace) -> None:
    from jobs.platform.database import upgrade
    from jobs.platform.settings import load_settings
    from jobs.runtime import start

    work = Path(tempfile.mkdtemp(prefix="jobdeck-api-bench-"))
    redis_url = start_embedded_redis(work / "redis", persistent=False)
    env = environment(redis_url, work)
    settings = load_settings(
        {name: env[name] for name in env if name.startswith(("REDIS", "JOBDECK", "DATABASE"))}, dotenv=False
    )
    upgrade(settings.database_url)
    runtime = start(settings)
    token = runtime.tokens.create("bench", "admin").token
    headers = {"Authorization": f"Bearer {token}"}
    began = time.perf_counter()
    populate(runtime.store, arguments.tasks, seed=SEED)
    print(f"recorded {arguments.tasks} tasks in {time.perf_counter() - began:.0f} s", flush=True)
    apps = {
        "floor": ("bench.api_floor:create_app()", "/floor/tasks/"),
        "jobdeck": ("api:create_app()", "/api/core/tasks/"),
    }
    figures: dict[str, list[dict]] = {"floor": [], "jobdeck": []}
    for number in range(arguments.runs):
        for kind in ("floor", "jobdeck") if number % 2 == 0 else ("jobdeck", "floor"):
            app, path = apps[kind]
            server = Gunicorn(app, env, work / f"gunicorn-{kind}-{number}.log")
            try:
                # Warm up: every worker thread's connections, caches and lazily loaded modules.
                wrk(server.port, path, headers, arguments.tasks, WARM_UP_SECONDS, work)
                measured = wrk(server.port, path, headers, arguments.tasks, arguments.seconds, work)
            finally:
                server.stop()
            figures[kind].append(measured)
            print(
                f"run {number + 1} {kind:8s} {measured['rps']:7.0f} req/s  p50 {measured['p50']:6.2f} ms"
                f"  p95 {measured['p95']:6.2f} ms  p99 {measured['p99']:6.2f} ms  errors {measured['errors']}"
                f"  non-2xx {measured['non2xx']}",
                flush=True,
            )
    report_throughput(figures)
    report_steady(env, headers, arguments, work)
    redis.Redis.from_url(redis_url).shutdown(nosave=True)


def report_throughput(figures: dict[str, list[dict]]) -> None:
    median = {
        kind: {key: statistics.median(run[key] for run in runs) for key in ("rps", "p50", "p95", "p99")}
        for kind, runs in figures.items()
    }
    ratio = median["jobdeck"]["rps"] / median["floor"]["rps"]
    print(f"machine: {machine()}")
    for kind in ("floor", "jobdeck"):
        figure = median[kind]
        print(
            f"median {kind:8s} {figure['rps']:7.0f} req/s  p50 {figure['p50']:.2f} ms"
            f"  p95 {figure['p95']:.2f} ms  p99 {figure['p99']:.2f} ms"
        )
    verdict = "PASS" if ratio >= RATIO_BAR else "FAIL"
    print(
        f"GET /api/core/tasks/<id>/ at concurrency {CONCURRENCY}: ratio {ratio:.2f} to the floor"
        f" (bar >= {RATIO_BAR}, aim {RATIO_AIM}): {verdict}"
    )


def report_steady(
    env: dict[str, str], headers: dict[str, str], arguments: argparse.Namespace, work: Path
) -> None:
    for kind, app in (
        ("floor", "bench.api_floor:create_app()"),
        ("status", "api:create_app()"),
        ("send", "api:create_app()"),
    ):
        server = Gunicorn(app, env, work / f"gunicorn-steady-{kind}.log")
        try:
            measured = steady_in_child(server.port, kind, arguments.steady_seconds, arguments.tasks, headers)
        finally:
            server.stop()
        label = {
            "floor": "floor GET",
            "status": "jobdeck GET status",
            "send": "jobdeck POST /api/core/tasks/",
        }[kind]
        print(
            f"steady {STEADY_RATE}/s {label:30s} p50 {measured['p50']:6.2f} ms  p95 {measured['p95']:6.2f} ms"
            f"  p99 {measured['p99']:6.2f} ms  statuses {measured['statuses']}",
            flush=True,
        )


if __name__ == "__main__":
    main()
