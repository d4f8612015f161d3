"""Feed health as the monitor sees it: stale venues and assets without a fresh price.

Checked on the wall clock every second or so by the running pipeline (`FeedWatch.check`):
- a venue with no tick for `stale_after_s` (never ticked: since the watch started) is
  reported stale: a warning log when it goes stale, an info log when it is back, the
  `hm_venue_stale` gauge and `hm_venue_stale_episodes_total`;
- the assets (of the portfolio, or seen on a tick) that no venue has priced within
  `max_age_s` are listed and counted (`hm_price_assets_without_fresh_venue`). Detection
  already ignores stale venue prices tick by tick (the price board, in event time); this
  is the operator's view of the same thing.

The last tick times come from the feeds of this process (ingest role) and from the
ticks detection has seen (detect role), whichever is newer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge

from monitor.prices.board import PriceBoard
from streams.feeds.interface import FeedStatus

__all__ = ["FeedWatch", "VenueHealth"]

log = logging.getLogger(__name__)

VENUE_STALE = Gauge(
    "hm_venue_stale",
    "1 while no tick has come from a venue for [prices] venue_stale_s, else 0.",
    ["venue"],
)
VENUE_STALE_EPISODES = Counter(
    "hm_venue_stale_episodes_total", "Times a venue went stale (fresh to stale).", ["venue"]
)
VENUE_TICK_AGE = Gauge(
    "hm_venue_tick_age_seconds",
    "Seconds since the last tick from a venue (since start when it never ticked).",
    ["venue"],
)
ASSETS_WITHOUT_FRESH = Gauge(
    "hm_price_assets_without_fresh_venue",
    "Assets (of the portfolio, or priced before) no venue has priced within [prices] "
    "max_age_s: left out of detection (a stablecoin: converted at its peg).",
)


@dataclass(slots=True)
class VenueHealth:
    """One venue as the watch last saw it."""

    venue: str
    last_tick_ns: int = 0
    age_s: float = 0.0
    stale: bool = False


class FeedWatch:
    """Stale venues and unpriced assets, on the wall clock."""

    def __init__(
        self,
        stale_after_s: float,
        venues: Iterable[str] = (),
        *,
        board: PriceBoard | None = None,
        assets: Iterable[str] = (),
        now_ns: int | None = None,
    ) -> None:
        self.stale_after_ns = int(stale_after_s * 1e9)
        self.board = board
        self.assets = tuple(assets)
        self.started_ns = time.time_ns() if now_ns is None else now_ns
        self.venues: dict[str, VenueHealth] = {v: VenueHealth(v) for v in venues}
        self.excluded: list[str] = []
        for v in self.venues:
            VENUE_STALE.labels(v).set(0)

    def check(self, now_ns: int, feed_last_tick_ns: Mapping[str, int] | None = None) -> None:
        """Update every venue's age and stale flag and the unpriced assets; log changes."""
        seen = dict(self.board.venue_last_recv_ns) if self.board is not None else {}
        for venue, last in (feed_last_tick_ns or {}).items():
            seen[venue] = max(last, seen.get(venue, 0))
        for venue, last in seen.items():
            health = self.venues.get(venue)
            if health is None:
                health = self.venues[venue] = VenueHealth(venue)
            health.last_tick_ns = max(health.last_tick_ns, last)
        for health in self.venues.values():
            self._age(health, now_ns)
        if self.board is not None:
            # Assets never priced count once the venues have had `stale_after_s` to start.
            grace = now_ns - self.started_ns <= self.stale_after_ns
            self._excluded(self.board.without_fresh_venue(now_ns, () if grace else self.assets))
            self.board.rates.refresh(now_ns // 1_000_000)

    def _age(self, health: VenueHealth, now_ns: int) -> None:
        since = health.last_tick_ns or self.started_ns
        health.age_s = max(0.0, (now_ns - since) / 1e9)
        VENUE_TICK_AGE.labels(health.venue).set(health.age_s)
        stale = now_ns - since > self.stale_after_ns
        if stale == health.stale:
            return
        health.stale = stale
        VENUE_STALE.labels(health.venue).set(1 if stale else 0)
        fields = {"venue": health.venue, "age_s": round(health.age_s, 1)}
        if stale:
            VENUE_STALE_EPISODES.labels(health.venue).inc()
            log.warning(
                "venue %s stale: no tick for %.1f s", health.venue, health.age_s, extra=fields
            )
        else:
            log.info("venue %s fresh again", health.venue, extra=fields)

    def _excluded(self, assets: list[str]) -> None:
        ASSETS_WITHOUT_FRESH.set(len(assets))
        if assets == self.excluded:
            return
        gone = sorted(set(assets) - set(self.excluded))
        back = sorted(set(self.excluded) - set(assets))
        self.excluded = assets
        if gone:
            log.warning(
                "no fresh venue for %d asset(s), left out of detection: %s",
                len(gone),
                ", ".join(gone[:20]),
                extra={"assets": gone[:50], "without_fresh_venue": len(assets)},
            )
        if back:
            log.info(
                "fresh venue again for %s",
                ", ".join(back[:20]),
                extra={"assets": back[:50], "without_fresh_venue": len(assets)},
            )

    @property
    def stale(self) -> list[str]:
        """Venues stale at the last check."""
        return sorted(v for v, h in self.venues.items() if h.stale)

    def snapshot(self, feeds: Sequence[FeedStatus] = ()) -> dict[str, Any]:
        """For /healthz: per venue state, age, reconnects, gaps, drops and the stale flag;
        the assets without a fresh venue; the pegged quotes' rates and de-peg alarms."""
        venues: dict[str, dict[str, Any]] = {}
        for v, h in sorted(self.venues.items()):
            venues[v] = {"age_s": round(h.age_s, 3), "stale": h.stale}
        for st in feeds:
            venues.setdefault(st.venue, {"age_s": None, "stale": False}).update(
                state=st.state.value,
                reconnects=st.reconnects,
                gaps=st.gaps,
                dropped=dict(st.dropped),
            )
        out: dict[str, Any] = {
            "venues": venues,
            "assets_without_fresh_venue": list(self.excluded),
        }
        if self.board is not None:
            out["quotes"] = self.board.rates.snapshot(time.time_ns() // 1_000_000)
        return out

    def describe(self, feeds: Sequence[FeedStatus] = ()) -> list[str]:
        """Status-line parts: `kraken subscribed age 0.2s rc 1 gaps 0 drop 3` per venue
        (`STALE` when reported), then `no price: N assets` when some have no fresh venue."""
        by_venue = {st.venue: st for st in feeds}
        parts = []
        for venue in sorted(self.venues.keys() | by_venue.keys()):
            health, st = self.venues.get(venue), by_venue.get(venue)
            words = [venue]
            if st is not None:
                words.append(st.state.value)
            words.append(f"age {health.age_s:.1f}s" if health and health.last_tick_ns else "age -")
            if st is not None:
                dropped = sum(st.dropped.values())
                words.append(f"rc {st.reconnects} gaps {st.gaps} drop {dropped}")
            if health is not None and health.stale:
                words.append("STALE")
            parts.append(" ".join(words))
        if self.excluded:
            parts.append(f"no price: {len(self.excluded)} assets")
        if self.board is not None:
            off = [q for q, s in self.board.rates.stable.items() if s.depegged]
            parts.extend(f"{q} DE-PEG {self.board.rates.stable[q].live:.4f}" for q in off)
        return parts
