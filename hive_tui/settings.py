"""The console's own settings: `config.yaml` beside the hosts file.

    keys:                    # binding id: one key, or a list of keys
      approve: y
      quit: [q, f10]
    change_markers: 10       # seconds a changed field stays marked; 0: never
    group_by_parent: false   # the container list grouped under parents
    theme: textual-dark      # any of Textual's theme names

Every setting may be left out. The file is read as strictly as the hosts
file: a mistake is refused as `<path>:<line>: what is wrong`. Key names are
checked here; whether an id exists and whether two actions share a key is
checked against the console's bindings when it starts (hive_tui/keymap.py).
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from textual.keys import KEY_ALIASES, KEY_NAME_REPLACEMENTS, REPLACED_KEYS, Keys, key_to_character
from yaml.nodes import Node, ScalarNode, SequenceNode

from .config import default_config_path
from .yamlfile import TAG, At, ConfigError, at, is_null, items, kind, read, string

FILE_NAME = "config.yaml"
_TOP = ("keys", "change_markers", "group_by_parent", "theme")
# What a key may be held with, in the order Textual names them.
MODIFIERS = ("alt", "ctrl", "hyper", "meta", "shift", "super")
# Textual's named keys (enter, escape, f1…f24, up, pageup…), without their modifiers.
NAMED_KEYS = frozenset(k.value.rpartition("+")[2] for k in Keys if not k.value.startswith("<")) - {"ctrl-at"}
# A key Textual reports under another name: the name it reports.
_ALIAS_OF = {alias: key for key, aliases in KEY_ALIASES.items() for alias in aliases}


@dataclass(frozen=True)
class KeyChoice:
    """The keys given for one binding id, and the line that gave them."""

    keys: tuple[str, ...]
    line: int


@dataclass(frozen=True)
class Settings:
    # Binding id to its keys, as Textual names them; checked against the bindings when the console starts.
    keys: dict[str, KeyChoice] = field(default_factory=dict)
    change_markers: float = 10.0
    group_by_parent: bool = False
    theme: str | None = None
    # The file these came from (None: defaults, no file).
    path: Path | None = None


def settings_path(hosts_file: Path | None = None) -> Path:
    """config.yaml in the hosts file's folder (the platform's config folder by default)."""
    return (hosts_file or default_config_path()).parent / FILE_NAME


def load_settings(path: Path) -> Settings:
    """The settings in `path`; a missing or empty file gives the defaults."""
    root = read(path, "console settings")
    try:
        return _parse(root, path)
    except At as e:
        raise ConfigError(f"{path}:{e.line}: {e.message}") from None


def _parse(root: Node | None, path: Path) -> Settings:
    if root is None:
        return Settings(path=path)
    top = items(root, "the settings", _TOP)
    values: dict[str, object] = {}
    for name, (_, node) in top.items():
        if is_null(node):
            continue
        if name == "keys":
            values["keys"] = _keys(node)
        elif name == "change_markers":
            values["change_markers"] = _seconds(node)
        elif name == "group_by_parent":
            if node.tag != TAG + "bool":
                raise at(node, f"group_by_parent must be true or false, not {kind(node)}")
            values["group_by_parent"] = node.value.lower() in ("true", "yes", "on")
        elif name == "theme":
            values["theme"] = _theme(node)
    return Settings(path=path, **values)  # type: ignore[arg-type]


def _keys(node: Node) -> dict[str, KeyChoice]:
    chosen: dict[str, KeyChoice] = {}
    for id, (key, value) in items(node, "keys").items():
        if isinstance(value, SequenceNode):
            if not value.value:
                raise at(value, f"keys: {id} has an empty list; give at least one key, or leave {id} out")
            nodes = list(value.value)
        else:
            nodes = [value]
        names: list[str] = []
        for n in nodes:
            name = _key(n, id)
            if name in names:
                raise at(n, f"keys: {id} lists {name} twice")
            names.append(name)
        chosen[id] = KeyChoice(tuple(names), key.start_mark.line + 1)
    return chosen


def _key(node: Node, id: str) -> str:
    if not isinstance(node, ScalarNode) or node.tag not in (TAG + "str", TAG + "int"):
        raise at(node, f"keys: {id} must be a key or a list of keys, not {kind(node)}")
    try:
        return key_name(node.value)
    except ValueError as e:
        raise at(node, f"keys: {id}: {e}") from None


def key_name(text: str) -> str:
    """A key as Textual names it (`?` is question_mark, `ctrl+I` ctrl+i); ValueError if it is none."""
    if len(text) == 1:
        return _char_key(text)
    if not text:
        raise ValueError("an empty key")
    if text != text.strip():
        raise ValueError(f"{text!r} is not a key: no spaces around a key (the space bar is `space`)")
    if "," in text:
        raise ValueError(f"{text!r}: one key per item (give several keys as a list, [a, b]); a comma is `comma`")
    *mods, base = text.split("+")
    if not base:
        raise ValueError(f"{text!r} is not a key: nothing after the last '+' (the plus key is `plus`)")
    for m in mods:
        if m.lower() not in MODIFIERS:
            raise ValueError(f"{text!r}: {m!r} is not a modifier; use {', '.join(MODIFIERS)}")
    name = _base(base, text)
    if mods and len(name) == 1:
        name = name.lower()
    key = "+".join([*sorted({m.lower() for m in mods}), name])
    return _ALIAS_OF.get(key, key)


def _base(base: str, text: str) -> str:
    if len(base) == 1:
        return _char_key(base)
    name = base.lower()
    if name in NAMED_KEYS:
        return name
    char = key_to_character(REPLACED_KEYS.get(name, name))
    if char is not None and len(char) == 1 and _char_key(char) == name:
        return name
    raise ValueError(f"unknown key name {text!r}; a key is one character (a, D, ?, /) or one of Textual's "
                     f"names: question_mark, slash, colon, space, enter, escape, tab, backspace, delete, "
                     f"up, down, left, right, home, end, pageup, pagedown, f1…f24, each with optional "
                     f"{'+, '.join(MODIFIERS)}+")


def _char_key(char: str) -> str:
    """The name Textual gives the key that types `char`."""
    if not char.isprintable():
        raise ValueError(f"{char!r} is not a key one can type")
    if char == " ":
        return "space"
    if char.isalnum():
        return char
    name = unicodedata.name(char, "").lower().replace("-", "_").replace(" ", "_")
    if not name:
        raise ValueError(f"{char!r} is not a key Textual knows")
    return KEY_NAME_REPLACEMENTS.get(name, name)


def _seconds(node: Node) -> float:
    if node.tag not in (TAG + "int", TAG + "float"):
        raise at(node, f"change_markers must be a number of seconds, not {kind(node)}")
    try:
        seconds = float(node.value.replace("_", ""))
    except ValueError:
        raise at(node, f"change_markers must be a number of seconds, not {node.value!r}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise at(node, f"change_markers must be 0 or more seconds, not {node.value}")
    return seconds


def _theme(node: Node) -> str:
    from textual.theme import BUILTIN_THEMES

    name = string(node, "theme")
    if name not in BUILTIN_THEMES:
        raise at(node, f"unknown theme {name!r}; Textual's themes are {', '.join(BUILTIN_THEMES)}")
    return name
