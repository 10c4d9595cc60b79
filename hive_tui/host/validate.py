"""Checks on what clients and the manager send, before anything is stored.

Free text (notes, descriptions) is kept verbatim, control characters and
markup included; the console shows it as plain text. What is refused is
what cannot be stored faithfully: non-strings, NUL, text that is not valid
UTF-8 (lone surrogates from a mis-decoded argv), and sizes past a bound.
"""

from __future__ import annotations

from ..errors import HiveError

MAX_TEXT = 64 * 1024
MAX_REF_LEN = 256


def check_text(value: object, what: str, limit: int = MAX_TEXT) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise HiveError(f"{what} must be a string, not {type(value).__name__}")
    if len(value) > limit:
        raise HiveError(f"{what} is {len(value)} characters long; the limit is {limit}")
    if "\0" in value:
        raise HiveError(f"{what} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise HiveError(f"{what} is not valid UTF-8") from None
    return value


def check_ref_text(value: object) -> str:
    """A ref or revision named by a client: bounded, printable, no option lookalike."""
    if not isinstance(value, str) or not value:
        raise HiveError("commit ref must be a non-empty string")
    if len(value) > MAX_REF_LEN:
        raise HiveError(f"commit ref is {len(value)} characters long; the limit is {MAX_REF_LEN}")
    if value.startswith("-") or any(not c.isprintable() or c.isspace() for c in value):
        raise HiveError(f"commit ref {value!r} contains characters a ref cannot have")
    return value


def check_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise HiveError(f"approval id must be a positive integer, not {value!r}")
    return value
