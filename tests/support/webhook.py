"""A real HTTP server on loopback that records every POST body, for webhook tests.

``WebhookReceiver(status=200)`` answers every POST with ``status`` (set ``.status`` later to
make it fail); ``posts()`` is the JSON of every body received, in order — the truth tests
compare against.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from jobs.platform.redis_server import free_port

HOST = "127.0.0.1"


class WebhookReceiver:
    """An http.server on a free loopback port, serving in a thread; ``url`` is where to POST."""

    def __init__(self, *, status: int = 200, path: str = "/hooks/alerts") -> None:
        self.status = status
        self.path = path
        self.port = free_port()
        self.lock = threading.Lock()
        self._bodies: list[tuple[str, dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver._bodies.append((self.path, dict(self.headers), body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((HOST, self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}{self.path}"

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def requests(self) -> list[tuple[str, dict[str, str], bytes]]:
        """(path, headers, raw body) of every POST, in order."""
        with self.lock:
            return list(self._bodies)

    def posts(self) -> list[dict[str, Any]]:
        """The JSON body of every POST, in order."""
        return [json.loads(body) for _, _, body in self.requests()]


@contextmanager
def webhook_receiver(*, status: int = 200) -> Iterator[WebhookReceiver]:
    """Run a WebhookReceiver for the length of the block."""
    receiver = WebhookReceiver(status=status).start()
    try:
        yield receiver
    finally:
        receiver.stop()
