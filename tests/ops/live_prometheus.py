"""A real Prometheus on loopback for tests: scrapes given targets every second and
evaluates the project's rule files; queried through its HTTP API."""

from __future__ import annotations

import json
import math
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.ops.expressions import RULE_FILES


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout_s: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return bytes(response.read())


class LivePrometheus:
    """`prometheus` with a 1 s scrape and evaluation interval over `targets` (job -> host:port)."""

    def __init__(self, binary: Path, workdir: Path, targets: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._binary = binary
        self._workdir = workdir
        self._targets = targets
        self._proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "prometheus.log"

    def _config(self) -> Path:
        lines = [
            "global:",
            "  scrape_interval: 1s",
            "  scrape_timeout: 1s",
            "  evaluation_interval: 1s",
            "rule_files:",
            *[f"  - {path}" for path in RULE_FILES],
            "scrape_configs:",
        ]
        for job, target in self._targets.items():
            lines += [
                f"  - job_name: {job}",
                "    static_configs:",
                f"      - targets: ['{target}']",
            ]
        path = self._workdir / "prometheus.yml"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def __enter__(self) -> LivePrometheus:
        config = self._config()
        with self.log.open("wb") as log:
            self._proc = subprocess.Popen(
                [
                    str(self._binary),
                    f"--config.file={config}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    f"--storage.tsdb.path={self._workdir / 'tsdb'}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.log.read_text()[-2000:]}")
            try:
                http_get(f"{self.url}/-/ready", 1.0)
                return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError(f"prometheus not ready in {timeout_s} s: {self.log.read_text()[-2000:]}")

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; returns `data`, raises ValueError with Prometheus's error."""
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            body = json.loads(http_get(url))
        except urllib.error.HTTPError as exc:  # 400/422: a bad query, with a JSON error body
            body = json.loads(exc.read())
        if body.get("status") != "success":
            raise ValueError(f"{body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query; the series whose value is a number (NaN counts as no data)."""
        data = self.api("query", query=expr)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return [s for s in data["result"] if not math.isnan(float(s["value"][1]))]

    def successful_scrapes(self, job: str) -> int:
        found = self.query(f'sum_over_time(up{{job="{job}"}}[10m])')
        return int(float(found[0]["value"][1])) if found else 0
