"""Scheduler lateness benchmark (issue 10). Not a test: prints figures and their bar.

    python bench/scheduler_bench.py [--fires 300]

A per-second schedule (JOBDECK_SCHEDULE_TEST_TASK="* * * * * *", the five production schedules
off) is fired by a real ``python -m scheduler`` process while two worker processes burn CPU on
both cores (``bench.scheduler_load``). Lateness is the time from a tick's nominal fire time to
the moment its message is enqueued, as the scheduler records it (claim, enqueue: the tick
record's ``lateness``). In the same run a second process runs a bare APScheduler
BackgroundScheduler with the same per-second trigger and a job that only notes how late it
started: that is the floor. Bar: p99 < 100 ms. The script also checks that every second was
sent exactly once and none missed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.monitoring_bench import cpu_seconds, machine, process_tree  # noqa: E402
from jobs.platform.redis_server import free_port, start_embedded_redis  # noqa: E402

BIN = Path(sys.executable).parent
P99_BAR_MS = 100.0
PRODUCTION = (
    "check_pending_bills",
    "generate_hourly_report",
    "generate_weekly_report",
    "generate_monthly_report",
    "cleanup_old_notifications",
)
LOAD_JOBS = 20_000


def environment(redis_url: str, work: Path) -> dict[str, str]:
    return {
        **os.environ,
        "REDIS_URL": redis_url,
        "JOBDECK_VAR_DIR": str(work / "var"),
        "PYTHONPATH": str(ROOT),
        "dramatiq_prom_db": str(work / "prometheus"),
        "dramatiq_prom_port": str(free_port()),
        "JOBDECK_SCHEDULE_TEST_TASK": "* * * * * *",
        **{f"JOBDECK_SCHEDULE_{name.upper()}": "off" for name in PRODUCTION},
    }


def bare(arguments: argparse.Namespace) -> None:
    """The floor: a bare APScheduler job on the same per-second trigger, noting its own lateness."""
    from apscheduler.schedulers.background import BackgroundScheduler

    from jobs.platform.cron import CronExpression
    from jobs.platform.settings import load_settings
    from scheduler.firing import EXECUTOR, FireTimeExecutor

    zone = load_settings().timezone
    lateness: list[float] = []
    done = __import__("threading").Event()

    def job(fire_time: datetime | None = None) -> None:
        lateness.append((datetime.now(UTC) - fire_time).total_seconds() * 1000)
        if len(lateness) >= arguments.fires:
            done.set()

    scheduler = BackgroundScheduler(timezone=zone, executors={EXECUTOR: FireTimeExecutor(10)})
    scheduler.add_job(
        job,
        CronExpression.parse("* * * * * *").trigger(zone),
        executor=EXECUTOR,
        misfire_grace_time=1,
        coalesce=True,
    )
    scheduler.start()
    done.wait()
    scheduler.shutdown(wait=False)
    Path(arguments.output).write_text(json.dumps(lateness))


def measure(arguments: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="jobdeck-scheduler-bench-"))
    redis_url = start_embedded_redis(work / "redis", persistent=False)
    env = environment(redis_url, work)
    (work / "prometheus").mkdir()
    load = (
        "from jobs.runtime import start; start()\n"
        "import bench.scheduler_load as load\n"
        f"[load.burn.send() for _ in range({LOAD_JOBS})]\n"
    )
    subprocess.run([sys.executable, "-c", load], env=env, cwd=ROOT, check=True)
    worker = subprocess.Popen(
        [str(BIN / "dramatiq"), "jobs.worker", "bench.scheduler_load", "--processes", "2", "--threads", "2"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(5)  # the workers start and fill both cores
    floor_path = work / "bare.json"
    bare_process = subprocess.Popen(
        [sys.executable, __file__, "bare", "--fires", str(arguments.fires), "--output", str(floor_path)],
        env=env,
        cwd=ROOT,
    )
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "scheduler"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers = process_tree(worker.pid)
    began, worker_cpu = time.monotonic(), sum(map(cpu_seconds, workers))
    load_at_start = os.getloadavg()[0]
    try:
        bare_process.wait(arguments.fires + 120)
        wait_for_fires(env, arguments.fires, timeout=30)
    finally:
        elapsed = time.monotonic() - began
        worker_cpu = sum(map(cpu_seconds, workers)) - worker_cpu
        load_at_end = os.getloadavg()[0]
        scheduler.send_signal(signal.SIGTERM)
        scheduler.wait(30)
        worker.terminate()
        worker.wait(60)
    try:
        report(
            arguments,
            env,
            json.loads(floor_path.read_text()),
            worker_cpu / elapsed,
            (load_at_start, load_at_end),
        )
    finally:
        redis.Redis.from_url(redis_url).shutdown(nosave=True)


def wait_for_fires(env: dict[str, str], fires: int, *, timeout: float) -> None:
    """Until the scheduler has sent ``fires`` ticks too (it started a moment after the floor)."""
    os.environ.update(env)
    from jobs.runtime import start
    from monitoring.schedules import ENQUEUED

    monitor = start().schedule_monitor
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(tick.outcome == ENQUEUED for tick in monitor.ticks("test_task", limit=10_000)) >= fires:
            return
        time.sleep(0.5)


def report(arguments, env: dict[str, str], floor: list[float], worker_cores: float, load: tuple) -> None:
    os.environ.update(env)
    from jobs.runtime import start
    from monitoring.schedules import ENQUEUED

    runtime = start()
    ticks = runtime.schedule_monitor.ticks("test_task", limit=10_000)[::-1]
    # The workers' missed-run check rightly records the seconds before the scheduler started.
    first = min(tick.fire_time for tick in ticks if tick.outcome == ENQUEUED)
    ticks = [tick for tick in ticks if tick.fire_time >= first]
    sent = [tick for tick in ticks if tick.outcome == ENQUEUED]
    seconds = [tick.fire_time.timestamp() for tick in sent]
    gaps = {round(later - earlier) for earlier, later in zip(seconds, seconds[1:], strict=False)}
    outcomes = Counter(tick.outcome for tick in ticks)
    assert len(ticks) == len(sent) and gaps == {1}, f"not every second sent once: {outcomes}, gaps {gaps}"
    ours = [tick.lateness * 1000 for tick in sent]

    def figures(values: list[float]) -> str:
        cuts = statistics.quantiles(values, n=100, method="inclusive")
        return f"p50 {cuts[49]:.1f} ms, p99 {cuts[98]:.1f} ms, max {max(values):.1f} ms"

    our_p99 = statistics.quantiles(ours, n=100, method="inclusive")[98]
    floor_p99 = statistics.quantiles(floor, n=100, method="inclusive")[98]
    print(f"machine: {machine()}, Redis {runtime.broker.client.info('server')['redis_version']}")
    print(f"load: workers used {worker_cores:.2f} cores; load average {load[0]:.2f}, then {load[1]:.2f}")
    print(f"jobdeck scheduler, nominal -> enqueued, {len(ours)} fires: {figures(ours)}")
    print(f"bare APScheduler job, nominal -> started, {len(floor)} fires: {figures(floor)}")
    print(f"p99 ratio jobdeck / bare: {our_p99 / floor_p99:.2f}")
    print(f"bar p99 < {P99_BAR_MS:.0f} ms: {'pass' if our_p99 < P99_BAR_MS else 'FAIL'}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", nargs="?", choices=("measure", "bare"), default="measure")
    parser.add_argument("--fires", type=int, default=300)
    parser.add_argument("--output")
    arguments = parser.parse_args()
    (bare if arguments.mode == "bare" else measure)(arguments)


if __name__ == "__main__":
    main()
