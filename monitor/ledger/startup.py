"""Where a run's lots come from: the ledger, fed by the portfolio CSV when asked.

- The ledger holds lots: they are the book (what is still open of each).
- A portfolio CSV given explicitly (`--portfolio`, or `[portfolio] path` set in the
  configuration) is imported first, idempotent by lot_id, so re-running with the same
  file changes nothing and a new lot in it is added.
- An empty ledger imports `[portfolio] path` (the example portfolio by default), so a
  first run works with no set-up.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import polars as pl

from monitor.ledger.ledger import Ledger
from monitor.settings import Settings

log = logging.getLogger(__name__)


def portfolio_is_explicit(settings: Settings) -> bool:
    """Whether `[portfolio] path` was set (file or environment), not just defaulted."""
    return "path" in settings.portfolio.model_fields_set


def open_ledger_lots(
    settings: Settings, portfolio: str | Path | None = None, *, path: str | Path | None = None
) -> tuple[Ledger, pl.DataFrame]:
    """The open ledger (at `path`, default `[ledger] path`) and its open lots."""
    ledger = Ledger(path if path is not None else settings.ledger.path).open()
    try:
        csv = portfolio
        if csv is None and (portfolio_is_explicit(settings) or not ledger.has_lots()):
            csv = settings.portfolio.path
        if csv is not None:
            result = ledger.import_lots(csv)
            log.info(
                "portfolio imported into the ledger",
                extra={"file": str(csv), "added": result.added, "unchanged": result.unchanged},
            )
        return ledger, ledger.open_lots()
    except BaseException:
        ledger.close()
        raise


def demo_ledger_path(settings: Settings) -> tuple[Path, tempfile.TemporaryDirectory[str] | None]:
    """The demo's ledger: `[ledger] path` when configured, else a fresh temporary one (a
    demo starts from the example portfolio each time); the directory to clean up, if any."""
    if "path" in settings.ledger.model_fields_set:
        return Path(settings.ledger.path), None
    scratch = tempfile.TemporaryDirectory(prefix="hm-demo-")
    return Path(scratch.name) / "ledger.sqlite", scratch
