"""The lake: tables by name under one root, and who hears about every commit."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from lake.config import Settings, load_settings
from lake.errors import LakeError, TableNotFoundError
from lake.results import CommitResult
from lake.storage import Storage, storage_for
from lake.table import Table

if TYPE_CHECKING:
    from catalog.store import Catalog, RunContext
    from lake.recording import Recorder

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")
CommitListener = Callable[[Table, CommitResult], None]


@dataclass(frozen=True)
class TableRef:
    """A table found under the lake root."""

    name: str
    uri: str


def is_location(ref: str) -> bool:
    """Whether ``ref`` is a path or URI rather than a ``layer.name`` table name."""
    return "/" in ref or "\\" in ref or "://" in ref or ref.startswith(".")


class Lake:
    """Entry point: the tables under the configured root.

    Example:
        >>> lake = Lake()                      # ./lakehouse, or LAKE_ROOT, or lake.toml
        >>> events = lake.table("bronze.events")
        >>> events.write(spark_df)             # executors write, the driver commits
        >>> events.to_pandas(version=0)        # time travel
    """

    def __init__(self, settings: Settings | None = None, *, catalog: Catalog | Literal[False] | None = None) -> None:
        """Args:
            settings: resolved settings (default: :func:`lake.config.load_settings`).
            catalog: the catalog that records every commit and read; default the one the
                settings name (opened on first use); ``False`` records nothing.
        """
        self.settings = settings or load_settings()
        self.storage: Storage = storage_for(self.settings)
        self._listeners: list[CommitListener] = []
        self._catalog = catalog
        self._recorder: Recorder | None = None

    def __repr__(self) -> str:
        return f"Lake({self.storage.root!r})"

    def table(self, ref: str) -> Table:
        """A table by name (``bronze.events`` -> ``<root>/bronze/events``) or by location.

        The table need not exist yet: writing creates it.
        """
        ref = ref.strip()
        if is_location(ref):
            uri = ref
            if "://" not in ref:
                from pathlib import Path

                uri = str(Path(ref).expanduser().resolve())
            return Table(self, ref, uri)
        if not NAME.match(ref):
            raise LakeError(
                f"{ref!r} is not a table name: use layer.name (letters, digits, _), e.g. bronze.events, "
                "or a path such as ./data/events"
            )
        layer, name = ref.lower().split(".")
        return Table(self, f"{layer}.{name}", self.storage.uri(layer, name))

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
        out = []
        for layer in self.storage.list_dirs(self.storage.root):
            if layer.startswith(("_", ".")):
                continue
            for name in self.storage.list_dirs(self.storage.uri(layer)):
                uri = self.storage.uri(layer, name)
                if "_delta_log" in self.storage.list_dirs(uri):
                    out.append(TableRef(f"{layer}.{name}", uri))
        return out

    # ---------------------------------------------------------------- listeners

    def on_commit(self, listener: CommitListener) -> None:
        """Call ``listener(table, result)`` after every commit the lake makes."""
        self._listeners.append(listener)

    def committed(self, table: Table, result: CommitResult) -> None:
        recorder = self.recorder
        if recorder is not None:
            recorder.committed(table, result)
        for listener in list(self._listeners):
            listener(table, result)

    def read(self, table: Table, version: int) -> None:
        """Called by tables when they are read (an input of the current run)."""
        recorder = self.recorder
        if recorder is not None:
            recorder.read(table, version)

    # ------------------------------------------------------------------ catalog

    @property
    def catalog(self) -> Catalog:
        """The lineage catalog (raises when this lake was made with ``catalog=False``)."""
        if self._catalog is False:
            raise LakeError("this Lake was created with catalog=False")
        if self._catalog is None:
            from lake.recording import open_catalog

            self._catalog = open_catalog(self.settings)
        return self._catalog

    @property
    def recorder(self) -> Recorder | None:
        if self._catalog is False:
            return None
        if self._recorder is None:
            from lake.recording import Recorder

            self._recorder = Recorder(self, self.catalog)
        return self._recorder

    @contextlib.contextmanager
    def run(self, job: str, **kwargs: Any) -> Iterator[RunContext]:
        """A catalog run: tables read inside are its inputs, commits its outputs.

        Example:
            >>> with lake.run("silver.customers", parameters={"day": "2024-05-01"}) as run:
            ...     df = lake.table("bronze.customers").to_spark(spark)   # input @ version
            ...     lake.table("silver.customers").merge(clean(df), keys=["id"])  # output @ version
        """
        recorder = self.recorder
        if recorder is None:
            raise LakeError("runs need the catalog; this Lake was created with catalog=False")
        with recorder.run(job, **kwargs) as ctx:
            yield ctx

    def spark(self, app_name: str = "lake", master: str | None = None) -> Any:
        """A Spark session configured for this lake (see :func:`lake.spark.get_spark`)."""
        from lake.spark import get_spark

        return get_spark(self.settings, app_name=app_name, master=master)
