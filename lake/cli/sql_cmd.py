"""``lake sql``: query the lake with DuckDB, one statement or an interactive shell."""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lake.cli.context import state
from lake.cli.output import console, err_console, print_table
from lake.errors import LakeError

if TYPE_CHECKING:
    import duckdb

    from lake.sql import LakeSQL

SHOWN_ROWS = 100
FORMATS = ("table", "csv", "json", "parquet")


def sql(
    ctx: typer.Context,
    query: Annotated[str | None, typer.Argument(help="A SQL query; none opens the interactive shell.")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Read lake tables at this version or time.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, csv, json or parquet.")] = "table",
    out: Annotated[Path | None, typer.Option("--out", help="Write the result to this file.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many rows.")] = None,
    timer: Annotated[bool, typer.Option("--timer", help="Print how long the query took.")] = False,
) -> None:
    """Query lake tables by name (bronze.events...) with DuckDB; read-only over the lake.

    Time travel in SQL: lake_at('bronze.events', 3) or lake_at('bronze.events', '2024-05-01T00:00:00Z').
    """
    from lake.sql import LakeSQL

    if fmt not in FORMATS:
        raise LakeError(f"unknown format {fmt!r}: use {', '.join(FORMATS)}")
    if fmt == "parquet" and out is None and sys.stdout.isatty():
        raise LakeError("Parquet is binary: pass --out FILE or redirect stdout")
    version: int | str | None = int(as_of) if as_of and as_of.isdigit() else as_of
    db = LakeSQL(state(ctx).lake(), as_of=version)
    if query is None:
        shell(db)
        return
    run_one(db, query, fmt=fmt, out=out, limit=limit, timer=timer)


def run_one(db: LakeSQL, query: str, *, fmt: str = "table", out: Path | None = None, limit: int | None = None,
            timer: bool = False) -> None:
    started = time.perf_counter()
    rel = db.sql(query)
    if rel is None:  # a statement without a result (CREATE TABLE scratch AS ...)
        console.print("ok")
        return
    if limit is not None:
        rel = rel.limit(limit)
    write_result(rel, fmt, out)
    if timer:
        err_console.print(f"time: {time.perf_counter() - started:.3f} s")


def write_result(rel: duckdb.DuckDBPyRelation, fmt: str, out: Path | None) -> None:
    """Print or save a result: a Rich table, CSV, JSON (a list of row objects) or Parquet."""
    if fmt == "table":
        rows = rel.limit(SHOWN_ROWS + 1).fetchall()
        columns = list(rel.columns)
        shown = [dict(zip(columns, r, strict=True)) for r in rows[:SHOWN_ROWS]]
        if out is not None:
            raise LakeError("--out needs --format csv, json or parquet")
        print_table(shown, columns)
        more = "" if len(rows) <= SHOWN_ROWS else f" (first {SHOWN_ROWS} shown; --limit or --format csv for all)"
        console.print(f"{len(shown)} rows{more}")
        return
    if fmt == "csv":
        _write_csv(rel, out)
        return
    table = rel.to_arrow_table()
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, str(out) if out else sys.stdout.buffer)
        return
    from lake.cli.output import json_default

    data = json.dumps(table.to_pylist(), default=json_default) + "\n"
    if out is not None:
        out.write_text(data, encoding="utf-8")
    else:
        sys.stdout.write(data)
        sys.stdout.flush()


def _write_csv(rel: duckdb.DuckDBPyRelation, out: Path | None) -> None:
    """RFC 4180 CSV, streamed in batches (NULL is an empty field)."""
    fh = out.open("w", newline="", encoding="utf-8") if out is not None else sys.stdout
    try:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(rel.columns)
        reader = rel.to_arrow_reader(65_536)
        for batch in reader:
            for row in zip(*(col.to_pylist() for col in batch.columns), strict=True):
                writer.writerow(["" if v is None else v for v in row])
    finally:
        if out is not None:
            fh.close()
        else:
            fh.flush()


HELP = """.tables              lake tables (and this session's)
.schema NAME         columns of a table
.timer on|off        time each statement
.quit                leave (or Ctrl-D)
Statements end with ; and may span lines."""


def shell(db: LakeSQL) -> None:
    """Interactive: history, multi-line statements, dot commands. Piped stdin runs as a script."""
    if sys.stdin.isatty():
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory

        session: PromptSession[str] = PromptSession(history=FileHistory(str(Path.home() / ".lake_sql_history")))
        console.print(f"lake sql on {db.lake.storage.root} - .help for commands, statements end with ;")

        def lines() -> Iterator[str]:
            buffer_empty = True
            while True:
                try:
                    line = session.prompt("lake> " if buffer_empty else "  ... ")
                except KeyboardInterrupt:
                    yield "\x03"
                    buffer_empty = True
                    continue
                except EOFError:
                    return
                buffer_empty = line.strip().endswith(";") or line.strip().startswith(".")
                yield line

        _loop(db, lines())
    else:
        _loop(db, (line.rstrip("\n") for line in sys.stdin))


def _loop(db: LakeSQL, lines: Iterable[str]) -> None:
    timer: bool | None = False
    buffer = ""
    for line in lines:
        if line == "\x03":  # Ctrl-C drops the statement being typed
            buffer = ""
            continue
        if not buffer and line.strip().startswith("."):
            timer = _dot(db, line.strip(), bool(timer))
            if timer is None:
                return
            continue
        buffer += line + "\n"
        if buffer.strip().endswith(";"):
            for statement in _statements(buffer):
                _shell_run(db, statement, bool(timer))
            buffer = ""
    if buffer.strip():
        _shell_run(db, buffer, bool(timer))


def _statements(script: str) -> list[str]:
    import duckdb

    try:
        return [s.query for s in duckdb.extract_statements(script)]
    except Exception:
        return [script]


def _shell_run(db: LakeSQL, statement: str, timer: bool) -> None:
    try:
        run_one(db, statement, timer=timer)
    except LakeError as exc:
        err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False, markup=True)


def _dot(db: LakeSQL, command: str, timer: bool) -> Any:
    word, _, arg = command.partition(" ")
    try:
        if word in (".quit", ".exit"):
            return None
        if word == ".help":
            console.print(HELP, markup=False)
        elif word == ".tables":
            session = [r[0] for r in db.con.execute(
                "SELECT schema_name || '.' || table_name FROM duckdb_tables() WHERE NOT internal").fetchall()]
            console.print("\n".join(db.tables() + session) or "no tables", markup=False)
        elif word == ".schema" and arg:
            print_table([{"column": c, "type": t} for c, t in db.schema(arg.strip())], ["column", "type"])
        elif word == ".timer":
            timer = arg.strip().lower() in ("on", "1", "true")
            console.print(f"timer {'on' if timer else 'off'}")
        else:
            console.print(f"unknown command {word}; .help lists them", markup=False)
    except LakeError as exc:
        err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False)
    return timer
