"""Picks the bus transport from configuration: Kafka when bootstrap servers are set."""

from __future__ import annotations

from streams.bus.interface import Bus, BusConfig


def make_bus(config: BusConfig) -> Bus:
    """A KafkaBus when `config.bootstrap_servers` is set, else the in-process MemoryBus."""
    if config.bootstrap_servers.strip():
        from streams.bus.kafka import GroupTiming, KafkaBus  # aiokafka only imported when used

        timing = GroupTiming(
            session_timeout_ms=config.session_timeout_ms,
            heartbeat_interval_ms=config.heartbeat_interval_ms,
        )
        return KafkaBus(config, group_timing=timing)
    from streams.bus.memory import MemoryBus

    return MemoryBus(config)
