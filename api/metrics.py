"""GET /metrics: the cluster's figures from the monitoring store, for Prometheus to scrape.

A plain Flask route, not in the OpenAPI document: it answers Prometheus's text format,
not JSON. Open, unless ``JOBDECK_METRICS_TOKEN_REQUIRED`` asks for a (viewer) token. Besides the
store's figures it serves the schedules' (lag, last success per schedule); more are added with
``app.extensions["jobdeck_metrics"].collector.add_source(...)`` or the METRICS_SOURCES setting.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, Response, current_app
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, generate_latest

from api.auth import auth
from monitoring.access import VIEWER
from monitoring.metrics import ClusterCollector, schedule_metrics


@dataclass(frozen=True)
class Metrics:
    """The app's collector and the registry that holds only it (never the global registry)."""

    collector: ClusterCollector
    registry: CollectorRegistry


def init_app(app: Flask) -> None:
    """Build the app's collector on its runtime's TaskMonitor and ScheduleMonitor; serve it at /metrics."""
    runtime = app.extensions["jobdeck_runtime"]
    sources = [schedule_metrics(runtime.schedule_monitor), *app.config.get("METRICS_SOURCES", ())]
    collector = ClusterCollector(runtime.monitor, sources=sources)
    registry = CollectorRegistry()
    registry.register(collector)
    app.extensions["jobdeck_metrics"] = Metrics(collector, registry)
    view = auth.login_required(role=VIEWER)(metrics) if runtime.settings.metrics_token_required else metrics
    app.add_url_rule("/metrics", "metrics", view)


def metrics() -> Response:
    """Serve the cluster's figures; 503 in the one error shape if Redis is down."""
    body = generate_latest(current_app.extensions["jobdeck_metrics"].registry)
    # generate_latest writes the 0.0.4 text format (legacy names), which every scraper reads;
    # prometheus_client's own exporter labels a plain scrape the same way.
    return Response(body, content_type=CONTENT_TYPE_PLAIN_0_0_4)
