"""DuckDB over the lake: every table by its name, time travel, read-only.

``bronze.flights`` in a query becomes a view over DuckDB's own Delta reader
(``delta_scan``), created the first time a query names it, so a lake with thousands
of tables opens instantly. A name is found at ``<root>/bronze/flights``, else at the
location the catalog records for it (a Delta table written by path and registered
under that name). DuckDB skips files through the Delta log (partition values and
statistics). Lake tables cannot be written from here: writes go through jobs. Scratch
tables of the session (in ``main``/``temp``) are fine, and so is ``COPY ... TO`` a file
outside the lake root; ``COPY``/``EXPORT`` into the lake root and ``ATTACH`` are refused.

Time travel in SQL: ``lake_at('bronze.flights', 3)`` (a version) or
``lake_at('bronze.flights', '2024-05-01T00:00:00Z')`` (the version current then).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from lake import protocol
from lake.duck import connect as duck_connect
from lake.duck import literal
from lake.errors import LakeError, ReadOnlyError, SQLError, TableNotFoundError
from lake.lakehouse import NAME, Lake, is_location
from lake.table import Table

if TYPE_CHECKING:
    import duckdb

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
_FILE_TARGET = re.compile(r"\s+to\s+'((?:[^']|'')*)'", re.IGNORECASE)
_EXPORT_TARGET = re.compile(r"^\s*export\s+database\s+(?:[\w\".]+\s+)?'((?:[^']|'')*)'", re.IGNORECASE)


class LakeSQL:
    """A DuckDB session that sees the lake's tables by name.

    Args:
        lake: the lake (default: from the settings).
        as_of: read every lake table at this version (int) or time (ISO string).

    Example:
        >>> db = LakeSQL()
        >>> db.sql("SELECT carrier, avg(delay) FROM silver.flights GROUP BY 1").pl()
    """

    def __init__(self, lake: Lake | None = None, *, as_of: int | str | None = None) -> None:
        self.lake = lake or Lake()
        self.as_of = as_of
        self.con: duckdb.DuckDBPyConnection = duck_connect(self.lake.storage)
        self._views: dict[str, str] = {}
        self._missing: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        # Everything else (fetch*, register, read_parquet...) is the DuckDB connection's.
        return getattr(self.con, name)

    def close(self) -> None:
        self.con.close()

    # ------------------------------------------------------------------ names

    def tables(self) -> list[str]:
        """Every lake table: what the catalog knows plus what is under the root."""
        names = {ref.name for ref in self.lake.tables()}
        with contextlib.suppress(LakeError):  # no catalog: the storage listing is enough
            names |= {d["name"] for d in self.lake.catalog.datasets(namespace=self.lake.settings.catalog.namespace)
                      if d["kind"] == "table" and NAME.match(d["name"])}
        return sorted(names)

    def _table(self, name: str) -> Table | None:
        """The existing lake table a ``layer.name`` denotes: under the root, else where the catalog says."""
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

    def _uri(self, name: str) -> str | None:
        table = self._table(name)
        return table.uri if table is not None else None

    def _version(self, name: str, when: int | str) -> int:
        table = self._table(name)
        if table is None:
            raise TableNotFoundError(f"no lake table {name}; `lake table ls` lists them", table=name)
        if isinstance(when, int) or str(when).isdigit():
            version = int(when)
            if version > table.version():
                raise SQLError(f"{name} has no version {version} (latest is {table.version()})")
            return version
        return int(table.delta(as_of=str(when)).version())

    def _scan(self, name: str, uri: str, version: int | None) -> str:
        protocol.check(self.lake.table(uri).delta(version), protocol.DUCKDB, name)  # the reader allow list
        return f"delta_scan({literal(uri)}" + (f", version => {version})" if version is not None else ")")

    def resolve(self, query: str) -> str:
        """Create views for the lake tables ``query`` names; expand ``lake_at(...)``."""
        query = _AT.sub(self._expand_at, query)
        self._missing.clear()  # a table may have appeared since the last query
        try:
            import duckdb  # heavy: DuckDB loads on first use

            referenced = {r.split(" AS ", 1)[0].replace('"', "").strip().lower()
                          for r in duckdb.get_table_names(query, qualified=True)}
        except Exception:
            # DuckDB's name extraction binds some clauses (JOIN ... USING); fall back to every
            # qualified name in the text outside string literals.
            referenced = {f"{a}.{b}".lower() for a, b in _QUALIFIED.findall(_STRINGS.sub("''", query))}
        for name in sorted(referenced):
            if name in self._views or name in self._missing:
                continue
            uri = self._uri(name)
            if uri is None:
                self._missing.add(name)
                continue
            schema, table = name.split(".")
            version = self._version(name, self.as_of) if self.as_of is not None else None
            self.con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            self.con.execute(f'CREATE OR REPLACE VIEW "{schema}"."{table}" AS SELECT * FROM {self._scan(name, uri, version)}')
            self._views[name] = uri
        return query

    def _expand_at(self, match: re.Match[str]) -> str:
        name = match.group(1).lower()
        uri = self._uri(name)
        if uri is None:
            raise TableNotFoundError(f"lake_at: no lake table {name}; `lake table ls` lists them", table=name)
        when: int | str = match.group(3) if match.group(3) is not None else int(match.group(2))
        return self._scan(name, uri, self._version(name, when))

    # ---------------------------------------------------------------- queries

    def _check_read_only(self, query: str) -> None:
        try:
            statements = self.con.extract_statements(query)
        except Exception:
            return  # a syntax error: DuckDB says where when it runs
        for statement in statements:
            kind = statement.type.name
            if kind in ("ATTACH", "DETACH"):
                raise ReadOnlyError(
                    f"{kind} is not available in `lake sql`: an attached database could be written, the "
                    "catalog's among them. Read files with read_parquet()/read_csv() or lake tables by "
                    "name; writes go through jobs (`lake jobs run`) or the Python API."
                )
            if kind in ("COPY", "EXPORT"):
                if kind == "COPY":
                    direction, path = _copy_target(statement.query)
                else:
                    export = _EXPORT_TARGET.match(statement.query)
                    direction, path = ("to", export.group(1).replace("''", "'")) if export else ("unknown", None)
                if direction == "unknown":
                    raise ReadOnlyError(
                        f"`lake sql` cannot tell where this {kind} writes, and it is read-only over the lake: "
                        f"name the file as a quoted path outside the lake root ({kind} ... TO 'file')."
                    )
                if path is not None and self._in_lake(path):
                    raise ReadOnlyError(
                        f"{kind} to {path} would write inside the lake root {self.lake.storage.root}, and "
                        "`lake sql` is read-only over the lake: write tables through a job (`lake jobs run`) "
                        "or the Python API. COPY to a file outside the lake is fine."
                    )
                continue
            if kind not in _WRITES:
                continue
            target = _WRITE_TARGET.match(statement.query)
            if target is None:
                continue
            name = target.group("target").replace('"', "").lower()
            if name in self._views or self._uri(name) is not None:
                raise ReadOnlyError(
                    f"{name} is a lake table and `lake sql` is read-only: write it through a job "
                    "(`lake jobs run`) or the Python API. Scratch tables without a lake name are fine."
                )

    def _in_lake(self, path: str) -> bool:
        """Whether a file path DuckDB would write is inside the lake root."""
        root = self.lake.storage.root.rstrip("/")
        if "://" in root:
            target = re.sub(r"^s3[an]?://", "s3://", path.strip(), flags=re.IGNORECASE)
            return target == root or target.startswith(root + "/")
        if re.match(r"^[a-z][a-z0-9+.-]*://", path, re.IGNORECASE) and not path.lower().startswith("file://"):
            return False  # another file system than the lake's folder
        local = os.path.realpath(os.path.expanduser(path[len("file://"):] if path.lower().startswith("file://")
                                                    else path))
        real_root = os.path.realpath(root)
        return local == real_root or local.startswith(real_root + os.sep)

    def sql(self, query: str) -> duckdb.DuckDBPyRelation:
        """Run a query (a relation: ``.pl()``, ``.df()``, ``.arrow()``, ``.fetchall()``)."""
        return self._run(query, lambda q: self.con.sql(q))

    def execute(self, query: str, parameters: Iterable[Any] | None = None) -> duckdb.DuckDBPyConnection:
        """Run statements like ``duckdb.execute`` (parameters bound with ``?``)."""
        return self._run(query, lambda q: self.con.execute(q, parameters))

    def _run(self, query: str, fn: Any) -> Any:
        if not query.strip():
            raise SQLError("empty query")
        self._check_read_only(query)
        query = self.resolve(query)
        try:
            return fn(query)
        except LakeError:
            raise
        except Exception as exc:
            if type(exc).__module__.startswith(("duckdb", "_duckdb")):
                raise SQLError(_readable(exc)) from None
            raise

    def schema(self, name: str) -> list[tuple[str, str]]:
        """(column, type) of a lake table or a session table."""
        rel = self.sql(f"SELECT * FROM {name} LIMIT 0")
        return [(c, str(t)) for c, t in zip(rel.columns, rel.types, strict=True)]


def _skip_parens(query: str, pos: int) -> int:
    """The position after the parenthesized group starting at ``pos`` (string literals and quoted names skipped)."""
    depth, quote = 0, ""
    while pos < len(query):
        ch = query[pos]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return pos + 1
        pos += 1
    return pos


def _copy_target(query: str) -> tuple[str, str | None]:
    """Where a COPY statement goes: ``("to", file)``, ``("from", None)`` or ``("unknown", None)``.

    Handles ``COPY table [(columns)] TO 'file'`` and ``COPY (query) TO 'file'``.
    """
    head = re.match(r"\s*copy\s+", query, re.IGNORECASE)
    if head is None:
        return "unknown", None
    pos = head.end()
    if query[pos:pos + 1] == "(":
        pos = _skip_parens(query, pos)
    else:
        name = re.match(r'(?:"(?:[^"]|"")*"|\w+)(?:\s*\.\s*(?:"(?:[^"]|"")*"|\w+))*', query[pos:])
        pos += name.end() if name else 0
        columns = re.match(r"\s*\(", query[pos:])
        if columns:
            pos = _skip_parens(query, pos + columns.end() - 1)
    if re.match(r"\s+from\b", query[pos:], re.IGNORECASE):
        return "from", None
    target = _FILE_TARGET.match(query, pos)
    return ("to", target.group(1).replace("''", "'")) if target else ("unknown", None)


def _readable(exc: Exception) -> str:
    text = str(exc).strip()
    kind = type(exc).__name__.replace("Exception", " error").strip()
    return f"{kind}: {text}" if not text.lower().startswith(kind.split()[0].lower()) else text


def connect(lake: Lake | None = None, *, as_of: int | str | None = None) -> LakeSQL:
    """A DuckDB session over the lake (for notebooks): ``connect().sql("...").pl()``."""
    return LakeSQL(lake, as_of=as_of)
