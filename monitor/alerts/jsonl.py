"""JSON-lines sink: one alert object per line, on standard output or appended to a file."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from monitor.alerts.schema import Alert
from monitor.errors import ConfigError


class JsonLinesSink:
    """Writes each alert as one line and flushes, so a reader sees it at once."""

    def __init__(self, path: str | Path | None = None, *, stream: IO[bytes] | None = None) -> None:
        self.name = f"file:{path}" if path else "stdout"
        self._path = Path(path) if path else None
        self._stream = stream
        self._owned: IO[bytes] | None = None

    async def start(self) -> None:
        if self._path is not None:
            try:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                self._owned = self._path.open("ab")
            except OSError as exc:  # a directory, no permission, a read-only disk
                raise ConfigError(
                    f"{self._path}: cannot write alerts there ({exc.strerror or exc}): "
                    "choose a writable file"
                ) from exc
        elif self._stream is None:
            self._stream = sys.stdout.buffer

    async def stop(self) -> None:
        if self._owned is not None:
            self._owned.close()
            self._owned = None

    async def send(self, alerts: Sequence[tuple[Alert, bytes]]) -> None:
        out = self._owned or self._stream
        if out is None:
            raise RuntimeError("JsonLinesSink.send() before start()")
        out.write(b"".join(payload + b"\n" for _, payload in alerts))
        out.flush()
