"""Live orders through ccxt (async): one venue, market orders with client order ids.

Market precision and limits come from the venue (`load_markets`); `sandbox = true` uses
ccxt's testnet URLs; `api_url` points every REST endpoint at another host (tests on
loopback, proxies). ccxt errors are sorted into a refusal (nothing was placed) and an
unknown outcome (the executor then asks the venue by client order id).
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import ccxt.async_support as ccxt_async
from ccxt.base import errors as ccxt_errors
from ccxt.base.decimal_to_precision import DECIMAL_PLACES, TICK_SIZE

from monitor.errors import ExecutionError
from monitor.execute.credentials import Credentials
from monitor.execute.venue import (
    MarketRules,
    OrderStatus,
    Reference,
    Side,
    VenueOrder,
    VenueRejected,
    VenueUnavailable,
)
from monitor.settings import ExecutionSettings

log = logging.getLogger(__name__)

STATUSES: dict[str, OrderStatus] = {
    "open": "open",
    "closed": "closed",
    "canceled": "canceled",
    "cancelled": "canceled",
    "expired": "expired",
    "rejected": "rejected",
}
# Refusals: the venue answered and placed nothing. Everything else that is not
# OrderNotFound is an unknown outcome.
REFUSALS = (
    ccxt_errors.InvalidOrder,
    ccxt_errors.InsufficientFunds,
    ccxt_errors.BadRequest,
    ccxt_errors.BadSymbol,
    ccxt_errors.AuthenticationError,
    ccxt_errors.PermissionDenied,
    ccxt_errors.AccountSuspended,
)


class CcxtVenue:
    """A ccxt exchange for market orders; `start` loads its markets."""

    def __init__(self, settings: ExecutionSettings, credentials: Credentials | None) -> None:
        self.name = settings.venue
        self._settings = settings
        self._credentials = credentials
        self._exchange: Any = None
        self.host = ""  # the REST host, known once `start` has built the client

    async def start(self) -> None:
        s = self._settings
        cls = getattr(ccxt_async, s.venue, None)
        if cls is None:
            raise ExecutionError(f"[execution] venue {s.venue!r} is not a ccxt exchange id")
        config: dict[str, Any] = {
            "enableRateLimit": True,
            "options": {
                "defaultType": "spot",
                "fetchMarkets": {"types": ["spot"]},  # binance: spot only, no futures calls
                "fetchCurrencies": False,
                "fetchMargins": False,
            },
        }
        if self._credentials is not None:
            config["apiKey"] = self._credentials.api_key
            config["secret"] = self._credentials.secret
        exchange = cls(config)
        if s.sandbox:
            exchange.set_sandbox_mode(True)
        if s.api_url:
            exchange.urls["api"] = _rebase(exchange.urls["api"], s.api_url.rstrip("/"))
        self._exchange = exchange
        self.host = api_host(exchange.urls.get("api"))
        try:
            await exchange.load_markets()
        except ccxt_errors.BaseError as exc:
            await exchange.close()
            self._exchange = None
            detail = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, ccxt_errors.NetworkError):  # DNS, refused, timeout, 5xx
                raise VenueUnavailable(f"{s.venue}: cannot reach {self.host} ({detail})") from None
            raise ExecutionError(
                f"[execution] {s.venue}: {self.host} refused to list its markets ({detail})"
            ) from None

    async def stop(self) -> None:
        if self._exchange is not None:
            await self._exchange.close()
            self._exchange = None

    async def market(self, symbol: str) -> MarketRules:
        ex = self._exchange
        if symbol not in ex.markets:
            raise VenueRejected(f"{self.name} has no market {symbol}")
        market = ex.market(symbol)
        precision = market.get("precision", {}).get("amount")
        step = Decimal(0)
        if precision is not None:
            if ex.precisionMode == TICK_SIZE:
                step = Decimal(repr(precision))
            elif ex.precisionMode == DECIMAL_PLACES:
                step = Decimal(1).scaleb(-int(precision))
        limits = market.get("limits", {})
        return MarketRules(
            symbol,
            step,
            min_amount=_dec(limits.get("amount", {}).get("min")),
            min_cost=_dec(limits.get("cost", {}).get("min")),
        )

    async def price(self, symbol: str) -> Decimal | None:
        """The ticker's best bid (what a market sell meets), else its last trade price."""
        try:
            ticker = await self._exchange.fetch_ticker(symbol)
        except ccxt_errors.BaseError as exc:
            log.warning(
                "no current price from the venue",
                extra={"venue": self.name, "symbol": symbol, "error": str(exc)},
            )
            return None
        value = ticker.get("bid") or ticker.get("last")
        return _dec(value) if value else None

    async def create_market_order(
        self, symbol: str, side: Side, amount: Decimal, client_order_id: str, ref: Reference
    ) -> VenueOrder:
        ex = self._exchange
        try:
            raw = await ex.create_order(
                symbol,
                "market",
                side,
                ex.amount_to_precision(symbol, format(amount, "f")),
                None,
                {"newClientOrderId": client_order_id, "clientOrderId": client_order_id},
            )
        except REFUSALS as exc:
            raise VenueRejected(f"{self.name}: {type(exc).__name__}: {exc}") from None
        except ccxt_errors.BaseError as exc:
            raise VenueUnavailable(f"{self.name}: {type(exc).__name__}: {exc}") from None
        return await self._parse(raw, symbol, client_order_id)

    async def fetch_order(self, symbol: str, client_order_id: str) -> VenueOrder | None:
        ex = self._exchange
        try:
            raw = await ex.fetch_order(
                None,
                symbol,
                {"origClientOrderId": client_order_id, "clientOrderId": client_order_id},
            )
        except ccxt_errors.OrderNotFound:
            return None
        except ccxt_errors.BaseError as exc:
            raise VenueUnavailable(f"{self.name}: {type(exc).__name__}: {exc}") from None
        return await self._parse(raw, symbol, client_order_id)

    async def cancel_order(self, symbol: str, client_order_id: str) -> None:
        try:
            await self._exchange.cancel_order(
                None,
                symbol,
                {"origClientOrderId": client_order_id, "clientOrderId": client_order_id},
            )
        except ccxt_errors.OrderNotFound:
            return  # already final
        except ccxt_errors.BaseError as exc:
            raise VenueUnavailable(f"{self.name}: {type(exc).__name__}: {exc}") from None

    async def _parse(self, raw: dict[str, Any], symbol: str, client_order_id: str) -> VenueOrder:
        base, _, quote = symbol.partition("/")
        info = raw.get("info") or {}
        # Binance's own decimal strings when present; ccxt's floats otherwise.
        filled = _dec(info.get("executedQty", raw.get("filled")))
        cost = _dec(info.get("cummulativeQuoteQty", raw.get("cost")))
        fees = list(raw.get("fees") or ([raw["fee"]] if raw.get("fee") else []))
        if filled > 0 and not any(f and f.get("cost") is not None for f in fees):
            fees = await self._trade_fees(raw, symbol)
        fee_quote = fee_base = Decimal(0)
        for fee in fees:
            if not fee or fee.get("cost") is None:
                continue
            currency = fee.get("currency")
            if currency == quote:
                fee_quote += _dec(fee["cost"])
            elif currency == base:
                fee_base += _dec(fee["cost"])
            elif _dec(fee["cost"]):
                log.warning(
                    "fee in a third currency not counted in basis or proceeds",
                    extra={"venue": self.name, "symbol": symbol, "currency": currency},
                )
        stamp = raw.get("lastTradeTimestamp") or raw.get("timestamp")
        at = datetime.fromtimestamp(stamp / 1000, UTC) if stamp else datetime.now(UTC)
        return VenueOrder(
            client_order_id=raw.get("clientOrderId") or client_order_id,
            venue_order_id=str(raw.get("id") or ""),
            status=STATUSES.get(str(raw.get("status")), "open"),
            amount=_dec(info.get("origQty", raw.get("amount"))),
            filled=filled,
            cost=cost,
            fee_quote=fee_quote,
            fee_base=fee_base,
            at=at,
        )

    async def _trade_fees(self, raw: dict[str, Any], symbol: str) -> list[dict[str, Any]]:
        """An order fetched by id carries no fees on Binance: read them from its trades."""
        try:
            trades = await self._exchange.fetch_order_trades(raw["id"], symbol)
        except ccxt_errors.BaseError as exc:
            raise VenueUnavailable(f"{self.name}: fees of order {raw.get('id')}: {exc}") from None
        return [t.get("fee") for t in trades if t.get("fee")]


def _dec(value: Any) -> Decimal:
    if value is None or value == "":
        return Decimal(0)
    return Decimal(value) if isinstance(value, str) else Decimal(repr(value))


def api_host(urls: Any) -> str:
    """The host of the first URL in ccxt's `urls['api']` (nested dicts), for messages."""
    if isinstance(urls, dict):
        return next((h for h in map(api_host, urls.values()) if h), "")
    if isinstance(urls, str):
        return urlsplit(urls).netloc
    return ""


def _rebase(urls: Any, base: str) -> Any:
    """Every URL in ccxt's `urls['api']` (nested dicts) with its scheme and host replaced."""
    if isinstance(urls, dict):
        return {key: _rebase(value, base) for key, value in urls.items()}
    if isinstance(urls, str):
        return re.sub(r"^[a-z]+://[^/]+", base, urls)
    return urls
