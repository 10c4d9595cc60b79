"""The console's own settings: `config.yaml` beside the hosts file.

    keys:                    # binding id: one key, or a list of keys
      approve: y
      quit: [q, ctrl+c]
    change_markers: 10       # seconds a changed field stays marked; 0: never
    group_by_parent: false   # the container list grouped under parents
    theme: textual-dark      # any of Textual's theme names

Every setting may be left out. The file is read as strictly as the hosts
file: a mistake is refused as `<path>:<line>: what is wrong`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class KeyChoice:
    """The keys given for one binding id, and the line that gave them."""

    keys: tuple[str, ...]
    line: int


@dataclass(frozen=True)
class Settings:
    # Binding id to its keys, as written; checked against the bindings when the console starts.
    keys: dict[str, KeyChoice] = field(default_factory=dict)
    change_markers: float = 10.0
    group_by_parent: bool = False
    theme: str | None = None
    # The file these came from (None: defaults, no file).
    path: Path | None = None
