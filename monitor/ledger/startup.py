"""Where a run's lots come from: the ledger, fed by the portfolio CSV when asked.

- The ledger holds lots: they are the book (what is still open of each).
- A portfolio CSV given explicitly (`--portfolio`, or `[portfolio] path` set in the
  configuration) is imported first, idempotent by lot_id, so re-running with the same
  file changes nothing and a new lot in it is added.
- With no open lot after that, there is nothing to watch: a clear error. Nothing is
  imported by default; only `demo` uses the example portfolio (monitor.examples).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import polars as pl

from monitor.errors import ConfigError
from monitor.ledger.ledger import Ledger
from monitor.settings import Settings

log = logging.getLogger(__name__)


def open_ledger_lots(
    settings: Settings,
    portfolio: str | Path | None = None,
    *,
    path: str | Path | None = None,
    role: str | None = None,
) -> tuple[Ledger, pl.DataFrame]:
    """The open ledger (at `path`, default `[ledger] path`) and its open lots.

    Raises ConfigError when there is nothing to watch: no portfolio given or configured
    and no open lot in the ledger (example data is never loaded behind the user's back).
    With `role` (a daemon that writes: run, detect, demo, replay) the ledger's writer lock
    is taken first, before any import: a second daemon is refused with LedgerBusyError.
    """
    ledger = Ledger.from_settings(settings, path).open()
    try:
        if role is not None:
            ledger.lock_writer(role, settings.ledger.lock_lease_s)
        csv = portfolio or settings.portfolio.path or None
        if csv is not None:
            result = ledger.import_lots(csv, allow_future=settings.portfolio.allow_future)
            log.info(
                "portfolio imported into the ledger",
                extra={"file": str(csv), "added": result.added, "unchanged": result.unchanged},
            )
        lots = ledger.open_lots()
        if not lots.height:
            raise ConfigError(no_lots_message(ledger.path))
        return ledger, lots
    except BaseException:
        ledger.close()
        raise


def no_lots_message(ledger: str) -> str:
    """What to do when there are no lots to watch."""
    return (
        f"no lots to watch: the ledger {ledger} has no open lot and no portfolio is set. "
        "Import yours with `harvest-monitor lots import FILE`, or set [portfolio] path "
        "(example data is for `harvest-monitor demo` only)"
    )


def demo_ledger_path(
    settings: Settings, *, example: bool
) -> tuple[Path, tempfile.TemporaryDirectory[str] | None]:
    """The demo's ledger: `[ledger] path` when configured, else a fresh temporary one (a
    demo starts from its portfolio each time); the directory to clean up, if any. The
    `example` portfolio always gets a temporary ledger: example lots never go into yours."""
    if "path" in settings.ledger.model_fields_set and not example:
        return Path(settings.ledger.path), None
    scratch = tempfile.TemporaryDirectory(prefix="hm-demo-")
    return Path(scratch.name) / "ledger.sqlite", scratch
