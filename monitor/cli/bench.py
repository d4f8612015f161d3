"""`harvest-monitor bench`: throughput, latency, scaling and memory through the real path."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click

from monitor.cli import main
from monitor.cli.runner import fail


def _sizes(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...]:
    if not value:
        return ()
    try:
        sizes = tuple(int(part.replace("_", "")) for part in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of lot counts") from None
    if any(size < 2 for size in sizes):
        raise click.BadParameter("every lot count must be at least 2")
    return sizes


@main.command()
@click.option(
    "--lots",
    type=click.IntRange(min=2),
    default=1_000_000,
    show_default=True,
    help="Open lots for the detect and latency sections.",
)
@click.option(
    "--assets",
    type=click.IntRange(1, 1024),
    default=24,
    show_default=True,
    help="Simulated assets (one symbol each, quoted in USDT).",
)
@click.option(
    "--ticks",
    type=click.IntRange(min=100),
    default=200_000,
    show_default=True,
    help="Ticks per throughput section (ceilings, ingest, detect).",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=1, min_open=False),
    default=5_000.0,
    show_default=True,
    help="Offered ticks/s for the latency section.",
)
@click.option(
    "--bootstrap",
    metavar="HOST:PORT",
    default=None,
    help="A running Kafka to measure (default: start the local tansu broker).",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Also write the figures as JSON (schema hm.bench/1) to this file.",
)
@click.option("--big", is_flag=True, help="Add 10,000,000 lots to the scaling section.")
@click.option(
    "--sizes",
    callback=_sizes,
    default=None,
    metavar="N,N,...",
    help="Lot counts for scaling and memory (default 10000,100000,1000000).",
)
def bench(
    lots: int,
    assets: int,
    ticks: int,
    rate: float,
    bootstrap: str | None,
    json_path: str | None,
    big: bool,
    sizes: tuple[int, ...],
) -> None:
    """Measure the monitor through its real path and print the figures with their targets.

    \b
    1. ceilings: raw aiokafka produce and consume+decode of the same tick payloads,
       raw websocket receive+parse from the simulated exchange sending flat out;
    2. ingest: simulated exchange -> feed -> Kafka, ticks/s and / produce ceiling;
    3. detect: Kafka -> prices -> book -> detection -> alerts (null sink), ticks/s
       with --lots open lots and / consume ceiling;
    4. latency: --rate ticks/s through the whole path, through Kafka and again
       through the in-process bus: tick-to-alert and tick-to-decision p50 / p99 /
       max, a tick-to-alert histogram, ticks over 100 ms, gc pauses;
    5. scaling: detection cost per tick at each lot count, and the ratio 1M / 10k;
    6. memory: RSS bytes per open lot, and the book + trigger index rebuild time.

    Everything runs on this machine in one process tree; progress goes to stderr (a
    bar on a terminal, plain lines otherwise), the table to stdout. Targets are shown
    as met / MISSED, never enforced. A full run (1M lots) takes several minutes and a
    few GB of memory.
    """
    from monitor.bench.runner import BenchOptions, run_bench, stderr_progress
    from monitor.bench.table import render

    options = BenchOptions(
        lots=lots,
        assets=assets,
        ticks=ticks,
        rate=rate,
        bootstrap=bootstrap,
        big=big,
        sizes=sizes,
    )
    progress = stderr_progress()
    try:
        report = asyncio.run(run_bench(options, progress))
    except ValueError as exc:
        fail(str(exc))
        return
    finally:
        progress.finish()
    click.echo(render(report), nl=False)
    if json_path:
        Path(json_path).write_text(json.dumps(report.json(), indent=2) + "\n")
