"""API keys for live trading: from files or environment variables, never from settings.

The values are never logged, printed or put in an error message; `Credentials` hides
them from repr so a stray log line cannot leak them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from monitor.errors import ExecutionError
from monitor.settings import ExecutionSettings


@dataclass(frozen=True, slots=True)
class Credentials:
    api_key: str = field(repr=False)
    secret: str = field(repr=False)

    def __repr__(self) -> str:
        return "Credentials(<hidden>)"


def load_credentials(
    settings: ExecutionSettings, env: Mapping[str, str] | None = None
) -> Credentials:
    """The API key and secret: a configured file wins over its environment variable."""
    source = os.environ if env is None else env
    key = _one("API key", "api_key_file", settings.api_key_file, settings.api_key_env, source)
    secret = _one(
        "API secret", "api_secret_file", settings.api_secret_file, settings.api_secret_env, source
    )
    return Credentials(key, secret)


def _one(what: str, key: str, file: str, variable: str, env: Mapping[str, str]) -> str:
    if file:
        try:
            value = Path(file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ExecutionError(
                f"[execution] {what} file {file}: cannot read it ({exc.strerror})"
            ) from None
        if not value:
            raise ExecutionError(f"[execution] {what} file {file} is empty")
        return value
    value = env.get(variable, "").strip() if variable else ""
    if not value:
        raise ExecutionError(
            f"[execution] live mode needs the {what}: set the environment variable "
            f"{variable or '(none configured)'} or [execution] {key}"
        )
    return value
