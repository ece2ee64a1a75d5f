"""/api/docs in headless Chromium (Debian's) with the network blocked shows every operation: Swagger UI
comes from the web process itself (swagger-ui-bundle), not from a CDN."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
from urllib.parse import urlsplit
from urllib.request import urlopen

import pytest
from werkzeug.serving import make_server

from api import create_app
from jobs.platform.redis_server import free_port

pytestmark = pytest.mark.slow

#: Hosts Chromium itself calls in the background (updates, time, accounts): not the page's requests.
BROWSER_SERVICE_HOSTS = ("google.com", "googleapis.com", "gvt1.com", "gstatic.com")


@pytest.fixture
def served(runtime, database):
    """The app on a real HTTP port of the loopback interface, in a thread."""
    server = make_server("127.0.0.1", free_port(), create_app({"RUNTIME": runtime}), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def render_offline(url: str, tmp_path) -> tuple[str, list[str]]:
    """The page's DOM after its scripts ran, and every URL the browser asked for, with no network.

    Every address but the loopback goes to a dead proxy and every name but 127.0.0.1 fails to
    resolve, so nothing outside this machine can be reached.
    """
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium is needed (apt-get install chromium; .ci/run installs it)"
    netlog = tmp_path / "netlog.json"
    command = [
        chromium,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--disable-background-networking",
        "--disable-component-update",
        "--proxy-server=127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--log-net-log={netlog}",
        "--virtual-time-budget=20000",
        "--dump-dom",
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    urls = sorted(set(re.findall(r'"url":"([^"]+)"', netlog.read_text(errors="replace"))))
    return done.stdout, urls


def test_the_docs_page_lists_every_operation_with_no_network(served, tmp_path):
    document = json.loads(_get(served + "/api/openapi.json"))
    methods = ("get", "post", "put", "delete")
    operations = sum(1 for item in document["paths"].values() for method in item if method in methods)

    dom, urls = render_offline(served + "/api/docs", tmp_path)

    shown = re.findall(r'class="opblock-summary-path" data-path="([^"]+)"', dom)
    assert len(shown) == operations >= 24
    assert "/api/core/tasks/{task_id}/" in shown
    page_requests = [url for url in urls if not urlsplit(url).hostname.endswith(BROWSER_SERVICE_HOSTS)]
    assert page_requests and all(url.startswith(served) for url in page_requests), page_requests
    assert served + "/api/docs/assets/swagger-ui-bundle.js" in page_requests


def test_the_page_names_no_outside_address(client):
    page = client.get("/api/docs").get_data(as_text=True)

    assert re.findall(r'(?:src|href)="([^"]+)"', page) == [
        "/api/docs/assets/swagger-ui.css",
        "/api/docs/assets/swagger-ui-standalone-preset.js",
        "/api/docs/assets/swagger-ui-bundle.js",
    ]
    assert client.get("/api/docs/assets/swagger-ui-bundle.js").status_code == 200


def _get(url: str) -> str:
    with urlopen(url, timeout=10) as response:
        return response.read().decode()
