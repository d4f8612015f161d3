"""The metrics catalogue: every `hm_*` metric the code registers, as docs/metrics.md's table.

    python -m monitor.catalogue                          # print the table (markdown)
    python -m monitor.catalogue --write docs/metrics.md  # replace the table in the doc
    python -m monitor.catalogue --check docs/metrics.md  # exit 1 naming every difference

Every module of `monitor` and `streams` is imported first, so a metric defined anywhere
is found; then prometheus-client's default registry is walked. The doc can't rot: a test
runs the check (tests/ops/test_metrics_catalogue.py).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

PACKAGES = ("monitor", "streams")
PREFIX = "hm_"
START = "<!-- metrics-catalogue:start (generated: python -m monitor.catalogue --write) -->"
END = "<!-- metrics-catalogue:end -->"
HEADER = "| metric | type | labels | defined in | meaning |\n| --- | --- | --- | --- | --- |"
_SUFFIX = {"counter": "_total", "info": "_info"}
_ROW = re.compile(
    r"^\|\s*`(?P<name>hm_[a-z0-9_]+)`\s*\|\s*(?P<type>[a-z]+)\s*\|(?P<labels>[^|]*)\|"
)


@dataclass(frozen=True, order=True)
class MetricDoc:
    """One metric as exposed on /metrics: its exposition name, type and label names."""

    name: str
    type: str
    labels: tuple[str, ...]
    module: str = ""
    meaning: str = ""

    @property
    def key(self) -> tuple[str, str, tuple[str, ...]]:
        return self.name, self.type, self.labels


def import_all() -> list[ModuleType]:
    """Import every module of the packages that may define metrics."""
    modules: list[ModuleType] = []
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        modules.append(package)
        for info in pkgutil.walk_packages(package.__path__, f"{package_name}."):
            if info.name.rsplit(".", 1)[-1] == "__main__":
                continue  # running a command is not defining a metric
            modules.append(importlib.import_module(info.name))
    return modules


def collect() -> list[MetricDoc]:
    """Every `hm_*` metric on the default registry, sorted by name."""
    modules = import_all()
    sources = {m.__name__: _source(m) for m in modules}
    found: list[MetricDoc] = []
    for collector in list(REGISTRY._collector_to_names):
        if not isinstance(collector, MetricWrapperBase):
            continue
        base: str = collector._name
        if not base.startswith(PREFIX):
            continue
        kind = str(collector._type)
        labels = list(collector._labelnames)
        for family in collector.collect():
            for sample in family.samples:
                labels += [k for k in sample.labels if k not in labels and k not in ("le",)]
        quoted = f'"{collector._original_name}"'
        module = next((name for name, src in sources.items() if quoted in src), "")
        found.append(
            MetricDoc(
                name=base + _SUFFIX.get(kind, ""),
                type=kind,
                labels=tuple(labels),
                module=module.replace(".", "/") + ".py" if module else "?",
                meaning=" ".join(collector._documentation.split()),
            )
        )
    return sorted(found)


def _source(module: ModuleType) -> str:
    try:
        return inspect.getsource(module)
    except (OSError, TypeError):
        return ""


def render(metrics: list[MetricDoc]) -> str:
    """The markdown table, one row per metric."""
    rows = [HEADER]
    for m in metrics:
        labels = ", ".join(f"`{label}`" for label in m.labels) or "-"
        meaning = m.meaning.replace("|", "\\|")
        rows.append(f"| `{m.name}` | {m.type} | {labels} | `{m.module}` | {meaning} |")
    return "\n".join(rows)


def documented(text: str) -> list[MetricDoc]:
    """The metrics listed in a doc's catalogue table (name, type and labels only)."""
    out: list[MetricDoc] = []
    for line in text.splitlines():
        match = _ROW.match(line.strip())
        if match is None:
            continue
        labels = tuple(
            label.strip().strip("`")
            for label in match["labels"].split(",")
            if label.strip() not in ("", "-")
        )
        out.append(MetricDoc(match["name"], match["type"], labels))
    return out


def differences(text: str, metrics: list[MetricDoc]) -> list[str]:
    """What the doc gets wrong: metrics missing, metrics that do not exist, wrong labels."""
    doc = {m.name: m for m in documented(text)}
    code = {m.name: m for m in metrics}
    problems = [
        f"{name}: defined in {code[name].module} but not documented"
        for name in sorted(set(code) - set(doc))
    ]
    problems += [
        f"{name}: documented but no such metric is registered"
        for name in sorted(set(doc) - set(code))
    ]
    for name in sorted(set(doc) & set(code)):
        if doc[name].key != code[name].key:
            d, c = doc[name], code[name]
            problems.append(
                f"{name}: documented as {d.type} {list(d.labels)}, is {c.type} {list(c.labels)}"
            )
    return problems


def write(path: Path, metrics: list[MetricDoc]) -> None:
    """Replace the generated table between the markers in `path`."""
    text = path.read_text(encoding="utf-8")
    before, start, rest = text.partition(START)
    _, end, after = rest.partition(END)
    if not start or not end:
        raise SystemExit(f"{path}: markers not found: {START} ... {END}")
    path.write_text(f"{before}{START}\n{render(metrics)}\n{END}{after}", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monitor.catalogue", description=__doc__)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", metavar="DOC", help="rewrite the table in this markdown file")
    group.add_argument("--check", metavar="DOC", help="exit 1 if this doc's table is out of date")
    args = parser.parse_args(argv)
    metrics = collect()
    if args.write:
        write(Path(args.write), metrics)
        print(f"{args.write}: {len(metrics)} metrics", file=sys.stderr)
    elif args.check:
        problems = differences(Path(args.check).read_text(encoding="utf-8"), metrics)
        for problem in problems:
            print(f"{args.check}: {problem}", file=sys.stderr)
        return 1 if problems else 0
    else:
        print(render(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
