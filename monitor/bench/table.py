"""The bench report as a plain-text table: every figure, its target, met or missed."""

from __future__ import annotations

from monitor.bench.report import (
    STALL_MS,
    BenchReport,
    LatencyResult,
    Spread,
    Throughput,
)

Row = tuple[str, str, str, str]  # section, figure, measured, target (+ verdict)


def render(report: BenchReport) -> str:
    """The header lines, the table, and the notes."""
    p, m = report.params, report.machine
    load = m.get("load_average_at_start", [0.0])[0]
    end_load = m.get("load_average_at_end", [None])[0]
    lines = [
        f"harvest-monitor bench: {p['lots']:,} lots, {p['assets']} assets, {p['ticks']:,} ticks, "
        f"{p['rate']:,.0f} ticks/s offered",
        f"broker:  {report.broker or 'none (Kafka sections skipped)'}",
        f"host:    {m.get('hostname', '?')}, {m.get('cpu_model', '?')}",
        f"machine: {m['cpus']} CPUs, {m['platform']}, Python {m['python']}, load average "
        f"{load:.2f} at start" + (f", {end_load:.2f} at end" if end_load is not None else ""),
        "",
    ]
    rows: list[Row] = [("section", "figure", "measured", "target")]
    rows += _ceilings(report) + _ingest(report) + _detect(report) + _latency(report)
    rows += _scaling(report) + _memory(report)
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    if report.skipped:
        lines.append("")
        for section, why in report.skipped.items():
            lines.append(f"skipped {section}: {why}")
    if report.notes:
        lines.append("")
        lines.extend(f"note: {note}" for note in report.notes)
    return "\n".join(lines) + "\n"


def _judged(report: BenchReport, figure: str, unit: str = "") -> str:
    t = next(t for t in report.targets() if t.figure == figure)
    text = f"{t.sense} {t.limit:g}{unit}"
    if t.met is not None:
        text += "  met" if t.met else "  MISSED"
    return f"{text} ({t.caveat})" if t.caveat else text


def _rate(value: Throughput | None) -> str:
    return "skipped" if value is None else f"{value.per_s:,.0f} ticks/s"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _ceilings(r: BenchReport) -> list[Row]:
    return [
        ("ceilings", "raw aiokafka produce", _rate(r.produce), ""),
        ("", "raw aiokafka consume + decode", _rate(r.consume), ""),
        ("", "raw websocket receive + parse", _rate(r.websocket), ""),
    ]


def _ingest(r: BenchReport) -> list[Row]:
    return [
        ("ingest", "simulator -> feed -> Kafka", _rate(r.ingest), ""),
        (
            "",
            "  / websocket ceiling",
            _ratio(r.ingest_ws_ratio()),
            _judged(r, "ingest / websocket ceiling"),
        ),
        ("", "  / produce ceiling", _ratio(r.ingest_ratio()), "(context)"),
    ]


def _detect(r: BenchReport) -> list[Row]:
    d = r.detect
    lots = f", {d.lots:,} lots" if d else ""
    rows: list[Row] = [
        (
            "detect",
            f"Kafka -> detection -> null sink{lots}",
            _rate(d.throughput if d else None),
            "",
        ),
        (
            "",
            "  / consume ceiling",
            _ratio(r.detect_ratio()),
            _judged(r, "detect / consume ceiling"),
        ),
    ]
    if d is not None:
        share = d.alerting_ticks / max(d.throughput.ticks, 1)
        rows.append(("", "  alerts (ticks that alerted)", f"{d.alerts:,} ({share:.1%})", ""))
    return rows


def _spread(value: Spread | None) -> str:
    return "no samples" if value is None else value.text()


def _latency(r: BenchReport) -> list[Row]:
    rows = _latency_of(r, r.latency, "latency, Kafka", judged=True)
    return rows + _latency_of(r, r.latency_memory, "latency, in-process bus", judged=False)


def _latency_of(r: BenchReport, lat: LatencyResult | None, section: str, judged: bool) -> list[Row]:
    if lat is None:
        return [(section, "tick-to-alert p50 / p99 / max", "skipped", "")]
    target = "p99 " + _judged(r, "tick-to-alert p99 ms", " ms") if judged else ""
    n_alert = lat.alert.count if lat.alert else 0
    n_all = lat.decision.count if lat.decision else 0
    rows: list[Row] = [
        (
            section,
            "offered / achieved (window)",
            f"{lat.offered_per_s:,.0f} / {lat.achieved_per_s:,.0f} ticks/s ({lat.window_s:.0f} s)",
            "",
        ),
        ("", f"tick-to-alert p50 / p99 / max (n={n_alert:,})", _spread(lat.alert), target),
        ("", f"tick-to-decision p50 / p99 / max (n={n_all:,})", _spread(lat.decision), ""),
    ]
    if lat.alert_histogram is not None:
        cells = [f"{label.removeprefix('<= ')}: {n}" for label, n in lat.alert_histogram.buckets()]
        rows.append(("", "tick-to-alert histogram", ", ".join(cells), ""))
    if lat.decision_histogram is not None:
        over = lat.decision_histogram.above(STALL_MS)
        rows.append(("", f"ticks decided after > {STALL_MS:g} ms", f"{over:,}", "0"))
    for p in lat.pauses:
        rows.append(
            (
                "",
                f"gc generation {p.generation}: collections, max pause",
                f"{p.count:,}, {p.max_ms:.1f} ms ({p.max_cpu_ms:.1f} ms CPU)",
                "",
            )
        )
    return rows


def _scaling(r: BenchReport) -> list[Row]:
    rows: list[Row] = []
    for size in sorted(r.sizes, key=lambda s: s.lots):
        rows.append(
            (
                "scaling" if not rows else "",
                f"cost per tick, {size.lots:,} lots",
                f"{size.cost_mean_us:.2f} us (no-alert ticks {size.cost_quiet_mean_us:.2f}, "
                f"p50 {size.cost_p50_us:.2f}, p99 {size.cost_p99_us:.0f})",
                "",
            )
        )
    pair = r.scaling_pair()
    if pair is not None:
        small, big = pair
        rows.append(
            (
                "",
                f"  ratio {big.lots:,} / {small.lots:,} (all ticks; no-alert ticks)",
                f"{_ratio(r.scaling_ratio())}; {_ratio(r.scaling_ratio_quiet())}",
                _judged(r, "cost per tick ratio"),
            )
        )
    return rows or [("scaling", "cost per tick", "skipped", "")]


def _memory(r: BenchReport) -> list[Row]:
    mem = r.memory_size()
    if mem is None:
        return [("memory", "RSS per open lot", "skipped", "")]
    rss = "unavailable" if mem.rss_bytes_per_lot is None else f"{mem.rss_bytes_per_lot:,.0f} B"
    read = mem.ledger_read_s
    source = "ledger" if read is not None else "lot frame"
    return [
        (
            "memory",
            f"RSS per open lot ({mem.lots:,} lots)",
            f"{rss} (lot frame alone {mem.frame_bytes_per_lot:,.0f} B)",
            _judged(r, "RSS bytes per lot", " B"),
        ),
        (
            "",
            f"book + index rebuild from the {source} ({mem.lots:,} lots)",
            f"{mem.rebuild_s:.2f} s" + (f" (ledger read {read:.2f} s)" if read is not None else ""),
            _judged(r, "book rebuild s", " s"),
        ),
        (
            "",
            "  then the first alert's tick",
            "no alert" if mem.first_alert_s is None else f"{mem.first_alert_s:.3f} s",
            "",
        ),
    ]
