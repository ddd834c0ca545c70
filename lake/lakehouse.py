"""The lake: tables by name under one root, and the journal that hears about every commit."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import SecretStr

from lake.config import Settings, load_settings
from lake.errors import LakeError, TableNotFoundError
from lake.location import Journal, TableLocation
from lake.naming import TABLE_NAME, is_location, is_system
from lake.recording import CommitListener, Recorder, open_catalog
from lake.storage import Storage, storage_for
from lake.table import Table

if TYPE_CHECKING:  # the catalog (SQLAlchemy, Alembic) loads when first used, not with the lake
    from catalog.store import Catalog, RunContext
    from lake.remote import RemoteCatalog

__all__ = ["NAME", "Lake", "TableRef", "is_location"]

NAME = TABLE_NAME


@dataclass(frozen=True)
class TableRef:
    """A table found under the lake root."""

    name: str
    uri: str


class Lake:
    """Entry point: the tables under the configured root.

    Example:
        >>> lake = Lake()                      # ./lakehouse, or LAKE_ROOT, or lake.toml
        >>> events = lake.table("bronze.events")
        >>> events.write(spark_df)             # executors write, the driver commits
        >>> events.to_pandas(version=0)        # time travel
    """

    def __init__(self, settings: Settings | None = None, *, catalog: Catalog | Literal[False] | None = None,
                 remote: RemoteCatalog | None = None) -> None:
        """Args:
            settings: resolved settings (default: :func:`lake.config.load_settings`).
            catalog: the catalog that records every commit and read; default the one the
                settings name (opened on first use); ``False`` records nothing.
            remote: a running ``lake serve`` to go through instead (see :meth:`connect`).
        """
        self.settings = settings or load_settings()
        self.storage: Storage = storage_for(self.settings)
        self._catalog = catalog
        self.remote = remote
        """The service this lake is seen through (:meth:`connect`), else None."""
        self._listeners: list[CommitListener] = []
        self._recorder = Recorder(self._open_catalog, self._listeners)

    @classmethod
    def connect(cls, url: str | None = None, token: str | None = None, *, settings: Settings | None = None) -> Lake:
        """The lake as a running ``lake serve`` shows it to one principal: its grants, masks and audit apply.

        ``lake.catalog`` answers from the service (search, show, lineage, runs, training datasets,
        reports, tags, descriptions, owners); ``lake.handoff.load(lake, ref)`` streams a table or a
        training frame from it (masked as the service decides); ``lake.remote.sql(query)`` runs a query
        there. Files are never opened here, so tables, writes and ``LakeSQL`` are refused.

        Args:
            url: the service (default ``[service] url``, ``LAKE_SERVICE_URL``).
            token: a lake token or a JWT (default ``[service] token``, ``LAKE_SERVICE_TOKEN``).
            settings: the settings to start from (default :func:`lake.config.load_settings`).

        Example:
            >>> lake = Lake.connect("https://lake.internal", token)
            >>> lake.catalog.search("churn")
            >>> frame = handoff.load(lake, "training:churn_v1").to_pandas()
        """
        from lake.remote import RemoteCatalog  # deferred: httpx loads only for a service

        base = settings or load_settings()
        service = base.service.model_copy(update={k: v for k, v in {
            "url": url, "token": SecretStr(token) if token is not None else None}.items() if v is not None})
        base = base.model_copy(update={"service": service})
        return cls(base, catalog=False, remote=RemoteCatalog.from_settings(base))

    def __repr__(self) -> str:
        if self.remote is not None:
            return f"Lake.connect({self.remote.url!r})"
        return f"Lake({self.storage.root!r})"

    def _local(self, what: str) -> None:
        if self.remote is not None:
            raise LakeError(f"{what} needs the lake's files, and this Lake goes through the lake service at "
                            f"{self.remote.url}: load data with lake.handoff.load(lake, ref), query it with "
                            "lake.remote.sql(query); write with a Lake() that opens the lake itself")

    def table(self, ref: str) -> Table:
        """A table by name (``bronze.events`` -> ``<root>/bronze/events``) or by location.

        The table need not exist yet: writing creates it.
        """
        self._local(f"table {ref!r}")
        ref = ref.strip()
        if is_location(ref):
            uri = ref if "://" in ref else str(Path(ref).expanduser().resolve())
            return Table(ref, uri, self.storage, self.journal)
        if not TABLE_NAME.match(ref):
            raise LakeError(
                f"{ref!r} is not a table name: use layer.name (letters, digits, _), e.g. bronze.events, "
                "or a path such as ./data/events"
            )
        layer, name = ref.lower().split(".")
        return Table(f"{layer}.{name}", self.storage.uri(layer, name), self.storage, self.journal)

    def existing(self, ref: str) -> Table:
        """Like :meth:`table`, but the table must exist."""
        table = self.table(ref)
        if not table.exists():
            raise TableNotFoundError(
                f"table {table.name} does not exist (looked in {table.uri}); `lake table ls` lists the tables",
                table=table.name,
            )
        return table

    def tables(self) -> list[TableRef]:
        """Every ``layer.name`` table under the root (folders holding a ``_delta_log``)."""
        self._local("listing the tables")
        out = []
        for layer in self.storage.list_dirs(self.storage.root):
            if is_system(layer) or layer.startswith("."):
                continue
            for name in self.storage.list_dirs(self.storage.uri(layer)):
                uri = self.storage.uri(layer, name)
                if "_delta_log" in self.storage.list_dirs(uri):
                    out.append(TableRef(f"{layer}.{name}", uri))
        return out

    # ---------------------------------------------------------------- journal

    @property
    def journal(self) -> Journal:
        """Who records this lake's commits and reads (the catalog, and listeners)."""
        return self._recorder

    @property
    def recorder(self) -> Recorder | None:
        """The catalog recorder, or None when this lake records nothing (``catalog=False``)."""
        return None if self._catalog is False else self._recorder

    def read(self, table: TableLocation, version: int) -> None:
        """Record a read of ``table`` at ``version`` (an input of the current run, if any)."""
        self.journal.read(table, version)

    def on_commit(self, listener: CommitListener) -> None:
        """Call ``listener(table, result)`` after every commit the lake makes."""
        self._listeners.append(listener)

    def repair(self, ref: str | None = None) -> dict[str, list[int]]:
        """Record in the catalog every version the tables' logs have and the catalog lacks.

        Returns the versions recorded per table (``lake catalog repair``).
        """
        refs = [self.existing(ref)] if ref else [self.table(t.name) for t in self.tables()]
        done = {}
        for table in refs:
            versions = self._recorder.repair(table, table.version())
            if versions:
                done[table.name] = versions
        return done

    # ------------------------------------------------------------------ catalog

    def _open_catalog(self) -> Catalog | None:
        if self._catalog is False:
            return None
        if self._catalog is None:
            self._catalog = open_catalog(self.settings)
        return self._catalog

    @property
    def catalog(self) -> Catalog:
        """The lineage catalog (raises when this lake was made with ``catalog=False``); through the service,
        the part of it the service answers (:class:`lake.remote.RemoteCatalog`)."""
        if self.remote is not None:
            return cast("Catalog", self.remote)
        catalog = self._open_catalog()
        if catalog is None:
            raise LakeError("this Lake was created with catalog=False")
        return catalog

    @contextlib.contextmanager
    def run(self, job: str, **kwargs: Any) -> Iterator[RunContext]:
        """A catalog run: tables read inside are its inputs, commits its outputs.

        Example:
            >>> with lake.run("silver.customers", parameters={"day": "2024-05-01"}) as run:
            ...     df = lake.table("bronze.customers").to_spark(spark)   # input @ version
            ...     lake.table("silver.customers").merge(clean(df), keys=["id"])  # output @ version
        """
        self._local(f"run {job!r}")
        if self._catalog is False:
            raise LakeError("runs need the catalog; this Lake was created with catalog=False")
        with self._recorder.run(job, **kwargs) as ctx:
            yield ctx

    def spark(self, app_name: str = "lake", master: str | None = None) -> Any:
        """A Spark session configured for this lake (see :func:`lake.spark.get_spark`)."""
        from lake.spark import get_spark  # heavy: starts a JVM; only for Spark work

        return get_spark(self.settings, app_name=app_name, master=master)
