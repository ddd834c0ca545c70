"""Catalog database connections: SQLite by default, PostgreSQL by URL; migrations on open."""

from __future__ import annotations

import contextlib
import importlib.resources
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, Integer, any_, bindparam, create_engine, event, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
    StatementError,
)
from sqlalchemy.orm import Session, sessionmaker

from catalog.errors import CatalogConnectionError, CatalogInputError
from catalog.redact import redact_text, redact_url

_MIGRATIONS = Path(__file__).parent / "migrations"


def _migrations_dir() -> Path:
    """The Alembic scripts as a real folder (copied out when the package runs from a zip,
    as it does on Spark executors and under spark-submit --py-files)."""
    if _MIGRATIONS.is_dir():
        return _MIGRATIONS
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


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        if "\x00" in value:
            shown = redact_text(value.replace("\x00", "\\x00"))[:200]
            raise CatalogInputError("the catalog cannot store a NUL character (\\x00): PostgreSQL refuses it "
                                    f"in text; remove it from {shown!r}")
        return redact_text(value)
    return value


def scrub_parameters(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                     executemany: bool) -> tuple[str, Any]:
    """Every string sent to the catalog database, redacted; a NUL refused on every backend alike.

    Registered on each catalog engine (``before_cursor_execute``): whatever a caller forgot to
    redact never reaches a table (JSON columns arrive here serialized, so their text is covered).
    """
    def one(params: Any) -> Any:
        if isinstance(params, dict):
            return {k: _clean(v) for k, v in params.items()}
        if isinstance(params, list | tuple):
            return type(params)(_clean(v) for v in params)
        return params

    if executemany and isinstance(parameters, list | tuple):
        return statement, type(parameters)(one(p) for p in parameters)
    return statement, one(parameters)


def among(session: Session, column: Any, ids: Iterable[int]) -> Any:
    """``column IN ids`` for integer ids: one bound array (``= ANY(:ids)``) on PostgreSQL, an ``IN`` list elsewhere.

    With an ``IN`` list every id is a parameter of its own, so the statement's text changes with
    their number: 500 ids cost a few milliseconds of SQL rewriting per call and are never prepared.
    The array keeps the text constant (psycopg prepares it after a few calls).
    """
    values = [int(i) for i in ids]
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(Integer), unique=True))
    return column.in_(values)


def make_engine(url: str) -> Engine:
    """An engine for the catalog URL, with SQLite tuned for concurrent jobs.

    Every parameter it sends is redacted first (:func:`scrub_parameters`).
    """
    engine = _make_engine(url)
    event.listen(engine, "before_cursor_execute", scrub_parameters, retval=True)
    return engine


def _make_engine(url: str) -> Engine:
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
        # pre_ping: a pooled connection the server (or the network) dropped is replaced on
        # checkout instead of failing the next call after the database came back.
        return create_engine(url, pool_recycle=1800, pool_size=5, max_overflow=10, pool_pre_ping=True)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise CatalogConnectionError(f"bad catalog URL {redact_url(url)}: {exc}") from exc


def migrate(engine: Engine) -> None:
    """Bring the schema to the latest revision (safe when several processes open it at once)."""
    key = str(engine.url)
    if key in _migrated:
        return
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


def _first_line(exc: BaseException) -> str:
    text_ = str(getattr(exc, "orig", None) or exc).strip()
    return text_.splitlines()[0] if text_ else type(exc).__name__


_GONE = ("connection refused", "could not connect", "unable to open", "timeout expired",
         "name or service not known", "could not translate host", "server closed the connection",
         "connection is closed", "connection already closed", "terminating connection", "connection reset",
         "broken pipe", "eof detected", "connection timed out", "could not receive data", "could not send data",
         "no connection to the server", "connection to server", "network is unreachable", "no route to host",
         "the connection is lost")


def _unreachable(exc: Exception) -> bool:
    text_ = str(exc).lower()
    return any(s in text_ for s in _GONE)


def lost_connection(exc: BaseException) -> bool:
    """Whether a database error means the server cannot be reached (rather than a bad statement)."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError | InterfaceError) and _unreachable(exc)


def connection_error(url: str, exc: BaseException) -> CatalogConnectionError:
    """The one-line error a caller gets when the catalog database goes away."""
    return CatalogConnectionError(
        f"cannot reach the catalog database {redact_url(url)}: {_first_line(exc)}; "
        "check that the server is up and LAKE_CATALOG_URL (or [catalog] url in lake.toml) points at it")


def input_error(exc: BaseException) -> CatalogInputError | None:
    """A database's refusal of a value (too long, out of range, bad encoding) as a user's error, else None.

    The catalog checks lengths and ranges itself; this is the net for what slips through.
    """
    if isinstance(exc, DataError) or (isinstance(exc, StatementError) and isinstance(exc.orig, OverflowError)):
        return CatalogInputError(f"the catalog database refused a value: {_first_line(exc)}")
    return None


def ping(engine: Engine) -> None:
    """One ``SELECT 1``; :class:`CatalogConnectionError` when the database cannot answer."""
    url = engine.url.render_as_string(hide_password=False)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        raise connection_error(url, exc) from exc


def session_factory(engine: Engine, *, read_only: bool = False) -> sessionmaker[Session]:
    bind = engine
    if read_only:
        # Reads need no transaction on PostgreSQL (no BEGIN/COMMIT round trips); on SQLite a
        # deferred BEGIN gives them one consistent snapshot without taking the write lock.
        options = {"isolation_level": "AUTOCOMMIT"} if engine.dialect.name == "postgresql" else {}
        bind = engine.execution_options(catalog_read_only=True, **options)
    return sessionmaker(bind, expire_on_commit=False)


@contextlib.contextmanager
def transaction(factory: sessionmaker[Session], url: str | None = None) -> Iterator[Session]:
    """A session that commits when the block ends cleanly and rolls back otherwise.

    Args:
        url: the database's URL; when given, a lost connection raises
            :class:`CatalogConnectionError` naming it (redacted) instead of the driver's error.
    """
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException as exc:
        with contextlib.suppress(SQLAlchemyError):  # on a dead connection there is nothing to roll back
            session.rollback()
        if url is not None and lost_connection(exc):
            raise connection_error(url, exc) from exc
        refused = input_error(exc)
        if refused is not None:
            raise refused from exc
        raise
    finally:
        with contextlib.suppress(SQLAlchemyError):
            session.close()


class SessionSource(Protocol):
    """What code below the store needs of a catalog: its namespace and transactions.

    :class:`catalog.store.Catalog` is one; OpenLineage building and ingest take any.
    """

    namespace: str
    """The namespace of datasets and jobs named without one (the lake's own)."""

    def writing(self) -> AbstractContextManager[Session]:
        """A read-write transaction (committed when the block ends cleanly)."""
        ...

    def reading(self) -> AbstractContextManager[Session]:
        """A read-only transaction."""
        ...
