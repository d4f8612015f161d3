"""Where the tax commands read realized disposals from: the ledger, or a CSV file.

`ledger_disposals` is the one place that asks the ledger
(`Ledger(path).open().disposals()`); `read_disposals_csv` reads the
same records from a file (columns = the Disposal fields), for tests and for disposals
realized outside this monitor. A bad row stops the read with `file:line: field: problem`.
"""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

from monitor.errors import DisposalSourceError
from monitor.settings import Settings
from monitor.tax.disposal import Disposal

REQUIRED = (
    "lot_id",
    "account",
    "wallet",
    "asset",
    "quantity",
    "acquired_on",
    "sold_on",
    "proceeds_usd",
    "cost_basis_usd",
    "term",
)
OPTIONAL = ("harvest", "alert_id", "disallowed_loss_usd")


def ledger_disposals(settings: Settings) -> list[Disposal]:
    """Every disposal the ledger holds (`[ledger] path`), oldest sale first."""
    from monitor.ledger import Ledger

    path = settings.ledger.path
    if not Path(path).exists():
        raise DisposalSourceError(
            f"{path}: ledger file not found ([ledger] path); pass --disposals FILE instead"
        )
    ledger = Ledger(path).open()
    try:
        return ledger.disposals(None)
    finally:
        ledger.close()


def read_disposals_csv(path: str | Path) -> list[Disposal]:
    """Disposals from a CSV file with a header naming the Disposal fields."""
    file = Path(path)
    try:
        handle = file.open(newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise DisposalSourceError(f"{file}: disposals file not found") from None
    with handle:
        reader = csv.DictReader(handle)
        names = reader.fieldnames or []
        missing = [c for c in REQUIRED if c not in names]
        unknown = [c for c in names if c not in REQUIRED + OPTIONAL]
        if missing or unknown:
            raise DisposalSourceError(
                f"{file}:1: header: missing {missing or 'nothing'}, unknown {unknown or 'nothing'}"
            )
        out = []
        for row in reader:
            out.append(_row(row, f"{file}:{reader.line_num}"))
    return out


def _row(row: dict[str, str], where: str) -> Disposal:
    def money(name: str, default: str | None = None) -> Decimal:
        text = (row.get(name) or default or "").strip()
        try:
            return Decimal(text)
        except InvalidOperation:
            raise DisposalSourceError(f"{where}: {name}: {text!r} is not a number") from None

    def day(name: str) -> date:
        text = row[name].strip()
        try:
            return date.fromisoformat(text[:10])
        except ValueError:
            raise DisposalSourceError(f"{where}: {name}: {text!r} is not a date") from None

    term = row["term"].strip()
    if term not in ("short", "long"):
        raise DisposalSourceError(f"{where}: term: {term!r} must be short or long")
    harvest = (row.get("harvest") or "false").strip().lower()
    if harvest not in ("true", "false", "1", "0", ""):
        raise DisposalSourceError(f"{where}: harvest: {harvest!r} must be true or false")
    return Disposal(
        lot_id=row["lot_id"].strip(),
        account=row["account"].strip(),
        wallet=row["wallet"].strip(),
        asset=row["asset"].strip().upper(),
        quantity=money("quantity"),
        acquired_on=day("acquired_on"),
        sold_on=day("sold_on"),
        proceeds_usd=money("proceeds_usd"),
        cost_basis_usd=money("cost_basis_usd"),
        term="short" if term == "short" else "long",
        harvest=harvest in ("true", "1"),
        alert_id=(row.get("alert_id") or "").strip(),
        disallowed_loss_usd=money("disallowed_loss_usd", "0"),
    )
