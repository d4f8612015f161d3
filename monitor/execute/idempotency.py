"""Ids derived from an alert, so the same alert always means the same intent and orders.

Binance accepts a `newClientOrderId` matching `^[.A-Z:/a-z0-9_-]{1,36}$`; these ids use
only lower-case hex, letters and `-`, and are 29 characters long, fine for ccxt venues
that take a client order id at all.
"""

from __future__ import annotations

import hashlib
import re

from monitor.ledger.intents import Leg

BINANCE_CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")


def _digest(alert_id: str) -> str:
    return hashlib.sha256(alert_id.encode()).hexdigest()[:24]


def intent_id(alert_id: str) -> str:
    """The idempotency key of the harvest an alert asks for."""
    return f"hmi_{_digest(alert_id)}"


def client_order_id(alert_id: str, leg: Leg) -> str:
    """The client order id of one leg: `hm-<24 hex>-s` (sell) or `-b` (rebuy)."""
    return f"hm-{_digest(alert_id)}-{'s' if leg == 'sell' else 'b'}"
