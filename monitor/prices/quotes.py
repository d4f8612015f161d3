"""Quote currencies to USD: face value, or a stablecoin's live USD price, else its peg.

A tick quoted in a currency of `usd_quotes` (USD) is taken at face value. A tick quoted
in a pegged stablecoin (USDT, USDC) is converted through that stablecoin's consolidated
USD price when some venue lists it against USD (`USDT/USD`, fed back here by the price
board) and that price is no older than `max_age_ms` in event time; otherwise through the
configured peg. A live price more than `depeg_pct` away from the peg raises the de-peg
alarm (a log line on each change and the `hm_quote_depeg` gauge); conversion uses the
live price either way, so a de-peg moves every price quoted in that stablecoin.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge

__all__ = ["QuoteRates", "StableQuote"]

log = logging.getLogger(__name__)

QUOTE_RATE = Gauge(
    "hm_quote_usd_rate",
    "USD value of one unit of a pegged quote currency, as used for conversion.",
    ["quote"],
)
QUOTE_RATE_LIVE = Gauge(
    "hm_quote_rate_live",
    "1 while a pegged quote converts at a live venue price, 0 while at its configured peg.",
    ["quote"],
)
QUOTE_DEPEG = Gauge(
    "hm_quote_depeg",
    "1 while a pegged quote's live USD price is beyond [prices] depeg_pct of its peg.",
    ["quote"],
)
QUOTE_DEPEG_ALARMS = Counter(
    "hm_quote_depeg_alarms_total", "De-peg alarms raised (peg to de-pegged transitions).", ["quote"]
)


@dataclass(slots=True)
class StableQuote:
    """A pegged quote currency and its last live USD price (event time)."""

    quote: str
    peg: float
    live: float | None = None
    live_ts_ms: int = 0
    depegged: bool = False

    def rate(self, ts_ms: int, max_age_ms: int) -> float:
        """USD per unit at `ts_ms`: the live price while fresh, else the peg."""
        if self.live is not None and ts_ms - self.live_ts_ms <= max_age_ms:
            return self.live
        return self.peg


class QuoteRates:
    """USD conversion factors per quote currency."""

    def __init__(
        self,
        usd_quotes: Iterable[str],
        pegs: Mapping[str, float],
        *,
        depeg_pct: float,
        max_age_ms: int,
    ) -> None:
        self.usd_quotes = frozenset(q.upper() for q in usd_quotes)
        self.stable = {q.upper(): StableQuote(q.upper(), float(p)) for q, p in pegs.items()}
        clash = self.usd_quotes & self.stable.keys()
        if clash:
            raise ValueError(f"{sorted(clash)} both at face value and pegged: choose one")
        self.depeg_pct = depeg_pct
        self.max_age_ms = max_age_ms
        for s in self.stable.values():
            QUOTE_RATE.labels(s.quote).set(s.peg)
            QUOTE_RATE_LIVE.labels(s.quote).set(0)
            QUOTE_DEPEG.labels(s.quote).set(0)

    def factor(self, quote: str, ts_ms: int) -> float | None:
        """USD per unit of `quote` at `ts_ms`; None when the quote cannot be priced."""
        if quote in self.usd_quotes:
            return 1.0
        stable = self.stable.get(quote)
        if stable is None:
            return None
        return stable.rate(ts_ms, self.max_age_ms)

    def is_rate(self, base: str, quote: str) -> bool:
        """True for a market that prices a pegged quote in USD (`USDT/USD`)."""
        return base in self.stable and quote in self.usd_quotes

    def observe(self, quote: str, usd: float, ts_ms: int) -> None:
        """A new consolidated USD price of the pegged `quote`; raises or clears the alarm."""
        stable = self.stable[quote]
        stable.live = usd
        stable.live_ts_ms = max(ts_ms, stable.live_ts_ms)
        QUOTE_RATE.labels(quote).set(usd)
        QUOTE_RATE_LIVE.labels(quote).set(1)
        off = abs(usd - stable.peg) / stable.peg
        depegged = off > self.depeg_pct
        if depegged == stable.depegged:
            return
        stable.depegged = depegged
        QUOTE_DEPEG.labels(quote).set(1 if depegged else 0)
        fields = {"quote": quote, "usd": usd, "peg": stable.peg, "off_pct": round(off * 100, 3)}
        if depegged:
            QUOTE_DEPEG_ALARMS.labels(quote).inc()
            log.warning(
                "de-peg: %s trades at %.4f USD, %.2f%% off its %.4f peg",
                quote,
                usd,
                off * 100,
                stable.peg,
                extra=fields,
            )
        else:
            log.info("%s back on its peg at %.4f USD", quote, usd, extra=fields)

    def refresh(self, now_ms: int) -> None:
        """Update the live/peg gauges for `now_ms` (a live price may have gone stale)."""
        for s in self.stable.values():
            live = s.live is not None and now_ms - s.live_ts_ms <= self.max_age_ms
            QUOTE_RATE_LIVE.labels(s.quote).set(1 if live else 0)
            QUOTE_RATE.labels(s.quote).set(s.rate(now_ms, self.max_age_ms))

    def snapshot(self, now_ms: int) -> dict[str, Any]:
        """Per pegged quote: the rate in use, whether it is live, and the de-peg alarm."""
        return {
            s.quote: {
                "usd": s.rate(now_ms, self.max_age_ms),
                "live": s.live is not None and now_ms - s.live_ts_ms <= self.max_age_ms,
                "depeg": s.depegged,
            }
            for s in self.stable.values()
        }
