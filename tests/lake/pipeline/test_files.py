"""File ingestion: exact quarantine counts, incremental runs, changed files, schema changes, retries."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lake.errors import SchemaMismatchError
from lake.lakehouse import Lake
from lake.pipeline import CsvOptions, FileSource, Job
from lake.pipeline.runner import JobError, JobRunner

pytestmark = pytest.mark.spark
COLUMNS = {"id": "BIGINT", "name": "VARCHAR", "amount": "DOUBLE", "day": "DATE"}


def put(lake: Lake, rel: str, data: bytes) -> str:
    """Write a source file under the lake root (local folder or S3 bucket)."""
    uri = lake.storage.uri(rel)
    fs = lake.storage.arrow_fs()
    path = lake.storage.fs_path(uri)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(path) as fh:
        fh.write(data)
    return uri


def make_csv(start: int, n: int, bad: dict[int, str] | None = None) -> tuple[bytes, set[int], dict[int, str]]:
    """n data rows; rows listed in ``bad`` (by index) are replaced by malformed lines.

    Returns the bytes, the ids of good rows and {line number: raw bad line}.
    """
    lines = [b"id,name,amount,day"]
    good, bad_lines = set(), {}
    for i in range(n):
        rid = start + i
        kind = (bad or {}).get(i)
        if kind == "fields":
            raw = f"{rid},only,two"
        elif kind == "number":
            raw = f"{rid},n{rid},not-a-number,2024-01-02"
        elif kind == "date":
            raw = f"{rid},n{rid},1.5,2024-02-31"
        elif kind == "extra":
            raw = f"{rid},n{rid},1.5,2024-01-02,surplus"
        else:
            raw = f'{rid},"name, {rid}",{rid * 0.5},2024-01-{1 + rid % 28:02d}'
            if kind is None:
                good.add(rid)
        if kind == "encoding":
            lines.append(f"{rid},caf".encode() + b"\xe9\xff" + b",1.0,2024-01-03")
            bad_lines[i + 2] = "encoding"
            continue
        lines.append(raw.encode())
        if kind:
            bad_lines[i + 2] = raw
    return b"\n".join(lines) + b"\n", good, bad_lines


@pytest.fixture
def runner(lake: Lake, spark: Any) -> JobRunner:
    return JobRunner(lake, spark=spark)


def csv_job(name: str = "orders", **kw: Any) -> Job:
    fields = {"source": FileSource("landing/orders/*.csv", columns=COLUMNS), "target": "bronze.orders"}
    fields.update(kw)
    return Job(name=name, **fields)


def test_bad_lines_are_quarantined_and_counted_exactly(runner: JobRunner, lake: Lake) -> None:
    bad = {5: "fields", 17: "number", 42: "date", 99: "extra", 123: "encoding", 200: "number"}
    data, good, bad_lines = make_csv(0, 300, bad)
    put(lake, "landing/orders/a.csv", data)
    data2, good2, bad2 = make_csv(1000, 50, {0: "fields"})
    put(lake, "landing/orders/b.csv", data2)
    report = runner.run(csv_job(partition_by=["day"]))
    assert report.rows_read == 350 and report.files == 2
    assert report.rows_quarantined == len(bad_lines) + len(bad2) == 7
    assert report.rows_written == len(good) + len(good2) == 343
    assert report.rows_read == report.rows_written + report.rows_quarantined
    ids = sorted(lake.table("bronze.orders").to_arrow().column("id").to_pylist())
    assert ids == sorted(good | good2)
    q = lake.table("quarantine.bronze_orders").to_arrow().to_pylist()
    by_line = {(Path(r["source_file"]).name, r["line"]): r for r in q}
    assert set(by_line) == {("a.csv", n) for n in bad_lines} | {("b.csv", n) for n in bad2}
    assert by_line[("a.csv", 7)]["raw"] == bad_lines[7] and "Columns" in by_line[("a.csv", 7)]["reason"]
    assert by_line[("a.csv", 19)]["error_type"] == "CAST" and "amount" in by_line[("a.csv", 19)]["reason"]
    assert by_line[("a.csv", 44)]["column_name"] == "day"
    assert by_line[("a.csv", 125)]["error_type"] == "INVALID ENCODING"
    assert all(r["job"] == "orders" and r["batch"] == 1 for r in q)
    stats = lake.catalog.run_info(report.run_id)["stats"]
    assert (stats["rows_read"], stats["rows_written"], stats["rows_quarantined"]) == (350, 343, 7)
    outputs = {o["name"] for o in lake.catalog.run_info(report.run_id)["outputs"]}
    assert outputs == {"bronze.orders", "quarantine.bronze_orders"}


def test_incremental_runs_read_only_new_files_and_replace_changed_ones(runner: JobRunner, lake: Lake) -> None:
    put(lake, "landing/orders/a.csv", make_csv(0, 100)[0])
    first = runner.run(csv_job())
    assert first.rows_written == 100
    again = runner.run(csv_job())
    assert again.skipped and again.rows_read == 0
    assert lake.table("bronze.orders").version() == first.version
    assert runner.run(csv_job()).batch == again.batch == first.batch + 1  # no batch used up by a no-op
    put(lake, "landing/orders/b.csv", make_csv(100, 10)[0])
    second = runner.run(csv_job())
    assert second.files == 1 and second.rows_written == 10
    # a.csv is delivered again with corrections: its rows are replaced, not duplicated.
    import time

    time.sleep(1.1)
    put(lake, "landing/orders/a.csv", make_csv(0, 80)[0])
    third = runner.run(csv_job())
    assert third.files == 1 and third.rows_written == 80
    ids = sorted(lake.table("bronze.orders").to_arrow().column("id").to_pylist())
    assert ids == list(range(0, 80)) + list(range(100, 110))
    full = runner.run(csv_job(), full_refresh=True)
    assert full.files == 2 and full.rows_written == 90
    assert lake.table("bronze.orders").to_arrow().num_rows == 90


def test_a_retry_after_a_crash_does_not_duplicate(runner: JobRunner, lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    from lake.pipeline import ledger

    put(lake, "landing/orders/a.csv", make_csv(0, 100)[0])
    real = ledger.record

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("killed between the commit and the ledger")

    monkeypatch.setattr(ledger, "record", crash)
    with pytest.raises(RuntimeError, match="killed"):
        runner.run(csv_job())
    assert lake.table("bronze.orders").to_arrow().num_rows == 100  # the commit happened
    monkeypatch.setattr(ledger, "record", real)
    retry = runner.run(csv_job())
    assert retry.batch == 1  # the same batch again: its commit is recognised and skipped
    assert lake.table("bronze.orders").to_arrow().num_rows == 100
    assert lake.table("bronze.orders").version() == 0
    assert runner.run(csv_job()).skipped
    failed = lake.catalog.runs(job="orders", status="failed")
    assert len(failed) == 1 and "killed" in failed[0]["error"]


def test_new_columns_fail_or_join_by_policy_and_changed_types_fail(runner: JobRunner, lake: Lake) -> None:
    put(lake, "landing/orders/a.csv", make_csv(0, 10)[0])
    runner.run(csv_job(source=FileSource("landing/orders/*.csv")))  # inferred types
    assert lake.table("bronze.orders").schema().field("amount").type == pa.float64()
    put(lake, "landing/orders/b.csv", b"id,name,amount,day,channel\n50,x,1.0,2024-01-01,web\n")
    with pytest.raises(SchemaMismatchError, match=r"new column\(s\) 'channel'"):
        runner.run(csv_job(source=FileSource("landing/orders/*.csv")))
    assert lake.table("bronze.orders").version() == 0  # nothing committed
    report = runner.run(csv_job(source=FileSource("landing/orders/*.csv"), schema_policy="add_columns"))
    assert report.rows_written == 1
    t = lake.table("bronze.orders").to_arrow()
    assert "channel" in t.column_names and t.column("channel").to_pylist().count("web") == 1
    # A declared type that contradicts the table fails with both types.
    put(lake, "landing/orders/c.csv", make_csv(60, 3)[0])
    with pytest.raises(SchemaMismatchError, match=r"'amount': the table has double, the job now reads VARCHAR"):
        runner.run(csv_job(source=FileSource("landing/orders/*.csv", columns={**COLUMNS, "amount": "VARCHAR"})))


def test_parquet_sources_and_type_changes(runner: JobRunner, lake: Lake) -> None:
    import io

    def parquet(table: pa.Table) -> bytes:
        buf = io.BytesIO()
        pq.write_table(table, buf)
        return buf.getvalue()

    put(lake, "landing/events/a.parquet", parquet(pa.table({"id": [1, 2], "v": [1.5, 2.5]})))
    job = Job(name="events", source=FileSource("landing/events/*.parquet", format="parquet"), target="bronze.events")
    assert runner.run(job).rows_written == 2
    put(lake, "landing/events/b.parquet", parquet(pa.table({"id": ["3"], "v": [3.5]})))
    with pytest.raises(SchemaMismatchError, match=r"'id': the table has int64, .*b.parquet has string"):
        runner.run(job)
    assert lake.table("bronze.events").to_arrow().num_rows == 2


def test_json_lines_with_bad_records(runner: JobRunner, lake: Lake) -> None:
    lines = [json.dumps({"id": i, "name": f"n{i}", "amount": i * 1.5}) for i in range(20)]
    lines[3] = '{"id": 3, "name": "broken"'
    lines[7] = json.dumps({"id": "seven", "name": "x", "amount": 1.0})
    lines[11] = "[1, 2, 3]"
    put(lake, "landing/json/a.jsonl", ("\n".join(lines) + "\n").encode())
    job = Job(name="json", source=FileSource("landing/json/*.jsonl", format="json",
                                             columns={"id": "BIGINT", "name": "VARCHAR", "amount": "DOUBLE"}),
              target="bronze.json_events")
    report = runner.run(job)
    assert (report.rows_read, report.rows_written, report.rows_quarantined) == (20, 17, 3)
    q = {r["line"]: r for r in lake.table("quarantine.bronze_json_events").to_arrow().to_pylist()}
    assert set(q) == {4, 8, 12}
    assert q[4]["error_type"] == "INVALID JSON" and q[8]["error_type"] == "CAST" and "column id" in q[8]["reason"]


def test_inferred_types_survive_a_few_bad_values(runner: JobRunner, lake: Lake) -> None:
    rng = random.Random(1)
    bad = {i: "number" for i in rng.sample(range(1000), 20)}
    data, good, _ = make_csv(0, 1000, bad)
    put(lake, "landing/orders/a.csv", data)
    report = runner.run(csv_job(source=FileSource("landing/orders/*.csv")))
    assert lake.table("bronze.orders").schema().field("amount").type == pa.float64()
    assert (report.rows_written, report.rows_quarantined) == (980, 20)


def test_clear_errors_for_missing_sources(runner: JobRunner, lake: Lake) -> None:
    with pytest.raises(JobError, match="does not exist"):
        runner.run(csv_job(source=FileSource("landing/nowhere/*.csv", columns=COLUMNS)))
    put(lake, "landing/garbled/a.csv", b"\x00\x01\x02binary\xff\xfe\n\x00\x00\n")
    with pytest.raises(JobError, match="no file to infer the columns from.*a.csv.*declare the columns"):
        runner.run(Job(name="g", source=FileSource("landing/garbled/*.csv"), target="bronze.g"))
    assert not lake.table("bronze.g").exists()


def test_csv_options(runner: JobRunner, lake: Lake) -> None:
    put(lake, "landing/semi/a.csv", "id;label;when\n1;caf\xe9;03/02/2024\n2;NULL;04/02/2024\n".encode("latin-1"))
    job = Job(name="semi", target="bronze.semi", source=FileSource(
        "landing/semi/*.csv", columns={"id": "BIGINT", "label": "VARCHAR", "when": "DATE"},
        csv=CsvOptions(delimiter=";", encoding="latin-1", date_format="%d/%m/%Y")))
    report = runner.run(job)
    assert report.rows_quarantined == 0
    rows = sorted(lake.table("bronze.semi").to_arrow().to_pylist(), key=lambda r: r["id"])
    assert [r["label"] for r in rows] == ["café", None]
    assert str(rows[0]["when"]) == "2024-02-03"


def test_csv_timestamp_format(runner: JobRunner, lake: Lake) -> None:
    texts = ["03/02/2024 14:05:09", "31/12/2023 23:59:59", "29/02/2024 00:00:01", "2024-02-03 14:05:09", ""]
    lines = ["id,at"] + [f"{i},{t}" for i, t in enumerate(texts)]
    put(lake, "landing/times/a.csv", ("\n".join(lines) + "\n").encode())
    fmt = "%d/%m/%Y %H:%M:%S"
    declared = runner.run(Job(name="times", target="bronze.times", source=FileSource(
        "landing/times/*.csv", columns={"id": "BIGINT", "at": "TIMESTAMP"}, csv=CsvOptions(timestamp_format=fmt))))
    assert (declared.rows_written, declared.rows_quarantined) == (4, 1)
    got = {r["id"]: r["at"] for r in lake.table("bronze.times").to_arrow().to_pylist()}
    # Oracle: Python's strptime on the same text; the ISO value does not match the format.
    import datetime as dt

    assert {i: v.replace(tzinfo=None) if v else None for i, v in got.items()} == {
        0: dt.datetime.strptime(texts[0], fmt), 1: dt.datetime.strptime(texts[1], fmt),
        2: dt.datetime.strptime(texts[2], fmt), 4: None}
    (bad,) = lake.table("quarantine.bronze_times").to_arrow().to_pylist()
    assert (bad["line"], bad["column_name"], bad["raw"]) == (5, "at", lines[4])
    # Inferred types use the format too (a column is a timestamp when 95% of its values parse).
    many = ["id,at"] + [f"{i},{i + 1:02d}/01/2024 08:00:00" for i in range(20)] + ["20,2024-01-21 08:00:00"]
    put(lake, "landing/times_many/a.csv", ("\n".join(many) + "\n").encode())
    inferred = runner.run(Job(name="times_inferred", target="bronze.times_inferred", source=FileSource(
        "landing/times_many/*.csv", csv=CsvOptions(timestamp_format=fmt))))
    assert pa.types.is_timestamp(lake.table("bronze.times_inferred").schema().field("at").type)
    assert (inferred.rows_written, inferred.rows_quarantined) == (20, 1)
    assert sorted(v.day for v in lake.table("bronze.times_inferred").to_arrow().column("at").to_pylist()) == list(
        range(1, 21))
    # Without the option the same text does not parse as a timestamp.
    plain = runner.run(Job(name="times_plain", target="bronze.times_plain", source=FileSource(
        "landing/times/*.csv", columns={"id": "BIGINT", "at": "TIMESTAMP"})))
    assert (plain.rows_written, plain.rows_quarantined) == (2, 3)  # the ISO value and the empty one pass


def test_a_full_refresh_does_not_duplicate_the_quarantine(local_lake: Lake, spark: Any) -> None:
    runner = JobRunner(local_lake, spark=spark)
    put(local_lake, "landing/orders/a.csv", make_csv(0, 20, {3: "fields", 7: "number"})[0])
    first = runner.run(csv_job())
    assert first.rows_quarantined == 2
    again = runner.run(csv_job(), full_refresh=True)
    assert again.rows_quarantined == 2 and again.batch == first.batch + 1
    rows = local_lake.table("quarantine.bronze_orders").to_arrow().to_pylist()
    assert sorted((r["line"], r["batch"]) for r in rows) == [(5, again.batch), (9, again.batch)]
    assert local_lake.table("bronze.orders").to_arrow().num_rows == 18


def test_a_spark_failure_is_its_cause_on_the_terminal_and_on_the_run(local_lake: Lake, spark: Any) -> None:
    from lake.errors import SparkError
    from lake.pipeline import TableSource

    local_lake.table("bronze.src").write(pa.table({"id": [1, 2]}))
    job = Job(name="boom", target="silver.boom", mode="overwrite",
              source=TableSource(tables=["bronze.src"], sql="SELECT id, raise_error('boom from the job') AS x "
                                                          "FROM bronze.src"))
    with pytest.raises(SparkError) as caught:
        JobRunner(local_lake, spark=spark).run(job)
    message = caught.value.message
    assert message.startswith("Spark failed: ") and "boom from the job" in message
    assert len(message.splitlines()) == 1 and "\tat " not in message and len(message) < 700
    run = local_lake.catalog.runs(job="boom")[0]
    assert run["status"] == "failed" and run["error"] == f"SparkError: {message}"


def test_progress_reports_files_parsed_and_rows_read(local_lake: Lake, spark: Any) -> None:
    """What `lake ingest` / `lake jobs run` draw as a bar (issue 17: "1 file(s) to ingest" for half a minute)."""
    from lake.cli.progress import Bars
    from lake.pipeline.context import FilesProgress

    for i, n in enumerate((120, 30, 7)):
        put(local_lake, f"landing/orders/{i}.csv", make_csv(i * 1000, n)[0])
    events: list[str] = []
    report = JobRunner(local_lake, spark=spark, progress=events.append).run(csv_job())
    assert "3 file(s) to ingest (0 changed)" in events
    counts = [e for e in events if isinstance(e, FilesProgress)]
    assert counts and all(e.files == 3 for e in counts)
    assert [(e.files_done, e.rows) for e in counts][-1] == (3, 157) == (report.files, report.rows_read)
    assert [e.files_done for e in counts] == sorted(e.files_done for e in counts)  # only ever forward
    assert str(counts[-1]) == "3/3 file(s) parsed, 157 rows read"
    # The CLI's bars take the same events (and draw nothing when stderr is not a terminal).
    with Bars("orders") as bars:
        report_to = bars.job("orders")
        for event in events:
            report_to(event)
    assert not bars.enabled


def test_a_job_description_reaches_the_catalog(local_lake: Lake, spark: Any) -> None:
    """Issue 17: job descriptions never reached the catalog; now its target table gets it (unless it has one)."""
    put(local_lake, "landing/orders/a.csv", make_csv(0, 5)[0])
    JobRunner(local_lake, spark=spark).run(csv_job(description="Orders from the landing folder"))
    assert local_lake.catalog.show("bronze.orders")["description"] == "Orders from the landing folder"
    assert any(h.name == "bronze.orders" for h in local_lake.catalog.search("landing folder"))
    local_lake.catalog.describe("bronze.orders", "Curated by hand")
    put(local_lake, "landing/orders/b.csv", make_csv(100, 5)[0])
    JobRunner(local_lake, spark=spark).run(csv_job(description="Orders from the landing folder"))
    assert local_lake.catalog.show("bronze.orders")["description"] == "Curated by hand"
