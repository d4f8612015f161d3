"""Detection on the lot book: crossings, re-arming, cooldown, grouping and exact amounts."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.book import LotBook
from monitor.detect import build_detector
from monitor.portfolio import parse_portfolio
from monitor.settings import load_settings
from monitor.triggers import TriggerRules, is_harvestable
from streams.ticks import Tick

PORTFOLIO = """lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at
A1,acct-a,cb-1,BTC,2,100000,2026-01-10
A2,acct-a,cb-1,BTC,1,60000,2025-02-01
B1,acct-b,bn-1,BTC,1,60000,2025-06-01
E1,acct-a,cb-1,ETH,10,40000,2026-05-05
"""


# One venue's ticks acted on at once ([prices] hold_s = 0): the book's logic is tested here.
ONE_VENUE = {"prices.hold_s": 0}


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def tick(price: float, at: str, base: str = "BTC") -> Tick:
    ts = ms(at)
    return Tick("binance", f"{base}/USDT", base, "USDT", price, ts, ts * 1_000_000)


@pytest.fixture
def detector():  # type: ignore[no-untyped-def]
    lots = parse_portfolio(io.StringIO(PORTFOLIO), "test.csv")
    return build_detector(load_settings(overrides=ONE_VENUE), lots, event_time=True)


def test_price_above_every_trigger_emits_nothing(detector) -> None:  # type: ignore[no-untyped-def]
    assert detector.on_tick(tick(62_000.0, "2026-02-10T00:00:00")) == []


def test_crossing_lots_of_one_wallet_make_one_alert_with_exact_amounts(detector) -> None:  # type: ignore[no-untyped-def]
    # 2026-02-10: A1 short-term (bought 2026-01-10), A2 long-term (from 2026-02-02).
    alerts = detector.on_tick(tick(47_000.0, "2026-02-10T00:00:00"))
    by_account = {a.account: a for a in alerts}
    a = by_account["acct-a"]
    assert (a.lot_ids, a.quantity, a.cost_basis_usd, a.proceeds_usd) == (
        ["A1", "A2"],
        "3",
        "160000.00",
        "141000.00",
    )
    # A1 loss 6,000 short at 37% = 2,220; A2 loss 13,000 long at 20% = 2,600.
    # Cost: 0.003 * 141,000 = 423. Net 4,820 - 423 = 4,397.
    assert (a.loss_usd, a.short_term_loss_usd, a.long_term_loss_usd) == (
        "19000.00",
        "6000.00",
        "13000.00",
    )
    assert (a.tax_savings_usd, a.cost_usd, a.net_benefit_usd) == ("4820.00", "423.00", "4397.00")
    assert by_account["acct-b"].lot_ids == ["B1"]


def test_alerted_lot_stays_quiet_until_price_rearms(detector) -> None:  # type: ignore[no-untyped-def]
    detector.on_tick(tick(47_000.0, "2026-02-10T00:00:00"))
    assert detector.on_tick(tick(46_000.0, "2026-02-10T02:00:00")) == []


def test_rearmed_lot_alerts_again_after_cooldown(detector) -> None:  # type: ignore[no-untyped-def]
    detector.on_tick(tick(47_000.0, "2026-02-10T00:00:00"))
    detector.on_tick(tick(70_000.0, "2026-02-10T01:00:00"))  # far above every trigger * 1.02
    again = detector.on_tick(tick(47_000.0, "2026-02-10T02:00:00"))
    assert sorted(a.account for a in again) == ["acct-a", "acct-b"]


def test_rearmed_lot_inside_cooldown_is_suppressed(detector) -> None:  # type: ignore[no-untyped-def]
    detector.on_tick(tick(47_000.0, "2026-02-10T00:00:00"))
    detector.on_tick(tick(70_000.0, "2026-02-10T00:10:00"))
    assert detector.on_tick(tick(47_000.0, "2026-02-10T00:20:00")) == []


def test_a_daily_rebuild_rearms_no_lot(detector) -> None:  # type: ignore[no-untyped-def]
    """B1 (bought 2025-06-01) turns long-term on 2026-06-02: the index is rebuilt, and the
    lots that alerted the day before, never back above trigger * 1.02, stay quiet."""
    first = detector.on_tick(tick(40_000.0, "2026-06-01T00:00:00"))
    assert sorted(a.account for a in first) == ["acct-a", "acct-b"]
    rebuilds = detector.book.rebuilds
    assert detector.on_tick(tick(40_000.0, "2026-06-02T12:00:00")) == []  # 36 h later
    assert detector.book.rebuilds > rebuilds
    detector.on_tick(tick(70_000.0, "2026-06-02T13:00:00"))  # re-arm
    again = detector.on_tick(tick(40_000.0, "2026-06-02T14:00:00"))
    assert sorted(a.account for a in again) == ["acct-a", "acct-b"]


def test_lot_turning_long_term_changes_its_trigger() -> None:
    """E1 (bought 2026-05-05, 10 units at 4,000) is long-term from 2027-05-06.

    With min_loss_pct=0 and min_loss_usd=0 the net rule binds:
    short: (0.37*40000 - 25) / (10*0.373) = 3961.13; long: (0.20*40000 - 25)/(10*0.203) = 3928.57.
    """
    lots = parse_portfolio(io.StringIO(PORTFOLIO), "test.csv")
    s = load_settings(
        overrides={**ONE_VENUE, "harvest.min_loss_pct": 0.0, "harvest.min_loss_usd": 0.0}
    )
    short = build_detector(s, lots, event_time=True)
    long = build_detector(s, lots, event_time=True)
    assert [a.lot_ids for a in short.on_tick(tick(3_950.0, "2027-05-05T23:59:59", "ETH"))] == [
        ["E1"]
    ]
    assert long.on_tick(tick(3_950.0, "2027-05-06T00:00:00", "ETH")) == []


def test_index_is_rebuilt_when_the_day_passes_a_lot_anniversary() -> None:
    lots = parse_portfolio(io.StringIO(PORTFOLIO), "test.csv")
    s = load_settings(
        overrides={**ONE_VENUE, "harvest.min_loss_pct": 0.0, "harvest.min_loss_usd": 0.0}
    )
    detector = build_detector(s, lots, event_time=True)
    assert (
        detector.on_tick(tick(3_950.0, "2027-05-05T12:00:00", "ETH"))[0].short_term_loss_usd
        == "500.00"
    )
    detector.on_tick(tick(5_000.0, "2027-05-05T13:00:00", "ETH"))  # re-arm
    late = detector.on_tick(tick(3_900.0, "2027-05-06T14:00:00", "ETH"))
    assert (late[0].short_term_loss_usd, late[0].long_term_loss_usd) == ("0.00", "1000.00")


def test_tick_in_a_non_usd_quote_is_rejected(detector) -> None:  # type: ignore[no-untyped-def]
    t = Tick("binance", "BTC/EUR", "BTC", "EUR", 1.0, 0, 0)
    assert detector.on_tick(t) == []
    assert detector.prices.latest == {}


def test_alert_ids_are_deterministic_and_distinct(detector) -> None:  # type: ignore[no-untyped-def]
    lots = parse_portfolio(io.StringIO(PORTFOLIO), "test.csv")
    twin = build_detector(load_settings(overrides=ONE_VENUE), lots, event_time=True)
    first = detector.on_tick(tick(47_000.0, "2026-02-10T00:00:00"))
    second = twin.on_tick(tick(47_000.0, "2026-02-10T00:00:00"))
    assert [a.alert_id for a in first] == [a.alert_id for a in second]
    assert len({a.alert_id for a in first}) == len(first)


RULES = TriggerRules(100.0, 0.05, 25.0, 0.003, 0.37, 0.20)


@settings(max_examples=60, deadline=None)
@given(
    lots=st.lists(
        st.tuples(st.floats(0.01, 50.0), st.floats(10.0, 200_000.0)), min_size=1, max_size=40
    ),
    price=st.floats(1.0, 150_000.0),
)
def test_index_fires_exactly_the_harvestable_lots(
    lots: list[tuple[float, float]], price: float
) -> None:
    """First tick on a fresh book: fired lots == lots the direct rules call harvestable."""
    text = "lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at\n" + "".join(
        f"L{i},a,w,BTC,{q:.8f},{b:.2f},2026-01-01\n" for i, (q, b) in enumerate(lots)
    )
    frame = parse_portfolio(io.StringIO(text), "prop.csv")
    book = LotBook(frame, RULES, rearm_pct=0.02, cooldown_s=0)
    crossing = book.crossings("BTC", price, ms("2026-02-01T00:00:00"))
    fired = set() if crossing is None else set(crossing.rows.tolist())
    qty = frame["quantity"].cast(float).to_numpy()
    basis = frame["cost_basis_usd"].cast(float).to_numpy()
    expected = set()
    for i in range(frame.height):
        unit = basis[i] / qty[i]
        if abs(unit * qty[i] - qty[i] * price) < 1e-6 * max(1.0, unit * qty[i]):
            continue
        if is_harvestable(qty[i], unit, 0.37, price, RULES):
            expected.add(i)
    ties = {
        i
        for i in range(frame.height)
        if abs(book.trigger_of("BTC")[1][np.where(book.trigger_of("BTC")[0] == i)[0][0]] - price)
        < 1e-6 * price
    }
    assert fired - ties == expected - ties


ONE_LOT = """lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at
L1,acct-a,cb-1,BTC,1,60000,2026-01-01
"""


def test_reminders_for_a_lot_still_under_water() -> None:
    """L1: trigger 57,000 (the 5% rule binds: 60,000 - 100 = 59,900; net
    (0.37*60,000 - 25) / 0.373 = 59,450.40), re-arms at 58,140; remind_after_s 2 h."""
    lots = parse_portfolio(io.StringIO(ONE_LOT), "test.csv")
    s = load_settings(env={}, overrides={**ONE_VENUE, "harvest.remind_after_s": 7200})
    detector = build_detector(s, lots, event_time=True)

    def kinds(price: float, at: str) -> list[str]:
        return [a.kind for a in detector.on_tick(tick(price, f"2026-02-10T{at}"))]

    assert kinds(56_000.0, "00:00:00") == ["harvest"]
    assert kinds(55_000.0, "01:00:00") == []
    assert kinds(55_000.0, "02:00:00") == ["reminder"]  # 2 h after the alert
    assert kinds(55_000.0, "03:00:00") == []
    assert kinds(57_500.0, "03:30:00") == []  # above water, not re-armed
    assert kinds(57_500.0, "05:00:00") == []  # due since 04:00, but above water
    assert kinds(56_500.0, "05:30:00") == ["reminder"]  # under water again
    assert kinds(59_000.0, "06:00:00") == []  # re-armed
    assert kinds(56_000.0, "06:30:00") == ["harvest"]  # an hour after the reminder


def test_no_reminders_by_default() -> None:
    lots = parse_portfolio(io.StringIO(ONE_LOT), "test.csv")
    detector = build_detector(load_settings(env={}, overrides=ONE_VENUE), lots, event_time=True)
    assert [a.kind for a in detector.on_tick(tick(56_000.0, "2026-02-10T00:00:00"))] == ["harvest"]
    for hour in range(1, 24):
        assert detector.on_tick(tick(55_000.0, f"2026-02-10T{hour:02d}:00:00")) == []
