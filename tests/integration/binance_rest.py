"""A fake Binance spot REST API on loopback, close enough for ccxt's binance client.

Speaks the endpoints the executor uses, with Binance's field names, signed requests
(HMAC-SHA256 of the query, `X-MBX-APIKEY`) and error codes: exchangeInfo, ticker/24hr
(public; bid and ask around `prices`), order (POST new with newClientOrderId, GET by
origClientOrderId, DELETE), myTrades, account.
Market orders fill at once at the configured price; Binance takes a sell's commission
in the quote asset and a buy's in the base asset, and so does this server.

`hold()` makes POST /api/v3/order accept (and fill) the order but not answer until
`release()`: the window in which a crash leaves an order at the venue unrecorded.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

FEE = Decimal("0.001")


@dataclass
class FakeOrder:
    symbol: str
    order_id: int
    client_order_id: str
    side: str
    quantity: Decimal
    price: Decimal
    time_ms: int

    @property
    def quote_qty(self) -> Decimal:
        return self.quantity * self.price

    @property
    def commission(self) -> tuple[Decimal, str]:
        base, quote = SYMBOLS[self.symbol]
        if self.side == "SELL":
            return (self.quote_qty * FEE).quantize(Decimal("1E-8"), ROUND_DOWN), quote
        return (self.quantity * FEE).quantize(Decimal("1E-8"), ROUND_DOWN), base

    def as_json(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "orderId": self.order_id,
            "orderListId": -1,
            "clientOrderId": self.client_order_id,
            "price": "0.00000000",
            "origQty": f"{self.quantity:.8f}",
            "executedQty": f"{self.quantity:.8f}",
            "cummulativeQuoteQty": f"{self.quote_qty:.8f}",
            "status": "FILLED",
            "timeInForce": "GTC",
            "type": "MARKET",
            "side": self.side,
            "stopPrice": "0.00000000",
            "icebergQty": "0.00000000",
            "time": self.time_ms,
            "updateTime": self.time_ms,
            "isWorking": True,
            "workingTime": self.time_ms,
            "origQuoteOrderQty": "0.00000000",
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }


SYMBOLS = {"BTCUSDT": ("BTC", "USDT"), "ETHUSDT": ("ETH", "USDT")}


@dataclass
class FakeBinance:
    """The server's state: prices, orders, and what it was asked."""

    api_key: str
    secret: str
    prices: dict[str, Decimal] = field(default_factory=lambda: {"BTCUSDT": Decimal("40000")})
    orders: list[FakeOrder] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    fail_next_posts: int = 0  # answer this many new orders 503, placing nothing
    _hold: asyncio.Event | None = None
    url: str = ""
    port: int = 0  # 0: any free port
    _runner: web.AppRunner | None = None

    def hold(self) -> None:
        self._hold = asyncio.Event()

    def release(self) -> None:
        if self._hold is not None:
            self._hold.set()
            self._hold = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/api/v3/exchangeInfo", self._exchange_info)
        app.router.add_get("/api/v3/ticker/24hr", self._ticker_24hr)
        app.router.add_post("/api/v3/order", self._new_order)
        app.router.add_get("/api/v3/order", self._get_order)
        app.router.add_delete("/api/v3/order", self._cancel_order)
        app.router.add_get("/api/v3/myTrades", self._my_trades)
        app.router.add_get("/api/v3/account", self._account)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        self.release()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- endpoints ---------------------------------------------------------------------

    async def _exchange_info(self, request: web.Request) -> web.Response:
        self.requests.append("GET exchangeInfo")
        symbols = [
            {
                "symbol": symbol,
                "status": "TRADING",
                "baseAsset": base,
                "baseAssetPrecision": 8,
                "quoteAsset": quote,
                "quotePrecision": 8,
                "quoteAssetPrecision": 8,
                "orderTypes": ["LIMIT", "MARKET"],
                "icebergAllowed": True,
                "ocoAllowed": True,
                "isSpotTradingAllowed": True,
                "isMarginTradingAllowed": False,
                "filters": [
                    {
                        "filterType": "PRICE_FILTER",
                        "minPrice": "0.01000000",
                        "maxPrice": "1000000.00000000",
                        "tickSize": "0.01000000",
                    },
                    {
                        "filterType": "LOT_SIZE",
                        "minQty": "0.00001000",
                        "maxQty": "9000.00000000",
                        "stepSize": "0.00001000",
                    },
                    {
                        "filterType": "NOTIONAL",
                        "minNotional": "5.00000000",
                        "applyMinToMarket": True,
                        "maxNotional": "9000000.00000000",
                        "applyMaxToMarket": False,
                        "avgPriceMins": 5,
                    },
                ],
                "permissions": [],
                "permissionSets": [["SPOT"]],
                "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                "allowedSelfTradePreventionModes": ["EXPIRE_MAKER"],
            }
            for symbol, (base, quote) in SYMBOLS.items()
        ]
        return web.json_response(
            {
                "timezone": "UTC",
                "serverTime": _now_ms(),
                "rateLimits": [],
                "exchangeFilters": [],
                "symbols": symbols,
            }
        )

    async def _ticker_24hr(self, request: web.Request) -> web.Response:
        """GET /api/v3/ticker/24hr?symbol=BTCUSDT: the fields ccxt reads, Binance's names."""
        symbol = request.query.get("symbol", "")
        self.requests.append(f"GET ticker {symbol}")
        price = self.prices.get(symbol)
        if price is None:
            return _error(400, -1121, "Invalid symbol.")
        now = _now_ms()
        text = f"{price:.8f}"
        return web.json_response(
            {
                "symbol": symbol,
                "priceChange": "0.00000000",
                "priceChangePercent": "0.000",
                "weightedAvgPrice": text,
                "prevClosePrice": text,
                "lastPrice": text,
                "lastQty": "0.01000000",
                "bidPrice": text,
                "bidQty": "1.00000000",
                "askPrice": f"{price + Decimal('0.01'):.8f}",
                "askQty": "1.00000000",
                "openPrice": text,
                "highPrice": text,
                "lowPrice": text,
                "volume": "100.00000000",
                "quoteVolume": f"{price * 100:.8f}",
                "openTime": now - 86_400_000,
                "closeTime": now,
                "firstId": 1,
                "lastId": 100,
                "count": 100,
            }
        )

    async def _new_order(self, request: web.Request) -> web.Response:
        params, error = await self._signed(request)
        if error is not None:
            return error
        symbol = params.get("symbol", "")
        cid = params.get("newClientOrderId", "")
        self.requests.append(f"POST order {cid}")
        if self.fail_next_posts > 0:
            self.fail_next_posts -= 1
            return web.Response(status=503, text="Service Unavailable")
        if symbol not in self.prices:
            return _error(400, -1121, "Invalid symbol.")
        if params.get("type") != "MARKET":
            return _error(400, -1116, "Invalid orderType.")
        if any(o.client_order_id == cid for o in self.orders):
            return _error(400, -2010, "Duplicate order sent.")
        order = FakeOrder(
            symbol=symbol,
            order_id=1000 + len(self.orders) + 1,
            client_order_id=cid,
            side=params["side"],
            quantity=Decimal(params["quantity"]),
            price=self.prices[symbol],
            time_ms=_now_ms(),
        )
        self.orders.append(order)
        if self._hold is not None:
            await self._hold.wait()  # the order is placed; the reply waits (or never comes)
        commission, asset = order.commission
        body = order.as_json() | {
            "transactTime": order.time_ms,
            "fills": [
                {
                    "price": f"{order.price:.8f}",
                    "qty": f"{order.quantity:.8f}",
                    "commission": f"{commission:.8f}",
                    "commissionAsset": asset,
                    "tradeId": order.order_id * 10,
                }
            ],
        }
        return web.json_response(body)

    async def _get_order(self, request: web.Request) -> web.Response:
        params, error = await self._signed(request)
        if error is not None:
            return error
        cid = params.get("origClientOrderId", "")
        self.requests.append(f"GET order {cid}")
        for order in self.orders:
            if order.client_order_id == cid and order.symbol == params.get("symbol"):
                return web.json_response(order.as_json())
        return _error(400, -2013, "Order does not exist.")

    async def _cancel_order(self, request: web.Request) -> web.Response:
        _params, error = await self._signed(request)
        if error is not None:
            return error
        return _error(400, -2011, "Unknown order sent.")  # market orders are never open

    async def _my_trades(self, request: web.Request) -> web.Response:
        params, error = await self._signed(request)
        if error is not None:
            return error
        order_id = int(params.get("orderId", "0"))
        self.requests.append(f"GET myTrades {order_id}")
        out = []
        for order in self.orders:
            if order.order_id == order_id:
                commission, asset = order.commission
                out.append(
                    {
                        "symbol": order.symbol,
                        "id": order.order_id * 10,
                        "orderId": order.order_id,
                        "orderListId": -1,
                        "price": f"{order.price:.8f}",
                        "qty": f"{order.quantity:.8f}",
                        "quoteQty": f"{order.quote_qty:.8f}",
                        "commission": f"{commission:.8f}",
                        "commissionAsset": asset,
                        "time": order.time_ms,
                        "isBuyer": order.side == "BUY",
                        "isMaker": False,
                        "isBestMatch": True,
                    }
                )
        return web.json_response(out)

    async def _account(self, request: web.Request) -> web.Response:
        _params, error = await self._signed(request)
        if error is not None:
            return error
        return web.json_response(
            {"makerCommission": 10, "takerCommission": 10, "canTrade": True, "balances": []}
        )

    async def _signed(self, request: web.Request) -> tuple[dict[str, str], web.Response | None]:
        """Check the API key header and the HMAC-SHA256 signature of the query."""
        raw = request.query_string if request.method in ("GET", "DELETE") else await request.text()
        if request.headers.get("X-MBX-APIKEY") != self.api_key:
            return {}, _error(401, -2015, "Invalid API-key, IP, or permissions for action.")
        unsigned, _, signature = raw.rpartition("&signature=")
        expected = hmac.new(self.secret.encode(), unsigned.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature, expected):
            return {}, _error(400, -1022, "Signature for this request is not valid.")
        return dict(parse_qsl(unsigned)), None


def _error(status: int, code: int, msg: str) -> web.Response:
    return web.json_response({"code": code, "msg": msg}, status=status)


def _now_ms() -> int:
    return int(time.time() * 1000)
