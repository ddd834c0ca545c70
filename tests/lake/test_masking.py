"""The three masks agree value for value on Arrow and inside DuckDB, for every column type."""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa
import pytest

from lake.duck import ident
from lake.masking import hash_text, mask_table, mask_value, register, sql_expression

SALT = b"s3cret"
DATA = pa.table({"email": ["ann@example.com", None, "bo"], "n": [1234567, None, -5],
                 "day": [dt.date(2024, 5, 1), None, dt.date(2024, 5, 2)], "ok": [True, None, False]})


@pytest.mark.parametrize("method", ["null", "hash", "last4"])
def test_arrow_and_duckdb_masks_agree(method: str) -> None:
    masked = mask_table(DATA, {c: method for c in DATA.column_names}, SALT)
    con = duckdb.connect()
    register(con, SALT)
    con.register("t", DATA)
    select = ", ".join(f"{sql_expression(ident(c), method, SALT)} AS {ident(c)}" for c in DATA.column_names)
    in_sql = con.execute(f"SELECT {select} FROM t").to_arrow_table()
    for column in DATA.column_names:
        assert in_sql[column].to_pylist() == masked[column].to_pylist(), (method, column)
    if method == "null":
        assert masked.schema == DATA.schema and all(v is None for v in masked["email"].to_pylist())
    if method == "last4":
        assert masked["email"].to_pylist() == ["****.com", None, "****"]
        assert masked["n"].to_pylist() == ["****4567", None, "****"]


def test_hash_is_salted_stable_and_never_the_value() -> None:
    assert hash_text("ann@example.com", SALT) == mask_value("ann@example.com", "hash", SALT)
    assert hash_text("ann@example.com", SALT) != hash_text("ann@example.com", b"other")
    assert len(hash_text("x", SALT) or "") == 32 and hash_text("x", None) is None
    assert mask_table(DATA, {"email": "hash"}, None)["email"].to_pylist() == [None, None, None]  # no salt: null
    assert mask_table(DATA, {"EMAIL": "null"}, SALT)["email"].null_count == 3  # catalog names, any case
    assert mask_table(DATA, {}, SALT) is DATA
