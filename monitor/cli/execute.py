"""`harvest-monitor execute`: the executor on its own (recovery, or a separate role)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import click

from monitor.cli import main
from monitor.cli.runner import fail, run_until_stopped, settings_or_exit
from monitor.logs import setup_logging


@main.command()
@click.option(
    "--config",
    "config",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="TOML settings (default: built-in defaults and HM_ variables).",
)
@click.option(
    "--once",
    is_flag=True,
    help="Recover, act on the alerts already recorded, then exit.",
)
@click.option("--duration", type=float, default=None, help="Stop after this many seconds.")
def execute(config: str | None, once: bool, duration: float | None) -> None:
    """Run the executor alone against the ledger ([execution] mode paper or live).

    First reconciles every intent that may have an order in flight with the venue
    (by client order id), then trades the harvest alerts recorded in the ledger after
    the ones it has already handled. `run` and `demo` run the same executor beside
    detection; use this after a crash, or as a separate role.
    """
    from monitor.errors import ExecutionError
    from monitor.execute.assembly import make_executor
    from monitor.ledger import Ledger

    settings = settings_or_exit(config)
    setup_logging(settings.log.level, settings.log.format)
    if settings.execution.mode == "alert":
        fail('[execution] mode is "alert": nothing to execute (set "paper" or "live")')

    async def session(until: Callable[[], Awaitable[None]]) -> None:
        async with Ledger.from_settings(settings) as ledger:
            lock = ledger.lock_writer("execute", settings.ledger.lock_lease_s)
            executor = make_executor(settings, ledger)
            assert executor is not None
            await executor.start()
            if once and not executor.health.venue_up:
                raise ExecutionError(executor.health.reason)
            try:
                if once:
                    await executor.recover()
                    await executor.drain()
                    return
                task = asyncio.create_task(executor.run())
                holding = asyncio.create_task(lock.hold())  # raises when the lock is lost
                stop: asyncio.Future[None] = asyncio.ensure_future(until())
                await asyncio.wait({stop, holding}, return_when=asyncio.FIRST_COMPLETED)
                for pending in (task, holding, stop):
                    pending.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await pending
            finally:
                await executor.stop()

    run_until_stopped(session, duration)
