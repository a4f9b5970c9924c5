"""``/healthz``, ``/readyz`` and ``/metrics`` on one small stdlib HTTP server.

Owns: the HTTP surface for probes and scraping. Reads a ``HealthState`` the loop updates and an
injected metrics registry; never computes labels or talks to NVML/Kubernetes itself.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mig_labeler.daemon.exposition import CONTENT_TYPE, render
from mig_labeler.deferred_imports import load

if TYPE_CHECKING:
    from http.server import BaseHTTPRequestHandler

    from prometheus_client.registry import CollectorRegistry

STUCK_AFTER = 300.0  # seconds a single pass may run before /healthz reports the loop stuck


@dataclass
class HealthState:
    clock: Callable[[], float] = time.monotonic
    ready: bool = False
    reason: str = "no pass has completed yet"
    pass_started: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def begin_pass(self) -> None:
        with self.lock:
            self.pass_started = self.clock()

    def end_pass(self, ok: bool, reason: str = "") -> None:
        with self.lock:
            self.pass_started = None
            self.ready = ok
            self.reason = reason

    def healthy(self) -> tuple[bool, str]:
        with self.lock:
            if self.pass_started is not None and self.clock() - self.pass_started > STUCK_AFTER:
                return False, f"a pass has been running for more than {STUCK_AFTER:.0f}s"
        return True, "ok"

    def readiness(self) -> tuple[bool, str]:
        with self.lock:
            return self.ready, "ok" if self.ready else self.reason


class HealthServer:
    def __init__(self, port: int, state: HealthState, registry: CollectorRegistry, host: str = "0.0.0.0") -> None:
        self.state = state
        self.registry = registry
        http_server = load("http.server")  # with html waiting: deferred_imports
        self.server = http_server.ThreadingHTTPServer((host, port), self._handler(http_server.BaseHTTPRequestHandler))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, name="health",
                                       daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> HealthServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        """Without waiting out the serving loop's poll (0.1 s): shutdown() asks it to end, then a
        connection of our own wakes its select at once (an empty request, answered with nothing)."""
        stopper = threading.Thread(target=self.server.shutdown, name="health-stop", daemon=True)
        stopper.start()
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.05).close()
        except OSError:  # bound to another address: the poll ends it, as before
            pass
        stopper.join()
        self.server.server_close()

    def _handler(self, base: Any) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(base):  # type: ignore[misc] # http.server.BaseHTTPRequestHandler
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

            def do_GET(self) -> None:  # noqa: N802 - stdlib naming
                if self.path == "/metrics":
                    self._reply(200, render(outer.registry), CONTENT_TYPE)
                elif self.path in ("/healthz", "/readyz"):
                    ok, why = outer.state.healthy() if self.path == "/healthz" else outer.state.readiness()
                    self._reply(200 if ok else 503, (why + "\n").encode(), "text/plain; charset=utf-8")
                else:
                    self._reply(404, b"not found\n", "text/plain; charset=utf-8")

            def _reply(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
