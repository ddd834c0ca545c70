"""Every lake commit is a catalog version inside a run; reads inside a run are its inputs."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from lake.lakehouse import Lake


def test_commits_outside_runs_get_a_run_each(local_lake: Lake) -> None:
    t = local_lake.table("bronze.events")
    t.write(pa.table({"id": [1, 2], "kind": ["a", "b"]}))
    t.merge(pa.table({"id": [2, 3], "kind": ["B", "c"]}), keys=["id"])
    t.delete("id = 1")
    shown = local_lake.catalog.show("bronze.events")
    assert [v["version"] for v in shown["versions"]] == [2, 1, 0]
    assert [v["operation"] for v in shown["versions"]] == ["DELETE", "MERGE", "CREATE"]
    assert [v["rows"] for v in shown["versions"]] == [2, 3, 2]
    assert shown["location"] == t.uri and shown["format"] == "delta" and shown["layer"] == "bronze"
    jobs = {r["job"] for r in local_lake.catalog.runs()}
    assert jobs == {"lake.create.bronze.events", "lake.merge.bronze.events", "lake.delete.bronze.events"}
    assert [c["name"] for c in shown["schema"]] == ["id", "kind"]


@pytest.mark.spark
def test_spark_job_inside_a_run_records_exact_input_versions(local_lake: Lake, spark: Any) -> None:
    src = local_lake.table("bronze.src")
    src.write(spark.range(0, 10).selectExpr("id", "id * 2 as v"))
    src.write(spark.range(10, 20).selectExpr("id", "id * 2 as v"))
    with local_lake.run("build.gold", parameters={"mode": "test"}) as run:
        df = src.to_spark(spark, version=0)
        local_lake.table("gold.sum").write(df.groupBy().sum("v").withColumnRenamed("sum(v)", "total"))
    info = local_lake.catalog.run_info(run.run_id)
    assert info["inputs"] == [{"namespace": "lake", "name": "bronze.src", "version": 0}]
    assert info["outputs"] == [{"namespace": "lake", "name": "gold.sum", "version": 0}]
    assert info["parameters"] == {"mode": "test"}
    import subprocess

    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True)
    assert info["code_version"] == (head.stdout.strip() if head.returncode == 0 else None)
    graph = local_lake.catalog.lineage("gold.sum", version=0)
    assert ("bronze.src@0", "gold.sum@0") in graph.edges


def test_a_failing_run_is_recorded_failed_and_its_commit_kept(local_lake: Lake) -> None:
    with pytest.raises(RuntimeError, match="after the commit"), local_lake.run("half.done"):
        local_lake.table("silver.partial").write(pa.table({"id": [1]}))
        raise RuntimeError("failed after the commit")
    (failed,) = local_lake.catalog.runs(status="failed")
    assert failed["job"] == "half.done" and "after the commit" in failed["error"]
    assert local_lake.catalog.run_info(failed["run_id"])["outputs"][0]["version"] == 0


def test_a_lake_without_catalog_records_nothing(tmp_path: Any) -> None:
    from lake.errors import LakeError
    from tests.conftest import make_settings

    lake = Lake(make_settings(root=str(tmp_path / "l")), catalog=False)
    lake.table("bronze.x").write(pa.table({"id": [1]}))
    assert not (tmp_path / "l" / "catalog.db").exists()
    with pytest.raises(LakeError, match="catalog=False"), lake.run("x"):
        pass
