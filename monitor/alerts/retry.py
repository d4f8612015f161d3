"""When to try a webhook delivery again: exponential backoff with jitter, and Retry-After.

Attempt n (1-based) that failed waits `initial * 2**(n-1)`, capped at `max_delay`, times a
random factor in [0.5, 1] ("equal jitter": receivers recovering from an outage are not hit
by every sender at the same instant). A `Retry-After` from the receiver is a floor: we never
come back sooner than it asks.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many attempts a delivery gets and how long to wait between them."""

    max_attempts: int = 8
    initial_delay_s: float = 1.0
    max_delay_s: float = 300.0

    def delay(
        self, attempt: int, retry_after_s: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait after failed attempt `attempt` (1-based)."""
        base = min(self.max_delay_s, self.initial_delay_s * 2 ** max(0, attempt - 1))
        draw = rng.random() if rng is not None else random.random()
        jittered: float = base * (0.5 + 0.5 * draw)
        if retry_after_s is not None:
            return max(jittered, retry_after_s)
        return jittered


def is_retryable(status: int) -> bool:
    """5xx and the 4xx that mean "later" (408, 425, 429); other 4xx will fail again."""
    return status in RETRYABLE_STATUS or status >= 500


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP date; None if absent/bad."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)
