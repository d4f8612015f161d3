"""`--help` says what the commands do today: three venues in the demo and the daemon,
readable output on a terminal and --json, the status command."""

from __future__ import annotations

from click.testing import CliRunner

from monitor.cli import main


def help_of(*command: str) -> str:
    result = CliRunner().invoke(main, [*command, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def test_demo_and_run_describe_the_three_venues_and_the_output() -> None:
    demo = help_of("demo")
    assert "simulated Binance, Coinbase and Kraken" in demo
    assert "Binance feed" not in demo
    assert "--json" in demo and "readable line per alert" in demo
    run = help_of("run")
    assert "Binance, Coinbase and Kraken" in run and "consensus prices" in run
    assert "Public Binance market data by default" not in run
    top = help_of()
    assert "status" in top and "simulated exchange." not in top


def test_every_command_has_help() -> None:
    for command in [
        ("alerts",), ("bench",), ("demo",), ("detect",), ("execute",), ("ingest",),
        ("lots",), ("lots", "import"), ("replay",), ("report",), ("run",), ("status",), ("tax",),
    ]:  # fmt: skip
        assert len(help_of(*command)) > 80, command
