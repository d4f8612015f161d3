"""docs/metrics.md's catalogue against the metrics the code registers, and naming rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.catalogue import MetricDoc, collect, differences, documented, render

DOC = Path(__file__).parents[2] / "docs" / "metrics.md"
UNBOUNDED = {"lot", "lot_id", "alert_id", "price", "order_id", "intent_id", "url", "ts"}


@pytest.fixture(scope="module")
def catalogue() -> list[MetricDoc]:
    return collect()


def test_the_doc_lists_every_metric_with_its_labels(catalogue: list[MetricDoc]) -> None:
    problems = differences(DOC.read_text(encoding="utf-8"), catalogue)
    assert not problems, (
        "docs/metrics.md is out of date; run `python -m monitor.catalogue --write "
        "docs/metrics.md`:\n" + "\n".join(problems)
    )


def test_the_check_names_missing_phantom_and_relabelled_metrics() -> None:
    code = [MetricDoc("hm_a_total", "counter", ("venue",)), MetricDoc("hm_b", "gauge", ())]
    text = render(
        [MetricDoc("hm_a_total", "counter", ("venue", "reason")), MetricDoc("hm_c", "gauge", ())]
    )
    problems = differences(text, code)
    assert problems == [
        "hm_b: defined in  but not documented",
        "hm_c: documented but no such metric is registered",
        "hm_a_total: documented as counter ['venue', 'reason'], is counter ['venue']",
    ]


def test_render_and_parse_round_trip(catalogue: list[MetricDoc]) -> None:
    assert [m.key for m in documented(render(catalogue))] == [m.key for m in catalogue]


def test_catalogue_finds_metrics_of_both_packages(catalogue: list[MetricDoc]) -> None:
    modules = {m.module for m in catalogue}
    assert "monitor/metrics.py" in modules and "streams/metrics.py" in modules
    assert all(m.module != "?" for m in catalogue), [m.name for m in catalogue if m.module == "?"]


def test_names_follow_prometheus_conventions(catalogue: list[MetricDoc]) -> None:
    for m in catalogue:
        assert m.name.startswith("hm_"), m.name
        assert m.meaning, f"{m.name} has no help text"
        if m.type == "counter":
            assert m.name.endswith("_total"), m.name
        if m.type == "histogram":
            assert m.name.endswith("_seconds"), f"{m.name}: histograms here measure time"
        assert not UNBOUNDED & set(m.labels), f"{m.name}: unbounded label {m.labels}"


def test_required_process_and_detection_metrics_exist(catalogue: list[MetricDoc]) -> None:
    by_name = {m.name: m for m in catalogue}
    assert by_name["hm_build_info"].labels == ("version",)
    assert by_name["hm_start_time_seconds"].type == "gauge"
    assert by_name["hm_lots_under_water"].labels == ("asset",)
    assert by_name["hm_unrealized_loss_usd"].labels == ("asset",)
    assert by_name["hm_trigger_index_rebuilds_total"].type == "counter"
    assert by_name["hm_tick_to_alert_seconds"].type == "histogram"


def test_tick_to_alert_buckets_span_1ms_to_10s() -> None:
    from monitor import metrics

    bounds = [
        float(s.labels["le"])
        for family in metrics.TICK_TO_ALERT.collect()
        for s in family.samples
        if s.name.endswith("_bucket") and s.labels["le"] != "+Inf"
    ]
    assert min(bounds) == 0.001 and max(bounds) == 10.0
