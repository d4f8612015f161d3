"""The feeds a configuration asks for: `[[feeds]]` entries -> FeedConfigs (for
`streams.feeds.registry.make_feed`, which picks the client class).

An entry without `symbols` subscribes `<asset>/<quote>` for every portfolio asset and
each of its `quotes`. A venue that quotes in USD (face value, `[prices] usd_quotes`) also
subscribes the USD market of every pegged stablecoin another feed quotes in (`USDT/USD`
when Binance quotes in USDT), so the price board converts through the stablecoin's live
price and sees a de-peg, instead of assuming the peg.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from monitor.errors import ConfigError
from monitor.settings import FeedSettings, Settings
from streams.feeds.interface import FeedConfig

__all__ = ["build_feed_configs", "feed_symbols", "rate_quotes"]


def rate_quotes(settings: Settings) -> tuple[str, ...]:
    """Pegged stablecoins some feed quotes in (by `quotes` or in a listed symbol)."""
    pegged = settings.prices.pegs
    used: set[str] = set()
    for feed in settings.feeds:
        used.update(q for q in feed.quotes if q in pegged)
        used.update(s.partition("/")[2] for s in feed.symbols if s.partition("/")[2] in pegged)
    return tuple(sorted(used))


def feed_symbols(
    feed: FeedSettings,
    assets: Iterable[str],
    *,
    usd_quotes: Iterable[str] = ("USD",),
    rates: Iterable[str] = (),
) -> tuple[str, ...]:
    """The feed's unified symbols: as configured, else derived from `assets` and quotes."""
    if feed.symbols:
        return tuple(feed.symbols)
    symbols = [f"{a}/{q}" for a in sorted(set(assets)) for q in feed.quotes if a != q]
    for usd in (q for q in feed.quotes if q in set(usd_quotes)):
        symbols.extend(f"{stable}/{usd}" for stable in rates)
    return tuple(dict.fromkeys(symbols))  # de-duplicated, in order


def build_feed_configs(
    settings: Settings, assets: Iterable[str], urls: Mapping[str, str] | None = None
) -> list[FeedConfig]:
    """One FeedConfig per `[[feeds]]` entry; `urls` (venue -> URL) overrides `url`."""
    asset_list = list(assets)
    rates = rate_quotes(settings)
    configs = []
    for entry in settings.feeds:
        symbols = feed_symbols(
            entry, asset_list, usd_quotes=settings.prices.usd_quotes, rates=rates
        )
        if not symbols:
            raise ConfigError(f"[[feeds]] {entry.venue}: no symbols (list some, or add lots)")
        configs.append(
            FeedConfig(
                venue=entry.venue,
                symbols=symbols,
                url=(urls or {}).get(entry.venue, entry.url),
                kind=entry.kind,
                channel=entry.channel,
                exchange_id=entry.exchange_id,
            )
        )
    return configs
