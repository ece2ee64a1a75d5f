"""GET /metrics serves the store's cluster figures in Prometheus's text format, read from a real
Redis while real workers run, fail and die."""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from api import create_app
from jobs.runtime import start
from tests.conftest import wait_for


def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of one GET /metrics, keyed by name and sorted labels."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type == "text/plain; version=0.0.4; charset=utf-8"
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


def app_client(runtime, **config):
    return create_app({"RUNTIME": runtime, "TESTING": True, **config}).test_client()


def test_waiting_work_with_no_worker_shows_ready_delayed_and_no_consumer(runtime):
    client = app_client(runtime)
    for number in range(3):
        runtime.manager.send_task("test_task", [number], queue="reports")
    runtime.manager.send_task("test_task", ["later"], delay=600, queue="email")

    samples = scrape(client)

    assert samples["jobdeck_queue_ready", (("queue", "reports"),)] == 3
    assert samples["jobdeck_queue_consumers", (("queue", "reports"),)] == 0
    assert samples["jobdeck_queue_latency_seconds", (("queue", "reports"),)] >= 0
    assert samples["jobdeck_queue_delayed", (("queue", "email"),)] == 1
    assert samples["jobdeck_queue_ready", (("queue", "email"),)] == 0
    assert samples["jobdeck_tasks_active", (("state", "PENDING"),)] == 3
    assert samples["jobdeck_tasks_active", (("state", "SCHEDULED"),)] == 1
    assert samples["jobdeck_tasks_orphaned", ()] == 0
    assert samples["jobdeck_workers", (("state", "alive"),)] == 0
    # Only the collector's own figures: nothing from prometheus_client's global registry.
    assert all(name.startswith("jobdeck_") for name, _ in samples)


def test_a_worker_shows_alive_consuming_and_failing_then_dead_after_sigkill(runtime, start_worker):
    client = app_client(runtime)
    worker = start_worker(JOBDECK_MAX_RETRIES="0")

    failed = runtime.manager.send_task("flaky", ["metrics"], {"kind": "business"})
    wait_for(lambda: runtime.monitor.get_task_status(failed.message_id).dead_lettered, timeout=15)
    samples = scrape(client)

    assert samples["jobdeck_workers", (("state", "alive"),)] == 1
    assert samples["jobdeck_workers", (("state", "dead"),)] == 0
    assert samples["jobdeck_queue_consumers", (("queue", "default"),)] == 1
    assert samples["jobdeck_queue_ready", (("queue", "default"),)] == 0
    assert samples["jobdeck_queue_dead_lettered", (("queue", "default"),)] == 1
    assert samples["jobdeck_actor_failure_rate", (("actor", "flaky"),)] == 1.0
    assert samples["jobdeck_actor_duration_p95_seconds", (("actor", "flaky"),)] > 0

    worker.kill()
    samples = wait_for(
        lambda: (found := scrape(client))[("jobdeck_workers", (("state", "dead"),))] == 1 and found,
        timeout=10,
    )

    assert samples["jobdeck_workers", (("state", "alive"),)] == 0
    assert samples["jobdeck_queue_consumers", (("queue", "default"),)] == 0


def test_a_scrape_costs_the_same_round_trips_however_many_tasks(runtime, monkeypatch):
    client = app_client(runtime)
    pool = runtime.broker.client.connection_pool
    round_trips = []
    get_connection = pool.get_connection

    def counted(*args, **kwargs):
        round_trips.append(1)
        return get_connection(*args, **kwargs)

    def scrape_round_trips() -> int:
        round_trips.clear()
        monkeypatch.setattr(pool, "get_connection", counted)
        scrape(client)
        monkeypatch.setattr(pool, "get_connection", get_connection)
        return len(round_trips)

    runtime.manager.send_task("test_task", ["first"], queue="reports")
    few = scrape_round_trips()
    for number in range(50):
        runtime.manager.send_task("test_task", [number], queue="reports")
    many = scrape_round_trips()

    assert few == many <= 10 + len(runtime.settings.queues)


def test_registered_sources_are_served_with_the_store_figures(runtime):
    def source():
        return [GaugeMetricFamily("jobdeck_extra", "A figure another part of the app serves.", value=7)]

    client = app_client(runtime, METRICS_SOURCES=[source])

    samples = scrape(client)

    assert samples["jobdeck_extra", ()] == 7
    assert ("jobdeck_queue_ready", (("queue", "default"),)) in samples


def test_metrics_answer_503_in_the_one_error_shape_when_redis_is_down(settings):
    runtime = start(settings.with_overrides(redis_url="redis://127.0.0.1:1/0"))
    client = app_client(runtime)

    response = client.get("/metrics")

    assert response.status_code == 503
    error = response.get_json()["error"]
    assert error["code"] == "service_unavailable"
    assert error["message"].startswith("Redis cannot be reached")


def test_metrics_are_not_in_the_openapi_document(runtime):
    client = app_client(runtime)

    paths = client.get("/api/openapi.json").get_json()["paths"]

    assert "/metrics" not in paths
