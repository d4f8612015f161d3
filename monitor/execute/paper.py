"""Paper trading: orders fill at once at the reference (consolidated) price.

Slippage moves the price against the order (down for a sell, up for a buy) and the fee
is `fee_rate` of the filled notional, in quote; both come from `[harvest]`, the same
numbers the alert's cost estimate used. Market rules come from `[harvest]` step sizes
and minimum notional, so a paper plan is rounded the way the plan expects. Its current
price (checked before a sale) is what `price_of` says: in the pipeline, the latest fresh
tick of `[execution] venue` on the price board, else the acted-on consensus.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from monitor.execute.venue import MarketRules, Reference, Side, VenueOrder
from monitor.settings import HarvestSettings


class PaperVenue:
    """An in-process venue that fills every market order in full."""

    name = "paper"

    def __init__(
        self,
        harvest: HarvestSettings,
        quote_usd: Decimal = Decimal(1),
        price_of: Callable[[str], Decimal | None] | None = None,
    ) -> None:
        self._harvest = harvest
        self._price_of = price_of  # USD price of an asset now; None: no market view
        self._slippage = Decimal(repr(harvest.slippage_bps)) / Decimal(10_000)
        self._fee_rate = Decimal(repr(harvest.fee_rate))
        self._quote_usd = quote_usd
        self.orders: dict[str, VenueOrder] = {}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def market(self, symbol: str) -> MarketRules:
        asset = symbol.partition("/")[0]
        step = self._harvest.step_sizes.get(asset, self._harvest.step_size)
        return MarketRules(symbol, step, min_cost=self._harvest.min_notional_usd / self._quote_usd)

    async def price(self, symbol: str) -> Decimal | None:
        usd = self._price_of(symbol.partition("/")[0]) if self._price_of is not None else None
        return usd / self._quote_usd if usd is not None else None

    async def create_market_order(
        self, symbol: str, side: Side, amount: Decimal, client_order_id: str, ref: Reference
    ) -> VenueOrder:
        known = self.orders.get(client_order_id)
        if known is not None:  # the same client id is the same order, as on a venue
            return known
        factor = Decimal(1) - self._slippage if side == "sell" else Decimal(1) + self._slippage
        cost = amount * ref.price * factor
        order = VenueOrder(
            client_order_id=client_order_id,
            venue_order_id=f"paper-{len(self.orders) + 1}",
            status="closed",
            amount=amount,
            filled=amount,
            cost=cost,
            fee_quote=cost * self._fee_rate,
            fee_base=Decimal(0),
            at=ref.at,
        )
        self.orders[client_order_id] = order
        return order

    async def fetch_order(self, symbol: str, client_order_id: str) -> VenueOrder | None:
        return self.orders.get(client_order_id)

    async def cancel_order(self, symbol: str, client_order_id: str) -> None:
        return None
