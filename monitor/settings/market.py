"""Settings of the market side: portfolio, feeds, Kafka, prices."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from monitor.prices.board import PriceRules
from monitor.prices.guard import GuardRules
from monitor.settings.base import _Section
from streams.bus.interface import BusConfig


class PortfolioSettings(_Section):
    """Your tax lots. No default: only `demo` uses example data (monitor.examples)."""

    path: str = ""  # a portfolio CSV imported at start (idempotent by lot_id); empty: none
    allow_future: bool = False  # import lots acquired after now (they join the book then)


NATIVE_VENUES = ("binance", "coinbase", "kraken")


class FeedSettings(_Section):
    """One `[[feeds]]` entry: a venue connection (see monitor/feeds.py for derivation)."""

    venue: str = "binance"  # binance | coinbase | kraken (native), or a ccxt exchange id
    kind: Literal["native", "ccxt"] = "native"
    url: str = ""  # empty: the venue's public endpoint
    symbols: list[str] = Field(default_factory=list)  # empty: derived from the portfolio
    quotes: list[str] = Field(default_factory=lambda: ["USDT"])  # for derived symbols
    channel: str = ""  # empty: the venue's default channel
    exchange_id: str = ""  # kind "ccxt": the ccxt exchange id; empty: `venue`

    @field_validator("quotes")
    @classmethod
    def _quotes_upper(cls, value: list[str]) -> list[str]:
        if not value or not all(q.strip().isalnum() for q in value):
            raise ValueError("quotes must be a non-empty list of currency codes, e.g. ['USD']")
        return [q.strip().upper() for q in value]

    @model_validator(mode="after")
    def _venue_known(self) -> FeedSettings:
        if self.kind == "native" and self.venue not in NATIVE_VENUES:
            raise ValueError(
                f"venue {self.venue!r} has no native feed ({', '.join(NATIVE_VENUES)}); "
                'for another exchange set kind = "ccxt" and venue = its ccxt id'
            )
        if not self.venue or not self.venue.replace("_", "").isalnum() or not self.venue.islower():
            raise ValueError(f"venue {self.venue!r} must be a lower-case id, e.g. 'okx'")
        if self.exchange_id and self.kind != "ccxt":
            raise ValueError('exchange_id is for kind = "ccxt" feeds only')
        return self

    @field_validator("symbols")
    @classmethod
    def _symbols_unified(cls, value: list[str]) -> list[str]:
        for symbol in value:
            base, sep, quote = symbol.partition("/")
            if not sep or not base or not quote:
                raise ValueError(f"symbol {symbol!r} must be BASE/QUOTE, e.g. BTC/USDT")
        return [s.upper() for s in value]


class KafkaSettings(_Section):
    bootstrap_servers: str = ""  # empty: the embedded in-process bus
    ticks_topic: str = "hm.ticks"
    alerts_topic: str = "hm.alerts"
    group_id: str = "hm-detect"
    client_id: str = "harvest-monitor"
    partitions: int = Field(default=6, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    linger_ms: int = Field(default=5, ge=0)
    max_batch_bytes: int = Field(default=1_048_576, ge=1024)
    compression: Literal["none", "gzip", "lz4", "zstd", "snappy"] = "none"
    enable_idempotence: bool = False
    acks: Literal["0", "1", "all"] = "1"
    fetch_max_records: int = Field(default=5_000, ge=1)
    fetch_max_wait_ms: int = Field(default=500, ge=0)
    session_timeout_ms: int = Field(default=10_000, ge=100)
    heartbeat_interval_ms: int = Field(default=3_000, ge=10)
    offset_reset: Literal["latest", "earliest"] = "latest"  # a group without offsets starts

    def bus_config(self) -> BusConfig:
        return BusConfig(
            bootstrap_servers=self.bootstrap_servers,
            client_id=self.client_id,
            partitions=self.partitions,
            replication_factor=self.replication_factor,
            linger_ms=self.linger_ms,
            max_batch_bytes=self.max_batch_bytes,
            compression=None if self.compression == "none" else self.compression,
            enable_idempotence=self.enable_idempotence,
            acks=self.acks,
            fetch_max_records=self.fetch_max_records,
            fetch_max_wait_ms=self.fetch_max_wait_ms,
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=self.heartbeat_interval_ms,
            offset_reset=self.offset_reset,
        )


class PriceSettings(_Section):
    """`[prices]`: quote conversion and the cross-venue guards (monitor/prices)."""

    usd_quotes: list[str] = Field(default_factory=lambda: ["USD"])  # taken at face value
    pegs: dict[str, float] = Field(default_factory=lambda: {"USDT": 1.0, "USDC": 1.0})
    depeg_pct: float = Field(default=0.005, gt=0, lt=1)  # alarm beyond this fraction of peg
    max_age_s: float = Field(default=30.0, gt=0)  # older venue prices are stale, ignored
    outlier_pct: float = Field(default=0.02, gt=0, lt=1)  # from the other venues' median
    confirm_ms: int = Field(default=0, ge=0)  # a crossing must last this long (0: at once)
    venue_stale_s: float = Field(default=60.0, gt=0)  # no tick this long: venue reported
    # The bad-print guard (monitor.prices.guard): a price one venue alone supports, or
    # that moved more than jump_pct within hold_s, is acted on once it has persisted
    # hold_s (event time); two agreeing venues confirm it at once.
    hold_s: float = Field(default=30.0, ge=0)  # 0: a single venue's price at once
    jump_pct: float = Field(default=0.10, gt=0, lt=1)
    min_usd: float = Field(default=1e-12, gt=0)  # lower USD prices are rejected
    absurd_factor: float = Field(default=10.0, gt=1)  # x above/below the last acted-on price
    absurd_window_s: float = Field(default=3600.0, ge=0)  # ... of this long ago: rejected

    @field_validator("usd_quotes")
    @classmethod
    def _usd_upper(cls, value: list[str]) -> list[str]:
        return [q.strip().upper() for q in value]

    @field_validator("pegs")
    @classmethod
    def _pegs_positive(cls, value: dict[str, float]) -> dict[str, float]:
        for quote, peg in value.items():
            if not peg > 0:
                raise ValueError(f"peg of {quote} must be a positive USD price, got {peg}")
        return {q.strip().upper(): float(p) for q, p in value.items()}

    @model_validator(mode="after")
    def _quotes_disjoint(self) -> PriceSettings:
        both = sorted(set(self.usd_quotes) & set(self.pegs))
        if both:
            raise ValueError(
                f"{', '.join(both)} in both usd_quotes (face value) and pegs (converted): "
                "keep each quote in one of them"
            )
        return self

    def rules(self) -> PriceRules:
        """The price board's rules."""
        return PriceRules(
            usd_quotes=tuple(self.usd_quotes),
            pegs=tuple(self.pegs.items()),
            depeg_pct=self.depeg_pct,
            max_age_s=self.max_age_s,
            outlier_pct=self.outlier_pct,
            confirm_ms=self.confirm_ms,
            guard=GuardRules(
                hold_s=self.hold_s,
                jump_pct=self.jump_pct,
                min_usd=self.min_usd,
                absurd_factor=self.absurd_factor,
                absurd_window_s=self.absurd_window_s,
            ),
        )


def default_feeds() -> list[FeedSettings]:
    """Binance (USDT markets), Coinbase and Kraken (USD markets) on their public endpoints."""
    return [
        FeedSettings(venue="binance", quotes=["USDT"]),
        FeedSettings(venue="coinbase", quotes=["USD"]),
        FeedSettings(venue="kraken", quotes=["USD"]),
    ]
