"""Execution metrics (bounded labels: states, legs, results, modes)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

INTENTS = Gauge("hm_execution_intents", "Harvest intents in the ledger, by state.", ["state"])
ORDERS = Counter(
    "hm_execution_orders_total",
    "Orders by leg and result (filled, partially_filled, rejected, canceled, dry_run, "
    "recovered, resent).",
    ["leg", "result"],
)
HARVESTED_LOSS = Counter(
    "hm_execution_harvested_loss_usd_total", "Realized loss (basis minus net proceeds) of harvests."
)
TAX_SAVED = Counter(
    "hm_execution_estimated_tax_saved_usd_total",
    "Tax value of executed harvests, by the alert's estimate scaled to the quantity sold.",
)
ERRORS = Counter(
    "hm_execution_errors_total",
    "Executor errors by kind (venue_unavailable, rejected, bad_alert, internal).",
    ["kind"],
)
KILL_SWITCH = Gauge("hm_execution_kill_switch", "1 while the kill switch stops every order.")
VENUE_UP = Gauge(
    "hm_execution_venue_up",
    "1 while the execution venue answers; 0 while it is unreachable and the executor retries "
    "it (alerts still go out).",
)
REFUSED = Counter(
    "hm_execution_refused_total",
    "Harvests not traded by a pre-trade check, by reason (min_venues, slippage, no_price, "
    "kill_switch, harvest_limit, daily_limit, stale_alert, market, plan).",
    ["reason"],
)
