"""Putting execution together from settings: the venue, the executor, its alert sink."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from monitor.alerts.schema import Alert
from monitor.detect import Detector
from monitor.errors import ConfigError
from monitor.execute.book_sync import BookSync
from monitor.execute.credentials import load_credentials
from monitor.execute.exchange import CcxtVenue
from monitor.execute.executor import Executor
from monitor.execute.fills import Listener
from monitor.execute.paper import PaperVenue
from monitor.execute.venue import Venue
from monitor.ledger import Ledger
from monitor.settings import Settings


def make_venue(
    settings: Settings,
    env: Mapping[str, str] | None = None,
    venue_price: Callable[[str], Decimal | None] | None = None,
) -> Venue:
    """paper: the in-process venue (its current price from `venue_price`); live: ccxt with
    keys from `env` (default os.environ) or key files (a dry run needs none)."""
    ex = settings.execution
    if ex.mode == "paper":
        return PaperVenue(settings.harvest, ex.quote_usd, venue_price)
    credentials = None if ex.dry_run else load_credentials(ex, env)
    return CcxtVenue(ex, credentials)


def make_executor(
    settings: Settings,
    ledger: Ledger,
    *,
    listeners: Sequence[Listener] = (),
    price_of: Callable[[str], Decimal | None] | None = None,
    clock: Callable[[], datetime] | None = None,
    env: Mapping[str, str] | None = None,
    event_time: bool = False,
    venue_price: Callable[[str], Decimal | None] | None = None,
) -> Executor | None:
    """The executor for `[execution] mode`, or None in alert-only mode."""
    if settings.execution.mode == "alert":
        return None
    return Executor(
        settings,
        ledger,
        make_venue(settings, env, venue_price),
        listeners=listeners,
        price_of=price_of,
        clock=clock,
        event_time=event_time,
    )


class ExecutionSink:
    """The AlertSink in front of the executor: records the alerts, then wakes it.

    Recording is one short SQLite transaction (an id already there is ignored, so the
    delivery engine's own recording does no harm). `inline=True` (replay) also runs
    the executor before returning, so event-time runs stay deterministic; in the daemon
    the executor is its own task and detection never waits for an order.
    """

    name = "executor"

    def __init__(self, ledger: Ledger, executor: Executor, *, inline: bool = False) -> None:
        self._ledger = ledger
        self._executor = executor
        self._inline = inline

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, alerts: Sequence[tuple[Alert, bytes]]) -> None:
        self._ledger.alerts.record_alerts([(a.alert_id, a.emitted_at, body) for a, body in alerts])
        if self._inline:
            await self._executor.drain()
        else:
            self._executor.wake()


def execution_ledger(settings: Settings) -> Ledger | None:
    """The ledger (not yet open) execution needs, or None in alert-only mode."""
    return None if settings.execution.mode == "alert" else Ledger.from_settings(settings)


def execution_stage(
    settings: Settings, ledger: Ledger | None, detector: Detector | None, *, inline: bool = False
) -> tuple[Executor, ExecutionSink] | None:
    """The executor wired to the detector (book updates, current prices) and its sink.

    `inline=True` (replay): the executor runs inside each alert's delivery and judges
    alert age in event time.
    """
    if settings.execution.mode == "alert" or detector is None:
        return None
    if ledger is None:
        raise ConfigError(f'[execution] mode = "{settings.execution.mode}" needs [ledger] path')
    board = detector.prices

    def price_of(asset: str) -> Decimal | None:
        usd = board.acted_usd(asset)  # never a held (unconfirmed) price
        return Decimal(repr(usd)) if usd is not None else None

    def venue_price(asset: str) -> Decimal | None:
        """The paper venue's own price: the execution venue's fresh tick, else consensus."""
        usd = board.venue_usd(asset, settings.execution.venue)
        return Decimal(repr(usd)) if usd is not None else price_of(asset)

    sync = BookSync(settings, detector, ledger)
    executor = make_executor(
        settings,
        ledger,
        listeners=[sync.apply],
        price_of=price_of,
        venue_price=venue_price,
        event_time=inline,
    )
    assert executor is not None  # mode is paper or live here
    return executor, ExecutionSink(ledger, executor, inline=inline)
