"""What a running process says about itself on `/status` (JSON), for `harvest-monitor status`.

    {"schema": "hm.status/1", "role": "run", "version": "...", "pid": 123,
     "started_at": "...Z", "uptime_s": 7230.4, "bus": "in-process",
     "venues": {"kraken": {"state": "subscribed", "age_s": 0.2, "stale": false, ...}},
     "assets_without_fresh_venue": [], "ticks": {"in": 1234, "detected": 1230},
     "consumer_lag": 0, "lots": 360, "groups": 120, "prices": {"BTC": 83500.0, ...},
     "harvestable": {"count": 2, "groups": [{"account", "wallet", "asset", "lots",
                     "price", "trigger"}, ...]},
     "nearest_triggers": [{"asset": "BTC", "price": 83500.0, "trigger": 82000.0,
                           "distance_pct": 1.8}, ...],
     "last_alerts": [<hm.alert/1 objects, newest last>], "alerts": 12,
     "held": [{"group": "acct/wallet/ASSET", "reason": "..."}],
     "execution": {"mode": "paper", "kill_switch": "", "max_harvest_usd": "10000",
                   "max_daily_usd": "50000", "sold_today_usd": "1234.50"},
     "problems": ["kraken stale (no tick for 31 s)"]}

Harvestable means what `harvest-monitor lots` means: at the asset's last consensus price
some lot of the group is at or under its trigger (cooldowns and confirmation aside). The
nearest triggers are per asset: how far the price is above the highest trigger still under
it (the next lot a fall reaches), in percent of the price, nearest first. `prices` are the
last consensus USD prices of the book's assets. Built on the event loop
(`Pipeline.status`), so it reads the book between ticks, never during one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
import polars as pl
from prometheus_client import REGISTRY

from monitor.alerts.schema import Alert
from monitor.detect import Detector
from monitor.settings import ExecutionSettings

SCHEMA = "hm.status/1"
NEAREST = 10  # assets listed under nearest_triggers
HARVESTABLE_LISTED = 20  # groups listed under harvestable (the count covers all)
LAG_METRIC = "hm_bus_consumer_lag_records"


def consumer_lag(group_id: str) -> int | None:
    """Records behind the end of the ticks topic, summed over this group's partitions
    (from the bus's own lag gauge); None before the consumer has reported any."""
    total, seen = 0.0, False
    for metric in REGISTRY.collect():
        if metric.name != LAG_METRIC:
            continue
        for sample in metric.samples:
            if sample.labels.get("group") == group_id:
                total += sample.value
                seen = True
    return int(total) if seen else None


def book_view(detector: Detector, now_ms: int) -> dict[str, Any]:
    """Lots, groups, the groups harvestable at the last prices, the nearest triggers."""
    book = detector.book
    prices = dict(detector.exposure.prices)
    lots = book.lot_triggers(now_ms).with_columns(
        pl.col("asset").replace_strict(prices, default=None, return_dtype=pl.Float64).alias("price")
    )
    held = set(book.assets)
    keys = ["account", "wallet", "asset"]
    groups = lots.select(keys).unique().height
    ready = (
        lots.filter(pl.col("trigger_usd") >= pl.col("price"))
        .group_by(keys)
        .agg(
            pl.len().alias("lots"),
            pl.col("price").first(),
            pl.col("trigger_usd").max().alias("trigger"),
        )
        .sort(keys)
    )
    nearest = (
        lots.filter(pl.col("trigger_usd") < pl.col("price"))
        .group_by("asset")
        .agg(pl.col("price").first(), pl.col("trigger_usd").max().alias("trigger"))
        .with_columns(
            ((pl.col("price") - pl.col("trigger")) / pl.col("price") * 100)
            .round(4)
            .alias("distance_pct")
        )
        .sort("distance_pct", "asset")
        .head(NEAREST)
    )
    return {
        "lots": book.lot_count,
        "groups": groups,
        "prices": {asset: prices[asset] for asset in sorted(prices) if asset in held},
        "unpriced_assets": sorted(held - set(prices)),
        "harvestable": {
            "count": ready.height,
            "groups": _rows(ready.head(HARVESTABLE_LISTED)),
        },
        "nearest_triggers": _rows(nearest),
    }


def execution_view(
    settings: ExecutionSettings, kill_switch: str, sold_today: Decimal | None
) -> dict[str, Any]:
    """Execution mode, the kill switch and today's caps used (sold today: None without
    an executor)."""
    return {
        "mode": settings.mode,
        "dry_run": settings.dry_run,
        "kill_switch": kill_switch,
        "max_harvest_usd": format(settings.max_harvest_usd, "f"),
        "max_daily_usd": format(settings.max_daily_usd, "f"),
        "sold_today_usd": None if sold_today is None else f"{sold_today:.2f}",
    }


def process_view(role: str, started_wall: float, started_mono: float) -> dict[str, Any]:
    """Schema, role, version, pid, start time and uptime."""
    from monitor import __version__

    return {
        "schema": SCHEMA,
        "role": role,
        "version": __version__,
        "pid": os.getpid(),
        "started_at": datetime.fromtimestamp(started_wall, UTC).isoformat(timespec="seconds"),
        "uptime_s": round(time.monotonic() - started_mono, 1),
    }


def alerts_view(recent: Iterable[Alert]) -> list[Any]:
    """The last alerts as `hm.alert/1` objects, oldest first."""
    return [msgspec.to_builtins(alert) for alert in recent]


def held_view(held: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    """Groups whose alerts are held back, and why."""
    return [{"group": group, "reason": reason} for group, reason in held]


def _rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return list(frame.iter_rows(named=True))
