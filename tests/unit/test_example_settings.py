"""config/monitor.example.toml documents every setting the code accepts, at its default.

The README sends users to the example file for "every setting, with its default and
meaning"; a setting added to monitor/settings without a line there is invisible to them.
"""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path

from pydantic import BaseModel

from monitor.settings import Settings, load_settings

EXAMPLE = Path(__file__).parents[2] / "config" / "monitor.example.toml"
HEADER = re.compile(r"^\s*(?:#\s*)?\[\[?([a-z_.]+)\]\]?(?:\s|$)")


def section_texts(text: str) -> dict[str, str]:
    """Each section's lines (commented-out tables such as `# [[webhooks]]` included)."""
    sections: dict[str, list[str]] = {"": []}
    current = ""
    for line in text.splitlines():
        header = HEADER.match(line)
        if header is not None:
            current = header.group(1)
            sections.setdefault(current, [])
            continue
        sections[current].append(line)
    return {name: "\n".join(lines) for name, lines in sections.items()}


def model_of(annotation: object) -> type[BaseModel] | None:
    """The settings model inside an annotation (`X`, `list[X]`, `X | None`), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            found = model_of(arg)
            if found is not None:
                return found
    return None


def settings_keys(model: type[BaseModel], section: str) -> list[tuple[str, str]]:
    """(section, key) of every leaf setting; a nested model in a list of a section
    (`[harvest] schedule`'s steps) is documented inside that section."""
    keys: list[tuple[str, str]] = []
    for name, field in model.model_fields.items():
        nested = model_of(field.annotation)
        if nested is None:
            keys.append((section, name))
            continue
        if not section:  # a top-level section: [name] or [[name]]
            keys.extend(settings_keys(nested, name))
        elif typing.get_origin(field.annotation) is list and nested.__name__ == "ThresholdStep":
            keys.append((section, name))
            keys.extend(settings_keys(nested, section))
        else:  # a sub-table: [webhooks.filter], [[subscriptions.tokens]]
            keys.extend(settings_keys(nested, f"{section}.{name}"))
    return keys


def test_every_setting_is_in_the_example_file() -> None:
    sections = section_texts(EXAMPLE.read_text(encoding="utf-8"))
    missing = [
        f"[{section}] {key}"
        for section, key in settings_keys(Settings, "")
        if not re.search(rf"(?<![a-z_]){key}\s*=", sections.get(section, ""))
    ]
    assert missing == []


def test_the_key_walk_sees_nested_and_commented_settings() -> None:
    """The check above can fail: it knows the webhook and schedule keys by their section."""
    keys = settings_keys(Settings, "")
    assert ("webhooks", "stop_grace_s") in keys
    assert ("webhooks.filter", "kinds") in keys
    assert ("harvest", "min_net_benefit_usd") in keys and ("harvest", "starts") in keys
    assert ("subscriptions.tokens", "sha256") in keys


def test_the_example_file_loads_to_the_defaults() -> None:
    assert load_settings(EXAMPLE, env={}) == Settings()
