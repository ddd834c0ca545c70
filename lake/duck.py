"""DuckDB connections that read the lake offline.

DuckDB downloads extensions at first use, which fails here (and on locked-down
machines). The ``delta`` and ``httpfs`` extensions ship as PyPI wheels
(``duckdb-extension-delta``/``-httpfs``); install them from the wheel's file.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lake.errors import NotInstalledError

if TYPE_CHECKING:
    import duckdb

    from lake.storage import Storage

_EXTENSIONS = {"delta": "duckdb_extension_delta", "httpfs": "duckdb_extension_httpfs"}


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def qualified(name: str) -> str:
    """A quoted, possibly qualified, SQL name (``gold.daily`` -> ``"gold"."daily"``)."""
    return ".".join(ident(part) for part in name.split("."))


def literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def extension_file(name: str) -> Path:
    """The extension binary shipped in its PyPI wheel."""
    import duckdb  # heavy: DuckDB loads on first use (keeps `lake --help` fast)

    module = _EXTENSIONS[name]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise NotInstalledError(f"the DuckDB {name} extension is missing: pip install {module.replace('_', '-')}")
    base = Path(next(iter(spec.submodule_search_locations))) / "extensions"
    exact = base / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if exact.is_file():
        return exact
    found = sorted(base.glob(f"*/{name}.duckdb_extension"))
    if not found:
        raise NotInstalledError(f"no {name}.duckdb_extension file in {base}: reinstall {module}")
    return found[-1]


def load_extensions(con: duckdb.DuckDBPyConnection, *names: str) -> None:
    """Install (from the wheels) and load extensions into a connection."""
    for name in names or tuple(_EXTENSIONS):
        try:
            con.load_extension(name)
        except Exception:
            con.install_extension(str(extension_file(name)))
            con.load_extension(name)


def configure_storage(con: duckdb.DuckDBPyConnection, storage: Storage) -> None:
    """Give DuckDB the lake's S3 endpoint and credentials (as a secret, never echoed)."""
    s3 = storage.duckdb_s3()
    if s3 is not None:
        create_s3_secret(con, s3)


def create_s3_secret(con: duckdb.DuckDBPyConnection, s3: dict[str, Any]) -> None:
    """The S3 secret DuckDB reads ``s3://`` with (from :meth:`lake.storage.Storage.duckdb_s3`)."""
    load_extensions(con, "httpfs")
    parts = ["TYPE s3", f"REGION {literal(s3['region'])}"]
    if s3.get("key_id"):
        parts.append(f"KEY_ID {literal(s3['key_id'])}")
    if s3.get("secret"):
        parts.append(f"SECRET {literal(s3['secret'])}")
    if s3.get("endpoint"):
        parts += [f"ENDPOINT {literal(s3['endpoint'])}", "URL_STYLE 'path'", f"USE_SSL {str(s3['ssl']).lower()}"]
    con.execute(f"CREATE OR REPLACE SECRET lake_s3 ({', '.join(parts)})")


def connect(storage: Storage | None = None, database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with ``delta_scan`` available and the lake's storage configured."""
    import duckdb  # heavy: DuckDB loads on first use (keeps `lake --help` fast)

    con = duckdb.connect(database)
    load_extensions(con, "delta")
    if storage is not None:
        configure_storage(con, storage)
    return con


_SHARED: dict[str, duckdb.DuckDBPyConnection] = {}
_SHARED_LOCK = threading.Lock()


def shared_cursor(storage: Storage | None = None) -> duckdb.DuckDBPyConnection:
    """A new cursor on a process-wide in-memory DuckDB with the extensions already loaded.

    Loading the delta extension costs ~0.1 s per connection; short queries (feature
    retrieval, materialization) share one database per storage and take a cursor each.
    Close the cursor when done; temporary tables and registered frames are per cursor.
    """
    key = "" if storage is None else f"{type(storage).__name__}:{storage.root}"
    with _SHARED_LOCK:
        base = _SHARED.get(key)
        if base is None:
            base = _SHARED[key] = connect(storage)
    return base.cursor()
