"""Every CLI mistake is one line and no traceback: 2 for a usage mistake, 1 for a failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lake.cli.main import command_word, main

# (arguments, exit status, text expected on stderr)
USAGE_MISTAKES = [
    (["table", "show"], 2, "Missing argument"),
    (["sql", "--limit", "abc", "select 1"], 2, "Invalid value for '--limit'"),
    (["catalog", "lineage", "bronze.x", "--json"], 2, "No such option: --json"),
    (["tables"], 2, "Did you mean 'table'"),
    (["table", "nope"], 2, "No such command 'nope'"),
    (["--root"], 2, "requires an argument"),
    (["sql", "-x"], 2, "No such option: -x"),
    (["table", "ls", "extra", "args"], 2, "unexpected extra argument"),
    (["table", "history", "bronze.x", "--limit", "ten"], 2, "Invalid value"),
]


@pytest.mark.parametrize(("args", "status", "message"), USAGE_MISTAKES, ids=lambda v: " ".join(v)
                         if isinstance(v, list) else None)
def test_usage_mistakes_are_one_line_with_status_2(args: list[str], status: int, message: str,
                                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LAKE_ROOT", str(tmp_path))
    monkeypatch.setenv("LAKE_CONFIG", "")
    code = main(args)
    out = capsys.readouterr()
    assert code == status, out
    assert message.lower() in out.err.lower()
    assert "Traceback" not in out.err + out.out
    lines = [line for line in out.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), out.err
    assert "--help" in lines[0] or args == ["--root"]  # says where to look


def test_no_command_prints_help_and_h_is_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "Usage: lake" in capsys.readouterr().out
    assert main(["table"]) == 2
    assert "optimize" in capsys.readouterr().out
    assert main(["-h"]) == 0
    out = capsys.readouterr().out
    assert "Commands:" in out and "--install-completion" in out and "--version" in out
    assert main(["table", "show", "-h"]) == 0
    assert "Usage: lake table show" in capsys.readouterr().out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("lake ")


def test_the_whole_tree_is_there_for_the_named_group_only() -> None:
    assert command_word(["--root", "x", "table", "ls"]) == "table"
    assert command_word(["--config=a.toml", "-v", "sql", "select 1"]) == "sql"
    assert command_word(["--help"]) is None


def test_real_entry_point_prints_no_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "LAKE_ROOT": str(tmp_path / "lake"), "LAKE_CONFIG": ""}
    cases = [([], 2), (["-h"], 0), (["sql", "--limit", "abc"], 2), (["table", "show"], 2), (["--version"], 0),
             (["table", "show", "bronze.nope"], 1)]
    for args, status in cases:
        proc = subprocess.run([sys.executable, "-m", "lake.cli.main", *args], env=env, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == status, (args, proc.stderr)
        assert "Traceback" not in proc.stderr + proc.stdout, (args, proc.stderr)


def test_shell_completion_is_offered(tmp_path: Path) -> None:
    env = {**os.environ, "_LAKE_COMPLETE": "complete_bash", "COMP_WORDS": "lake tab", "COMP_CWORD": "1"}
    proc = subprocess.run([sys.executable, "-m", "lake.cli.main"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert "table" in proc.stdout, proc.stderr


def test_sql_errors_while_running_are_one_line_and_leave_no_file(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    import pyarrow as pa

    from lake.lakehouse import Lake
    from tests.conftest import make_settings

    root = tmp_path / "lake"
    Lake(make_settings(root=str(root)), catalog=False).table("bronze.stocks").write(
        pa.table({"symbol": ["IBM", "MSFT"], "price": ["1.5", "n/a"]}))
    out = tmp_path / "prices.csv"
    code = main(["--root", str(root), "sql", "SELECT symbol, CAST(price AS DOUBLE) AS p FROM bronze.stocks",
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "Could not convert string 'n/a'" in err and "Traceback" not in err
    assert not out.exists() and list(tmp_path.glob("*.partial")) == [] and list(tmp_path.glob(".*")) == []
    assert main(["--root", str(root), "sql", "SELECT * FROM bronze.stoks"]) == 1
    err = capsys.readouterr().err
    assert "lake table bronze.stoks does not exist (did you mean bronze.stocks?)" in err
    assert "schema" not in err  # DuckDB's "schema bronze does not exist" is not about the lake
    assert main(["--root", str(root), "sql", "SELECT * FROM stoks"]) == 1
    assert "did you mean bronze.stocks?" in capsys.readouterr().err


def test_the_jvm_output_goes_to_a_file_and_ours_comes_back(tmp_path: Path) -> None:
    code = ("import os, sys; from pathlib import Path; from lake.spark import jvm_output\n"
            f"with jvm_output(Path({str(tmp_path / 'logs' / 'jvm.log')!r})):\n"
            "    os.write(2, b'WARNING: Using incubator modules\\n')\n"
            "os.write(2, b'ours\\n')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "ours\n"
    assert (tmp_path / "logs" / "jvm.log").read_text() == "WARNING: Using incubator modules\n"


def test_engine_warnings_only_with_verbose(tmp_path: Path) -> None:
    code = ("import warnings, sys; from lake.cli.main import main, app\n"
            "@app.command('noisy')\n"
            "def noisy() -> None:\n"
            "    from lake.errors import LakeWarning\n"
            "    warnings.warn('feast says something', RuntimeWarning)\n"
            "    warnings.warn('the lake says something', LakeWarning)\n"
            "sys.exit(main(sys.argv[1:]))\n")
    env = {**os.environ, "LAKE_ROOT": str(tmp_path), "LAKE_CONFIG": ""}
    quiet = subprocess.run([sys.executable, "-c", code, "noisy"], env=env, capture_output=True, text=True,
                           timeout=60)
    assert quiet.returncode == 0, quiet.stderr
    assert "feast says" not in quiet.stderr and "the lake says" in quiet.stderr
    loud = subprocess.run([sys.executable, "-c", code, "--verbose", "noisy"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert "feast says" in loud.stderr and "the lake says" in loud.stderr


def test_help_loads_no_engine(tmp_path: Path) -> None:
    code = ("import sys, io, contextlib; from lake.cli.main import main\n"
            "with contextlib.redirect_stdout(io.StringIO()): main(['--help'])\n"
            "heavy = {'pyarrow', 'pandas', 'feast', 'pyspark', 'duckdb', 'sqlalchemy', 'deltalake', 'numpy',"
            " 'great_expectations', 'polars', 'pydantic'}\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_ingest_takes_a_glob_the_shell_expanded(tmp_path: Path) -> None:
    from lake.cli.jobs_cmd import source_path
    from lake.errors import LakeError

    drop = tmp_path / "drop"
    drop.mkdir()
    for name in ("a.csv", "b.csv", "notes.txt"):
        (drop / name).write_text("id\n1\n")
    assert source_path([str(drop / "a.csv"), str(drop / "b.csv")]) == str(drop / "*.csv")
    assert source_path([str(drop / "a.csv")]) == str(drop / "a.csv")
    assert source_path(["s3://bucket/drop/*.csv"]) == "s3://bucket/drop/*.csv"
    with pytest.raises(LakeError, match="quote a glob"):
        source_path([str(drop / "a.csv"), str(drop / "notes.txt")])
    (drop / "c.csv").write_text("id\n2\n")
    with pytest.raises(LakeError, match="not every file matching"):
        source_path([str(drop / "a.csv"), str(drop / "b.csv")])


def test_jobs_status_takes_an_id_prefix_and_a_no_op_run_shows_no_version(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from types import SimpleNamespace

    from lake.cli.jobs_cmd import _show_report
    from lake.lakehouse import Lake
    from tests.conftest import make_settings

    root = tmp_path / "lake"
    lake = Lake(make_settings(root=str(root)))
    with lake.run("readme.job") as run:
        pass
    assert main(["--root", str(root), "jobs", "status", run.run_id[:8], "--json"]) == 0
    assert run.run_id in capsys.readouterr().out
    assert main(["--root", str(root), "jobs", "status", "abc_%"]) == 1
    assert "no run abc_%" in capsys.readouterr().err
    report = SimpleNamespace(job="bronze_x", skipped=True, notes=["no new files"], version=None, batch=3,
                             rows_read=0, rows_written=0, rows_quarantined=0, files=0, run_id="r1", seconds=0.1)
    _show_report(report, False)
    out = capsys.readouterr().out
    assert "nothing to do (no new files)" in out and "version None" not in out and "batch" not in out


def test_hints_keep_their_section_names(capsys: pytest.CaptureFixture[str]) -> None:
    from lake.cli.main import report_error
    from lake.errors import FeatureError

    report_error(FeatureError("no feature repository: set [feast] repo in lake.toml", where="[server] limits"), False)
    err = capsys.readouterr().err
    assert "set [feast] repo in lake.toml" in err and "[server] limits" in err


def test_quality_validate_refuses_a_missing_version_or_suite_before_spark(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    import sys as _sys

    import pyarrow as pa

    from lake.lakehouse import Lake
    from tests.conftest import make_settings

    root = tmp_path / "lake"
    Lake(make_settings(root=str(root)), catalog=False).table("bronze.stocks").write(pa.table({"symbol": ["IBM"]}))
    suite = tmp_path / "s.yaml"
    suite.write_text("table: bronze.stocks\nexpectations:\n  - expect_column_values_to_not_be_null: {column: symbol}\n")
    def spark_context() -> object:
        context = getattr(_sys.modules.get("pyspark"), "SparkContext", None)
        return getattr(context, "_active_spark_context", None)

    before = spark_context()
    assert main(["--root", str(root), "quality", "validate", "bronze.stocks", "--version", "99",
                 "--suite", str(suite)]) == 1
    assert "bronze.stocks has no version 99 (versions 0 to 0" in capsys.readouterr().err
    assert main(["--root", str(root), "quality", "validate", "bronze.stocks", "--suite", "nope.yaml"]) == 1
    err = capsys.readouterr().err
    assert "no suite file" in err and "nope.yaml" in err and "Traceback" not in err
    assert spark_context() is before  # no Spark was started for either mistake


def test_submit_to_a_dead_master_fails_in_seconds_with_one_line(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import socket
    import time

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    code = main(["--root", str(tmp_path), "--create", "jobs", "submit", "bronze_stocks", "--master",
                 f"spark://127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert code == 1 and time.monotonic() - started < 30
    assert f"the Spark master spark://127.0.0.1:{port} does not answer" in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.strip()]) <= 2
