"""Which feed class serves a `[[feeds]]` entry: `make_feed(config) -> Feed`.

kind "native": the venue's own websocket client (binance, coinbase, kraken); kind
"ccxt": the ccxt.pro client for `exchange_id` (default: the venue name), any exchange
ccxt.pro supports. The ccxt module is imported only when a ccxt feed is made.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from streams.errors import FeedError
from streams.feeds.binance import BinanceFeed
from streams.feeds.coinbase import CoinbaseFeed
from streams.feeds.interface import Feed, FeedConfig
from streams.feeds.kraken import KrakenFeed

__all__ = ["KINDS", "NATIVE_VENUES", "make_feed"]

NATIVE_VENUES: Final[Mapping[str, Callable[..., Feed]]] = {
    "binance": BinanceFeed,
    "coinbase": CoinbaseFeed,
    "kraken": KrakenFeed,
}
KINDS: Final = ("native", "ccxt")


def make_feed(
    config: FeedConfig,
    *,
    markets: Sequence[Mapping[str, Any]] | None = None,
    rng: random.Random | None = None,
) -> Feed:
    """A feed for `config` (not started). `markets` (ccxt only) skips the REST market load.

    Raises FeedError naming the valid choices for an unknown kind or venue.
    """
    if config.kind == "ccxt":
        from streams.feeds.ccxtpro import CcxtFeed

        return CcxtFeed(config, markets=markets, rng=rng)
    if config.kind != "native":
        raise FeedError(f"feed {config.venue!r}: kind {config.kind!r} is not one of {KINDS}")
    factory = NATIVE_VENUES.get(config.venue)
    if factory is None:
        native = ", ".join(NATIVE_VENUES)
        raise FeedError(
            f"feed {config.venue!r}: no native client for this venue (native: {native}); "
            f'use kind = "ccxt" with exchange_id = "<ccxt id>" for any other venue'
        )
    if markets is not None:
        raise FeedError(f"feed {config.venue!r}: markets can only be injected into a ccxt feed")
    return factory(config, rng=rng)
