"""The keys in force: config.yaml's `keys:` checked against the console's
bindings, and each binding's keys as the footer, help, palette and hints show them.

A binding set is what Textual merges for one class (an app, a screen, a
widget): its BINDINGS and those of its bases, a subclass's key replacing its
base's. A remap is applied to each set the way `App.set_keymap` applies it,
so two actions left on one key of one set are found before anything draws.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from textual.app import App
from textual.binding import Binding, BindingsMap
from textual.dom import DOMNode
from textual.keys import format_key

from . import actions
from .settings import Settings
from .yamlfile import ConfigError

# Binding id to its keys, comma-separated, as `App.set_keymap` takes it.
Keymap = dict[str, str]


@dataclass(frozen=True)
class BindingSet:
    """One class's bindings as Textual merges them, and its title in the help screen."""

    title: str
    owner: type[DOMNode]
    bindings: tuple[Binding, ...]


def binding_set(owner: type[DOMNode], title: str) -> BindingSet:
    keys: dict[str, list[Binding]] = {}
    for base in reversed(owner.__mro__):
        if isinstance(base, type) and issubclass(base, DOMNode):
            for key, bindings in BindingsMap(base.__dict__.get("BINDINGS", [])).key_to_bindings.items():
                keys[key] = bindings
    if issubclass(owner, App) and owner.ENABLE_COMMAND_PALETTE and not any(
            b.action in ("command_palette", "app.command_palette") for bs in keys.values() for b in bs):
        # Textual adds the palette's key when the app binds none of its own.
        keys.setdefault(owner.COMMAND_PALETTE_BINDING, []).append(Binding(owner.COMMAND_PALETTE_BINDING,
                                                                          "command_palette"))
    return BindingSet(title, owner, tuple(b for bindings in keys.values() for b in bindings))


def ids(sets: Iterable[BindingSet]) -> list[str]:
    """Every binding id, in the order the sets give them."""
    return list(dict.fromkeys(b.id for s in sets for b in s.bindings if b.id))


def check(settings: Settings, sets: list[BindingSet]) -> Keymap:
    """The keymap for `App.set_keymap`; a ConfigError `<file>:<line>: …` for an
    unknown id, or for two actions on one key of one binding set."""
    where = settings.path or "config.yaml"
    known = ids(sets)
    for id, choice in settings.keys.items():
        if id not in known:
            near = difflib.get_close_matches(id, known, n=1)
            hint = f"did you mean {near[0]}? " if near else ""
            raise ConfigError(f"{where}:{choice.line}: keys: unknown binding id {id!r}; {hint}"
                              f"the ids are {', '.join(sorted(known))}")
    keymap = {id: ",".join(choice.keys) for id, choice in settings.keys.items()}
    for s in sets:
        _clash(s, settings, str(where))
    return keymap


def _clash(s: BindingSet, settings: Settings, where: str) -> None:
    moved = {b.id for b in s.bindings if b.id in settings.keys}
    if not moved:
        return
    # As Textual applies a keymap: a moved binding leaves its old keys (with
    # whatever else was on them), and takes its new ones.
    by_key: dict[str, list[Binding]] = {}
    for b in s.bindings:
        by_key.setdefault(b.key, []).append(b)
    for key in [k for k, bs in by_key.items() if any(b.id in moved for b in bs)]:
        del by_key[key]
    placed: dict[str, list[tuple[Binding, str]]] = {k: [(b, "") for b in bs] for k, bs in by_key.items()}
    for id in sorted(moved, key=lambda i: settings.keys[i].line):
        binding = next(b for b in s.bindings if b.id == id)
        for key in settings.keys[id].keys:
            for other, other_id in placed.get(key, []):
                if other.action != binding.action:
                    what = f"{other_id or other.id or other.action}"
                    how = "also given" if other_id else "already"
                    raise ConfigError(f"{where}:{settings.keys[id].line}: keys: {id} on {shown(key)} "
                                      f"clashes in {s.title}: {shown(key)} is {how} {what}; "
                                      f"move one of them")
            placed.setdefault(key, []).append((binding, id))


def keys_of(s: BindingSet, id: str, keymap: Mapping[str, str]) -> list[str]:
    """The keys in force for binding `id` of set `s`."""
    if id in keymap:
        return keymap[id].split(",")
    return [b.key for b in s.bindings if b.id == id]


def keys_in_force(app: object, id: str) -> list[str]:
    """The keys in force for one of the action table's ids, on an app that keeps its keymap as `keymap`."""
    keymap: Mapping[str, str] = getattr(app, "keymap", None) or {}
    if id in keymap:
        return keymap[id].split(",")
    return [actions.by_id(id).key]


def key_of(app: object, id: str) -> str:
    """The first key in force for an action, as the footer shows it."""
    return shown(keys_in_force(app, id)[0])


def shown(key: str) -> str:
    """A key as people read it: `?` for question_mark, `ctrl+q`, `⏎`."""
    *mods, base = key.split("+")
    return "+".join([*mods, format_key(base)])
