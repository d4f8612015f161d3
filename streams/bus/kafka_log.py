"""The Kafka client's log, rate-limited: one line per cause per interval, with a count.

A broker outage makes aiokafka log the same error many times a second: a commit it
retries every 100 ms logs one line per partition per try (issue 10 counted 12,403 lines in
7 minutes). `RepeatFilter` sits on every `aiokafka.*` logger and this bus's own: each
warning or error is counted in `hm_bus_client_errors_total{component, cause}`; the first
of a cause (logger and message template) in an interval is logged, and carries
`repeated`, the number held back since the last line of that cause.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from streams.metrics import BUS_CLIENT_ERRORS

__all__ = ["REPEAT_INTERVAL_S", "RepeatFilter", "cause_of", "install_repeat_filter"]

REPEAT_INTERVAL_S = 10.0
_ERROR_NAME = re.compile(r"^[A-Z][A-Za-z0-9]*(Error|Exception)$")
_LOGGER_PREFIXES = ("aiokafka", "streams.bus.kafka")
_installed: RepeatFilter | None = None
_install_lock = threading.Lock()


def cause_of(record: logging.LogRecord) -> str:
    """The error class a client log line is about: an exception among its arguments (or
    its exc_info), or an argument naming one (aiokafka logs `error_type.__name__`)."""
    if record.exc_info and record.exc_info[0] is not None:
        return record.exc_info[0].__name__
    args = record.args if isinstance(record.args, tuple) else ()
    for arg in args:
        if isinstance(arg, BaseException):
            return type(arg).__name__
        if isinstance(arg, type) and issubclass(arg, BaseException):
            return arg.__name__
        if isinstance(arg, str) and _ERROR_NAME.match(arg):
            return arg
    return "other"


@dataclass(slots=True)
class _Seen:
    due: float  # the next line of this cause may be logged from then on
    held: int = 0  # lines held back since the last one logged


class RepeatFilter(logging.Filter):
    """Counts client warnings and errors, and lets one line per cause per interval through."""

    def __init__(
        self, interval_s: float = REPEAT_INTERVAL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._clock = clock
        self._seen: dict[tuple[str, str], _Seen] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        component = record.name.rsplit(".", 1)[-1]
        BUS_CLIENT_ERRORS.labels(component, cause_of(record)).inc()
        key = (record.name, str(record.msg))
        now = self._clock()
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and now < seen.due:
                seen.held += 1
                return False
            held = seen.held if seen is not None else 0
            self._seen[key] = _Seen(now + self.interval_s)
        if held:
            record.repeated = held  # shown as a field: `repeated=N` / "repeated": N
            record.repeated_within_s = self.interval_s
        return True


def install_repeat_filter(interval_s: float = REPEAT_INTERVAL_S) -> RepeatFilter:
    """Put one `RepeatFilter` on every aiokafka logger and the Kafka bus's own (once)."""
    global _installed
    with _install_lock:
        if _installed is None:
            _installed = RepeatFilter(interval_s)
        loggers = [
            name
            for name in list(logging.root.manager.loggerDict)
            if name.startswith(_LOGGER_PREFIXES)
        ]
        for name in loggers:
            logger = logging.getLogger(name)
            if _installed not in logger.filters:
                logger.addFilter(_installed)
        return _installed
