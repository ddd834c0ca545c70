"""DuckDB over the lake: every table by its name, time travel, read-only by construction.

``bronze.flights`` in a query becomes a view over DuckDB's own Delta reader
(``delta_scan``), created the first time a query names it, so a lake with thousands
of tables opens instantly. A name is found at ``<root>/bronze/flights``, else at the
location the catalog records for it (a Delta table written by path and registered
under that name). DuckDB skips files through the Delta log (partition values and
statistics).

**Read-only by construction.** The session runs with DuckDB's external access disabled and
its configuration locked: DuckDB may open files only inside the lake root and the folders
``sql_read_dirs`` / ``--allow`` grant outside it, spills only into a temp folder of its own,
and no statement can change that (``SET home_directory``, query logs, profiling output,
allowed directories: all locked). The statements that write files by themselves (``COPY``,
``EXPORT``, ``ATTACH``, ``CALL enable_logging``...) or change settings (``CALL``,
``PRAGMA``, ``SET`` other than ``SET VARIABLE``/``USE``, ``LOAD``/``INSTALL``, ``PREPARE``)
are refused by the type DuckDB's own parser gives them, whatever their text. Scratch tables
of the session (in ``main``/``temp``) are fine; results go to files through ``lake sql --out
FILE`` (written by the lake, never inside the lake root). A table the catalog locates
outside the lake root is read by delta-rs and scanned by DuckDB as Arrow.

Time travel in SQL: ``lake_at('bronze.flights', 3)`` (a version) or
``lake_at('bronze.flights', '2024-05-01T00:00:00Z')`` (the version current then).
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lake.duck import configure_storage, ident, literal, load_extensions, qualified
from lake.errors import LakeError, ReadOnlyError, SQLError, TableNotFoundError

if TYPE_CHECKING:
    import duckdb

    from lake.config import Settings
    from lake.lakehouse import Lake
    from lake.table import Table

_AT = re.compile(r"lake_at\(\s*'([^']+)'\s*,\s*('([^']*)'|\d+)\s*\)", re.IGNORECASE)
_WRITE_TARGET = re.compile(
    r"^\s*(?:insert\s+(?:or\s+\w+\s+)?into|update|delete\s+from|truncate(?:\s+table)?|"
    r"drop\s+(?:table|view)(?:\s+if\s+exists)?|alter\s+(?:table|view)|"
    r"create\s+(?:or\s+replace\s+)?(?:temp(?:orary)?\s+)?(?:table|view)(?:\s+if\s+not\s+exists)?)\s+"
    r"(?P<target>[\w\".]+)",
    re.IGNORECASE,
)
_QUALIFIED = re.compile(r'"?\b([A-Za-z_]\w*)"?\."?([A-Za-z_]\w*)\b"?')
_STRINGS = re.compile(r"'(?:[^']|'')*'")
_WRITES = {"INSERT", "UPDATE", "DELETE", "DROP", "ALTER", "CREATE"}
# Statement types (DuckDB's parser) a lake sql session runs; everything else is refused.
_ALLOWED = {"SELECT", "EXPLAIN", "CREATE", "INSERT", "UPDATE", "DELETE", "DROP", "ALTER", "TRANSACTION",
            "ANALYZE", "RELATION", "SET"}
_SETS_ALLOWED = re.compile(r"^\s*(?:use\s|(?:set|reset)\s+variable\s)", re.IGNORECASE)
_SECRET = re.compile(r"^\s*create\s+(?:or\s+replace\s+)?(?:persistent\s+|temporary\s+)?secret\b", re.IGNORECASE)
_REFUSALS = {
    "COPY": "COPY is not available in `lake sql` (a COPY could overwrite a lake file): save a result with "
            "`lake sql --out FILE` (csv, json or parquet), or read files with read_csv()/read_parquet()",
    "EXPORT": "EXPORT DATABASE is not available in `lake sql`: save results with `lake sql --out FILE`",
    "COPY_DATABASE": "COPY FROM DATABASE is not available in `lake sql`",
    "ATTACH": "ATTACH is not available in `lake sql`: an attached database could be written, the catalog's "
              "among them. Read files with read_parquet()/read_csv() or lake tables by name",
    "DETACH": "DETACH is not available in `lake sql`",
    "CALL": "CALL is not available in `lake sql` (it can change settings); table functions work in a "
            "SELECT: SELECT * FROM duckdb_settings()",
    "PRAGMA": "PRAGMA statements are not available in `lake sql` (they change settings)",
    "SET": "`lake sql` does not change DuckDB's settings (SET VARIABLE and USE are fine)",
    "LOAD": "`lake sql` loads its own extensions; LOAD and INSTALL are not available",
    "EXTENSION": "`lake sql` loads its own extensions; LOAD and INSTALL are not available",
    "UPDATE_EXTENSIONS": "`lake sql` loads its own extensions",
    "PREPARE": "PREPARE/EXECUTE are not available in `lake sql`; from Python, pass parameters to execute()",
    "EXECUTE": "PREPARE/EXECUTE are not available in `lake sql`; from Python, pass parameters to execute()",
    "VACUUM": "VACUUM is not available in `lake sql`; maintain tables with `lake table optimize|vacuum`",
}


class ReadPolicy(Protocol):
    """What a query through the service must respect (``lake serve`` passes one; the CLI none).

    With a policy, a session runs one SELECT at a time, calls no table function but
    ``range``/``generate_series``/``unnest``/``lake_at`` and names no file: it reads lake tables
    by name only, each through a view that masks what :meth:`table` says.
    """

    salt: bytes | None

    def table(self, name: str) -> Mapping[str, str]:
        """Called for every lake table a query reads: raises if it may not; returns ``{column: method}`` to mask."""
        ...


_POLICY_FUNCTIONS = {"range", "generate_series", "unnest", "lake_at"}


class LakeSQL:
    """A DuckDB session that sees the lake's tables by name, read-only over the lake.

    Args:
        lake: the lake (default: from ``settings``, made when a query first names a table).
        as_of: read every lake table at this version (int) or time (ISO string).
        allow: folders whose files queries may read (besides the lake and the settings'
            ``sql_read_dirs``).
        settings: the settings to open the lake from when ``lake`` is not given (default:
            :func:`lake.config.load_settings`).
        lazy: load DuckDB's delta extension (about 0.5 s) only if the first statement reads
            a lake table, so ``lake sql "SELECT 1"`` answers without it. The session is sealed
            (external access off, configuration locked) before any statement runs, lazy or
            not; a lake table that a later statement of a lazy session names without the
            extension is read through delta-rs as Arrow.

    Example:
        >>> db = LakeSQL()
        >>> db.sql("SELECT carrier, avg(delay) FROM silver.flights GROUP BY 1").pl()
    """

    def __init__(self, lake: Lake | None = None, *, as_of: int | str | None = None,
                 allow: Sequence[str] = (), policy: ReadPolicy | None = None,
                 settings: Settings | None = None, lazy: bool = False) -> None:
        import duckdb  # heavy: DuckDB loads on first use

        if lake is None and settings is None:
            # deferred: pydantic loads only when no settings were given
            from lake.config import load_settings

            settings = load_settings()
        self._lake = lake
        self.settings: Settings = lake.settings if lake is not None else settings  # type: ignore[assignment]
        self.as_of = as_of
        self.policy = policy
        self.read_dirs = [] if policy else [self._folder(d) for d in [*self.settings.sql_read_dirs, *allow]]
        self._con: duckdb.DuckDBPyConnection = duckdb.connect(":memory:")
        self._sealed = False
        self._delta = False
        self._spill: str | None = None
        self._views: dict[str, tuple[Table, int]] = {}
        self._arrow: dict[str, Any] = {}
        self._missing: set[str] = set()
        if policy is not None:
            # deferred: pyarrow loads only for the service
            from lake.masking import register

            register(self._con, policy.salt)
            self._con.execute("SET python_enable_replacements = false")  # no Python variable read as a table
        if not lazy:
            self._seal(delta=True)

    def _seal(self, *, delta: bool) -> None:
        """Load the extensions, then lock the session: DuckDB may open files only in the lake and the
        granted folders, spills only in a temp folder of its own, and nothing can change that afterwards."""

        if delta:
            load_extensions(self._con, "delta")
            self._delta = True
        if self.settings.is_s3:  # the lake's S3 endpoint and credentials (httpfs), before the lock
            configure_storage(self._con, self.lake.storage)
        self._spill = tempfile.mkdtemp(prefix="lake-sql-")
        self._con.execute(f"SET temp_directory = {literal(self._spill)}")
        self._con.execute("SET allowed_directories = " + _list([self.root.rstrip("/") + "/", *self.read_dirs]))
        self._con.execute("SET enable_external_access = false")
        self._con.execute("SET lock_configuration = true")
        self._sealed = True

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection, sealed (a lazy session is sealed with the delta extension on first access)."""
        if not self._sealed:
            self._seal(delta=True)
        return self._con

    @property
    def lake(self) -> Lake:
        """The lake (made on first use: pyarrow and delta-rs load only when a query needs a table)."""
        if self._lake is None:
            # deferred: pyarrow, delta-rs
            from lake.lakehouse import Lake

            self._lake = Lake(self.settings)
        return self._lake

    @property
    def root(self) -> str:
        """The lake root as the storage spells it (an absolute folder, or ``s3://bucket/prefix``)."""
        if self._lake is not None or self.settings.is_s3:
            return self.lake.storage.root
        return str(Path(self.settings.root_uri).expanduser().resolve())  # as LocalStorage has it

    def __getattr__(self, name: str) -> Any:
        # Everything else (fetch*, register, read_parquet...) is the DuckDB connection's.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.con, name)

    def close(self) -> None:
        self._con.close()
        if self._spill is not None:
            shutil.rmtree(self._spill, ignore_errors=True)

    @staticmethod
    def _folder(folder: str) -> str:
        """A granted folder as DuckDB compares it: absolute, with a trailing separator."""
        uri = folder.rstrip("/") if "://" in folder else os.path.realpath(os.path.expanduser(folder))
        return uri + "/"

    # ------------------------------------------------------------------ names

    def tables(self) -> list[str]:
        """Every lake table: what the catalog knows plus what is under the root."""
        # deferred: lake.naming loads pyarrow
        from lake.naming import TABLE_NAME as NAME

        names = {ref.name for ref in self.lake.tables()}
        with contextlib.suppress(LakeError):  # no catalog: the storage listing is enough
            names |= {d["name"] for d in self.lake.catalog.datasets(namespace=self.lake.settings.catalog.namespace)
                      if d["kind"] == "table" and NAME.match(d["name"])}
        return sorted(names)

    def _table(self, name: str) -> Table | None:
        """The existing lake table a ``layer.name`` denotes: under the root, else where the catalog says."""
        if "." not in name:  # no lake name: nothing to import
            return None
        # deferred: lake.naming loads pyarrow (not for queries that name no table)
        from lake.naming import TABLE_NAME as NAME
        from lake.naming import is_location

        if not NAME.match(name) or is_location(name):
            return None
        table = self.lake.table(name)
        if table.exists():
            return table
        location = self._catalog_location(name)
        if location is None:
            return None
        table = self.lake.table(location)
        return table if table.exists() else None

    def _catalog_location(self, name: str) -> str | None:
        try:
            info = self.lake.catalog.show(name, namespace=self.lake.settings.catalog.namespace)
        except LakeError:  # not registered, or no catalog: the root is all there is
            return None
        location = info.get("location")
        if not location or info.get("format") not in (None, "delta") or "****" in location:
            return None  # not a Delta table, or a location stored redacted (it held a credential)
        return str(location)

    def _version(self, table: Table, name: str, when: int | str | None) -> int:
        if when is None:
            return table.version()
        if isinstance(when, int) or str(when).isdigit():
            version = int(when)
            if version > table.version():
                raise SQLError(f"{name} has no version {version} (latest is {table.version()})")
            return version
        return int(table.delta(as_of=str(when)).version())

    def _scan_table(self, name: str, when: int | str | None) -> tuple[str, tuple[Table, int]]:
        """``delta_scan(...)`` of a lake table at a version, its files granted to DuckDB."""
        table = self._table(name)
        if table is None:
            raise TableNotFoundError(f"no lake table {name}{self._suggest(name)}; `lake table ls` lists them",
                                     table=name)
        # deferred: pyarrow, delta-rs
        from lake import protocol

        version = self._version(table, name, when)
        delta = table.delta(version)
        if self._delta and table.storage is self.lake.storage and table.uri.startswith(self.lake.storage.root.rstrip("/") + "/"):
            protocol.check(delta, protocol.DUCKDB, name)  # the reader allow list
            return f"delta_scan({literal(table.uri)}, version => {version})", (table, version)
        # A table registered at a location outside the lake root (DuckDB may not open files
        # there), or a lazy session sealed without the delta extension: delta-rs reads it
        # and DuckDB scans the Arrow dataset.
        protocol.check(delta, protocol.HANDOFF, name)  # a pyarrow dataset of the version's files
        alias = f"_lake_{len(self._arrow)}"
        self._arrow[alias] = delta.to_pyarrow_dataset()
        self._con.register(alias, self._arrow[alias])
        return ident(alias), (table, version)

    def _suggest(self, name: str) -> str:
        tables = self.tables()
        close = difflib.get_close_matches(name.lower(), tables, n=3, cutoff=0.6)
        if not close and "." not in name:  # an unqualified name: compare with the table part of each name
            by_part = {t.split(".", 1)[1]: t for t in tables}
            close = [by_part[p] for p in difflib.get_close_matches(name.lower(), list(by_part), n=3, cutoff=0.6)]
        return f" (did you mean {', '.join(close)}?)" if close else ""

    def resolve(self, query: str) -> str:
        """Create views for the lake tables ``query`` names; expand ``lake_at(...)``."""
        query = _AT.sub(self._expand_at, query)
        self._missing.clear()  # a table may have appeared since the last query
        for name in sorted(referenced_names(query)):
            if name in self._missing or (name in self._views and not self._moved_on(name)):
                continue
            if self._table(name) is None:
                self._missing.add(name)
                continue
            schema, table = name.split(".")
            scan, located = self._scan_table(name, self.as_of)
            self._con.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(schema)}")
            self._con.execute(f"CREATE OR REPLACE VIEW {ident(schema)}.{ident(table)} AS {self._select(name, scan)}")
            self._views[name] = located
        return query

    def versions_read(self) -> dict[str, int]:
        """The lake tables the queries so far read, and at which version (for lineage)."""
        return {name: version for name, (_table, version) in sorted(self._views.items())}

    def _moved_on(self, name: str) -> bool:
        """Whether a table this session reads at its latest version has committed since (one stat)."""
        if self.as_of is not None:
            return False
        # deferred: pyarrow
        from lake import delta_log

        table, version = self._views[name]
        return delta_log.exists(table.storage, table.uri, version + 1)

    def _expand_at(self, match: re.Match[str]) -> str:
        name = match.group(1).lower()
        when: int | str = match.group(3) if match.group(3) is not None else int(match.group(2))
        scan = self._scan_table(name, when)[0]
        return scan if self.policy is None else f"({self._select(name, scan)})"

    def _select(self, name: str, scan: str) -> str:
        """``SELECT * FROM scan``, with the policy's masked columns replaced by their masks."""
        if self.policy is None:
            return f"SELECT * FROM {scan}"
        masked = self.policy.table(name)
        if not masked:
            return f"SELECT * FROM {scan}"
        # deferred: pyarrow
        from lake.masking import match_columns, sql_expression

        columns = [d[0] for d in self._con.execute(f"SELECT * FROM {scan} LIMIT 0").description]
        hits = match_columns(columns, masked)
        if not hits:
            return f"SELECT * FROM {scan}"
        replace = ", ".join(f"{sql_expression(ident(c), m, self.policy.salt)} AS {ident(c)}" for c, m in hits.items())
        return f"SELECT * REPLACE ({replace}) FROM {scan}"

    def _check_policy(self, query: str) -> None:
        check_policy_query(query)

    # ---------------------------------------------------------------- queries

    def _check_statements(self, query: str) -> None:
        """Refuse what could write a file or change the session's settings (by DuckDB's own parse)."""
        try:
            statements = self._con.extract_statements(query)  # parsing only: fine before the seal
        except Exception:
            return  # a syntax error: DuckDB says where when it runs
        for statement in statements:
            kind = statement.type.name
            text = statement.query
            if kind not in _ALLOWED or (kind == "SET" and not _SETS_ALLOWED.match(text)):
                raise ReadOnlyError(_REFUSALS.get(kind, f"{kind} statements are not available in `lake sql`"))
            if kind == "CREATE" and _SECRET.match(text):
                raise ReadOnlyError("`lake sql` reads the lake with the lake's own credentials; CREATE SECRET is "
                                    "not available")
            if kind not in _WRITES:
                continue
            target = _WRITE_TARGET.match(text)
            if target is None:
                continue
            name = target.group("target").replace('"', "").lower()
            if name in self._views or self._table(name) is not None:
                raise ReadOnlyError(
                    f"{name} is a lake table and `lake sql` is read-only: write it through a job "
                    "(`lake jobs run`) or the Python API. Scratch tables without a lake name are fine."
                )

    def sql(self, query: str) -> duckdb.DuckDBPyRelation:
        """Run a query (a relation: ``.pl()``, ``.df()``, ``.arrow()``, ``.fetchall()``)."""
        return self._run(query, lambda q: self._con.sql(q))

    def execute(self, query: str, parameters: Iterable[Any] | None = None) -> duckdb.DuckDBPyConnection:
        """Run statements like ``duckdb.execute`` (parameters bound with ``?``)."""
        return self._run(query, lambda q: self._con.execute(q, parameters))

    def _run(self, query: str, fn: Any) -> Any:
        if not query.strip():
            raise SQLError("empty query")
        self._check_statements(query)
        if self.policy is not None:
            self._check_policy(query)
        if not self._sealed:  # a lazy session's first statement: the delta extension only if it reads a table
            self._seal(delta=_AT.search(query) is not None
                       or any(self._table(name) is not None for name in referenced_names(query)))
        query = self.resolve(query)
        try:
            return fn(query)
        except LakeError:
            raise
        except Exception as exc:
            raise self.error(exc) from None

    def error(self, exc: Exception) -> Exception:
        """DuckDB's error as one readable :class:`SQLError` (with a hint where one helps)."""
        if not type(exc).__module__.startswith(("duckdb", "_duckdb")):
            return exc
        text = readable(exc)
        missing = re.search(r'(?:Table with name|Schema with name|schema) "?([\w.]+)"? does not exist', text)
        if missing and self._missing:
            # DuckDB's own words ("schema bronze does not exist", "did you mean pragma_database_list")
            # are about its session, not the lake: say which lake names are unknown and what is close.
            text = "; ".join(f"lake table {name} does not exist{self._suggest(name)}" for name in sorted(self._missing))
            text += "; `lake table ls` lists the tables"
        if "file system operations are disabled" in text:
            text += (". `lake sql` reads lake tables by name, and other files only in folders outside the lake "
                     "that --allow DIR (or sql_read_dirs in lake.toml) grants")
        return SQLError(text)

    def schema(self, name: str) -> list[tuple[str, str]]:
        """(column, type) of a lake table or a session table."""
        rel = self.sql(f"SELECT * FROM {qualified(name)} LIMIT 0")
        return [(c, str(t)) for c, t in zip(rel.columns, rel.types, strict=True)]

    def in_lake(self, path: str) -> bool:
        """Whether a path (an output file) is inside the lake root."""
        root = self.root.rstrip("/")
        if "://" in root:
            target = re.sub(r"^s3[an]?://", "s3://", path.strip(), flags=re.IGNORECASE)
            return target == root or target.startswith(root + "/")
        local = os.path.realpath(os.path.expanduser(path))
        real_root = os.path.realpath(root)
        return local == real_root or local.startswith(real_root + os.sep)


def referenced_names(query: str) -> set[str]:
    """The table names a query reads or writes, lower case (``bronze.events``), by DuckDB's parser."""
    try:
        import duckdb  # heavy: DuckDB loads on first use

        return {r.split(" AS ", 1)[0].replace('"', "").strip().lower()
                for r in duckdb.get_table_names(query, qualified=True)}
    except Exception:
        # DuckDB's name extraction binds some clauses (JOIN ... USING); fall back to every
        # qualified name in the text outside string literals.
        return {f"{a}.{b}".lower() for a, b in _QUALIFIED.findall(_STRINGS.sub("''", query))}


def check_policy_query(query: str) -> None:
    """What a query under a :class:`ReadPolicy` must be: one SELECT, lake tables by name, no table function
    that reads files (checked on DuckDB's own parse, with a bare in-memory connection).

    Raises:
        ReadOnlyError: anything else; SQLError: the query does not parse.
    """
    import duckdb  # heavy: DuckDB loads on first use

    con = duckdb.connect()
    try:
        _check_parsed(con, query)
    finally:
        con.close()


def _check_parsed(con: Any, query: str) -> None:
    try:
        statements = con.extract_statements(query)
    except Exception as exc:  # a syntax error: DuckDB's message says where
        raise SQLError(readable(exc)) from None
    if len(statements) != 1 or statements[0].type.name != "SELECT":
        raise ReadOnlyError("queries through the service are one SELECT statement")
    tree = con.execute("SELECT json_serialize_sql(?::VARCHAR)", [query]).fetchone()
    parsed = json.loads(tree[0]) if tree else {"error": True}
    if parsed.get("error"):
        raise SQLError(f"the query cannot be parsed: {str(parsed.get('error_message', ''))[:200]}")
    stack: list[Any] = [parsed]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            kind = node.get("type")
            if kind == "TABLE_FUNCTION":
                function = node.get("function") or {}
                fname = str(function.get("function_name", "")).lower()
                if fname not in _POLICY_FUNCTIONS:
                    raise ReadOnlyError(f"{fname}() is not available through the service: read lake tables "
                                        "by name (layer.table) or lake_at('layer.table', version)")
            elif kind == "BASE_TABLE":
                table = str(node.get("table_name", ""))
                if not re.fullmatch(r"[A-Za-z_]\w*", table):
                    raise ReadOnlyError(f"{table[:80]!r} is not a table name: through the service, queries read "
                                        "lake tables by name (layer.table)")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _list(items: Iterable[str]) -> str:
    return "[" + ", ".join(literal(i) for i in items) + "]"


def readable(exc: Exception) -> str:
    """A DuckDB exception as one line of text: its kind and message."""
    text = str(exc).strip()
    kind = type(exc).__name__.replace("Exception", " error").strip()
    return f"{kind}: {text}" if not text.lower().startswith(kind.split()[0].lower()) else text


def connect(lake: Lake | None = None, *, as_of: int | str | None = None, allow: Sequence[str] = (),
            policy: ReadPolicy | None = None) -> LakeSQL:
    """A DuckDB session over the lake (for notebooks): ``connect().sql("...").pl()``."""
    return LakeSQL(lake, as_of=as_of, allow=allow, policy=policy)
