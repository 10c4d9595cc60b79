"""The JSON-lines framing of the host admin socket (see docs/protocol.md).

A request is `{"cmd": "<verb>", ...fields}`; a response is
`{"version": 1, "ok": true|false, "error": "...", ...payload}`. Pushed
updates on a subscription are responses too, each carrying one of the
payload keys below.
"""

from __future__ import annotations

from typing import Any

from .errors import HiveError
from .models import AgentStatus, Approval, DeployStep, Event, Transient

VERSION = 1

# Pushed items: the payload key each model travels under.
PUSH_KEYS: dict[type, str] = {
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
    key = PUSH_KEYS.get(type(item))
    return ok(**{key: item.to_wire()}) if key else None


def decode_push(message: dict[str, Any]) -> object | None:
    """The model a pushed message carries; None for one this client does not know."""
    if "agent_statuses" in message and len(message["agent_statuses"]) == 1:
        return AgentStatus.from_wire(message["agent_statuses"][0])
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
