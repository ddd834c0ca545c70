"""Catalog database connections: SQLite by default, PostgreSQL by URL; migrations on open."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from catalog.errors import CatalogConnectionError
from catalog.redact import redact_url

_MIGRATIONS = Path(__file__).parent / "migrations"


def _migrations_dir() -> Path:
    """The Alembic scripts as a real folder (copied out when the package runs from a zip,
    as it does on Spark executors and under spark-submit --py-files)."""
    if _MIGRATIONS.is_dir():
        return _MIGRATIONS
    import importlib.resources
    import tempfile

    dest = Path(tempfile.mkdtemp(prefix="lake-migrations-"))
    root = importlib.resources.files("catalog") / "migrations"

    def copy(src: Any, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        for item in src.iterdir():
            if item.is_dir():
                copy(item, out / item.name)
            elif item.name.endswith((".py", ".mako")):
                (out / item.name).write_bytes(item.read_bytes())

    copy(root, dest)
    return dest
_migrated: set[str] = set()
_migrate_lock = threading.Lock()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cur.execute("PRAGMA busy_timeout=60000")  # concurrent writers wait instead of failing
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()
    dbapi_conn.isolation_level = None  # transactions are begun by _sqlite_begin


def _sqlite_begin(conn: Any) -> None:
    # pysqlite defers BEGIN; writers take the write lock up front (BEGIN IMMEDIATE) so two
    # writers never deadlock upgrading a read lock. Read-only sessions do not.
    read_only = conn.get_execution_options().get("catalog_read_only", False)
    conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def make_engine(url: str) -> Engine:
    """An engine for the catalog URL, with SQLite tuned for concurrent jobs."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CatalogConnectionError(
                    f"cannot create the folder of the catalog database {path}: {exc.strerror}"
                ) from exc
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    try:
        return create_engine(url, pool_recycle=1800, pool_size=5, max_overflow=10)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise CatalogConnectionError(f"bad catalog URL {redact_url(url)}: {exc}") from exc


def migrate(engine: Engine) -> None:
    """Bring the schema to the latest revision (safe when several processes open it at once)."""
    key = str(engine.url)
    if key in _migrated:
        return
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_migrations_dir()))
    with _migrate_lock:
        for attempt in range(3):
            try:
                with engine.begin() as conn:
                    if engine.dialect.name == "postgresql":
                        # One migrator at a time across processes; released at commit.
                        conn.execute(text("SELECT pg_advisory_xact_lock(7263541)"))
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, "head")
                break
            except OperationalError as exc:
                if _unreachable(exc):
                    raise CatalogConnectionError(
                        f"cannot reach the catalog database {redact_url(key)}: {_first_line(exc)}. "
                        "Check LAKE_CATALOG_URL (or [catalog] url in lake.toml) and that the server is up."
                    ) from None
                if attempt == 2 or "already exists" not in str(exc):
                    raise
            except SQLAlchemyError as exc:
                if attempt == 2 or "already exists" not in str(exc):
                    raise CatalogConnectionError(
                        f"cannot prepare the catalog database {redact_url(key)}: {_first_line(exc)}"
                    ) from exc
    _migrated.add(key)


def _first_line(exc: Exception) -> str:
    return str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _unreachable(exc: Exception) -> bool:
    text_ = str(exc).lower()
    return any(s in text_ for s in ("connection refused", "could not connect", "unable to open", "timeout expired",
                                    "name or service not known", "could not translate host"))


def session_factory(engine: Engine, *, read_only: bool = False) -> sessionmaker[Session]:
    bind = engine
    if read_only:
        # Reads need no transaction on PostgreSQL (no BEGIN/COMMIT round trips); on SQLite a
        # deferred BEGIN gives them one consistent snapshot without taking the write lock.
        options = {"isolation_level": "AUTOCOMMIT"} if engine.dialect.name == "postgresql" else {}
        bind = engine.execution_options(catalog_read_only=True, **options)
    return sessionmaker(bind, expire_on_commit=False)


@contextlib.contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits when the block ends cleanly and rolls back otherwise."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
