"""``lake sql``: query the lake with DuckDB, one statement or an interactive shell."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO

import typer
from rich.markup import escape

from lake.cli.context import state
from lake.cli.output import console, err_console, print_table
from lake.errors import LakeError

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from lake.sql import LakeSQL

SHOWN_ROWS = 100
BATCH_ROWS = 65_536
FORMATS = ("table", "csv", "json", "parquet")


def sql(
    ctx: typer.Context,
    query: Annotated[str | None, typer.Argument(help="A SQL query; none opens the interactive shell.")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Read lake tables at this version or time.")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="table, csv, json or parquet (default: table, "
                                                               "or the --out file's extension).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the result to this file (outside the lake).")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many rows.")] = None,
    allow: Annotated[list[str] | None, typer.Option("--allow", help="A folder outside the lake whose files queries "
                                                                     "may read (read_csv...); repeatable.")] = None,
    timer: Annotated[bool, typer.Option("--timer", help="Print how long the query took.")] = False,
    saved: Annotated[str | None, typer.Option("--saved", help="Run the query saved under this name (recorded "
                                                               "in the catalog with the tables it read).")] = None,
    save: Annotated[str | None, typer.Option("--save", help="Save QUERY under this name (shared; re-run it "
                                                             "with --saved NAME or from the console).")] = None,
    saved_list: Annotated[bool, typer.Option("--saved-list", help="List the saved queries.")] = False,
) -> None:
    """Query lake tables by name (bronze.events...) with DuckDB; read-only over the lake.

    Time travel in SQL: lake_at('bronze.events', 3) or lake_at('bronze.events', '2024-05-01T00:00:00Z').
    """
    from lake.sql import LakeSQL  # deferred: DuckDB loads only for this command

    if saved is not None or save is not None or saved_list:
        _saved(ctx, query, saved=saved, save=save, listing=saved_list, fmt=fmt or _format_of(out), out=out,
               limit=limit)
        return
    fmt = fmt or _format_of(out)
    if fmt not in FORMATS:
        raise LakeError(f"unknown format {fmt!r}: use {', '.join(FORMATS)}")
    if fmt == "parquet" and out is None and sys.stdout.isatty():
        raise LakeError("Parquet is binary: pass --out FILE or redirect stdout")
    version: int | str | None = int(as_of) if as_of and as_of.isdigit() else as_of
    settings = state(ctx).settings()
    if settings.service.url and query is not None:  # through `lake serve`: its grants and masks apply
        if as_of or allow:
            raise LakeError("--as-of and --allow are not available through the lake service: use "
                            "lake_at('layer.table', version) in the query")
        import duckdb  # deferred: DuckDB loads only for this command

        from lake.remote import (
            ServiceClient,  # deferred: httpx and pyarrow load only when used
        )

        client = ServiceClient.from_settings(settings)
        try:
            write_result(duckdb.from_arrow(client.sql(query, limit=limit)), fmt, out)
        finally:
            client.close()
        return
    # One statement: DuckDB's delta extension, pyarrow and delta-rs load only if it names a lake table.
    db = LakeSQL(settings=state(ctx).check_root(), as_of=version, allow=allow or (), lazy=query is not None)
    if query is None:
        shell(db)
        return
    run_one(db, query, fmt=fmt, out=out, limit=limit, timer=timer)


def _saved(ctx: typer.Context, query: str | None, *, saved: str | None, save: str | None, listing: bool,
           fmt: str, out: Path | None, limit: int | None) -> None:
    """``--saved NAME`` runs a saved query, ``--save NAME QUERY`` saves one, ``--saved-list`` lists them."""
    import duckdb  # deferred: DuckDB loads only for this command

    from lake.queries import run_saved, save_query  # deferred: DuckDB loads only for this command

    lake = state(ctx).lake()
    if listing:
        print_table(lake.catalog.saved_queries(), ["name", "owner", "updated_at", "description", "sql"],
                    title="saved queries")
        return
    if save is not None:
        if not query:
            raise LakeError("--save NAME needs the query: lake sql --save NAME \"SELECT ...\"")
        record = save_query(lake, save, query)
        reads = ", ".join(f"{t}@{v}" for t, v in record["reads"].items()) or "no lake table"
        console.print(f"saved {record['name']} (dataset {record['dataset']}; reads {reads})", highlight=False)
        return
    assert saved is not None
    if query:
        raise LakeError("--saved NAME runs the saved query: give no QUERY with it")
    if fmt not in FORMATS:
        raise LakeError(f"unknown format {fmt!r}: use {', '.join(FORMATS)}")
    result = run_saved(lake, saved, limit=limit)
    write_result(duckdb.from_arrow(result.data), fmt, out)


def _format_of(out: Path | None) -> str:
    suffix = out.suffix.lower().lstrip(".") if out is not None else ""
    return {"csv": "csv", "json": "json", "parquet": "parquet", "pq": "parquet"}.get(suffix, "table")


def run_one(db: LakeSQL, query: str, *, fmt: str = "table", out: Path | None = None, limit: int | None = None,
            timer: bool = False) -> None:
    started = time.perf_counter()
    if out is not None and db.in_lake(str(out)):
        raise LakeError(f"--out {out} is inside the lake root {db.root}: `lake sql` never writes "
                        "there (write tables through a job or the Python API)")
    rel = db.sql(query)
    if rel is None:  # a statement without a result (CREATE TABLE scratch AS ...)
        console.print("ok")
        return
    if limit is not None:
        rel = rel.limit(limit)
    try:
        write_result(rel, fmt, out)
    except LakeError:
        raise
    except Exception as exc:  # DuckDB fails while the query runs (a failed cast...)
        error = db.error(exc)
        if error is exc:
            raise
        raise error from None
    if timer:
        err_console.print(f"time: {time.perf_counter() - started:.3f} s")


def write_result(rel: duckdb.DuckDBPyRelation, fmt: str, out: Path | None) -> None:
    """Print or save a result: a Rich table, or CSV, JSON (an array of row objects) or Parquet,
    streamed in batches (bounded memory). A file is written whole or not at all."""
    if fmt == "table":
        if out is not None:
            raise LakeError("--out needs --format csv, json or parquet")
        rows = rel.limit(SHOWN_ROWS + 1).fetchall()
        columns = list(rel.columns)
        shown = [dict(zip(columns, r, strict=True)) for r in rows[:SHOWN_ROWS]]
        print_table(shown, columns)
        more = "" if len(rows) <= SHOWN_ROWS else f" (first {SHOWN_ROWS} shown; --limit or --format csv for all)"
        console.print(f"{len(shown)} rows{more}")
        return
    writer = {"csv": _write_csv, "json": _write_json, "parquet": _write_parquet}[fmt]
    reader = rel.to_arrow_reader(BATCH_ROWS)
    if out is None:
        writer(reader, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    out = out.expanduser()
    tmp = out.with_name(f".{out.name}.{os.getpid()}.partial")
    try:
        with tmp.open("wb") as fh:
            writer(reader, fh)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def _write_csv(reader: pa.RecordBatchReader, fh: BinaryIO) -> None:
    """RFC 4180 CSV (NULL is an empty field)."""
    text = io.TextIOWrapper(fh, encoding="utf-8", newline="", write_through=True)
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(reader.schema.names)
    for batch in reader:
        for row in zip(*(col.to_pylist() for col in batch.columns), strict=True):
            writer.writerow(["" if v is None else v for v in row])
    text.detach()


def _write_json(reader: pa.RecordBatchReader, fh: BinaryIO) -> None:
    """A JSON array of row objects, one batch in memory at a time."""
    from lake.cli.output import json_default

    fh.write(b"[")
    first = True
    for batch in reader:
        for row in batch.to_pylist():
            fh.write((b"" if first else b",\n") + json.dumps(row, default=json_default).encode())
            first = False
    fh.write(b"]\n")


def _write_parquet(reader: pa.RecordBatchReader, fh: BinaryIO) -> None:
    import pyarrow.parquet as pq  # heavy enough to load only for Parquet output

    with pq.ParquetWriter(fh, reader.schema) as writer:
        for batch in reader:
            writer.write_batch(batch)


HELP = """.tables              lake tables (and this session's)
.schema NAME         columns of a table
.once FILE           write the next result to FILE (csv, json or parquet by its extension)
.timer on|off        time each statement
.quit                leave (or Ctrl-D)
Statements end with ; and may span lines."""


@dataclass
class Shell:
    """What the interactive shell remembers between statements."""

    timer: bool = False
    once: Path | None = None
    done: bool = False


def shell(db: LakeSQL) -> None:
    """Interactive: history, multi-line statements, dot commands. Piped stdin runs as a script."""
    if sys.stdin.isatty():
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory

        session: PromptSession[str] = PromptSession(history=FileHistory(str(Path.home() / ".lake_sql_history")))
        console.print(f"lake sql on {db.root} - .help for commands, statements end with ;")

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
    state = Shell()
    buffer = ""
    for line in lines:
        if line == "\x03":  # Ctrl-C drops the statement being typed
            buffer = ""
            continue
        if not buffer and line.strip().startswith("."):
            _dot(db, line.strip(), state)
            if state.done:
                return
            continue
        buffer += line + "\n"
        if buffer.strip().endswith(";"):
            for statement in _statements(buffer):
                _shell_run(db, statement, state)
            buffer = ""
    if buffer.strip():
        _shell_run(db, buffer, state)


def _statements(script: str) -> list[str]:
    import duckdb  # deferred: DuckDB loads only for this command

    try:
        return [s.query for s in duckdb.extract_statements(script)]
    except Exception:
        return [script]


def _shell_run(db: LakeSQL, statement: str, state: Shell) -> None:
    out, state.once = state.once, None
    try:
        run_one(db, statement, timer=state.timer, out=out, fmt=_format_of(out))
        if out is not None:
            console.print(f"wrote {out}", markup=False)
    except LakeError as exc:
        err_console.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False)


def _dot(db: LakeSQL, command: str, state: Shell) -> None:
    word, _, arg = command.partition(" ")
    try:
        if word in (".quit", ".exit"):
            state.done = True
        elif word == ".help":
            console.print(HELP, markup=False)
        elif word == ".tables":
            session = [r[0] for r in db.con.execute(
                "SELECT schema_name || '.' || table_name FROM duckdb_tables() WHERE NOT internal").fetchall()]
            console.print("\n".join(db.tables() + session) or "no tables", markup=False)
        elif word == ".schema" and arg:
            print_table([{"column": c, "type": t} for c, t in db.schema(arg.strip())], ["column", "type"])
        elif word == ".once" and arg:
            target = Path(arg.strip()).expanduser()
            if _format_of(target) == "table":
                raise LakeError(f"{target}: name a .csv, .json or .parquet file")
            state.once = target
        elif word == ".timer":
            state.timer = arg.strip().lower() in ("on", "1", "true")
            console.print(f"timer {'on' if state.timer else 'off'}")
        else:
            console.print(f"unknown command {word}; .help lists them", markup=False)
    except LakeError as exc:
        err_console.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False)
