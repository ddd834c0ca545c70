"""Exports: Parquet plus manifest, local and S3, byte-identical re-exports, lineage out of the lake."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from lake.handoff import (
    ExportError,
    ExportExistsError,
    SplitError,
    SplitSpec,
    export,
    load,
    read_manifest,
    verify_export,
)
from lake.lakehouse import Lake
from lake.storage import S3Storage
from tests.lake.handoff import build_sources, save_training

SPEC = SplitSpec.parse("train=0.8,validation=0.1,test=0.1", keys="customer_id")


def _target(lake: Lake, tmp_path: Path, name: str) -> tuple[str, pafs.FileSystem, str]:
    """An export location on the same storage as the lake: (uri, file system, path inside it)."""
    if isinstance(lake.storage, S3Storage):
        uri = f"s3://{lake.storage.bucket}/exports/{name}"
        return uri, lake.storage.arrow_fs(), uri.split("://", 1)[1]
    path = tmp_path / "exports" / name
    return str(path), pafs.LocalFileSystem(), str(path)


def _read_bytes(fs: pafs.FileSystem, path: str) -> bytes:
    with fs.open_input_stream(path) as fh:
        return bytes(fh.read())


@pytest.fixture
def churn(lake: Lake) -> tuple[Lake, dict[str, Any]]:
    build_sources(lake, rows=2000)
    return lake, save_training(lake)


def test_export_with_split_writes_parquet_and_a_complete_manifest(churn: tuple[Lake, dict[str, Any]],
                                                                  tmp_path: Path) -> None:
    lake, recipe = churn
    uri, fs, base = _target(lake, tmp_path, "churn")
    seen: list[tuple[int, int, int]] = []
    result = export(lake, "churn", uri, splits=SPEC, rows_per_file=700, row_group_size=250,
                    progress=lambda rows, total, files: seen.append((rows, total, files)))
    # The progress callback (`lake training export`'s bar): rows written of all, files opened, only forward.
    assert seen and seen[-1][:2] == (2000, 2000) and seen[-1][2] == len(result.files)
    assert [s[0] for s in seen] == sorted(s[0] for s in seen) and [s[2] for s in seen] == sorted(s[2] for s in seen)
    manifest = json.loads(_read_bytes(fs, f"{base}/manifest.json"))
    assert manifest == result.manifest and read_manifest(uri, lake=lake) == manifest
    assert manifest["format"] == "lake-handoff-export/1" and manifest["location"] == uri
    d = manifest["dataset"]
    assert (d["kind"], d["name"], d["table"], d["version"], d["training_id"]) == (
        "training", "churn", "training.churn", 0, recipe["id"])
    assert d["sources"]["gold.customers"]["version"] == 0 and d["content_hash"] == recipe["content_hash"]
    assert d["features"] == recipe["features"] and d["row_count"] == 2000 == manifest["row_count"]
    assert [c["name"] for c in manifest["schema"]] == ["customer_id", "spend", "churned"]
    assert manifest["split"]["keys"] == ["customer_id"] and manifest["split"]["fractions"] == dict(SPEC.fractions)
    assert manifest["split"]["rows"] == load(lake, "churn").split_counts(SPEC)
    assert manifest["run_id"] == result.run_id and manifest["created_at"]
    assert manifest["packages"]["pyarrow"] == pa.__version__
    assert manifest["parquet"] == {"compression": "zstd", "rows_per_file": 700, "row_group_size": 250}

    # Every listed file is there with its size and checksum, and nothing else was written.
    listed = {f["path"] for f in manifest["files"]}
    on_disk = {i.path[len(base) + 1:] for i in fs.get_file_info(pafs.FileSelector(base, recursive=True))
               if i.type == pafs.FileType.File}
    assert on_disk == listed | {"manifest.json"}
    for f in manifest["files"]:
        data = _read_bytes(fs, f"{base}/{f['path']}")
        assert len(data) == f["bytes"] and hashlib.sha256(data).hexdigest() == f["sha256"]
        parquet = pq.ParquetFile(pa.BufferReader(data))
        assert parquet.metadata.num_rows == f["rows"] <= 700
        assert all(parquet.metadata.row_group(g).num_rows <= 250 for g in range(parquet.num_row_groups))
    assert verify_export(uri, lake=lake) == []

    # Each split folder reads back (pyarrow over the same storage) with exactly its keys.
    for name in SPEC.names:
        table = pq.read_table(f"{base}/{name}", filesystem=fs)
        assert table.num_rows == manifest["split"]["rows"][name]
        assert set(SPEC.labels(table).to_pylist()) == {name}
    everything = pa.concat_tables(pq.read_table(f"{base}/{n}", filesystem=fs) for n in SPEC.names)
    original = lake.table("training.churn").to_arrow(version=0)
    assert everything.sort_by("customer_id").equals(original.sort_by("customer_id"))


def test_re_export_of_a_version_is_byte_identical(churn: tuple[Lake, dict[str, Any]], tmp_path: Path) -> None:
    lake, _ = churn
    first_uri, fs, first_base = _target(lake, tmp_path, "one")
    second_uri, _, second_base = _target(lake, tmp_path, "two")
    one = export(lake, "churn", first_uri, splits=SPEC, rows_per_file=500)
    save_training(lake)  # a newer version exists now; the export below pins version 0 by name
    two = export(lake, "churn@0", second_uri, splits=SPEC, rows_per_file=500)
    assert [(f.path, f.sha256, f.bytes) for f in one.files] == [(f.path, f.sha256, f.bytes) for f in two.files]
    assert one.manifest["data_sha256"] == two.manifest["data_sha256"]
    for f in one.files:
        assert _read_bytes(fs, f"{first_base}/{f.path}") == _read_bytes(fs, f"{second_base}/{f.path}")
    assert one.run_id != two.run_id

    # Overwriting in place gives the same bytes again; a different split gives different files.
    again = export(lake, "churn@0", first_uri, splits=SPEC, rows_per_file=500, overwrite=True)
    assert again.manifest["data_sha256"] == one.manifest["data_sha256"]
    plain = export(lake, "churn@0", first_uri, overwrite=True)
    assert [f.path for f in plain.files] == ["data/part-00000.parquet"] and plain.manifest["split"] is None
    assert verify_export(first_uri, lake=lake) == []
    remaining = {i.path[len(first_base) + 1:] for i in
                 fs.get_file_info(pafs.FileSelector(first_base, recursive=True)) if i.type == pafs.FileType.File}
    assert remaining == {"manifest.json", "data/part-00000.parquet"}


def test_export_runs_carry_lineage_from_raw_source_to_the_export(churn: tuple[Lake, dict[str, Any]],
                                                                 tmp_path: Path) -> None:
    lake, _ = churn
    uri, _, base = _target(lake, tmp_path, "lineage")
    result = export(lake, "churn", uri)
    assert result.run_id is not None
    info = lake.catalog.run_info(result.run_id)
    assert info["job"] == "handoff.export.churn" and info["status"] == "completed"
    assert info["inputs"] == [{"namespace": "lake", "name": "training.churn", "version": 0}]
    namespace = f"s3://{base.split('/', 1)[0]}" if uri.startswith("s3://") else "file"
    name = base.split("/", 1)[1] if uri.startswith("s3://") else base
    assert info["outputs"] == [{"namespace": namespace, "name": name, "version": 0}]
    assert info["stats"]["rows"] == 2000 and info["parameters"]["out"] == uri
    graph = lake.catalog.lineage(name, namespace=namespace, direction="upstream", depth=10)
    assert {"bronze.customers", "gold.customers", "training.churn"} <= {n.name for n in graph.nodes}

    # Inside the caller's run, the export is a child run.
    with lake.run("ship.model") as outer:
        child = export(lake, "gold.customers", f"{uri}-gold")
    assert child.manifest["dataset"]["kind"] == "curated" and child.manifest["dataset"]["sources"] == {
        "bronze.customers": {"version": 0}}
    assert child.run_id != outer.run_id


def test_exports_refuse_to_clobber_and_clean_up_after_failures(churn: tuple[Lake, dict[str, Any]],
                                                               tmp_path: Path) -> None:
    lake, _ = churn
    uri, fs, base = _target(lake, tmp_path, "guarded")
    export(lake, "churn", uri)
    with pytest.raises(ExportExistsError, match="already holds an export.*--overwrite"):
        export(lake, "churn", uri)
    stranger = f"{base}-other/notes.txt"
    if isinstance(fs, pafs.LocalFileSystem):
        fs.create_dir(f"{base}-other")
    with fs.open_output_stream(stranger) as fh:
        fh.write(b"keep me")
    with pytest.raises(ExportExistsError, match="not an export"):
        export(lake, "churn", f"{uri}-other", overwrite=True)
    assert _read_bytes(fs, stranger) == b"keep me"
    with pytest.raises(ExportError, match="compression"):
        export(lake, "churn", f"{uri}-bad", compression="nope")
    left = fs.get_file_info(pafs.FileSelector(f"{base}-bad", recursive=True, allow_not_found=True))
    assert [i.path for i in left if i.type == pafs.FileType.File] == []
    failed = lake.catalog.runs(job="handoff.export.churn", status="failed")
    assert len(failed) == 3
    with pytest.raises(ExportError, match="gs://"):
        export(lake, "churn", "gs://bucket/x")
    with pytest.raises(SplitError, match="'data' cannot be a split name"):
        export(lake, "churn", f"{uri}-x", splits=SplitSpec.parse("data=0.5,test=0.5", keys="customer_id"))


def test_a_tampered_file_is_reported(local_lake: Lake, tmp_path: Path) -> None:
    build_sources(local_lake, rows=100)
    result = export(local_lake, "gold.customers", str(tmp_path / "out"))
    path = tmp_path / "out" / result.files[0].path
    path.write_bytes(path.read_bytes()[:-10])
    (problem,) = verify_export(str(tmp_path / "out"))
    assert "does not match the manifest" in problem
    with pytest.raises(ExportError, match="not a finished export"):
        read_manifest(str(tmp_path))
