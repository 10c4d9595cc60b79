"""Strict YAML for the console's own files: composed into nodes, never
constructed, so no tag can build an object and every value keeps its line.

A mistake is raised as `At(line, message)`; the loader that read the file
adds its path, giving `<path>:<line>: what is wrong`.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import HiveError

MAX_BYTES = 1024 * 1024


class ConfigError(HiveError):
    """A file of the console's, or a host named on the command line, cannot be used."""


TAG = "tag:yaml.org,2002:"
# What the safe resolver gives untagged values; merge and value keys pass
# here so that they are refused as unknown keys, which says more.
PLAIN_TAGS = {TAG + t for t in ("map", "seq", "str", "int", "float", "bool", "null", "timestamp", "merge", "value")}
KINDS = {"str": "a string", "int": "a number", "float": "a number", "bool": "a boolean",
       "null": "an empty value", "timestamp": "a date"}


class At(Exception):
    """A mistake on a line of the file; the loader adds the path."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line, self.message = line, message


def at(node: Node, message: str) -> At:
    return At(node.start_mark.line + 1, message)


def decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise At(line, f"not valid UTF-8 (byte 0x{data[e.start]:02x}); save the file as UTF-8") from None


def compose(text: str) -> Node | None:
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.reader.ReaderError as e:
        code = e.character if isinstance(e.character, int) else ord(e.character)
        raise At(text[:e.position].count("\n") + 1, f"character U+{code:04X} is not allowed in YAML") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        what = e.problem or e.context or "not valid YAML"
        if "'\\t'" in what:
            what += " (YAML is indented with spaces, never tabs)"
        elif e.context and e.context.startswith("while") and e.context_mark and mark is not e.context_mark:
            what += f" ({e.context} from line {e.context_mark.line + 1})"
        elif e.context and e.problem:
            what = f"{e.context}, {e.problem}"
        raise At(mark.line + 1 if mark else 1, what) from None
    except yaml.YAMLError as e:
        raise At(1, f"not valid YAML: {e}") from None


def check_tags(root: Node, holds: str) -> None:
    """Refuse the first explicit tag (`!!python/object`, `!foo`...) in the file, wherever it is."""
    seen: set[int] = set()
    stack, bad = [root], []
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.tag not in PLAIN_TAGS:
            bad.append(node)
        if isinstance(node, MappingNode):
            stack.extend(n for pair in node.value for n in pair)
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)
    if bad:
        node = min(bad, key=lambda n: (n.start_mark.line, n.start_mark.column))
        tag = node.tag.replace(TAG, "!!", 1)
        raise at(node, f"the tag {tag} is not allowed; the {holds} holds plain values only")


def kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return KINDS.get(node.tag.removeprefix(TAG), "a tagged value")


def is_null(node: Node) -> bool:
    return node.tag == TAG + "null"


def items(node: Node, what: str, allowed: tuple[str, ...] | None = None) -> dict[str, tuple[Node, Node]]:
    """The pairs of a mapping by key text, in order; duplicate and unknown keys refused."""
    if not isinstance(node, MappingNode):
        raise at(node, f"{what} must be a mapping, not {kind(node)}")
    items: dict[str, tuple[Node, Node]] = {}
    for key, value in node.value:
        if not isinstance(key, ScalarNode):
            raise at(key, f"a key in {what} must be a name, not {kind(key)}")
        if key.value in items:
            first = items[key.value][0].start_mark.line + 1
            raise at(key, f"duplicate key {key.value!r} in {what}; the first is on line {first}")
        if allowed is not None and key.value not in allowed:
            raise at(key, f"unknown key {key.value!r} in {what}; allowed: {', '.join(allowed)}")
        items[key.value] = (key, value)
    return items


def string(node: Node, what: str) -> str:
    if node.tag != TAG + "str":
        hint = " (quote it if it is meant as text)" if isinstance(node, ScalarNode) and node.value else ""
        raise at(node, f"{what} must be a string, not {kind(node)}{hint}")
    return node.value




def read(path: Path, what: str) -> Node | None:
    """The root node of the YAML file at `path`, checked for tags; None when
    the file is missing or empty. `what` names the file in messages."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the {what}: {e.strerror or e}") from None
    if len(data) > MAX_BYTES:
        raise ConfigError(f"{path}: larger than 1 MiB, which no {what} needs; is it the right file?")
    try:
        root = compose(decode(data))
        if root is not None:
            check_tags(root, what)
        return root
    except At as e:
        raise ConfigError(f"{path}:{e.line}: {e.message}") from None
