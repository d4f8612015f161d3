"""Binance's "JSON controlled messages" as the simulated venue reads and answers them.

Requests: `{"method": "SUBSCRIBE" | "UNSUBSCRIBE" | "LIST_SUBSCRIPTIONS" | "SET_PROPERTY" |
"GET_PROPERTY", "params": [...], "id": N}`; answers `{"result": ..., "id": N}`, or
`{"error": {"code": C, "msg": "..."}, "id": N}` with Binance's codes (0 unknown property,
1 bad value type, 2 invalid request, 3 invalid JSON; 4 too many subscriptions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

__all__ = [
    "METHODS",
    "ControlError",
    "ControlRequest",
    "check_property",
    "check_stream_names",
    "encode_result",
    "parse_control",
    "valid_stream_name",
]

METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
_encode = msgspec.json.Encoder().encode


class ControlError(Exception):
    """A request Binance would refuse; `reply()` is the error message to send back."""

    def __init__(self, code: int, msg: str, request_id: int | str | None = None) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.request_id = request_id

    def reply(self) -> bytes:
        """`{"error": {"code": ..., "msg": ...}, "id": ...}`."""
        return _encode({"error": {"code": self.code, "msg": self.msg}, "id": self.request_id})


@dataclass(frozen=True, slots=True)
class ControlRequest:
    """A well-formed request."""

    method: str
    params: list[Any]
    id: int | str | None


def parse_control(raw: str | bytes) -> ControlRequest:
    """Validate one client message as Binance does; raises ControlError with its reply."""
    try:
        request = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise ControlError(3, f"Invalid JSON: {exc}") from None
    if not isinstance(request, dict):
        raise ControlError(2, "Invalid request: expected a JSON object")
    request_id = request.get("id")
    if not _valid_id(request_id):
        raise ControlError(2, "Invalid request: request ID must be an unsigned integer")
    method = request.get("method")
    if method is None:
        raise ControlError(2, "Invalid request: missing field `method`", request_id)
    if method not in METHODS:
        expected = ", ".join(f"`{m}`" for m in METHODS)
        msg = f"Invalid request: unknown variant `{method}`, expected one of {expected}"
        raise ControlError(2, msg, request_id)
    params = request.get("params", [])
    if not isinstance(params, list):
        raise ControlError(2, "Invalid request: params must be an array", request_id)
    return ControlRequest(method, params, request_id)


def valid_stream_name(name: str, kinds: tuple[str, ...]) -> bool:
    """`<lower-case symbol id>@<kind>`, e.g. `btcusdt@trade`."""
    stream_id, sep, kind = name.partition("@")
    return bool(sep) and stream_id.isalnum() and stream_id.islower() and kind in kinds


def check_stream_names(request: ControlRequest, kinds: tuple[str, ...]) -> list[str]:
    """The params of a (UN)SUBSCRIBE, if every one is a stream name of a supported kind."""
    if not all(isinstance(p, str) and valid_stream_name(p, kinds) for p in request.params):
        raise ControlError(2, "Invalid request: invalid stream name", request.id)
    return list(request.params)


def check_property(request: ControlRequest) -> bool | None:
    """SET_PROPERTY: the new `combined` value; GET_PROPERTY: None. Only `combined` exists."""
    params = request.params
    if not params or not isinstance(params[0], str):
        raise ControlError(2, "Invalid request: property name must be a string", request.id)
    if params[0] != "combined":
        raise ControlError(0, "Unknown property", request.id)
    if request.method == "GET_PROPERTY":
        return None
    if len(params) != 2 or not isinstance(params[1], bool):
        raise ControlError(1, "Invalid value type: expected Boolean", request.id)
    return params[1]


def encode_result(result: Any, request_id: int | str | None) -> bytes:
    """`{"result": ..., "id": ...}` (result null: the request succeeded)."""
    return _encode({"result": result, "id": request_id})


def _valid_id(value: object) -> bool:
    # Binance accepts a 64-bit signed integer, an alphanumeric string of up to 36, or null.
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    return isinstance(value, str) and len(value) <= 36 and value.isalnum()
