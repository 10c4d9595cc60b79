"""Keys for the rows that are not an agent's: a group's header line.

An agent's row is keyed by a string (its name, or `host/name`), and a
hostile daemon can name an agent anything, so a header keyed by a string
could be impersonated. A header is keyed by a tuple instead, which no
string equals. The table wraps every key in a RowKey and looks rows up by
comparing with it, so the tuple answers that comparison for itself.
"""

from __future__ import annotations

from textual.widgets.data_table import StringKey


class HeaderKey(tuple):
    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StringKey):
            return tuple.__eq__(self, other.value) is True
        return tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = tuple.__hash__


def is_header(key: object) -> bool:
    return isinstance(key, HeaderKey)
