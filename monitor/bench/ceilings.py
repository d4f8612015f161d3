"""Raw ceilings: what the libraries alone do on this machine, with the same payloads.

- produce: raw aiokafka, the tick payloads keyed by base asset, partitioned like the
  Java client (murmur2), appended to per-partition batches and sent with `send_batch`
  (aiokafka's fastest path), timed until every batch is acknowledged;
- consume+decode: raw aiokafka reading those records back (all partitions assigned, no
  group, no commits) and decoding each into a Tick;
- websocket: a bare `websockets` client subscribed to the simulated exchange running
  flat out (`tick_interval_ms=0`), parsing each trade into a Tick with msgspec.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import murmur2
from websockets.asyncio.client import connect

from monitor.bench.exchange import ChildExchange
from monitor.bench.market import QUOTE, VENUE, MarketSpec
from monitor.bench.report import Throughput
from streams.bus.interface import BusConfig
from streams.ticks import Tick, decode_tick

CHUNK = 4_096  # records handed over per call, like the feed's largest batch


async def produce_ceiling(
    config: BusConfig, topic: str, payloads: Sequence[tuple[bytes, bytes]]
) -> Throughput:
    """Raw aiokafka produce of `payloads` into `topic` (which must exist)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=config.bootstrap_servers,
        client_id=f"{config.client_id}-bench",
        linger_ms=config.linger_ms,
        max_batch_size=config.max_batch_bytes,
        acks=1 if config.acks == "1" else (0 if config.acks == "0" else "all"),
    )
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(topic))
        pending: list[asyncio.Future[object]] = []
        started = time.perf_counter_ns()
        for at in range(0, len(payloads), CHUNK):
            by_partition: dict[int, list[tuple[bytes, bytes]]] = {}
            for key, value in payloads[at : at + CHUNK]:
                part = partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]
                by_partition.setdefault(part, []).append((key, value))
            for part, records in by_partition.items():
                batch = producer.create_batch()
                for key, value in records:
                    if batch.append(key=key, value=value, timestamp=None) is None:
                        pending.append(await producer.send_batch(batch, topic, partition=part))
                        batch = producer.create_batch()
                        batch.append(key=key, value=value, timestamp=None)
                pending.append(await producer.send_batch(batch, topic, partition=part))
        await asyncio.gather(*pending)
        elapsed = time.perf_counter_ns() - started
    finally:
        await producer.stop()
    return Throughput(len(payloads), elapsed / 1e9)


async def consume_ceiling(config: BusConfig, topic: str, count: int) -> Throughput:
    """Raw aiokafka read of the first `count` records of `topic`, each decoded to a Tick."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=config.bootstrap_servers,
        client_id=f"{config.client_id}-bench",
        group_id=None,
        enable_auto_commit=False,
        max_poll_records=config.fetch_max_records,
    )
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        if not parts:
            await consumer.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in sorted(parts)])
        await consumer.seek_to_beginning()
        seen = 0
        started = time.perf_counter_ns()
        async with asyncio.timeout(max(60.0, count / 1_000)):
            while seen < count:
                data = await consumer.getmany(timeout_ms=500, max_records=config.fetch_max_records)
                for messages in data.values():
                    for message in messages:
                        decode_tick(message.value)
                    seen += len(messages)
        elapsed = time.perf_counter_ns() - started
    finally:
        await consumer.stop()
    return Throughput(seen, elapsed / 1e9)


class _Trade(msgspec.Struct):
    s: str
    p: str
    T: int = 0


class _Envelope(msgspec.Struct):
    stream: str
    data: _Trade


async def websocket_ceiling(spec: MarketSpec, count: int) -> Throughput:
    """A bare client's receive+parse rate from the simulated exchange sending flat out."""
    decoder = msgspec.json.Decoder(_Envelope)
    names = {f"{base}{QUOTE}": (f"{base}/{QUOTE}", base) for base in spec.bases()}
    streams = [f"{ident.lower()}@trade" for ident in names]
    seen = 0
    async with (
        ChildExchange(spec, tick_interval_ms=0) as url,
        # A short close: the unread backlog stops this client from reading the close reply.
        connect(f"{url}/stream", compression=None, max_queue=1024, close_timeout=0.5) as ws,
    ):
        for i in range(0, len(streams), 200):
            request = {"method": "SUBSCRIBE", "params": streams[i : i + 200], "id": i + 1}
            await ws.send(msgspec.json.encode(request), text=True)
        started = 0
        async with asyncio.timeout(max(60.0, count / 1_000)):
            while seen < count:
                raw = await ws.recv(decode=False)
                try:
                    trade = decoder.decode(raw).data
                except msgspec.ValidationError:
                    continue  # a subscription reply
                symbol, base = names[trade.s]
                Tick(VENUE, symbol, base, QUOTE, float(trade.p), trade.T, time.time_ns())
                if not started:
                    started = time.perf_counter_ns()  # the clock starts at the first trade
                    continue
                seen += 1
        elapsed = time.perf_counter_ns() - started
    return Throughput(seen, elapsed / 1e9)
