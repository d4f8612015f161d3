"""Transport metrics (feeds and bus) on the default prometheus-client registry.

Label sets are bounded: venue, symbol (from the configured symbol list), reason (a
fixed vocabulary per feed), topic, partition. `monitor.metrics` serves them on /metrics.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

FEED_TICKS = Counter(
    "hm_feed_ticks_total", "Ticks received from a venue and normalized.", ["venue"]
)
FEED_DROPPED = Counter(
    "hm_feed_messages_dropped_total",
    "Venue messages dropped, by reason (malformed_json, unknown_shape, bad_field, "
    "unknown_symbol, error_reply; conflated: older ticks replaced while the consumer lagged).",
    ["venue", "reason"],
)
FEED_SKIPPED = Counter(
    "hm_feed_messages_skipped_total",
    "Venue messages of a known shape with no price to tell, skipped, by reason "
    "(empty_ticker: Coinbase's all-empty ticker; no_last_price: a Kraken pair not traded "
    "in 24 hours). Not errors.",
    ["venue", "reason"],
)
FEED_RECONNECTS = Counter(
    "hm_feed_reconnects_total", "Reconnections after a lost or silent connection.", ["venue"]
)
FEED_GAPS = Counter(
    "hm_feed_sequence_gaps_total", "Gaps detected in a venue's message sequence.", ["venue"]
)
FEED_CONNECTED = Gauge(
    "hm_feed_connected", "1 while the venue connection is subscribed, else 0.", ["venue"]
)
FEED_LAST_TICK = Gauge(
    "hm_feed_last_tick_timestamp_seconds",
    "Wall-clock time of the last tick received from a venue (age = time() - this).",
    ["venue"],
)

BUS_PRODUCED = Counter("hm_bus_produced_total", "Records published to the bus.", ["topic"])
BUS_PRODUCE_ERRORS = Counter(
    "hm_bus_produce_errors_total", "Records the bus failed to accept.", ["topic"]
)
BUS_CONSUMED = Counter("hm_bus_consumed_total", "Records consumed from the bus.", ["topic"])
BUS_CONSUMER_LAG = Gauge(
    "hm_bus_consumer_lag_records",
    "Records a consumer group has not committed: the partition's log end offset (asked of "
    "the broker each second) minus the group's committed offset (reported by the member "
    "that owns the partition).",
    ["topic", "partition", "group"],
)

# Feed health per venue and symbol (issue 4). Symbols come from the configured lists only.
FEED_SYMBOL_LAST_TICK = Gauge(
    "hm_feed_symbol_last_tick_timestamp_seconds",
    "Wall-clock time of the last tick of a symbol from a venue (age = time() - this).",
    ["venue", "symbol"],
)
FEED_STALLS = Counter(
    "hm_feed_stalls_total",
    "Connections given up as silent (no message, heartbeat or pong in time).",
    ["venue"],
)
FEED_MISSED_MESSAGES = Counter(
    "hm_feed_sequence_missed_messages_total",
    "Messages a venue's sequence numbers say were never received.",
    ["venue"],
)
FEED_ROLLOVERS = Counter(
    "hm_feed_rollovers_total",
    "Planned connection replacements (a new connection opened before the old one closed).",
    ["venue"],
)
FEED_CONNECTED_SINCE = Gauge(
    "hm_feed_connected_since_timestamp_seconds",
    "Wall-clock time the venue's current connection was subscribed (0: not connected).",
    ["venue"],
)
BUS_CLIENT_ERRORS = Counter(
    "hm_bus_client_errors_total",
    "Warnings and errors of the Kafka client (aiokafka and this bus), by the module that "
    "logged them and their cause (the error class); the log shows one line per cause per "
    "interval, with how many were held back.",
    ["component", "cause"],
)
BUS_TOPIC_PROBLEMS = Gauge(
    "hm_bus_topic_problems",
    "1 while the last topic check found a topic missing and not creatable, or with fewer "
    "partitions than [kafka] partitions and not growable, else 0.",
    ["topic"],
)
