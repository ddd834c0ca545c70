"""Delta tables written from Python data, on a local folder and on the S3 API."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from lake.duck import connect
from lake.errors import (
    InvalidPredicateError,
    LakeError,
    MergeError,
    RetentionError,
    SchemaMismatchError,
    TableExistsError,
    TableNotFoundError,
    VersionNotFoundError,
)
from lake.lakehouse import Lake


def events(start: int, n: int, **extra: object) -> pa.Table:
    ids = list(range(start, start + n))
    data = {
        "id": ids,
        "country": [["FR", "DE", "US"][i % 3] for i in ids],
        "amount": [i * 1.5 for i in ids],
        "ts": [dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=i) for i in ids],
    }
    data.update(extra)  # type: ignore[arg-type]
    return pa.table(data)


def independent_reads(lake: Lake, name: str) -> tuple[int, int, int]:
    """Row counts of a table as delta-rs, DuckDB and Polars read it, with no lake code."""
    table = lake.table(name)
    opts = lake.storage.delta_options()
    n_delta = DeltaTable(table.uri, storage_options=opts).to_pyarrow_table().num_rows
    con = connect(lake.storage)
    n_duck = con.execute(f"SELECT count(*) FROM delta_scan('{table.uri}')").fetchone()[0]
    n_polars = pl.read_delta(table.uri, storage_options=opts or None).height
    return n_delta, n_duck, n_polars


def test_create_append_and_read_back_everywhere(lake: Lake) -> None:
    t = lake.table("bronze.events")
    first = t.write(events(0, 100), partition_by=["country"], description="raw events")
    assert (first.operation, first.version, first.rows_written) == ("CREATE", 0, 100)
    second = t.write(events(100, 50).to_pandas())
    assert (second.operation, second.version) == ("APPEND", 1)
    third = t.write(pl.from_arrow(events(150, 25)))
    assert third.version == 2
    assert t.partition_columns == ["country"]
    got = t.to_arrow().sort_by("id")
    assert got.column("id").to_pylist() == list(range(175))
    assert got.column("amount").to_pylist() == [i * 1.5 for i in range(175)]
    assert independent_reads(lake, "bronze.events") == (175, 175, 175)
    assert t.details()["description"] == "raw events"


def test_time_travel_by_version_and_timestamp(lake: Lake) -> None:
    t = lake.table("silver.tt")
    t.write(events(0, 10))
    t.write(events(10, 10))
    t.write(events(0, 5), mode="overwrite")
    assert t.to_arrow(version=0).num_rows == 10
    assert t.to_arrow(version=1).num_rows == 20
    assert t.to_arrow().num_rows == 5
    history = t.history()
    assert [h["version"] for h in history] == [2, 1, 0]
    assert [h["operation"] for h in history] == ["OVERWRITE", "APPEND", "CREATE"]
    assert history[1]["metrics"]["rows_written"] == 10
    v1_time = history[1]["timestamp"]
    assert t.to_arrow(as_of=v1_time).num_rows == 20
    assert t.to_arrow(as_of=v1_time.isoformat()).num_rows == 20
    with pytest.raises(LakeError, match="no version at or before"):
        t.to_arrow(as_of="2001-01-01T00:00:00Z")
    with pytest.raises(VersionNotFoundError, match="no version 99"):
        t.to_arrow(version=99)


def test_overwrite_only_rows_a_predicate_selects(lake: Lake) -> None:
    t = lake.table("silver.replace")
    t.write(events(0, 30), partition_by=["country"])
    new_fr = events(0, 30).filter(pa.compute.equal(events(0, 30)["country"], "FR"))
    new_fr = new_fr.set_column(2, "amount", pa.array([-1.0] * new_fr.num_rows))
    result = t.write(new_fr, mode="overwrite", replace_where="country = 'FR'")
    assert result.operation == "OVERWRITE"
    df = t.to_pandas()
    assert len(df) == 30
    assert (df[df.country == "FR"].amount == -1.0).all()
    assert (df[df.country != "FR"].amount >= 0).all()


def test_merge_updates_inserts_and_deletes(lake: Lake) -> None:
    t = lake.table("silver.customers")
    # Ten appends: the keys the merge touches are spread over ten files.
    for start in range(0, 100, 10):
        t.write(events(start, 10))
    assert len(t.files()) == 10
    src = events(95, 10).to_pandas()  # 95..99 exist, 100..104 are new
    src["amount"] = -src["amount"]
    src.loc[src.id == 96, "country"] = "DEL"
    result = t.merge(src, keys=["id"], delete_when="country = 'DEL'")
    assert result.operation == "MERGE"
    assert result.metrics["rows_inserted"] == 5
    assert result.metrics["rows_updated"] == 4
    assert result.metrics["rows_deleted"] == 1
    df = t.to_pandas().set_index("id").sort_index()
    assert len(df) == 104
    assert 96 not in df.index
    assert (df.loc[[95, 97, 98, 99, 100, 104], "amount"] < 0).all()
    assert (df.loc[:94, "amount"] >= 0).all()


def test_merge_full_sync_deletes_target_rows_missing_from_source(lake: Lake) -> None:
    t = lake.table("silver.sync")
    t.write(events(0, 10))
    t.merge(events(5, 10), keys=["id"], delete_not_matched_by_source=True)
    assert sorted(t.to_arrow().column("id").to_pylist()) == list(range(5, 15))


def test_merge_refuses_duplicate_source_keys(lake: Lake) -> None:
    t = lake.table("silver.dups")
    t.write(events(0, 5))
    dup = pa.concat_tables([events(1, 2), events(1, 1)])
    with pytest.raises(MergeError, match="several rows"):
        t.merge(dup, keys=["id"])
    assert t.version() == 0


def test_delete_by_predicate(lake: Lake) -> None:
    t = lake.table("silver.del")
    t.write(events(0, 50), partition_by=["country"])
    result = t.delete("amount > 30 AND country = 'FR'")
    assert result.metrics["rows_deleted"] == len([i for i in range(50) if i * 1.5 > 30 and i % 3 == 0])
    df = t.to_pandas()
    assert not ((df.amount > 30) & (df.country == "FR")).any()
    assert len(df) == 50 - result.metrics["rows_deleted"]
    with pytest.raises(InvalidPredicateError, match="unknown column"):
        t.delete("nope = 1")


def test_schema_enforcement_names_columns_and_changes_nothing(lake: Lake) -> None:
    t = lake.table("bronze.strict")
    t.write(events(0, 5))
    bad = events(5, 5).set_column(0, "id", pa.array([str(i) for i in range(5, 10)]))
    with pytest.raises(SchemaMismatchError) as err:
        t.write(bad)
    assert "'id'" in str(err.value) and "int64" in str(err.value) and "string" in str(err.value)
    extra = events(5, 5, note=["x"] * 5)
    with pytest.raises(SchemaMismatchError, match="'note'.*not in the table"):
        t.write(extra)
    assert t.version() == 0 and t.to_arrow().num_rows == 5
    # Additive evolution only when asked.
    evolved = t.write(extra, schema_mode="merge")
    assert evolved.schema_changed
    assert t.schema().names == ["id", "country", "amount", "ts", "note"]
    notes = t.to_pandas().sort_values("id")["note"].tolist()
    assert notes[:5] == [None] * 5 and notes[5:] == ["x"] * 5
    # Safe widening (int32 -> int64) and a missing nullable column are accepted.
    narrow = events(10, 2).set_column(0, "id", pa.array([10, 11], pa.int32()))
    t.write(narrow)
    assert t.to_arrow().num_rows == 12


def test_idempotent_writes_with_txn(lake: Lake) -> None:
    t = lake.table("bronze.idem")
    first = t.write(events(0, 10), txn=("ingest-job", 1))
    again = t.write(events(0, 10), txn=("ingest-job", 1))
    assert not first.skipped and again.skipped
    assert again.version == first.version
    assert t.write(events(10, 10), txn=("ingest-job", 2)).version == 1
    assert t.merge(events(0, 3), keys=["id"], txn=("ingest-job", 2)).skipped
    assert t.to_arrow().num_rows == 20
    assert DeltaTable(t.uri, storage_options=lake.storage.delta_options()).transaction_version("ingest-job") == 2


def test_modes_error_and_ignore(lake: Lake) -> None:
    t = lake.table("bronze.modes")
    t.write(events(0, 3), mode="error")
    with pytest.raises(TableExistsError):
        t.write(events(0, 3), mode="error")
    assert t.write(events(0, 3), mode="ignore").skipped
    assert t.to_arrow().num_rows == 3


def test_optimize_compacts_and_vacuum_checks_retention(lake: Lake) -> None:
    t = lake.table("gold.compact")
    for start in range(0, 40, 4):
        t.write(events(start, 4))
    before = t.to_arrow().sort_by("id")
    result = t.optimize()
    assert result.metrics["files_removed"] == 10 and result.metrics["files_added"] == 1
    assert len(t.files()) == 1
    assert t.to_arrow().sort_by("id").equals(before)
    with pytest.raises(RetentionError, match="safe minimum"):
        t.vacuum(retention_hours=0)
    assert t.vacuum(dry_run=True) == []  # nothing older than 7 days
    removed = t.vacuum(retention_hours=0, force=True)
    assert len(removed) == 10
    assert t.to_arrow().sort_by("id").equals(before)


def test_filtered_read_skips_files(lake: Lake) -> None:
    t = lake.table("gold.pruned")
    for start in range(0, 100, 10):
        t.write(events(start, 10))
    got = t.to_arrow(filter="id >= 95")
    assert sorted(got.column("id").to_pylist()) == [95, 96, 97, 98, 99]
    assert t.to_arrow(filter="id >= 95", columns=["id"]).column_names == ["id"]


def test_names_and_paths(local_lake: Lake, tmp_path: object) -> None:
    assert local_lake.table("Bronze.Events").uri.endswith("bronze/events")
    with pytest.raises(LakeError, match="not a table name"):
        local_lake.table("events")
    with pytest.raises(TableNotFoundError, match="lake table ls"):
        local_lake.existing("bronze.missing")
    path_table = local_lake.table(str(tmp_path) + "/by_path")
    path_table.write(events(0, 3))
    assert path_table.to_arrow().num_rows == 3
    local_lake.table("bronze.a").write(events(0, 1))
    local_lake.table("silver.b").write(events(0, 1))
    assert [r.name for r in local_lake.tables()] == ["bronze.a", "silver.b"]


def test_commit_listeners_hear_every_commit(local_lake: Lake) -> None:
    heard: list[tuple[str, str, int | None]] = []
    local_lake.on_commit(lambda table, result: heard.append((table.name, result.operation, result.version)))
    t = local_lake.table("bronze.heard")
    t.write(events(0, 3))
    t.merge(events(2, 3), keys=["id"])
    t.delete("id = 0")
    assert heard == [("bronze.heard", "CREATE", 0), ("bronze.heard", "MERGE", 1), ("bronze.heard", "DELETE", 2)]


def test_pandas_nanosecond_timestamps_are_stored_as_micros(local_lake: Lake) -> None:
    df = pd.DataFrame({"id": [1, 2], "ts": pd.to_datetime(["2024-01-01 00:00:00.123456", "2024-01-02"], utc=True, format="ISO8601")})
    t = local_lake.table("bronze.ns")
    t.write(df)
    assert t.schema().field("ts").type == pa.timestamp("us", tz="UTC")
    assert t.to_pandas()["ts"].tolist() == df["ts"].tolist()


def test_naive_datetimes_into_a_timestamp_column_are_utc_and_aware_ones_into_ntz_are_refused(
        local_lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    """Delta `timestamp` (an instant, UTC) vs `timestamp_ntz` (no time zone): the issue-17 rule, both ways."""
    import json

    from lake.cli.main import main

    instants = local_lake.table("silver.instants")
    instants.write(pd.DataFrame({"id": [1], "at": [pd.Timestamp("2024-01-01 10:00", tz="UTC")]}))
    # Naive values are taken as UTC (what Spark does with the lake's UTC session time zone).
    instants.write(pd.DataFrame({"id": [2], "at": [pd.Timestamp("2024-01-02 10:00")]}))
    instants.write(pa.table({"id": [3], "at": pa.array([dt.datetime(2024, 1, 3, 10)], pa.timestamp("ns"))}))
    got = instants.to_pandas().sort_values("id")
    assert list(got["at"]) == [pd.Timestamp(f"2024-01-0{i} 10:00", tz="UTC") for i in (1, 2, 3)]
    assert instants.schema().field("at").type == pa.timestamp("us", tz="UTC")
    # Aware values into a column with no time zone: refused, with what to do.
    walls = local_lake.table("silver.walls")
    walls.write(pd.DataFrame({"id": [1], "at": [pd.Timestamp("2024-01-01 10:00")]}))
    paris = pd.DataFrame({"id": [2], "at": [pd.Timestamp("2024-01-02 11:00", tz="Europe/Paris")]})
    with pytest.raises(SchemaMismatchError, match=r"timestamp_ntz \(no time zone\).*tz_convert\('UTC'\)"
                                                  r"\.dt\.tz_localize\(None\)"):
        walls.write(paris)
    paris["at"] = paris["at"].dt.tz_convert("UTC").dt.tz_localize(None)  # the conversion the message gives
    walls.write(paris)
    assert list(walls.to_pandas().sort_values("id")["at"]) == [pd.Timestamp("2024-01-01 10:00"),
                                                                pd.Timestamp("2024-01-02 10:00")]
    # `lake table show` names Delta's kind of each timestamp column.
    for name, kind in (("silver.instants", "timestamp (an instant, in UTC)"),
                       ("silver.walls", "timestamp_ntz (no time zone)")):
        assert main(["--root", local_lake.storage.root, "table", "show", name, "--json"]) == 0
        columns = {c["name"]: c for c in json.loads(capsys.readouterr().out)["schema"]}
        assert columns["at"]["delta_type"] == kind and columns["id"]["delta_type"] == "long"
    assert main(["--root", local_lake.storage.root, "table", "show", "silver.walls"]) == 0
    assert "timestamp_ntz (no time zone)" in capsys.readouterr().out


def test_a_change_feed_column_steers_a_merge_from_the_source_only(local_lake: Lake) -> None:
    """Issue 17: `merge(updates, keys=["id"], delete_when="op = 'D'")` was refused because `op` is not a
    table column; a column the condition names that the table lacks steers the merge and is not stored."""
    t = local_lake.table("silver.feed")
    t.write(pa.table({"id": [1, 2, 3], "country": ["FR", "DE", "IT"]}))
    updates = [{"id": 1, "country": "BE", "op": "U"}, {"id": 2, "country": "DE", "op": "D"},
               {"id": 4, "country": "ES", "op": "I"}]
    result = t.merge(updates, keys=["id"], delete_when="op = 'D'")
    assert (result.metrics["rows_updated"], result.metrics["rows_deleted"], result.metrics["rows_inserted"]) == (1, 1, 1)
    assert t.schema().names == ["id", "country"]  # op is not stored
    assert sorted(t.to_arrow().to_pylist(), key=lambda r: r["id"]) == [
        {"id": 1, "country": "BE"}, {"id": 3, "country": "IT"}, {"id": 4, "country": "ES"}]
    with pytest.raises(LakeError, match="nope"):  # a misspelt column is still an error
        t.merge(updates, keys=["id"], delete_when="nope = 'D'")


def test_write_takes_a_suite_file_path(local_lake: Lake, tmp_path: Path) -> None:
    """Issue 17: `table.write(df, quality="suite.yaml")` gave an AttributeError."""
    suite = tmp_path / "suite.yaml"
    suite.write_text("table: silver.q\npolicy: quarantine\nexpectations:\n"
                     "  - expect_column_values_to_be_between: {column: n, min_value: 0}\n")
    t = local_lake.table("silver.q")
    for quality in (str(suite), suite):
        t.write(pa.table({"n": [1, -2]}), quality=quality)
    assert t.to_arrow().column("n").to_pylist() == [1, 1]
    assert local_lake.table("quarantine.silver_q").to_arrow().num_rows == 2
    with pytest.raises(LakeError, match="missing.yaml") as err:
        t.write(pa.table({"n": [1]}), quality=str(tmp_path / "missing.yaml"))
    assert "\n" not in err.value.message.strip()
    with pytest.raises(LakeError, match=r"load_suite\('quality/x.yaml'\)"):
        t.write(pa.table({"n": [1]}), quality=42)  # type: ignore[arg-type]
