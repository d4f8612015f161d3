"""The recorded venue messages of tests/fixtures/venues, and a session to parse them with."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.feeds.binance import BinanceProtocol
from streams.feeds.coinbase import CoinbaseProtocol
from streams.feeds.interface import FeedConfig
from streams.feeds.kraken import KrakenProtocol
from streams.feeds.session import VenueSession
from tests.unit.recording_link import RecordingLink

ROOT = Path(__file__).parent / "fixtures" / "venues"
RECV = 1_700_000_000_123_456_789
PROTOCOLS: dict[str, Any] = {
    "binance": BinanceProtocol,
    "coinbase": CoinbaseProtocol,
    "kraken": KrakenProtocol,
}


@dataclass(frozen=True)
class Recorded:
    venue: str
    name: str
    source: str
    channel: str
    raw: str
    expect: dict[str, Any] | None
    drop: str | None
    subscribes: bool

    @property
    def id(self) -> str:
        return f"{self.venue}/{self.name}"


def recorded() -> list[Recorded]:
    """Every recorded message, venue by venue."""
    out = []
    for path in sorted(ROOT.glob("*/*.json")):
        data = json.loads(path.read_text())
        out.append(
            Recorded(
                venue=path.parent.name,
                name=path.stem,
                source=data["source"],
                channel=data["channel"],
                raw=data["raw"],
                expect=data.get("expect"),
                drop=data.get("drop"),
                subscribes=bool(data.get("subscribes")),
            )
        )
    return out


def session(venue: str, channel: str, symbol: str) -> tuple[VenueSession, RecordingLink]:
    """A fresh session of `venue`'s feed for `symbol` on `channel`, with a recording link."""
    config = FeedConfig(venue, (symbol,), channel=channel)
    link = RecordingLink()
    return PROTOCOLS[venue](config).session(link), link
