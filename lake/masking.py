"""Masking a sensitive column as it leaves the service: ``null``, ``hash`` or ``last4``.

The same three methods in two places that agree value for value:

- :func:`mask_table` on Arrow (previews, hand-off loads and exports, training frames,
  online features);
- :func:`sql_expression` inside DuckDB (``lake sql`` through the service: the masked view
  replaces the table, so no alias or expression can get around it); ``hash`` there is a
  Python function registered on the connection by :func:`register`, so the salt never
  appears in SQL text a query could read back.

``hash`` is HMAC-SHA256 of the value's text with a secret salt (``[service] mask_salt``),
the first 32 hex digits: equal values give equal hashes (joins and counts still work),
and without the salt nobody can test a guess. Without a salt configured, ``hash`` masks
to null rather than to an unsalted (guessable) digest.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

METHODS = ("null", "hash", "last4")
HASH_FUNCTION = "lake_mask_hash"
"""The DuckDB function :func:`register` adds."""
_HIDDEN = "****"


def hash_text(text: str, salt: bytes | None) -> str | None:
    """The masked form of one value's text (None without a salt)."""
    if salt is None:
        return None
    return hmac.digest(salt, text.encode("utf-8", "surrogatepass"), "sha256").hex()[:32]


def last4(text: str) -> str:
    """``****`` and the last four characters (just ``****`` for four or fewer)."""
    return _HIDDEN + text[-4:] if len(text) > 4 else _HIDDEN


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def mask_value(value: Any, method: str, salt: bytes | None) -> Any:
    """One Python value masked (None stays None)."""
    if value is None or method == "null":
        return None
    if method == "hash":
        return hash_text(_text(value), salt)
    return last4(_text(value))


def mask_array(array: pa.Array | pa.ChunkedArray, method: str, salt: bytes | None) -> pa.Array:
    """An Arrow column masked: nulls of its type for ``null``, strings otherwise."""
    if method == "null" or (method == "hash" and salt is None):
        return pa.nulls(len(array), type=array.type if method == "null" else pa.string())
    return pa.array([mask_value(v, method, salt) for v in array.to_pylist()], type=pa.string())


def match_columns(names: list[str], masked: Mapping[str, str]) -> dict[str, str]:
    """``{name in names: method}``: catalog column names matched exactly, else case-insensitively."""
    lower = {k.lower(): v for k, v in masked.items()}
    return {n: masked[n] if n in masked else lower[n.lower()] for n in names if n in masked or n.lower() in lower}


def mask_table(table: pa.Table, masked: Mapping[str, str], salt: bytes | None) -> pa.Table:
    """``table`` with the columns of ``masked`` (``{column: method}``) masked; others untouched."""
    hits = match_columns(table.column_names, masked)
    if not hits:
        return table
    for i, name in enumerate(table.column_names):
        method = hits.get(name)
        if method is not None:
            column = mask_array(table.column(i), method, salt)
            table = table.set_column(i, pa.field(name, column.type), column)
    return table


def sql_expression(column: str, method: str, salt: bytes | None) -> str:
    """A DuckDB expression masking ``column`` (an identifier, already quoted) by ``method``."""
    text = f"CAST({column} AS VARCHAR)"
    if method == "null":
        return f"(CASE WHEN FALSE THEN {column} END)"  # NULL of the column's own type
    if method == "hash":
        return f"{HASH_FUNCTION}({text})" if salt is not None else "CAST(NULL AS VARCHAR)"
    return (f"(CASE WHEN {column} IS NULL THEN NULL WHEN length({text}) <= 4 THEN '{_HIDDEN}' "
            f"ELSE '{_HIDDEN}' || right({text}, 4) END)")


def register(con: Any, salt: bytes | None) -> None:
    """Add :data:`HASH_FUNCTION` to a DuckDB connection (the salt stays in Python)."""
    if salt is None:
        return

    def digest(values: pa.Array) -> pa.Array:
        return pa.array([None if v is None else hash_text(v, salt) for v in values.to_pylist()], type=pa.string())

    con.create_function(HASH_FUNCTION, digest, ["VARCHAR"], "VARCHAR", type="arrow", side_effects=False)
