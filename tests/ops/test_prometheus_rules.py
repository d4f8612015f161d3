"""docker/prometheus/ and docker/grafana/ checked offline: promtool on the config and rules,
the alerting rules' unit tests, and every name the rules and dashboard use exists."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from monitor.catalogue import collect
from tests.ops.expressions import (
    DASHBOARDS,
    PROMETHEUS_DIR,
    REPO,
    RULE_FILES,
    dashboard_queries,
    names_in,
    panels,
    rules,
)

RULE_TESTS = sorted((Path(__file__).parent / "prometheus").glob("*_test.yml"))
DATASOURCES = REPO / "docker" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=60, check=False
    )


def test_prometheus_config_is_valid(promtool: Path) -> None:
    result = run(promtool, "check", "config", PROMETHEUS_DIR / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(RULE_FILES)} rule files found" in result.stdout + result.stderr


def test_rule_files_are_valid(promtool: Path) -> None:
    result = run(promtool, "check", "rules", *RULE_FILES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerting_rules_pass_their_unit_tests(promtool: Path) -> None:
    assert RULE_TESTS
    result = run(promtool, "test", "rules", *RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alerting_rule_has_a_firing_and_a_quiet_case() -> None:
    cases: dict[str, list[bool]] = {}
    for path in RULE_TESTS:
        for test in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            for case in test.get("alert_rule_test", []):
                cases.setdefault(case["alertname"], []).append(bool(case.get("exp_alerts")))
    for rule in rules():
        if rule.kind == "alert":
            seen = cases.get(rule.name, [])
            assert True in seen, f"{rule.name}: no unit test where it fires"
            assert False in seen, f"{rule.name}: no unit test where it must stay quiet"


def test_issue_alerts_are_all_there() -> None:
    alerts = {r.name for r in rules() if r.kind == "alert"}
    wanted = {
        "HarvestFeedStale",
        "HarvestNoTicks",
        "HarvestConsumerLagGrowing",
        "HarvestAlertSinkFailing",
        "HarvestWebhookFailing",
        "HarvestAlertsDeadLettered",
        "HarvestKillSwitchOn",
        "HarvestExecutorErrors",
    }
    assert wanted <= alerts, wanted - alerts


def test_rules_and_panels_read_only_metrics_that_exist() -> None:
    exposed: set[str] = {"up"}
    for metric in collect():
        exposed.add(metric.name)
        if metric.type == "histogram":
            exposed |= {f"{metric.name}_bucket", f"{metric.name}_sum", f"{metric.name}_count"}
    recorded = {r.name for r in rules() if r.kind == "record"}
    exprs = [(f"rule {r.name}", r.expr) for r in rules()]
    exprs += [(q.where, q.expr) for q in dashboard_queries()]
    unknown = [
        f"{where}: {name}"
        for where, expr in exprs
        for name in sorted(names_in(expr))
        if name not in exposed | recorded
    ]
    assert not unknown, "names no code exposes and no rule records:\n" + "\n".join(unknown)


def test_names_in_finds_metrics_not_functions_or_labels() -> None:
    expr = 'sum by (venue) (rate(hm_a_total{reason="x:y"}[5m])) / on(venue) lvl:hm_b:rate1m'
    assert names_in(expr) == {"hm_a_total", "lvl:hm_b:rate1m"}


def test_every_recording_rule_is_plotted_or_alerted_on() -> None:
    used: set[str] = set()
    for query in dashboard_queries():
        used |= names_in(query.expr)
    for rule in rules():
        used |= names_in(rule.expr)
    unused = [r.name for r in rules() if r.kind == "record" and r.name not in used]
    assert not unused, f"recording rules nothing reads: {unused}"


def test_dashboard_is_provisionable() -> None:
    source = yaml.safe_load(DATASOURCES.read_text(encoding="utf-8"))["datasources"][0]
    assert DASHBOARDS
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        assert dashboard["uid"] and dashboard["title"]
        ids = [p["id"] for p in panels(dashboard)]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
        for panel in panels(dashboard):
            if panel["type"] == "row":
                continue
            assert panel["targets"], f"{path.name}: panel {panel['title']!r} has no query"
            assert panel["datasource"]["uid"] == source["uid"], panel["title"]
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, f"{panel['title']!r} overflows the grid"
            for target in panel["targets"]:
                assert "$" not in target["expr"], f"{panel['title']!r}: template variable"


@pytest.mark.parametrize("section", ["Alerting rules", "Recording rules"])
def test_rules_are_documented(section: str) -> None:
    doc = (REPO / "docs" / "metrics.md").read_text(encoding="utf-8")
    assert f"## {section}" in doc
    kind = "alert" if section.startswith("Alerting") else "record"
    missing = [
        r.name for r in rules() if r.kind == kind and not re.search(rf"`{re.escape(r.name)}`", doc)
    ]
    assert not missing, f"docs/metrics.md lacks {missing}"
