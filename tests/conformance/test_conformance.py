"""Every reader of the lake against hand-built tables: the protocol's rows, or a clear refusal.

The tables are built once per session by :mod:`tests.conformance.cases` under a lake's
root (``conf.<case>``); each test reads one case with one reader at every version the
case defines and compares with the expected rows, or checks the refusal the case declares.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lake.errors import LakeError, TableError, UnsupportedTableFeatureError, VersionNotFoundError
from lake.lakehouse import Lake
from tests.conformance import matrix
from tests.conformance.cases import ALL_READERS, CASES, Built, Case
from tests.conformance.delta_builder import DeltaBuilder, Field
from tests.conformance.readers import FILTERED, READERS, Context, expected
from tests.conftest import make_settings

TIME_TRAVEL = {"to_arrow", "to_spark", "lake_at", "drift_source", "file_reader", "handoff", "feature_index"}
"""Readers checked at every version of a case (the others at the latest)."""
SPARK_READERS = {"to_spark", "to_spark_filter"}
ENGINE_ERRORS = {"drift_source"}
"""Readers whose refusal may be the engine's own error (drift reports pass DuckDB's errors on)."""


@pytest.fixture(scope="session")
def conformance(tmp_path_factory: pytest.TempPathFactory) -> tuple[Lake, dict[str, Built]]:
    root = tmp_path_factory.mktemp("conformance")
    lake = Lake(make_settings(root=str(root / "lake"), catalog={"url": f"sqlite:///{root}/catalog.db"},
                              cache_dir=str(root / "cache")))
    built = {}
    for case in CASES:
        built[case.name] = case.build(Path(lake.storage.uri("conf", case.name)))
    return lake, built


def _squash(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum()).removesuffix("s")


def _assert_refused(exc: BaseException, feature: str, reader: str) -> None:
    if isinstance(exc, UnsupportedTableFeatureError):
        named = exc.context.get("feature") or ""
        assert _squash(feature) in _squash(str(named) + str(exc)), (feature, str(exc))
    else:  # refused by the engine itself (DuckDB, delta-rs): the message must name the feature
        assert _squash(feature)[:12] in _squash(str(exc)), (feature, reader, str(exc))


@pytest.mark.parametrize("reader", ALL_READERS)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_reader(case: Case, reader: str, conformance: tuple[Lake, dict[str, Built]], request: Any) -> None:
    lake, built = conformance
    b = built[case.name]
    ctx = Context(lake, request.getfixturevalue("spark") if reader in SPARK_READERS else None, b.time_column)
    read = READERS[reader]
    name = f"conf.{case.name}"
    versions = sorted(b.versions) if reader in TIME_TRAVEL else [b.latest]
    for version in versions:
        rows = b.versions[version]
        at = None if version == b.latest else version
        refusal = case.refused_by(reader) or case.refused_versions.get(version)
        if refusal is not None:
            with pytest.raises(Exception) as err:  # noqa: B017 - checked just below
                read(ctx, name, at, b.filter)
            if reader not in ENGINE_ERRORS:
                assert isinstance(err.value, LakeError), repr(err.value)
            _assert_refused(err.value, refusal, reader)
            continue
        if rows is None:
            with pytest.raises(VersionNotFoundError, match=f"no version {version} any more"):
                read(ctx, name, at, b.filter)
            continue
        want = [r for r in rows if b.keep(r)] if reader in FILTERED else rows
        if reader == "feature_index":  # the event time is the index's order, not a feature
            want = [{k: v for k, v in r.items() if k != b.time_column} for r in want]
        got = read(ctx, name, at, b.filter)
        assert got == expected(want), f"{case.name} v{version} through {reader}"


def test_spark_filter_skips_files_without_dropping_rows(conformance: tuple[Lake, dict[str, Built]],
                                                         spark: Any) -> None:
    """Timestamp maxima truncated to the millisecond (as delta-spark writes them) still bound the
    file: the file holding 12:00:00.000999 is read for ``t > 12:00:00.0005``."""
    lake, built = conformance
    rows = lake.table("conf.ts_micros").to_spark(spark, filter=built["ts_micros"].filter).toArrow().to_pylist()
    assert sorted(r["id"] for r in rows) == [4, 5]


def test_readme_table_is_current() -> None:
    text = matrix.README.read_text(encoding="utf-8")
    assert matrix.render() in text, "README's conformance table is stale: python -m tests.conformance.matrix --write"


def test_malformed_log_entry_is_not_called_a_missing_version(tmp_path: Path) -> None:
    """A version whose metaData has a null schemaString is a broken log entry, not a cleaned-up version."""
    lake = Lake(make_settings(root=str(tmp_path / "lake")), catalog=False)
    b = DeltaBuilder(Path(lake.storage.uri("conf", "broken")), [Field("id", "long")])
    b.commit([b.add(b.add_file([{"id": 1}]))])
    b.commit([], metadata={**b.metadata, "schemaString": None})
    with pytest.raises(TableError) as err:
        lake.table("conf.broken").to_arrow(version=1)
    assert not isinstance(err.value, VersionNotFoundError) and "version 1" in str(err.value)
    assert lake.table("conf.broken").to_arrow(version=0).num_rows == 1
