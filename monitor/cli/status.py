"""`harvest-monitor status`: ask a running daemon what it is doing (its /status endpoint)."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from typing import Any, NoReturn

import click

from monitor.alerts.console import alert_line, money, price
from monitor.alerts.schema import decode_alert
from monitor.cli import main
from monitor.cli.runner import config_option, settings_or_exit
from monitor.terminal import PLAIN, Palette, palette_for

SHOWN = 10  # harvestable groups printed (--json has the status's list)


@main.command()
@config_option(required=False, help="TOML settings: [metrics] host and port to ask.")
@click.option(
    "--url",
    default=None,
    help="The daemon's status URL (default http://[metrics] host:port/status, 127.0.0.1:9464).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the /status JSON as is.")
@click.option("--timeout", type=float, default=5.0, show_default=True, help="Seconds to wait.")
def status(config: str | None, url: str | None, as_json: bool, timeout: float) -> None:
    """What a running `run`, `demo`, `ingest` or `detect` is doing right now.

    Role and uptime, venues with their state and last tick age, consumer lag, lots and
    groups, the groups harvestable at the last prices and the nearest triggers, the
    last alerts, held groups and why, execution mode and today's caps used, and what
    is wrong. Exits 1 when nothing answers.
    """
    if url is None:
        settings = settings_or_exit(config)
        url = f"http://{settings.metrics.host}:{settings.metrics.port}/status"
    body = _ask(url, timeout)
    if as_json:
        click.echo(json.dumps(body, indent=2))
        return
    click.echo(render(body, palette_for(sys.stdout)))


def _ask(url: str, timeout: float) -> dict[str, Any]:
    """The daemon's /status JSON; one line and exit 1 when nothing (useful) answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        _nothing(url, f"it answered HTTP {exc.code}: is it a harvest-monitor older than /status?")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        _nothing(
            url,
            f"{reason}. Is `harvest-monitor run` (or demo) running with [metrics] port "
            "set? Give --url or --config to ask another.",
        )
    except ValueError:
        _nothing(url, "the answer is not JSON: is that a harvest-monitor?")
    if not isinstance(data, dict) or not str(data.get("schema", "")).startswith("hm.status/"):
        _nothing(url, "the answer is not a harvest-monitor status")
    return data


def _nothing(url: str, why: str) -> NoReturn:
    click.echo(f"error: no harvest-monitor status at {url}: {why}", err=True)
    sys.exit(1)


def render(body: dict[str, Any], p: Palette = PLAIN) -> str:
    """The /status JSON as a page a person reads top to bottom."""
    lines = [_head(body)]
    add = lines.append

    def row(label: str, text: str) -> None:
        add(f"{p.paint(f'{label:<10}', 'bold')} {text}")

    def more(text: str) -> None:
        add(f"{'':<10} {text}")

    row("bus", str(body.get("bus", "")))
    venues = body.get("venues") or {}
    if not venues:
        row("venues", "none in this process")
    for i, (venue, v) in enumerate(sorted(venues.items())):
        state = "STALE" if v.get("stale") else str(v.get("state", "-"))
        age = v.get("age_s")
        seen = f"last tick {age:.1f} s ago" if age is not None else "no tick yet"
        text = f"{venue:<10} {p.paint(f'{state:<12}', 'red' if v.get('stale') else '')} {seen}"
        row("venues", text) if i == 0 else more(text)
    lag = body.get("consumer_lag")
    row("lag", "-" if lag is None else f"{lag:,} records behind")
    if "lots" in body:
        _book(body, row, more)
    _alerts(body, p, row, more)
    held = body.get("held") or []
    row("held", "none" if not held else f"{held[0]['group']}: {held[0]['reason']}")
    for h in held[1:]:
        more(f"{h['group']}: {h['reason']}")
    row("execution", _execution(body.get("execution") or {}))
    problems = body.get("problems") or []
    row("health", p.paint("ok", "green") if not problems else p.paint(problems[0], "red"))
    for problem in problems[1:]:
        more(p.paint(problem, "red"))
    return "\n".join(lines)


def _head(body: dict[str, Any]) -> str:
    up = int(body.get("uptime_s") or 0)
    hours, rest = divmod(up, 3600)
    span = f"{hours}h {rest // 60:02d}m" if hours else f"{rest // 60}m {rest % 60:02d}s"
    return (
        f"harvest-monitor {body.get('version', '?')}: {body.get('role', '?')}, "
        f"pid {body.get('pid', '?')}, up {span} (since {body.get('started_at', '?')})"
    )


def _book(body: dict[str, Any], row: Any, more: Any) -> None:
    unpriced = body.get("unpriced_assets") or []
    text = f"{body['lots']:,} lots in {body['groups']:,} groups (account/wallet/asset)"
    row("lots", text + (f"; no price yet for {', '.join(unpriced)}" if unpriced else ""))
    ready = body.get("harvestable") or {}
    count, groups = ready.get("count", 0), ready.get("groups") or []
    row("harvest", f"{count} group{'s' if count != 1 else ''} harvestable at the last prices")
    for g in groups[:SHOWN]:
        more(
            f"  {g['account']}/{g['wallet']}/{g['asset']}: {g['lots']} lot(s), "
            f"price {price(str(g['price']))} at or under trigger {price(str(g['trigger']))}"
        )
    if count > len(groups[:SHOWN]):
        more(f"  ... and {count - len(groups[:SHOWN])} more (--json lists {len(groups)})")
    nearest = body.get("nearest_triggers") or []
    if not nearest:
        row("nearest", "no lot left above its trigger at the last prices")
    for i, n in enumerate(nearest):
        text = (
            f"{n['asset']:<6} {n['distance_pct']:6.2f}% above its trigger "
            f"{price(str(n['trigger']))} (price {price(str(n['price']))})"
        )
        row("nearest", text) if i == 0 else more(text)


def _alerts(body: dict[str, Any], p: Palette, row: Any, more: Any) -> None:
    recent = body.get("last_alerts") or []
    row("alerts", f"{body.get('alerts', 0):,} since start" + (", the last:" if recent else ""))
    for raw in recent:
        more(alert_line(decode_alert(json.dumps(raw)), p))


def _execution(e: dict[str, Any]) -> str:
    live_dry = e.get("mode") == "live" and e.get("dry_run")
    mode = str(e.get("mode", "?")) + (" (dry run: no order is sent)" if live_dry else "")
    parts = [mode, e.get("kill_switch") or "kill switch off"]
    if e.get("mode") != "alert":
        daily, per = e.get("max_daily_usd", "0"), e.get("max_harvest_usd", "0")
        sold = e.get("sold_today_usd")
        used = money(sold) if sold is not None else "-"
        parts.append(f"sold today {used} of {money(daily) if daily != '0' else 'no cap'}")
        parts.append(f"at most {money(per)} a harvest" if per != "0" else "no per-harvest cap")
    return ", ".join(parts)
