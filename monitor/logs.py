"""Log set-up: one JSON object per line in daemon mode, readable text on a terminal.

Fields passed as `extra={...}` (venue, symbol, account, alert_id, ...) appear as keys of
the JSON object or as `key=value` pairs in text (the level in colour on a terminal that
takes it, see monitor.terminal). Logs go to stderr: stdout carries alerts.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from monitor.terminal import PLAIN, Palette, is_terminal, palette_for

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    """`{"ts": ..., "level": ..., "logger": ..., "msg": ..., <extras>}`."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        payload.update(_extras(record))
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


_LEVEL_STYLE = {"WARNING": ("yellow",), "ERROR": ("bold", "red"), "CRITICAL": ("bold", "red")}


class TextFormatter(logging.Formatter):
    """`HH:MM:SS level logger: message [key=value ...]`."""

    def __init__(self, palette: Palette = PLAIN) -> None:
        super().__init__()
        self._palette = palette

    def format(self, record: logging.LogRecord) -> str:
        p = self._palette
        stamp = p.paint(datetime.fromtimestamp(record.created).strftime("%H:%M:%S"), "dim")
        level = p.paint(f"{record.levelname.lower():7}", *_LEVEL_STYLE.get(record.levelname, ()))
        extras = p.paint(" ".join(f"{k}={v}" for k, v in _extras(record).items()), "dim")
        line = f"{stamp} {level} {record.name}: {record.getMessage()}"
        if extras:
            line = f"{line} [{extras}]"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


def setup_logging(level: str = "info", fmt: str = "auto") -> None:
    """Route all logging to stderr in the chosen format (auto: text if stderr is a tty)."""
    use_json = fmt == "json" or (fmt == "auto" and not is_terminal(sys.stderr))
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter(palette_for(sys.stderr)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "websockets", "kafka"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
