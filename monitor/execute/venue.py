"""The one small interface the executor trades through: paper (in-process) or ccxt (live).

Amounts are exact Decimals in the market's base units; prices are in its quote currency.
`fetch_order` by client order id is what makes recovery possible: after a crash the
executor asks the venue whether an order it may have sent exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Literal, Protocol

Side = Literal["buy", "sell"]
OrderStatus = Literal["open", "closed", "canceled", "expired", "rejected"]
FINAL: frozenset[str] = frozenset({"closed", "canceled", "expired", "rejected"})


@dataclass(frozen=True, slots=True)
class MarketRules:
    """A market's precision and limits, as the venue publishes them."""

    symbol: str
    amount_step: Decimal  # 0: any amount
    min_amount: Decimal = Decimal(0)
    min_cost: Decimal = Decimal(0)  # minimum notional in quote

    def round_amount(self, amount: Decimal) -> Decimal:
        """Round down to the step: never sell more than the plan holds."""
        if self.amount_step <= 0:
            return amount
        steps = (amount / self.amount_step).to_integral_value(rounding=ROUND_DOWN)
        return steps * self.amount_step

    def refusal(self, amount: Decimal, price: Decimal) -> str:
        """Why the venue would refuse `amount` at about `price` ('' when it would not)."""
        if amount <= 0:
            return f"{self.symbol}: amount rounds to 0 at step {self.amount_step}"
        if amount < self.min_amount:
            return f"{self.symbol}: amount {amount} is below the minimum {self.min_amount}"
        if amount * price < self.min_cost:
            return f"{self.symbol}: notional {amount * price} is below the minimum {self.min_cost}"
        return ""


@dataclass(frozen=True, slots=True)
class Reference:
    """What the executor believes the price is (paper fills at it; live ignores it)."""

    price: Decimal  # quote per base unit
    at: datetime


@dataclass(frozen=True, slots=True)
class VenueOrder:
    """An order as the venue reports it; `cost` is the filled notional in quote."""

    client_order_id: str
    venue_order_id: str
    status: OrderStatus
    amount: Decimal
    filled: Decimal
    cost: Decimal
    fee_quote: Decimal  # fee charged in the quote currency
    fee_base: Decimal  # fee charged in the base currency (taken from what a buy receives)
    at: datetime

    @property
    def final(self) -> bool:
        return self.status in FINAL


class VenueRejected(Exception):
    """The venue refused the order outright: nothing was placed."""


class VenueUnavailable(Exception):
    """No definite answer (network, timeout, 5xx): the order may or may not exist."""


class Venue(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def market(self, symbol: str) -> MarketRules: ...

    async def price(self, symbol: str) -> Decimal | None:
        """The venue's own current price of `symbol` (quote per base), None when unknown.

        Read before a sale is sent, to refuse one far from the alert's price."""
        ...

    async def create_market_order(
        self, symbol: str, side: Side, amount: Decimal, client_order_id: str, ref: Reference
    ) -> VenueOrder: ...

    async def fetch_order(self, symbol: str, client_order_id: str) -> VenueOrder | None:
        """The order with this client id, or None when the venue has never seen it."""
        ...

    async def cancel_order(self, symbol: str, client_order_id: str) -> None: ...
