"""Alerts for a person at a terminal: one readable line per alert instead of JSON.

    14:02:11 HARVEST  alice/coinbase  ETH  2.5 @ 2,950.12  loss $1,204.33  net $318.20
             3 venues  rebuy same

(on one line). Chosen by the command line only when standard output is a terminal and
`--json` is not given (monitor.cli.output); a pipe or a file always gets the `hm.alert/1`
JSON lines of `JsonLinesSink`, byte for byte. The alert itself does not change: this is
a view of it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import TextIO

from monitor.alerts.schema import Alert
from monitor.terminal import PLAIN, Palette

_KIND = {
    "harvest": ("HARVEST", "green"),
    "deadline": ("DEADLINE", "yellow"),
    "wash_warning": ("WASH-WARN", "red"),
}


def grouped(text: str, places: int | None = None) -> str:
    """A decimal string with thousands separators (`1234.5` -> `1,234.5`); as is if odd."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        return text
    if places is not None:
        return f"{value:,.{places}f}"
    whole, _, frac = format(value, "f").partition(".")
    sign = "-" if whole.startswith("-") else ""
    return f"{sign}{int(whole.lstrip('-')):,}" + (f".{frac}" if frac else "")


def price(text: str, digits: int = 6) -> str:
    """A price to `digits` significant digits, grouped (`2788.9682825000004` -> `2,788.97`):
    the consolidated price is a median of floats; the alert keeps it exact."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        return text
    if not value.is_finite() or value == 0:
        return text
    places = max(0, digits - 1 - value.adjusted())
    return grouped(format(round(value, places).normalize(), "f"))


def money(text: str) -> str:
    """`1234.5` -> `$1,234.50`, `-3` -> `-$3.00`."""
    shown = grouped(text, 2)
    return f"-${shown[1:]}" if shown.startswith("-") else f"${shown}"


def rebuy_word(alert: Alert) -> str:
    """The second leg in a word or two: `rebuy same`, `rebuy ETH`, `no rebuy`."""
    if alert.plan is None:
        return ""
    rebuy = alert.plan.rebuy
    if rebuy.mode == "same":
        later = rebuy.not_before and rebuy.not_before > alert.tick_ts[:10]
        return "rebuy same" + (f" from {rebuy.not_before}" if later else "")
    if rebuy.mode == "replacement":
        return f"rebuy {rebuy.asset or 'replacement'}"
    return "no rebuy"


def venues_word(alert: Alert) -> str:
    """`3 venues` when several agreed on the price, else `kraken only`."""
    return f"{alert.venues} venues" if alert.venues > 1 else f"{alert.venue or 'one venue'} only"


def alert_line(alert: Alert, palette: Palette = PLAIN) -> str:
    """The alert as one line a person reads at a glance."""
    p = palette
    label, colour = _KIND.get(alert.kind, (alert.kind.upper(), "cyan"))
    clock = alert.tick_ts[11:19] if len(alert.tick_ts) >= 19 else alert.tick_ts
    where = f"{alert.account}/{alert.wallet}"
    trade = f"{grouped(alert.quantity)} @ {price(alert.price)}"
    head = [p.paint(clock, "dim"), p.paint(f"{label:<9}", "bold", colour), where, alert.asset]
    if alert.kind == "wash_warning":
        until = alert.plan.do_not_buy_until if alert.plan is not None else ""
        tail = [
            f"bought {trade}",
            p.paint(f"{money(alert.loss_usd)} of harvested loss at risk", "red"),
        ]
        if until:
            tail.append(f"do not buy until {until}")
        return " ".join(head[:2]) + " " + "  ".join([*head[2:], *tail])
    tail = [
        trade,
        p.paint(f"loss {money(alert.loss_usd)}", "red"),
        p.paint(f"net {money(alert.net_benefit_usd)}", "bold", "green"),
        venues_word(alert),
    ]
    if alert.kind == "deadline" and alert.plan is not None and alert.plan.deadline:
        tail.append(p.paint(f"before {alert.plan.deadline}", "yellow"))
    word = rebuy_word(alert)
    if word:
        tail.append(word)
    return " ".join(head[:2]) + " " + "  ".join([*head[2:], *tail])


class ConsoleSink:
    """Writes each alert as one readable line to a text stream (standard output)."""

    def __init__(self, stream: TextIO | None = None, palette: Palette = PLAIN) -> None:
        self.name = "stdout"
        self._stream = stream
        self._palette = palette

    async def start(self) -> None:
        if self._stream is None:
            self._stream = sys.stdout

    async def stop(self) -> None:
        return

    async def send(self, alerts: Sequence[tuple[Alert, bytes]]) -> None:
        out = self._stream
        if out is None:
            raise RuntimeError("ConsoleSink.send() before start()")
        out.write("".join(alert_line(alert, self._palette) + "\n" for alert, _ in alerts))
        out.flush()
