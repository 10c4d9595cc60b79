"""The JSON-lines framing of the host admin socket (see docs/protocol.md).

A request is `{"cmd": "<verb>", ...fields}`; a response is
`{"version": 1, "ok": true|false, "error": "...", ...payload}`. Pushed
updates on a subscription are responses too, each carrying one of the
payload keys below.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import HiveError
from .models import AgentStatus, Approval, DeployStep, Event, Lagged, Transient, Wire

VERSION = 1
# The longest request line a server reads; a longer one is answered with an error.
MAX_REQUEST = 1 << 20

# Pushed items: the payload key each model travels under.
PUSH_KEYS: dict[type[Wire], str] = {
    DeployStep: "deploy_step",
    Approval: "approval",
    Event: "event",
    Transient: "transient",
}


class VersionMismatch(HiveError):
    pass


def ok(**payload: Any) -> dict[str, Any]:
    return {"version": VERSION, "ok": True, **payload}


def error(message: str) -> dict[str, Any]:
    return {"version": VERSION, "ok": False, "error": message}


def push(item: object) -> dict[str, Any] | None:
    """The message that carries a pushed engine item, or None for items not on the wire."""
    if isinstance(item, AgentStatus):
        return ok(agent_statuses=[item.to_wire()])
    if isinstance(item, Wire) and (key := PUSH_KEYS.get(type(item))):
        return ok(**{key: item.to_wire()})
    return None


def decode_push(message: dict[str, Any]) -> object | None:
    """The model a pushed message carries; None for one this client does not know."""
    if "agent_statuses" in message and len(message["agent_statuses"]) == 1:
        return AgentStatus.from_wire(message["agent_statuses"][0])
    if isinstance(message.get("lagged"), int):
        return Lagged(message["lagged"])
    for cls, key in PUSH_KEYS.items():
        if isinstance(message.get(key), dict):
            return cls.from_wire(message[key])
    return None


def check_response(message: dict[str, Any]) -> dict[str, Any]:
    """Refuse a newer schema; raise the error of a failed response."""
    version = message.get("version", 0)
    if not isinstance(version, int) or version > VERSION:
        raise VersionMismatch(f"daemon speaks v{version}, this client v{VERSION}")
    if not message.get("ok", False):
        raise HiveError(str(message.get("error") or "request failed without an error message"))
    return message


def encode(message: dict[str, Any]) -> bytes:
    """One line of the wire. ensure_ascii keeps every control character escaped."""
    return json.dumps(message, ensure_ascii=True, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> Any:
    """A line's JSON value; HiveError saying what is wrong with a bad one."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise HiveError(f"a request must be UTF-8: {e.reason} at byte {e.start}") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise HiveError("a request nests too deeply") from None
    except ValueError as e:
        raise HiveError(f"a request must be one JSON object per line: {e}") from None
