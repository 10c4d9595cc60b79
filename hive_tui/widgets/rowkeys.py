"""Keys for the rows that are not an agent's: a group's header line.

An agent's row is keyed by a string (its name, or `host/name`), and a
hostile daemon can name an agent anything, so a header keyed by a plain
string could be impersonated. A header's key is a str of its own kind
that equals only another header's key, never a plain string, whatever it
holds; being a str, it goes wherever the table takes a key.
"""

from __future__ import annotations


class HeaderKey(str):
    """The key of a group's header line: its parent (None: the top group), and its host in the all-hosts view."""

    parent: str | None
    host: str

    def __new__(cls, parent: str | None, host: str = "") -> HeaderKey:
        # None and a parent named "" or "None" must not meet: the text only tells keys apart.
        key = super().__new__(cls, f"group\0{host}\0{'' if parent is None else '=' + parent}")
        key.parent, key.host = parent, host
        return key

    def __eq__(self, other: object) -> bool:
        # Asked first even from the plain string's side: a subclass's own __eq__ is.
        return type(other) is HeaderKey and str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = str.__hash__


def is_header(key: object) -> bool:
    return type(key) is HeaderKey
