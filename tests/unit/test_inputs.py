"""Portfolio CSV, settings and replay-line parsing: what is accepted and what each error says."""

from __future__ import annotations

import io
import logging
from decimal import Decimal
from pathlib import Path

import pytest

from monitor.errors import ConfigError, PortfolioError
from monitor.examples import PORTFOLIO, example_path
from monitor.portfolio import load_portfolio, parse_portfolio
from monitor.settings import load_settings
from streams.errors import TickFormatError
from streams.feeds.replay import LOGGED_REJECTS, ReplayStats, parse_line, read_ticks

HEADER = "lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at\n"


def load(text: str):  # type: ignore[no-untyped-def]
    return parse_portfolio(io.StringIO(text), "p.csv")


def test_good_rows_load_exactly() -> None:
    frame = load(HEADER + "L1,a,w,btc,0.123456789012345678,1000.10,2025-03-01T10:00:00+02:00\n")
    row = frame.row(0, named=True)
    assert (row["asset"], row["quantity"], row["cost_basis_usd"]) == (
        "BTC",
        Decimal("0.123456789012345678"),
        Decimal("1000.1"),
    )
    assert row["acquired_at"].isoformat() == "2025-03-01T08:00:00+00:00"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("L1,a,w,BTC,abc,100,2025-01-01", "p.csv:2: quantity: 'abc' is not a decimal number"),
        ("L1,a,w,BTC,0,100,2025-01-01", "p.csv:2: quantity: '0' must be above 0"),
        ("L1,a,w,BTC,1,-5,2025-01-01", "p.csv:2: cost_basis_usd: '-5' must be at least 0"),
        (
            "L1,a,w,BTC,1,1e3,2025-01-01",
            "p.csv:2: cost_basis_usd: '1e3' is not a plain decimal number",
        ),
        ("L1,a,w,BTC,1,100,01/02/2025", "p.csv:2: acquired_at: '01/02/2025' is not an ISO 8601"),
        ("L1,,w,BTC,1,100,2025-01-01", "p.csv:2: account: is empty"),
        ("L1,a,w,BTC,1,100", "p.csv:2: row: has 6 fields, the header has 7"),
    ],
)
def test_bad_row_names_file_line_and_field(row: str, message: str) -> None:
    with pytest.raises(PortfolioError) as err:
        load(HEADER + row + "\n")
    assert message in str(err.value)


def test_every_bad_row_is_reported_with_its_own_line() -> None:
    text = (
        HEADER
        + "L1,a,w,BTC,1,100,2025-01-01\nL2,a,w,BTC,x,100,2025-01-01\n\nL3,a,w,BTC,1,y,2025-01-01\n"
    )
    with pytest.raises(PortfolioError) as err:
        load(text)
    assert "p.csv:3: quantity" in str(err.value) and "p.csv:5: cost_basis_usd" in str(err.value)


def test_duplicate_lot_id_points_at_first_use() -> None:
    with pytest.raises(PortfolioError, match=r"p.csv:3: lot_id: 'L1' already used on line 2"):
        load(HEADER + "L1,a,w,BTC,1,100,2025-01-01\nL1,a,w,ETH,1,100,2025-01-01\n")


def test_wrong_header_lists_missing_and_unknown_columns() -> None:
    with pytest.raises(
        PortfolioError, match=r"p.csv:1: header: missing acquired_at; unknown bought"
    ):
        load("lot_id,account,wallet,asset,quantity,cost_basis_usd,bought\n")


def test_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(PortfolioError, match="portfolio file not found"):
        load_portfolio(tmp_path / "nope.csv")


def test_example_portfolio_is_realistic() -> None:
    frame = load_portfolio(example_path(PORTFOLIO))
    assert frame.height >= 300
    assert frame["asset"].n_unique() >= 20
    assert frame["account"].n_unique() >= 3


def test_unknown_settings_key_names_key_and_file(tmp_path: Path) -> None:
    cfg = tmp_path / "m.toml"
    cfg.write_text("[harvest]\nmin_loss_usdd = 5\n")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, env={})
    assert str(cfg) in str(err.value) and "harvest.min_loss_usdd: unknown key" in str(err.value)


def test_wrong_type_names_key(tmp_path: Path) -> None:
    cfg = tmp_path / "m.toml"
    cfg.write_text('[tax]\nshort_term_rate = "high"\n')
    with pytest.raises(ConfigError, match=r"tax.short_term_rate: .*valid number"):
        load_settings(cfg, env={})


def test_environment_overrides_file_and_is_named_in_errors(tmp_path: Path) -> None:
    cfg = tmp_path / "m.toml"
    cfg.write_text("[harvest]\nmin_loss_usd = 5\n")
    assert load_settings(cfg, env={"HM_HARVEST__MIN_LOSS_USD": "250"}).harvest.min_loss_usd == 250
    with pytest.raises(ConfigError, match=r"HM_HARVEST__FEE_RATE"):
        load_settings(cfg, env={"HM_HARVEST__FEE_RATE": "lots"})


def test_invalid_toml_is_reported_with_file(tmp_path: Path) -> None:
    cfg = tmp_path / "m.toml"
    cfg.write_text("[harvest\n")
    with pytest.raises(ConfigError, match=r"m.toml: not valid TOML"):
        load_settings(cfg, env={})


def test_replay_line_accepts_iso_and_epoch_ms() -> None:
    iso = parse_line(
        '{"venue":"binance","symbol":"BTC/USDT","price":43000.5,"ts":"2026-03-01T12:00:00.123Z"}'
    )
    ms = parse_line(b'{"venue":"binance","symbol":"BTC/USDT","price":"43000.5","ts":1772366400123}')
    assert iso == ms and iso.ts_ms == 1772366400123 and iso.base == "BTC"


@pytest.mark.parametrize(
    "line",
    [
        "not json",
        '{"venue":"binance","symbol":"BTCUSDT","price":1,"ts":1}',
        '{"venue":"binance","symbol":"BTC/USDT","price":-1,"ts":1}',
        '{"venue":"binance","symbol":"BTC/USDT","price":1,"ts":"yesterday"}',
        '{"venue":"binance","symbol":"BTC/USDT","ts":1}',
    ],
)
def test_bad_replay_line_raises_tick_format_error(line: str) -> None:
    with pytest.raises(TickFormatError):
        parse_line(line)


def test_replay_file_skips_bad_lines_and_reports_line_numbers(tmp_path: Path) -> None:
    f = tmp_path / "t.jsonl"
    good = '{"venue":"binance","symbol":"BTC/USDT","price":1,"ts":1772366400123}'
    f.write_text(f"{good}\n{{oops\n{good}\n")
    stats = ReplayStats()
    assert len(list(read_ticks(f, stats))) == 2
    assert len(stats.rejected) == 1 and stats.rejected[0].startswith(f"{f}:2: ")


def test_a_file_of_bad_tick_lines_logs_twenty_then_counts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A wrong file as --ticks: every bad line is recorded, the first 20 logged with
    file:line, then one line saying the rest are only counted."""
    path = tmp_path / "not-ticks.csv"
    path.write_text("".join(f"L{n},a,w,BTC,1,100,2025-01-01\n" for n in range(50)))
    stats = ReplayStats()
    caplog.set_level(logging.WARNING, logger="streams.feeds.replay")
    assert list(read_ticks(path, stats)) == []
    assert len(stats.rejected) == 50 and LOGGED_REJECTS == 20
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 21
    assert logged[19].startswith(f"replay line rejected: {path}:20: ")
    assert logged[20] == (
        f"more rejected lines of {path} are counted, not logged (the summary says how many)"
    )
