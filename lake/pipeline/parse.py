"""Executor side of file ingestion: parse one source file, split good rows from bad ones.

Runs inside a Spark task (or in-process for tests). CSV is read by DuckDB's parallel
CSV reader with ``store_rejects``: every row that has the wrong number of fields, a
value that does not parse as its column's type, or bytes that are not valid text is
set aside with its line number, byte offset, column, raw text and reason. JSON lines
are parsed line by line the same way. Good rows are written as Parquet files of the
target table, bad rows as Parquet files of its quarantine table; the driver commits
both. Nothing is dropped: rows read = rows written + rows quarantined.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import re
from typing import Any

import pyarrow as pa

from lake.duck import create_s3_secret, ident, literal
from lake.errors import SourceFileError
from lake.naming import QUARANTINE_SCHEMA
from lake.spark_files import make_filesystem, write_batches

SYSTEM_COLUMNS = ("_source_file", "_batch", "_ingested_at")
HEADER_BYTES = 1 << 20
RAW_CHARS = 100_000
"""How much of a bad record's raw text the quarantine keeps."""


def checksum(fs: Any, path: str) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with fs.open_input_stream(path) as fh:
        while chunk := fh.read(4 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def duck(task: dict[str, Any]) -> Any:
    """A DuckDB connection for one task: its share of threads, S3 credentials when needed."""
    import duckdb  # heavy: DuckDB loads on the executor that parses

    con = duckdb.connect()
    con.execute(f"SET threads = {max(1, int(task.get('threads', 1)))}")
    if task.get("s3"):
        create_s3_secret(con, task["s3"])
    return con


def csv_options(opts: dict[str, Any]) -> list[str]:
    out = [f"header = {str(opts['header']).lower()}", f"delim = {literal(opts['delimiter'])}",
           f"quote = {literal(opts['quote'])}", f"escape = {literal(opts['escape'])}",
           f"encoding = {literal(opts['encoding'])}",
           "nullstr = [" + ", ".join(literal(v) for v in opts["null_values"]) + "]"]
    if opts.get("date_format"):
        out.append(f"dateformat = {literal(opts['date_format'])}")
    if opts.get("timestamp_format"):
        out.append(f"timestampformat = {literal(opts['timestamp_format'])}")
    if opts.get("multiline"):
        out.append("strict_mode = false")
    return out


TYPE_CANDIDATES = ("BOOLEAN", "BIGINT", "DOUBLE", "DATE", "TIMESTAMP")
MAJORITY = 0.95


def sniff_csv(uri: str, opts: dict[str, Any], task: dict[str, Any]) -> list[tuple[str, str]]:
    """Column types from a sample: the most specific type 95% of a column's values parse as.

    A few malformed values must not turn a numeric column into text (they are quarantined
    instead), so each column is tried against BOOLEAN, BIGINT, DOUBLE, DATE and TIMESTAMP.
    """
    sample_rows = int(opts.get("sample_rows", 20000))
    args = ", ".join([*csv_options(opts), "ignore_errors = true", "all_varchar = true"])
    con = duck(task)
    try:
        con.execute(f"CREATE TEMP TABLE sample AS SELECT * FROM read_csv({literal(uri)}, {args}) LIMIT {sample_rows}")
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceFileError(f"{uri} cannot be read as CSV: {first}") from None
    columns = [r[0] for r in con.execute("SELECT column_name FROM (DESCRIBE sample)").fetchall()]
    out = []
    for name in columns:
        col = ident(name)
        probes = []
        for kind in TYPE_CANDIDATES:
            if kind == "BOOLEAN":  # not 0/1: those are numbers
                expr = f"CASE WHEN lower(trim({col})) IN ('true', 'false', 't', 'f', 'yes', 'no') THEN 1 END"
            elif kind == "BIGINT":  # DuckDB would round '1.5' into an integer
                expr = f"CASE WHEN regexp_full_match(trim({col}), '[+-]?[0-9]{{1,18}}') THEN 1 END"
            elif kind == "DATE" and opts.get("date_format"):
                expr = f"TRY_STRPTIME({col}, {literal(opts['date_format'])})"
            elif kind == "TIMESTAMP" and opts.get("timestamp_format"):
                expr = f"TRY_STRPTIME({col}, {literal(opts['timestamp_format'])})"
            else:
                expr = f"TRY_CAST({col} AS {kind})"
            probes.append(f"count({expr})")
        row = con.execute(f"SELECT count({col}), {', '.join(probes)} FROM sample").fetchone()
        total = row[0] if row else 0
        chosen = "VARCHAR"
        if total:
            for kind, ok in zip(TYPE_CANDIDATES, row[1:], strict=True):
                if ok / total >= MAJORITY:
                    chosen = kind
                    break
        out.append((name, chosen))
    return out


def codec(opts: dict[str, Any]) -> str:
    """The Python codec of a CSV ``encoding`` option."""
    return {"utf-8": "utf-8", "utf8": "utf-8", "utf-16": "utf-16", "latin-1": "latin-1",
            "latin1": "latin-1"}.get(str(opts.get("encoding", "utf-8")).lower(), "utf-8")


def dialect(opts: dict[str, Any]) -> dict[str, Any]:
    """The csv module's dialect for the CSV options (the same quoting DuckDB applies)."""
    escape = opts.get("escape") or opts.get("quote") or '"'
    quote = opts.get("quote") or '"'
    out: dict[str, Any] = {"delimiter": opts.get("delimiter") or ",", "quotechar": quote, "strict": True}
    if escape == quote:
        out["doublequote"] = True
    else:
        out.update(doublequote=False, escapechar=escape)
    return out


def read_header(fs: Any, path: str, opts: dict[str, Any]) -> list[str] | None:
    """The column names on a CSV file's first line, or None when that line is not readable CSV text.

    Read in Python: a header is data from whoever wrote the file, and never becomes SQL.
    """
    with fs.open_input_stream(path) as fh:
        head = fh.read(HEADER_BYTES)
    line = head.split(b"\n", 1)[0].rstrip(b"\r")
    if not line.strip():
        return None
    try:
        fields = next(csv.reader([line.decode(codec(opts))], **dialect(opts)))
    except (UnicodeDecodeError, csv.Error, StopIteration):
        return None
    return fields if fields and all(fields) and len(set(fields)) == len(fields) else None


def _system_values(task: dict[str, Any]) -> str:
    return (f"{literal(task['uri'])} AS _source_file, CAST({int(task['batch'])} AS BIGINT) AS _batch, "
            f"CAST({literal(task['ingested_at'])} AS TIMESTAMPTZ) AS _ingested_at")


def _swallowed(bad: list[dict[str, Any]]) -> bool:
    """Whether a rejected record spans several lines (an unterminated quote took the lines after it)."""
    return any("UNQUOTED" in (r["error_type"] or "") or "\n" in (r["raw"] or "").rstrip("\r\n") for r in bad)


def type_sql(kind: str) -> str:
    """A column type as SQL text, checked: type names, sizes, nested field names (quoted), nothing else."""
    depth = 0
    for token in re.findall(r'"(?:[^"]|"")*"|[A-Za-z_][A-Za-z0-9_]*|\d+|[(),\[\]]|\s+|.', kind):
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
        if depth < 0 or not re.fullmatch(r'"(?:[^"]|"")*"|[A-Za-z_][A-Za-z0-9_]*|\d+|[(),\[\]]|\s+', token):
            raise SourceFileError(f"{kind!r} is not a column type")
    if depth != 0:
        raise SourceFileError(f"{kind!r} is not a column type")
    return kind


def _read_csv(con: Any, task: dict[str, Any]) -> tuple[Any, list[dict[str, Any]]]:
    cols = "{" + ", ".join(f"{literal(n)}: {literal(t)}" for n, t in task["columns"]) + "}"
    args = ", ".join([*csv_options(task["csv"]), f"columns = {cols}", "auto_detect = false",
                      "store_rejects = true", "rejects_limit = 0"])
    con.execute(f"CREATE TEMP TABLE good AS SELECT *, {_system_values(task)} FROM read_csv({literal(task['uri'])}, {args})")
    rejects = con.sql(
        "SELECT line, min(byte_position) AS byte_offset, string_agg(DISTINCT column_name, ', ') AS column_name, "
        "string_agg(DISTINCT error_type, ', ') AS error_type, string_agg(error_message, '; ') AS reason, "
        "any_value(csv_line) AS raw FROM reject_errors GROUP BY line ORDER BY line").fetchall()
    bad = [{"line": r[0], "byte_offset": r[1], "column_name": r[2], "error_type": r[3], "reason": (r[4] or "")[:500],
            "raw": (r[5] or "")[:RAW_CHARS]} for r in rejects]
    return con.table("good"), bad


def _bad(number: int, offset: int | None, kind: str, reason: str, raw: bytes | str) -> dict[str, Any]:
    text = raw if isinstance(raw, str) else raw.decode("utf-8", errors="replace")
    return {"line": number, "byte_offset": offset, "column_name": None, "error_type": kind,
            "reason": reason[:500], "raw": text[:RAW_CHARS]}


def _typed(con: Any, task: dict[str, Any], lines: list[int], raws: list[str],
           values: dict[str, list[str | None]]) -> tuple[Any, list[dict[str, Any]]]:
    """Text values by column, cast in DuckDB: the rows that fit, and the rows that do not (with why).

    Names and values are data: names only as quoted identifiers or literals, values as data.
    """
    names = [n for n, _ in task["columns"]]
    staged = pa.table({"__line": pa.array(lines, pa.int64()), "__raw": pa.array(raws, pa.string()),
                       **{f"c{i}": pa.array(values[n], pa.string()) for i, n in enumerate(names)}})
    con.register("staged", staged)
    opts = task.get("csv") or {}

    def cast(i: int, kind: str) -> str:
        col = f"c{i}"
        if kind == "DATE" and opts.get("date_format") and task["format"] == "csv":
            return f"CAST(TRY_STRPTIME({col}, {literal(opts['date_format'])}) AS DATE)"
        if kind.startswith("TIMESTAMP") and opts.get("timestamp_format") and task["format"] == "csv":
            return f"CAST(TRY_STRPTIME({col}, {literal(opts['timestamp_format'])}) AS {type_sql(kind)})"
        return f"TRY_CAST({col} AS {type_sql(kind)})"

    casts = ", ".join(f"{cast(i, t)} AS c{i}" for i, (_, t) in enumerate(task["columns"]))
    con.execute(f"CREATE OR REPLACE TEMP TABLE typed AS SELECT __line, __raw, {casts} FROM staged")
    failed = " OR ".join(f"(s.c{i} IS NOT NULL AND t.c{i} IS NULL)" for i in range(len(names))) or "false"
    reasons = " || ".join(
        f"CASE WHEN s.c{i} IS NOT NULL AND t.c{i} IS NULL THEN {literal(f'column {n}: cannot read ')} || "
        f"s.c{i} || {literal(f' as {t}; ')} ELSE '' END" for i, (n, t) in enumerate(task["columns"])) or "''"
    bad = [_bad(line, None, "CAST", reason.rstrip("; "), raw) for line, raw, reason in con.sql(
        f"SELECT t.__line, t.__raw, {reasons} FROM typed t JOIN staged s USING (__line) WHERE {failed} ORDER BY 1"
    ).fetchall()]
    good = con.sql(f"SELECT {', '.join(f't.c{i} AS {ident(n)}' for i, n in enumerate(names))}, "
                   f"{_system_values(task)} FROM typed t JOIN staged s USING (__line) WHERE NOT ({failed}) "
                   "ORDER BY t.__line")
    return good, bad


def _read_json(con: Any, fs: Any, task: dict[str, Any]) -> tuple[Any, list[dict[str, Any]]]:
    """JSON lines: bad JSON and values that do not fit their column's type are set aside."""
    names = [n for n, _ in task["columns"]]
    bad: list[dict[str, Any]] = []
    lines, raws, values = [], [], {n: [] for n in names}  # type: ignore[var-annotated]
    offset = 0
    with fs.open_input_stream(task["path"]) as fh:
        data = fh.read()
    for number, raw_line in enumerate(data.split(b"\n"), start=1):
        start = offset
        offset += len(raw_line) + 1
        text = raw_line.rstrip(b"\r")
        if not text.strip():
            continue
        try:
            decoded = text.decode("utf-8")
            record = json.loads(decoded)
            if not isinstance(record, dict):
                raise ValueError("a JSON line must be an object")
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            kind = "INVALID ENCODING" if isinstance(exc, UnicodeDecodeError) else "INVALID JSON"
            bad.append(_bad(number, start, kind, str(exc) or type(exc).__name__, text))
            continue
        lines.append(number)
        raws.append(decoded)
        for n in names:
            v = record.get(n)
            values[n].append(None if v is None else v if isinstance(v, str) else json.dumps(v))
    good, cast_bad = _typed(con, task, lines, raws, values)
    return good, sorted(bad + cast_bad, key=lambda r: r["line"])


def _read_csv_lines(con: Any, fs: Any, task: dict[str, Any], header: list[str] | None) -> tuple[Any, list[dict[str, Any]]]:
    """CSV the careful way, when DuckDB's reader gives up on a file or cannot account for every line.

    Each line is one record (``multiline`` files: each record the csv module finds), parsed
    on its own: a line that is not text, breaks the quoting, or has the wrong number of
    fields is set aside with why; the others are cast like JSON lines. Slower than DuckDB's
    reader, and exact: every record is written or quarantined.
    """
    opts = task["csv"]
    names = [n for n, _ in task["columns"]]
    with fs.open_input_stream(task["path"]) as fh:
        data = fh.read()
    bad: list[dict[str, Any]] = []
    lines, raws, values = [], [], {n: [] for n in names}  # type: ignore[var-annotated]
    nulls = set(opts.get("null_values") or ())
    expected = len(header) if header is not None else len(names)
    positions = {n: i for i, n in enumerate(header)} if header is not None else {n: i for i, n in enumerate(names)}
    offset = 0
    chunks = data.split(b"\n")
    if chunks and chunks[-1] == b"":
        chunks.pop()
    for number, raw_line in enumerate(chunks, start=1):
        start = offset
        offset += len(raw_line) + 1
        if number == 1 and opts.get("header", True):
            if header is None:  # the header itself is not readable: nothing below it can be placed
                bad.append(_bad(1, 0, "HEADER", "the first line is not a readable CSV header", raw_line))
            continue
        text = raw_line.rstrip(b"\r")
        if not text and expected > 1:
            continue  # a blank line is no record (DuckDB's reader skips them too)
        if header is None and opts.get("header", True):
            bad.append(_bad(number, start, "HEADER", "the file's header line is not readable, so no column "
                            "can be told", text))
            continue
        try:
            decoded = text.decode(codec(opts))
        except UnicodeDecodeError as exc:
            bad.append(_bad(number, start, "INVALID ENCODING", f"not {codec(opts)} text: {exc}", text))
            continue
        try:
            fields = next(csv.reader([decoded], **dialect(opts)))
        except (csv.Error, StopIteration) as exc:
            bad.append(_bad(number, start, "INVALID CSV", f"the line breaks the CSV quoting: {exc}", decoded))
            continue
        if len(fields) != expected:
            bad.append(_bad(number, start, "WRONG NUMBER OF COLUMNS",
                            f"Expected Number of Columns: {expected} Found: {len(fields)}", decoded))
            continue
        lines.append(number)
        raws.append(decoded)
        for n in names:
            v = fields[positions[n]] if n in positions else None
            values[n].append(None if v is None or v in nulls else v)
    good, cast_bad = _typed(con, task, lines, raws, values)
    return good, sorted(bad + cast_bad, key=lambda r: r["line"])


def ingest_file(task: dict[str, Any]) -> dict[str, Any]:
    """Parse one source file, write good and bad rows as Parquet files; describe what was done."""
    fs = make_filesystem(task["fs_kind"], task["fs_kwargs"])  # where the lake's files go
    src_fs = make_filesystem(task["src_fs_kind"], task["src_fs_kwargs"])  # where the source file is
    con = duck(task)
    fmt = task["format"]
    if fmt == "csv":
        header = task.get("header")
        try:
            good, bad = _read_csv(con, task) if task.get("header_ok", True) else (None, [])
        except Exception:  # DuckDB's reader gave up on the file (bytes that are not CSV)
            good, bad = None, []
        if good is None or (not task["csv"].get("multiline") and _swallowed(bad)):
            good, bad = _read_csv_lines(duck(task), src_fs, task, header if task.get("header_ok", True) else None)
    elif fmt == "json":
        good, bad = _read_json(con, src_fs, task)
    else:
        good = con.sql(f"SELECT *, {_system_values(task)} FROM read_parquet({literal(task['uri'])})")
        bad = []
    schema = pa.ipc.read_schema(pa.py_buffer(task["data_schema"]))
    missing = [(n, t) for n, t in task.get("missing", [])]
    if missing:  # table columns this file lacks: NULL
        good = good.select("*, " + ", ".join(f"CAST(NULL AS {type_sql(t)}) AS {ident(n)}" for n, t in missing))
    prefix = f"{task['write_id']}-{task['index']:05d}"
    data_files = write_batches(fs, task["target_root"], good.to_arrow_reader(1_000_000), schema,
                               task["partition_by"], prefix)
    quarantine_files: list[dict[str, Any]] = []
    if bad:
        now = dt.datetime.now(dt.UTC)
        table = pa.Table.from_pylist(
            [{**r, "source_file": task["uri"], "job": task["job"], "batch": task["batch"], "quarantined_at": now}
             for r in bad], schema=QUARANTINE_SCHEMA)
        quarantine_files = write_batches(fs, task["quarantine_root"], table.to_batches(), QUARANTINE_SCHEMA, [],
                                         prefix)
    written = sum(f["rows"] for f in data_files)
    return {
        "path": task["path"], "uri": task["uri"], "size": task["size"], "mtime": task["mtime"],
        "checksum": checksum(src_fs, task["path"]),
        "rows_written": written, "rows_quarantined": len(bad), "rows_read": written + len(bad),
        "data_files": data_files, "quarantine_files": quarantine_files,
    }
