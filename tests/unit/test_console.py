"""What a person reads at a terminal: an alert as one line, colour and NO_COLOR, the
status line's `attention:` part in words."""

from __future__ import annotations

import io

from monitor.alerts.console import alert_line, grouped, price
from monitor.alerts.schema import Alert, Plan, Rebuy
from monitor.prices import PriceBoard, PriceRules
from monitor.prices.health import FeedWatch
from monitor.stages import troubles
from monitor.terminal import Palette, colour_wanted
from streams.feeds.interface import FeedState, FeedStatus
from streams.ticks import Tick

S = 1_000_000_000


def alert(kind: str = "harvest", venues: int = 3, rebuy: Rebuy | None = None) -> Alert:
    plan = Plan(
        jurisdiction="us",
        value_model="flat",
        lot_selection="max_loss",
        lots=[],
        sell_quantity="2.5",
        legs=2,
        rebuy=rebuy or Rebuy(mode="same", not_before="2026-03-01"),
        deadline="2026-12-31" if kind == "deadline" else "",
        do_not_buy_until="2026-03-31" if kind == "wash_warning" else "",
    )
    return Alert(
        alert_id="hma_x",
        kind=kind,
        account="alice",
        wallet="coinbase",
        asset="ETH",
        lot_ids=["L1"],
        quantity="12345.5",
        price="2788.9682825000004",
        cost_basis_usd="40000.00",
        proceeds_usd="34430.79",
        loss_usd="5569.21",
        short_term_loss_usd="5569.21",
        long_term_loss_usd="0.00",
        tax_savings_usd="1336.61",
        cost_usd="68.86",
        net_benefit_usd="1267.75",
        venue="kraken",
        symbol="ETH/USD",
        tick_ts="2026-03-01T14:02:11.123Z",
        emitted_at="2026-03-01T14:02:11.130Z",
        venues=venues,
        plan=plan,
    )


def test_harvest_alert_is_one_readable_line() -> None:
    assert alert_line(alert()) == (
        "14:02:11 HARVEST   alice/coinbase  ETH  12,345.5 @ 2,788.97  loss $5,569.21  "
        "net $1,267.75  3 venues  rebuy same"
    )


def test_one_venue_a_replacement_and_a_later_rebuy_are_said() -> None:
    line = alert_line(alert(venues=1, rebuy=Rebuy(mode="replacement", asset="SOL")))
    assert line.endswith("kraken only  rebuy SOL")
    later = alert_line(alert(rebuy=Rebuy(mode="same", not_before="2026-04-01")))
    assert later.endswith("rebuy same from 2026-04-01")
    assert alert_line(alert(rebuy=Rebuy(mode="none"))).endswith("no rebuy")


def test_deadline_and_wash_warning_lines() -> None:
    assert "DEADLINE " in alert_line(alert("deadline"))
    assert "before 2026-12-31" in alert_line(alert("deadline"))
    wash = alert_line(alert("wash_warning"))
    assert wash == (
        "14:02:11 WASH-WARN alice/coinbase  ETH  bought 12,345.5 @ 2,788.97  "
        "$5,569.21 of harvested loss at risk  do not buy until 2026-03-31"
    )


def test_numbers_are_grouped_and_prices_cut_to_six_digits() -> None:
    assert grouped("1234567.891") == "1,234,567.891"
    assert grouped("-1234") == "-1,234"
    assert price("0.211931785") == "0.211932"
    assert price("83864.9") == "83,864.9"
    assert price("0.00001234567") == "0.0000123457"


def test_colour_only_on_a_terminal_and_never_with_no_color() -> None:
    coloured = alert_line(alert(), Palette(on=True))
    assert "\x1b[1;32mHARVEST  \x1b[0m" in coloured
    assert "\x1b[" not in alert_line(alert(), Palette(on=False))

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert colour_wanted(Tty(), {"TERM": "xterm"})
    assert not colour_wanted(Tty(), {"TERM": "xterm", "NO_COLOR": "1"})
    assert not colour_wanted(Tty(), {"TERM": "dumb"})
    assert not colour_wanted(io.StringIO(), {"TERM": "xterm"})


def test_troubles_say_what_is_wrong_in_words() -> None:
    watch = FeedWatch(30.0, ["kraken", "binance"], now_ns=0)
    watch.check(31 * S, {"binance": 30 * S})
    assert troubles(watch) == ["kraken stale (no tick for 31 s)"]
    assert troubles(watch, kill_switch="kill switch: var/KILL exists", held=["a/b/BTC"]) == [
        "kraken stale (no tick for 31 s)",
        "held: a/b/BTC",
        "kill switch: var/KILL exists: no orders are sent",
    ]
    watch.check(32 * S, {"binance": 32 * S, "kraken": 32 * S})
    assert troubles(watch) == []


def test_assets_without_a_fresh_price_are_named() -> None:
    board = PriceBoard(PriceRules(max_age_s=30.0))
    watch = FeedWatch(5.0, ["v"], board=board, assets=["BTC", "ETH", "SOL"], now_ns=0)
    board.update(Tick("v", "BTC/USD", "BTC", "USD", 100.0, 6_000, 6 * S))
    watch.check(6 * S, {"v": 6 * S})  # past the 5 s grace: ETH and SOL never priced
    assert troubles(watch) == ["no fresh price for 2 assets (ETH, SOL)"]


def test_a_venue_that_cannot_connect_is_named_at_once_not_only_once_stale() -> None:
    """Every venue failing to connect reads `ok` no longer: from its first failed attempt,
    not after venue_stale_s; a venue connected, or connecting for the first time, is no
    trouble, and a venue stopped on purpose neither."""
    watch = FeedWatch(60.0, ["binance", "kraken", "coinbase", "ccxt"], now_ns=0)
    watch.check(5 * S, {})  # 5 s in: nobody stale yet
    failing = FeedStatus("binance", FeedState.BACKOFF, reconnects=3, last_error="[Errno -2] x")
    first = FeedStatus("kraken", FeedState.CONNECTING)
    fine = FeedStatus("coinbase", FeedState.SUBSCRIBED, reconnects=2)
    stopped = FeedStatus("ccxt", FeedState.STOPPED, reconnects=1)
    assert troubles(watch, feeds=[failing, first, fine, stopped]) == [
        "binance not connected ([Errno -2] x; retrying)"
    ]
    again = FeedStatus("kraken", FeedState.CONNECTING, reconnects=1)
    assert troubles(watch, feeds=[again]) == ["kraken not connected (connecting; retrying)"]
