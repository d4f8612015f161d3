"""Detection and alert metrics, and the HTTP server for /metrics, /healthz and /status.

Transport metrics (feeds, bus) live in `streams.metrics`; everything is registered on
prometheus-client's default registry and served together. docs/metrics.md lists them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)

from monitor.errors import ConfigError

log = logging.getLogger(__name__)

TICKS_PROCESSED = Counter(
    "hm_detect_ticks_total", "Ticks taken off the bus by detection.", ["venue"]
)
TICKS_REJECTED = Counter(
    "hm_detect_ticks_rejected_total",
    "Ticks detection could not use, by reason (undecodable, unsupported_quote, bad_price, "
    "future_ts, stale, outlier: see hm_price_rejected_total for the venue).",
    ["reason"],
)
LOTS_OPEN = Gauge("hm_lots_open", "Open tax lots in the book.")
ALERTS_EMITTED = Counter("hm_alerts_emitted_total", "Harvest alerts emitted.", ["kind"])
CROSSINGS_SUPPRESSED = Counter(
    "hm_crossings_suppressed_total", "Lots that crossed again inside their cooldown."
)
INDEX_REBUILDS = Counter(
    "hm_trigger_index_rebuilds_total", "Per-asset trigger index rebuilds (day changes, rules)."
)
TICK_TO_ALERT = Histogram(
    "hm_tick_to_alert_seconds",
    "From a tick's receive time to the emission of the alert it caused.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
DETECT_BATCH = Histogram(
    "hm_detect_batch_seconds",
    "Time to run detection over one batch of ticks from the bus.",
    buckets=(0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0),
)
SINK_ERRORS = Counter("hm_alert_sink_errors_total", "Alerts a sink failed to write.", ["sink"])
BUILD_INFO = Info("hm_build", "Version of harvest-monitor running.")
START_TIME = Gauge("hm_start_time_seconds", "Unix time the process started.")
LOTS_UNDER_WATER = Gauge(
    "hm_lots_under_water",
    "Open lots worth less than their cost basis at the asset's last price.",
    ["asset"],
)
UNREALIZED_LOSS = Gauge(
    "hm_unrealized_loss_usd",
    "Cost basis minus value, summed over an asset's lots under water, at its last price.",
    ["asset"],
)
ALERTED_LOSS = Counter(
    "hm_alerted_loss_usd_total",
    "Harvestable loss (loss_usd) of the harvest alerts emitted, by asset.",
    ["asset"],
)
ALERTED_TAX_SAVINGS = Counter(
    "hm_alerted_tax_savings_usd_total",
    "Estimated tax savings (tax_savings_usd) of the harvest alerts emitted, by asset.",
    ["asset"],
)


def _version() -> str:
    try:
        return metadata.version("harvest-monitor")
    except metadata.PackageNotFoundError:
        return "unknown"


BUILD_INFO.info({"version": _version()})


STATUS_TIMEOUT_S = 5.0  # a /status answer waits at most this long for the event loop


class MetricsServer:
    """Serves /metrics (Prometheus text), /healthz and /status (JSON) on a background thread.

    `status` (monitor.status) reads the book, so it runs on the event loop that started
    the server, between ticks; /healthz and /metrics answer from the thread.
    """

    def __init__(
        self,
        host: str,
        port: int,
        health: Callable[[], dict[str, Any]],
        status: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._health = health
        self._status = status
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1] if self._server else self._port

    async def start(self) -> None:
        health = self._health
        status_of = self._status
        loop = asyncio.get_running_loop()

        async def on_loop() -> dict[str, Any]:
            assert status_of is not None
            return status_of()

        def status_body() -> tuple[int, bytes]:
            if status_of is None:
                return 404, b'{"error": "no /status in this process"}'
            try:
                body = asyncio.run_coroutine_threadsafe(on_loop(), loop).result(STATUS_TIMEOUT_S)
            except Exception as exc:  # a busy or stopping loop: say so, never hang the client
                return 503, json.dumps({"error": f"status unavailable: {exc!r}"}).encode()
            return 200, json.dumps(body, default=str).encode()

        def status_reply() -> tuple[int, str, bytes]:
            code, body = status_body()
            return code, "application/json", body

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, CONTENT_TYPE_LATEST, generate_latest(REGISTRY))
                elif path == "/healthz":
                    status = health()
                    code = 200 if status.get("ok") else 503
                    self._send(code, "application/json", json.dumps(status).encode())
                elif path == "/status":
                    self._send(*status_reply())
                else:
                    self._send(404, "text/plain", b"not found: try /metrics, /healthz or /status\n")

            def _send(self, code: int, ctype: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return  # scrapes every few seconds would flood the log

        try:
            self._server = ThreadingHTTPServer((self._host, self._port), Handler)
        except OSError as exc:  # most often: another process (a second monitor) has the port
            raise ConfigError(
                f"cannot serve /metrics on {self._host}:{self._port}: {exc.strerror or exc}; "
                "set [metrics] port (demo: --metrics-port; 0 = off)"
            ) from exc
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics", daemon=True
        )
        self._thread.start()
        START_TIME.set(time.time())
        log.info("metrics served", extra={"url": f"http://{self._host}:{self.port}/metrics"})

    async def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
