"""The durable ledger (SQLite): lots, lot events, alerts, intents, orders, fills, disposals."""

from monitor.ledger.ledger import Ledger

__all__ = ["Ledger"]
