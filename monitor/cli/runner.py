"""What every command shares: settings loading, user-error exits, the run-until-stopped loop."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import click

from monitor.errors import MonitorError
from monitor.settings import Settings, load_settings
from streams.errors import StreamsError


def fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def settings_or_exit(config: str | None, **overrides: Any) -> Settings:
    try:
        return load_settings(
            config, overrides={k: v for k, v in overrides.items() if v is not None}
        )
    except MonitorError as exc:
        fail(str(exc))
        raise  # unreachable: _fail exits


def ledger_to_read(settings: Settings) -> str:
    """`[ledger] path` for a command that only reads it; one line and exit 2 when no ledger
    is there. Reading never creates a ledger: an empty one made in the wrong directory
    would answer "nothing" about lots and harvests that are in the real one."""
    path = settings.ledger.path
    if not Path(path).exists():
        fail(
            f"{path}: no ledger there ([ledger] path): give --config with your settings, "
            "or start one with `harvest-monitor lots import FILE`"
        )
    return path


def run_until_stopped(
    coro: Callable[[Callable[[], Awaitable[None]]], Coroutine[Any, Any, None]],
    duration: float | None,
) -> None:
    """Run `coro(until)` until Ctrl-C / SIGTERM or `duration` seconds, exiting 2 on a user error."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)

        async def until() -> None:
            if duration is None:
                await stop.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), duration)

        await coro(until)

    try:
        asyncio.run(main())
    except Exception as exc:
        problems = user_errors(exc)
        if not problems:
            raise
        fail("; ".join(str(e) for e in problems))


def user_errors(exc: BaseException) -> list[BaseException]:
    """The configuration/input errors inside `exc` (stages fail inside exception groups)."""
    if isinstance(exc, MonitorError | StreamsError):
        return [exc]
    if isinstance(exc, BaseExceptionGroup):
        found = [e for sub in exc.exceptions for e in user_errors(sub)]
        return found if len(found) == len(exc.exceptions) else []
    return []


def config_option(*, required: bool, help: str = "TOML settings.") -> Callable[[Any], Any]:
    """`--config FILE`: an existing TOML settings file."""
    return click.option(
        "--config",
        "config",
        type=click.Path(exists=True, dir_okay=False),
        required=required,
        default=None,
        help=help,
    )


def duration_option(help: str = "Stop after this many seconds.") -> Callable[[Any], Any]:
    """`--duration S`: stop after S seconds (default: until Ctrl-C / SIGTERM)."""
    return click.option("--duration", type=float, default=None, help=help)
