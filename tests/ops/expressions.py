"""The PromQL the ops files hold: dashboard panel queries and rule expressions.

Used by the tests to run every query against a live Prometheus and to check every metric
they name exists in the code.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).parents[2]
PROMETHEUS_DIR = REPO / "docker" / "prometheus"
RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
DASHBOARDS = sorted((REPO / "docker" / "grafana" / "dashboards").glob("*.json"))

# Identifiers in PromQL: metric names, recording-rule names (with colons), functions, labels.
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^}]*\}")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")


@dataclass(frozen=True)
class Query:
    """One PromQL expression and where it comes from (for failure messages)."""

    where: str
    expr: str


@dataclass(frozen=True)
class Rule:
    kind: str  # "record" or "alert"
    name: str
    expr: str
    group: str


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    out: list[dict[str, Any]] = []
    for panel in dashboard.get("panels", []):
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def dashboard_queries() -> list[Query]:
    """Each target's `expr` of each panel of each dashboard."""
    queries: list[Query] = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                where = f"{path.name}: panel {panel['title']!r} target {target['refId']}"
                queries.append(Query(where, target["expr"]))
    return queries


def rules() -> list[Rule]:
    """Every recording and alerting rule of docker/prometheus/rules/."""
    found: list[Rule] = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                kind = "record" if "record" in rule else "alert"
                found.append(Rule(kind, rule[kind], str(rule["expr"]), group["name"]))
    return found


def names_in(expr: str) -> set[str]:
    """Metric and recording-rule names an expression reads (not functions or labels)."""
    text = _STRINGS.sub("", expr)
    text = _MATCHERS.sub("", text)
    text = _GROUPING.sub("", text)
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors [5m]
    names: set[str] = set()
    for match in _IDENT.finditer(text):
        token = match.group()
        rest = text[match.end() :].lstrip()
        if rest.startswith("("):
            continue  # a function or aggregation
        if token.startswith("hm_") or ":" in token or token == "up":
            names.add(token)
    return names
