"""Paper execution's price checks before a sale: the alert's price must rest on
`[execution] min_venues` venues, and the venue's own current price must be within
`max_slippage_pct` of it. A refused harvest is a cancelled intent with the reason,
counted in hm_execution_refused_total, and nothing is sent."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from prometheus_client import REGISTRY

from monitor.alerts.schema import Alert, alert_id, encode_alert
from monitor.execute.executor import Executor
from monitor.execute.guardrails import min_venues
from monitor.execute.paper import PaperVenue
from monitor.ledger import Ledger
from monitor.settings import Settings, load_settings

HEADER = "lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at\n"
LOTS = "L1,acct,w1,BTC,1,60000,2025-03-01\n"


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    base = {
        "execution.mode": "paper",
        "execution.max_alert_age_s": 0,
        "execution.kill_switch_file": str(tmp_path / "KILL"),
        "execution.max_harvest_usd": 0,
        "execution.max_daily_usd": 0,
        "harvest.rebuy": "none",
    }
    return load_settings(None, env={}, overrides={**base, **overrides})


def alert(venues: int, confirmed_by: str, price: str = "40000") -> Alert:
    tick_ts = "2026-03-01T12:00:00.000Z"
    return Alert(
        alert_id=alert_id("harvest", "acct", "w1", "BTC", "L1", price, tick_ts),
        account="acct",
        wallet="w1",
        asset="BTC",
        lot_ids=["L1"],
        quantity="1",
        price=price,
        cost_basis_usd="60000.00",
        proceeds_usd="40000.00",
        loss_usd="20000.00",
        short_term_loss_usd="20000.00",
        long_term_loss_usd="0.00",
        tax_savings_usd="7400.00",
        cost_usd="120.00",
        net_benefit_usd="7280.00",
        venue="binance",
        symbol="BTC/USDT",
        tick_ts=tick_ts,
        emitted_at=tick_ts,
        venues=venues,
        confirmed_by=confirmed_by,
    )


def market(usd: str | None) -> Callable[[str], Decimal | None]:
    return lambda asset: Decimal(usd) if usd is not None else None


def refused(reason: str) -> float:
    return REGISTRY.get_sample_value("hm_execution_refused_total", {"reason": reason}) or 0.0


async def trade(
    tmp_path: Path, s: Settings, a: Alert, usd: str | None
) -> tuple[Ledger, PaperVenue]:
    csv = tmp_path / "p.csv"
    csv.write_text(HEADER + LOTS, encoding="utf-8")
    ledger = Ledger(tmp_path / "ledger.sqlite").open()
    ledger.import_lots(csv)
    venue = PaperVenue(s.harvest, price_of=market(usd))
    ex = Executor(s, ledger, venue)
    await ex.recover()
    ledger.alerts.record_alerts([(a.alert_id, a.emitted_at, encode_alert(a))])
    await ex.drain()
    return ledger, venue


def test_min_venues_defaults_to_two_with_several_venues_and_one_with_one(
    tmp_path: Path,
) -> None:
    assert min_venues(settings(tmp_path)) == 2  # default feeds: binance, coinbase, kraken
    one = settings(tmp_path, feeds=[{"venue": "kraken", "quotes": ["USD"]}])
    assert min_venues(one) == 1
    assert min_venues(settings(tmp_path, **{"execution.min_venues": 3})) == 3


async def test_a_one_venue_price_is_not_traded_where_several_venues_are_configured(
    tmp_path: Path,
) -> None:
    before = refused("min_venues")
    ledger, venue = await trade(tmp_path, settings(tmp_path), alert(1, "persistence"), "40000")
    [intent] = ledger.intents.in_states(("cancelled",))
    assert intent.reason == (
        "price rests on 1 venue(s), confirmed by persistence; [execution] min_venues is 2"
    )
    assert venue.orders == {} and ledger.disposals() == []
    assert refused("min_venues") == before + 1


async def test_a_single_venue_deployment_trades_a_persisted_price(tmp_path: Path) -> None:
    s = settings(tmp_path, feeds=[{"venue": "binance"}])
    ledger, venue = await trade(tmp_path, s, alert(1, "persistence"), "40000")
    assert [d.lot_id for d in ledger.disposals()] == ["L1"]
    assert len(venue.orders) == 1


async def test_two_agreeing_venues_trade(tmp_path: Path) -> None:
    ledger, _ = await trade(tmp_path, settings(tmp_path), alert(2, "venues"), "40000")
    assert [d.lot_id for d in ledger.disposals()] == ["L1"]


@pytest.mark.parametrize(
    ("venue_usd", "sent"),
    [
        ("39500", True),  # 1.25% under 40,000: within 2%
        ("39200", True),  # exactly 2.00%
        ("39199", False),  # 2.0025%
        ("40801", False),  # above, too
    ],
)
async def test_a_sale_far_from_the_venue_price_is_not_sent(
    tmp_path: Path, venue_usd: str, sent: bool
) -> None:
    before = refused("slippage")
    ledger, venue = await trade(tmp_path, settings(tmp_path), alert(3, "venues"), venue_usd)
    assert (len(venue.orders) == 1) is sent
    if not sent:
        [intent] = ledger.intents.in_states(("cancelled",))
        assert intent.reason.startswith(f"paper price {venue_usd} USD is ")
        assert intent.reason.endswith("from the alert price 40000 (max_slippage_pct 0.02)")
        assert refused("slippage") == before + 1


async def test_no_current_price_means_no_sale(tmp_path: Path) -> None:
    before = refused("no_price")
    ledger, venue = await trade(tmp_path, settings(tmp_path), alert(3, "venues"), None)
    assert venue.orders == {}
    [intent] = ledger.intents.in_states(("cancelled",))
    assert intent.reason == "no current price from paper to check the alert price against"
    assert refused("no_price") == before + 1


def test_older_alerts_without_the_new_fields_still_decode() -> None:
    old = msgspec.json.decode(encode_alert(alert(3, "venues")))
    del old["consensus_age_ms"], old["confirmed_by"], old["venues"]
    a = msgspec.json.decode(msgspec.json.encode(old), type=Alert)
    assert (a.venues, a.consensus_age_ms, a.confirmed_by) == (1, 0, "")
