"""Fuzzing, on a fixed budget for CI: ``filter=`` predicates and ``lake.toml``.

(The OpenLineage event checker, ingestion and the search query parser are fuzzed in
``tests/catalog/test_events.py``, ``tests/catalog/test_server.py`` and ``tests/catalog/test_roundtrip.py``.)

Predicates: any text parses to a tree, to ``None`` (beyond what pruning models) or fails with
:class:`InvalidPredicateError`; and file skipping is sound: a file holding a row that
satisfies the predicate (judged by an independent evaluator) is never skipped.
Settings: any ``lake.toml`` gives settings or one :class:`ConfigError` naming the file.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lake.config import Settings, load_settings
from lake.errors import ConfigError, InvalidPredicateError
from lake.predicate import FileStats, may_match, parse

BUDGET = settings(max_examples=200, deadline=1000, suppress_health_check=[HealthCheck.too_slow,
                                                                          HealthCheck.function_scoped_fixture])
"""At most 200 examples of at most 1 s each per test."""

# ------------------------------------------------------------------ predicates

TOKENS = ["x", "y", "d", "`x`", '"y"', "=", "!=", "<>", "<", "<=", ">", ">=", "==", "(", ")", ",", "AND", "OR",
          "NOT", "IN", "IS", "NULL", "TRUE", "FALSE", "BETWEEN", "DATE", "TIMESTAMP", "'a'", "'it''s'", "''", "1",
          "-2.5", "1e3", "'2024-01-01'", "'2024-01-01T10:00:00Z'", "LIKE", "'%'", ";", "--", "/*", "\\", "'"]


@BUDGET
@given(st.lists(st.sampled_from(TOKENS), max_size=14).map(" ".join) | st.text(max_size=60))
def test_fuzz_any_predicate_text_parses_or_fails_clearly(text: str) -> None:
    try:
        parse(text)
    except InvalidPredicateError as exc:
        assert str(exc)


# A predicate over one integer column x: its text and an independent evaluator (SQL's three-valued logic).
def _cmp(op: str, v: int) -> tuple[str, Any]:
    fns = {"=": lambda a: a == v, "!=": lambda a: a != v, "<": lambda a: a < v, "<=": lambda a: a <= v,
           ">": lambda a: a > v, ">=": lambda a: a >= v}
    return f"x {op} {v}", lambda row: None if row is None else fns[op](row)


LEAF = st.one_of(
    st.builds(_cmp, st.sampled_from(["=", "!=", "<", "<=", ">", ">="]), st.integers(-20, 20)),
    st.builds(lambda v, op: (f"{v} {op} x", _cmp({"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(op, op), v)[1]),
              st.integers(-20, 20), st.sampled_from(["=", "<", "<=", ">", ">="])),
    st.builds(lambda vs, neg: (f"x {'NOT ' if neg else ''}IN ({', '.join(map(str, vs))})",
                               lambda row: None if row is None else (row in vs) != neg),
              st.lists(st.integers(-20, 20), min_size=1, max_size=4), st.booleans()),
    st.builds(lambda neg: (f"x IS {'NOT ' if neg else ''}NULL", lambda row: (row is not None) if neg else row is None),
              st.booleans()),
)


def _and(a: Any, b: Any) -> Any:
    return (f"({a[0]}) AND ({b[0]})",
            lambda r: False if a[1](r) is False or b[1](r) is False else None if None in (a[1](r), b[1](r)) else True)


def _or(a: Any, b: Any) -> Any:
    return (f"({a[0]}) OR ({b[0]})",
            lambda r: True if a[1](r) is True or b[1](r) is True else None if None in (a[1](r), b[1](r)) else False)


def _not(a: Any) -> Any:
    return f"NOT ({a[0]})", lambda r: None if a[1](r) is None else not a[1](r)


PREDICATE = st.recursive(LEAF, lambda inner: st.one_of(st.builds(_and, inner, inner), st.builds(_or, inner, inner),
                                                       st.builds(_not, inner)), max_leaves=6)


@BUDGET
@given(PREDICATE, st.lists(st.integers(-25, 25) | st.none(), min_size=1, max_size=12), st.booleans())
def test_fuzz_file_skipping_never_drops_a_matching_row(predicate: Any, rows: list[int | None], partitioned: bool) -> None:
    text, holds = predicate
    values = [v for v in rows if v is not None]
    if partitioned:  # a partition column: one value per file
        rows = rows[:1]
        stats = FileStats(len(rows), {"x": rows[0]}, {}, {}, {})
    else:
        stats = FileStats(len(rows), {}, {"x": min(values)} if values else {}, {"x": max(values)} if values else {},
                          {"x": len(rows) - len(values)})
    tree = parse(text)
    assert tree is not None, text
    if any(holds(r) is True for r in rows):
        assert may_match(tree, stats), (text, rows)


def _date_stats() -> FileStats:
    return FileStats(10, {}, {"d": dt.date(2024, 1, 1), "t": dt.datetime(2024, 1, 1)},
                     {"d": dt.date(2024, 2, 1), "t": dt.datetime(2024, 3, 1)}, {})


@pytest.mark.parametrize("text", ["d = 'nope'", "t > 'nope'", "d IN ('x')"])
def test_a_non_date_literal_against_date_statistics_keeps_the_file(text: str) -> None:
    """Found by fuzzing: it raised ValueError from file skipping."""
    assert may_match(parse(text), _date_stats()) is True


@pytest.mark.parametrize("text", ["(" * 5000 + "x = 1" + ")" * 5000, "NOT " * 5000 + "x = 1"])
def test_deep_nesting_is_refused_not_a_recursion_error(text: str) -> None:
    with pytest.raises(InvalidPredicateError, match="nests"):
        parse(text)


# ------------------------------------------------------------------ lake.toml

SECTIONS: dict[str | None, list[str]] = {
    None: ["root", "quality_dir", "jobs_dir", "cache_dir", "nope"],
    "s3": ["endpoint", "access_key", "secret_key", "region", "allow_http"],
    "catalog": ["url", "lineage_file", "openlineage_url", "namespace", "heartbeat_seconds", "stale_after_seconds"],
    "spark": ["master", "shuffle_partitions", "driver_memory", "conf"],
    "feast": ["project", "registry", "online_store", "redis_url", "serving_log", "max_keys_per_request",
              "offload_keys", "offload_workers"],
    "server": ["auth", "token_cache_seconds", "max_body_bytes", "max_json_depth"],
    "bogus": ["x"],
}
VALUE = st.one_of(st.text(max_size=20), st.integers(-(2**64), 2**64), st.floats(), st.booleans(),
                  st.sampled_from(["auto", "required", "sqlite", "redis", "local[*]", "s3://b/p", "inf", "nan"]),
                  st.lists(st.integers(), max_size=3), st.dates(), st.dictionaries(st.text(max_size=5),
                                                                                  st.text(max_size=5), max_size=2))


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if value != value else "inf" if value == float("inf") else "-inf" if value == float(
            "-inf") else repr(value)
    if isinstance(value, int | dt.date):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON's escapes are TOML basic-string escapes
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"


@BUDGET
@given(st.lists(st.tuples(st.sampled_from(list(SECTIONS)), st.integers(0, 9), VALUE), max_size=8))
def test_fuzz_settings_files_give_settings_or_one_config_error(tmp_path: Path, entries: list[tuple[Any, int, Any]]) -> None:
    sections: dict[str | None, dict[str, Any]] = {}
    for section, i, value in entries:
        keys = SECTIONS[section]
        sections.setdefault(section, {})[keys[i % len(keys)]] = value
    lines = [f"{k} = {_toml(v)}" for k, v in sections.pop(None, {}).items()]
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {_toml(v)}" for k, v in values.items()]
    path = tmp_path / "lake.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _load(path)


@BUDGET
@given(st.binary(max_size=80) | st.text(max_size=80).map(str.encode))
def test_fuzz_settings_files_of_any_bytes(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "lake.toml"
    path.write_bytes(data)
    _load(path)


def _load(path: Path) -> None:
    try:
        result = load_settings(env={}, config_file=path)
    except ConfigError as exc:
        assert str(path) in str(exc)
        return
    assert isinstance(result, Settings)
    numbers = [result.catalog.stale_after_seconds, result.server.token_cache_seconds,
               *([result.catalog.heartbeat_seconds] if result.catalog.heartbeat_seconds is not None else [])]
    assert all(n == n and abs(n) != float("inf") for n in numbers)  # no NaN or infinity gets through
