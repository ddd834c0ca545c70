"""DuckDB over the lake by table name: local and S3, time travel, read-only, file skipping."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lake.cli.main import main
from lake.errors import ReadOnlyError, SQLError, TableNotFoundError
from lake.lakehouse import Lake
from lake.sql import LakeSQL


@pytest.fixture
def filled(lake: Lake) -> Lake:
    flights = lake.table("silver.flights")
    for day in range(5):
        flights.write(pa.table({
            "id": list(range(day * 100, day * 100 + 100)),
            "carrier": [["AA", "DL", "UA", "WN"][i % 4] for i in range(100)],
            "delay": [float(i % 30) for i in range(100)],
            "day": [f"2024-05-0{day + 1}"] * 100,
        }), partition_by=["day"])
    lake.table("gold.carriers").write(pa.table({"carrier": ["AA", "DL", "UA", "WN"],
                                                "name": ["American", "Delta", "United", "Southwest"]}))
    return lake


def test_tables_by_name_with_joins_and_group_bys(filled: Lake) -> None:
    db = LakeSQL(filled)
    got = db.sql("SELECT c.name, count(*) AS n, avg(f.delay) AS d FROM silver.flights f "
                 "JOIN gold.carriers c USING (carrier) GROUP BY 1 ORDER BY 1").fetchall()
    assert [(r[0], r[1]) for r in got] == [("American", 125), ("Delta", 125), ("Southwest", 125), ("United", 125)]
    assert set(db.tables()) >= {"silver.flights", "gold.carriers"}
    assert db.schema("gold.carriers") == [("carrier", "VARCHAR"), ("name", "VARCHAR")]
    frame = db.sql("SELECT * FROM silver.flights WHERE id < 3").pl()
    assert frame.height == 3 and frame.columns == ["id", "carrier", "delay", "day"]
    assert db.sql("SELECT count(*) FROM silver.flights").to_arrow_table().column(0)[0].as_py() == 500


def test_time_travel(filled: Lake) -> None:
    db = LakeSQL(filled)
    assert db.sql("SELECT count(*) FROM lake_at('silver.flights', 0)").fetchone() == (100,)
    assert db.sql("SELECT count(*) FROM lake_at('silver.flights', 2)").fetchone() == (300,)
    v1_time = filled.table("silver.flights").history()[-2]["timestamp"].isoformat()
    assert db.sql(f"SELECT count(*) FROM lake_at('silver.flights', '{v1_time}')").fetchone() == (200,)
    assert LakeSQL(filled, as_of=1).sql("SELECT count(*) FROM silver.flights").fetchone() == (200,)
    with pytest.raises(SQLError, match="no version 9"):
        db.sql("SELECT * FROM lake_at('silver.flights', 9)")
    with pytest.raises(TableNotFoundError):
        db.sql("SELECT * FROM lake_at('silver.nope', 1)")


def test_read_only_over_the_lake_but_scratch_tables_are_fine(filled: Lake) -> None:
    db = LakeSQL(filled)
    for statement in ["INSERT INTO silver.flights VALUES (1, 'AA', 1.0, '2024-05-01')",
                      "DELETE FROM silver.flights", "DROP VIEW silver.flights",
                      "UPDATE gold.carriers SET name = 'x'",
                      "CREATE OR REPLACE TABLE gold.carriers AS SELECT 1"]:
        with pytest.raises(ReadOnlyError, match="read-only"):
            db.sql(statement)
    db.sql("CREATE TABLE scratch AS SELECT carrier, max(delay) AS m FROM silver.flights GROUP BY 1")
    assert db.sql("SELECT count(*) FROM scratch").fetchone() == (4,)
    assert filled.table("silver.flights").version() == 4


def _files_under(lake: Lake, uri: str) -> list[str]:
    return [f.path for f in lake.storage.list_files(uri)]


def test_no_statement_writes_into_the_lake_whatever_its_form(
        filled: Lake, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Read-only by construction: DuckDB may open only the resolved tables' data files (and folders
    outside the lake that --allow grants); what could write a file or change that is refused by type."""
    granted = tmp_path / "granted"
    granted.mkdir()
    db = LakeSQL(filled, allow=[str(granted)])
    root = filled.storage.root
    db.sql("SELECT count(*) FROM silver.flights JOIN gold.carriers USING (carrier)").fetchall()  # files granted
    data_file = next(f for f in _files_under(filled, filled.table("silver.flights").uri) if f.endswith(".parquet"))
    before = sorted(_files_under(filled, root))
    log = f"{filled.table('gold.carriers').uri}/_delta_log/00000000000000000009.json"
    attempts = [
        f"COPY silver.flights TO '{root}/silver/flights/extra.parquet' (FORMAT parquet)",
        f"COPY (SELECT 1 AS x) TO '{filled.table('silver.flights').uri}/{data_file}' (USE_TMP_FILE false)",
        f"COPY (SELECT 1) TO '{log}' (FORMAT csv, HEADER false)",
        f"COPY gold.carriers TO 'file://{root}/x.csv'",
        f"COPY gold.carriers TO $${root}/gold/x.csv$$",
        f"EXPORT DATABASE '{root}/dump'",
        f"ATTACH '{tmp_path}/other.duckdb' AS other", "ATTACH ':memory:' AS mem", "DETACH other",
        # the routes found: home directory, query log, DuckDB's file logging, profiling output
        f"SET home_directory = '{root}'", f"SET log_query_path = '{root}/queries.log'",
        f"CALL enable_logging(storage = 'file', storage_path = '{root}/logs')",
        f"SET profiling_output = '{root}/profile.json'", "PRAGMA enable_profiling",
        f"SET allowed_directories = ['{root}']", "SET enable_external_access = true", "RESET allowed_paths",
        "INSTALL httpfs", "LOAD httpfs", f"PREPARE p AS COPY gold.carriers TO '{root}/p.csv'", "VACUUM",
        "CHECKPOINT", "CREATE SECRET s (TYPE s3, KEY_ID 'k', SECRET 's')",
        f"SELECT 1; COPY gold.carriers TO '{root}/two.csv'",
    ]
    for statement in attempts:
        with pytest.raises(ReadOnlyError, match="not available|does not change DuckDB"):
            db.sql(statement)
    # Reading outside the resolved tables and the granted folders is DuckDB's own refusal.
    for query in ("SELECT * FROM read_csv('/etc/hostname')", f"SELECT * FROM read_text('{tmp_path}/x.txt')"):
        with pytest.raises(SQLError, match="--allow"):
            db.sql(query).fetchall()
    assert sorted(_files_under(filled, root)) == before  # nothing was written into the lake
    assert not (tmp_path / "other.duckdb").exists()
    # Scratch tables, SET VARIABLE and files in a granted folder outside the lake are fine.
    scratch = granted / "in.csv"
    scratch.write_text("carrier,n\nAA,1\nZZ,2\n")
    db.sql("SET VARIABLE wanted = 'AA'")
    db.sql(f"CREATE TABLE loaded AS SELECT * FROM read_csv('{scratch}')")
    assert db.sql("SELECT n FROM loaded WHERE carrier = getvariable('wanted')").fetchall() == [(1,)]
    if filled.storage.is_local:
        monkeypatch.setenv("LAKE_CATALOG_URL", filled.settings.catalog_url)
        assert main(["--root", root, "sql", f"COPY gold.carriers TO '{root}/gold/x.csv'"]) == 1
        assert "not available in `lake sql`" in capsys.readouterr().err
        assert main(["--root", root, "sql", "SELECT * FROM gold.carriers", "--out", f"{root}/gold/x.csv"]) == 1
        assert "inside the lake root" in capsys.readouterr().err
    assert sorted(_files_under(filled, root)) == before
    assert filled.table("silver.flights").version() == 4


def test_a_session_sees_new_commits_and_grants_their_files(filled: Lake) -> None:
    db = LakeSQL(filled)
    assert db.sql("SELECT count(*) FROM gold.carriers").fetchone() == (4,)
    filled.table("gold.carriers").write(pa.table({"carrier": ["B6"], "name": ["JetBlue"]}))
    assert db.sql("SELECT count(*) FROM gold.carriers").fetchone() == (5,)
    assert db.sql("SELECT count(*) FROM lake_at('gold.carriers', 0)").fetchone() == (4,)


def test_names_resolve_through_the_catalogs_location(lake: Lake, tmp_path: Path) -> None:
    """A Delta table outside <root>/layer/name, registered in the catalog under a name."""
    root = lake.storage.root
    location = f"{root.rsplit('/', 1)[0]}/elsewhere/sales" if "://" in root else str(tmp_path / "elsewhere" / "sales")
    by_path = lake.table(location)
    by_path.write(pa.table({"id": [1, 2, 3], "amount": [10.0, 20.0, 30.0]}))
    by_path.write(pa.table({"id": [4], "amount": [40.0]}))
    assert not lake.table("silver.sales").exists()  # nothing at <root>/silver/sales
    namespace = lake.settings.catalog.namespace
    lake.catalog.register_dataset("silver.sales", namespace=namespace, kind="table", layer="silver",
                                  location=by_path.uri, format="delta")
    lake.catalog.register_dataset("silver.not_delta", namespace=namespace, kind="table",
                                  location=by_path.uri, format="parquet")
    db = LakeSQL(lake)
    assert db.sql("SELECT count(*), sum(amount) FROM silver.sales").fetchone() == (4, 100.0)
    assert db.sql("SELECT count(*) FROM lake_at('silver.sales', 0)").fetchone() == (3,)
    assert LakeSQL(lake, as_of=0).sql("SELECT sum(amount) FROM silver.sales").fetchone() == (60.0,)
    assert "silver.sales" in db.tables()
    with pytest.raises(ReadOnlyError, match="read-only"):
        db.sql("DELETE FROM silver.sales")
    with pytest.raises(SQLError, match="does not exist"):
        db.sql("SELECT * FROM silver.not_delta")  # registered, but not as a Delta table
    with pytest.raises(SQLError, match="does not exist"):
        db.sql("SELECT * FROM silver.unregistered")


def test_errors_are_one_readable_message(filled: Lake) -> None:
    db = LakeSQL(filled)
    with pytest.raises(SQLError, match=r"(?s)Parser Error.*LINE 1"):
        db.sql("SELEC * FROM silver.flights")
    with pytest.raises(SQLError, match="not found"):
        db.sql("SELECT nope FROM silver.flights")
    with pytest.raises(SQLError, match="does not exist"):
        db.sql("SELECT * FROM silver.missing_table")


def test_selective_query_reads_a_fraction_of_the_files(local_lake: Lake) -> None:
    t = local_lake.table("silver.parts")
    for day in range(10):
        t.write(pa.table({"id": list(range(day * 10, day * 10 + 10)), "day": [day] * 10}), partition_by=["day"])
    db = LakeSQL(local_lake)
    plan = "\n".join(r[1] for r in db.sql("EXPLAIN ANALYZE SELECT count(*) FROM silver.parts WHERE day = 3").fetchall())
    scanned = re.search(r"Scanning Files: (\d+)/(\d+)", plan)
    assert scanned is not None, plan
    assert (int(scanned.group(1)), int(scanned.group(2))) == (1, 10)
    assert db.sql("SELECT count(*) FROM silver.parts WHERE day = 3").fetchone() == (10,)
    stats_plan = "\n".join(r[1] for r in db.sql("EXPLAIN ANALYZE SELECT * FROM silver.parts WHERE id >= 95").fetchall())
    files = re.search(r"Scanning Files: (\d+)/(\d+)", stats_plan)
    assert files is not None and int(files.group(1)) == 1  # min/max statistics skip the other nine


def test_cli_formats_and_output(filled: Lake, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    if not filled.storage.is_local:
        monkeypatch.setenv("LAKE_S3_ENDPOINT", filled.settings.s3.endpoint or "")
        monkeypatch.setenv("LAKE_S3_ACCESS_KEY", filled.settings.s3.access_key or "")
        monkeypatch.setenv("LAKE_S3_SECRET_KEY", filled.settings.s3.secret_key.get_secret_value())  # type: ignore[union-attr]
    monkeypatch.setenv("LAKE_CATALOG_URL", filled.settings.catalog_url)
    root = ["--root", filled.storage.root, "sql"]
    assert main([*root, "SELECT carrier, count(*) AS n FROM silver.flights GROUP BY 1 ORDER BY 1", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"carrier": c, "n": 125} for c in ["AA", "DL", "UA", "WN"]]
    assert main([*root, "SELECT id FROM silver.flights ORDER BY id", "--format", "csv", "--limit", "3"]) == 0
    assert capsys.readouterr().out.split() == ["id", "0", "1", "2"]
    out = tmp_path / "r.parquet"
    assert main([*root, "SELECT * FROM gold.carriers", "--format", "parquet", "--out", str(out)]) == 0
    assert pq.read_table(out).num_rows == 4
    assert main([*root, "SELECT * FROM silver.flights"]) == 0
    shown = capsys.readouterr().out
    assert "first 100 shown" in shown and "carrier" in shown
    assert main([*root, "--as-of", "0", "SELECT count(*) AS n FROM silver.flights", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": 100}]
    assert main([*root, "DELETE FROM silver.flights"]) == 1
    assert "read-only" in capsys.readouterr().err


def test_s3_credentials_never_printed(s3_lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    s3_lake.table("bronze.x").write(pa.table({"a": [1]}))
    db = LakeSQL(s3_lake)
    assert db.sql("SELECT a FROM bronze.x").fetchall() == [(1,)]
    secret = s3_lake.settings.s3.secret_key.get_secret_value()  # type: ignore[union-attr]
    with pytest.raises(SQLError) as err:
        db.sql("SELECT * FROM delta_scan('s3://no-such-bucket-here/t')")
    assert secret not in str(err.value)
    secrets = db.sql("SELECT * FROM duckdb_secrets()").fetchall()
    assert secret not in str(secrets)


def _env(lake: Lake, tmp_path: Path) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKE_")}
    env.update(LAKE_ROOT=lake.storage.root, LAKE_CATALOG_URL=lake.settings.catalog_url, LAKE_CONFIG="",
               HOME=str(tmp_path), COLUMNS="120")
    return env


def test_shell_script_from_stdin(local_lake: Lake, tmp_path: Path) -> None:
    import subprocess
    import sys

    local_lake.table("gold.carriers").write(pa.table({"carrier": ["AA", "DL"], "name": ["American", "Delta"]}))
    script = ".tables\n.schema gold.carriers\nSELECT count(*) AS n\n  FROM gold.carriers;\n.timer on\nSELEC 1;\nSELECT 42 AS answer;\n"
    proc = subprocess.run([sys.executable, "-m", "lake.cli.main", "sql"], input=script, text=True,
                          capture_output=True, env=_env(local_lake, tmp_path), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "gold.carriers" in proc.stdout and "VARCHAR" in proc.stdout
    assert "│ 2 │" in proc.stdout and "42" in proc.stdout  # the multi-line statement ran, and the rest went on
    assert "Parser Error" in proc.stderr and "time:" in proc.stderr


def test_interactive_shell_in_a_terminal(local_lake: Lake, tmp_path: Path) -> None:
    import sys

    import pexpect

    local_lake.table("gold.carriers").write(pa.table({"carrier": ["AA", "DL"], "name": ["American", "Delta"]}))
    env = {**_env(local_lake, tmp_path), "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm"}
    child = pexpect.spawn(sys.executable, ["-m", "lake.cli.main", "sql"], env=env,
                          encoding="utf-8", timeout=60, dimensions=(40, 120))
    child.expect("lake>")
    child.sendline("SELECT name")
    child.expect(r"\.\.\.")  # continuation prompt: the statement is not finished
    child.sendline("FROM gold.carriers ORDER BY 1;")
    child.expect("Delta")
    child.expect("lake>")
    child.sendline(".schema gold.carriers")
    child.expect("VARCHAR")
    child.sendline(".quit")
    child.expect(pexpect.EOF)
    assert "SELECT name" in (tmp_path / ".lake_sql_history").read_text()


def test_a_query_failing_while_it_runs_is_one_line_and_leaves_no_file(
        filled: Lake, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    if filled.storage.is_local:  # the CLI on a local lake (an S3 lake needs its settings)
        monkeypatch.setenv("LAKE_CATALOG_URL", filled.settings.catalog_url)
        root = filled.storage.root
        out = tmp_path / "bad.csv"
        bad = "SELECT CAST(carrier AS INTEGER) AS n FROM silver.flights"
        assert main(["--root", root, "sql", bad, "--out", str(out)]) == 1
        err = capsys.readouterr().err
        assert "Conversion" in err and "Traceback" not in err and len(err.strip().splitlines()) <= 4
        assert not out.exists() and not list(tmp_path.glob(".bad.csv*"))  # no header-only or partial file
        for fmt in ("json", "table", "parquet"):
            assert main(["--root", root, "sql", bad, "--format", fmt, "--out", str(tmp_path / f"x.{fmt}")]
                        if fmt != "table" else ["--root", root, "sql", bad]) == 1
            assert "Traceback" not in capsys.readouterr().err
    db = LakeSQL(filled)
    with pytest.raises(SQLError, match=r"did you mean silver\.flights"):
        db.sql("SELECT * FROM silver.flight").fetchall()
    with pytest.raises(SQLError, match=r"did you mean gold\.carriers"):
        db.sql("SELECT * FROM gold.carrier JOIN silver.flights USING (carrier)").fetchall()


@pytest.mark.slow
def test_json_and_parquet_output_stream_with_bounded_memory(tmp_path: Path) -> None:
    import subprocess
    import sys

    def peak_kb(rows: int, fmt: str) -> int:
        code = ("import resource, sys; from lake.cli.main import main; "
                f"rc = main(['--root', {str(tmp_path / 'lake')!r}, '--create', 'sql', "
                f"\"SELECT i, 'row ' || i AS label, i * 1.5 AS v FROM range({rows}) t(i)\", "
                f"'--out', {str(tmp_path / ('out.' + fmt))!r}]); "
                "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return int(done.stdout.strip().splitlines()[-1])

    for fmt in ("json", "parquet"):
        small, large = peak_kb(10, fmt), peak_kb(2_000_000, fmt)
        assert large - small < 150_000, (fmt, small, large)  # 2M rows held whole took 1.1 GB
    rows = pq.read_table(tmp_path / "out.parquet")
    assert rows.num_rows == 2_000_000 and rows.column("label")[1].as_py() == "row 1"
    head = (tmp_path / "out.json").read_text()[:80]
    assert head.startswith('[{"i": 0, "label": "row 0", "v": 0.0},')
    assert len(json.loads((tmp_path / "out.json").read_text())) == 2_000_000


def _delta_loaded(db: LakeSQL) -> bool:
    return db.sql("SELECT count(*) FROM duckdb_functions() WHERE function_name = 'delta_scan'").fetchone() != (0,)


def test_a_lazy_session_loads_the_delta_extension_only_for_lake_tables_and_is_sealed_all_the_same(
        filled: Lake, tmp_path: Path) -> None:
    """`lake sql QUERY` opens a lazy session: its first statement decides whether the delta extension loads;
    the configuration is locked before any statement runs either way."""
    db = LakeSQL(settings=filled.settings, lazy=True)
    assert db.sql("SELECT 1").fetchall() == [(1,)]
    # No Lake object (pyarrow, delta-rs) for a statement that names no table (on S3: the storage's credentials).
    assert (db._lake is None) != filled.settings.is_s3
    assert not _delta_loaded(db)
    for statement in ("SET enable_external_access = true", "LOAD delta", f"COPY (SELECT 1) TO '{tmp_path}/x.csv'"):
        with pytest.raises(ReadOnlyError):
            db.sql(statement)
    with pytest.raises(SQLError, match="--allow"):
        db.sql("SELECT * FROM read_csv('/etc/hostname')").fetchall()
    with pytest.raises(Exception, match="disabled|locked"):  # the seal itself, under the statement checks
        db._con.execute("SET enable_external_access = true")
    # A later statement's lake table: read through delta-rs as Arrow (the extension cannot load any more).
    assert db.sql("SELECT count(*) FROM silver.flights WHERE carrier = 'AA'").fetchone() == (125,)
    assert db.versions_read() == {"silver.flights": 4}
    with pytest.raises(ReadOnlyError, match="read-only"):
        db.sql("DELETE FROM silver.flights")
    # A first statement that reads a lake table (or lake_at) loads the extension before the seal.
    for first in ("SELECT count(*) FROM gold.carriers", "SELECT count(*) FROM lake_at('gold.carriers', 0)"):
        eager = LakeSQL(settings=filled.settings, lazy=True)
        assert eager.sql(first).fetchone() == (4,)
        assert _delta_loaded(eager)
    # The connection itself is never handed out unsealed.
    other = LakeSQL(settings=filled.settings, lazy=True)
    with pytest.raises(Exception, match="disabled|locked"):
        other.con.execute("SET enable_external_access = true")
    assert _delta_loaded(other)


def test_lake_sql_select_1_loads_no_table_engine(tmp_path: Path) -> None:
    """`lake sql "select 1"` is DuckDB and the settings: no pyarrow, delta-rs, pandas or catalog."""
    import subprocess
    import sys

    code = ("import sys, io, contextlib; from lake.cli.main import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out: status = main(['sql', 'select 41 + 1'])\n"
            "assert status == 0 and '42' in out.getvalue(), out.getvalue()\n"
            "heavy = {'pyarrow', 'pandas', 'feast', 'pyspark', 'sqlalchemy', 'deltalake', 'numpy', 'polars'}\n"
            "print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in heavy}))\n")
    (tmp_path / "lake").mkdir()
    env = {**__import__("os").environ, "LAKE_ROOT": str(tmp_path / "lake"), "LAKE_CONFIG": ""}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
