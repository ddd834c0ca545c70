"""The lake: tables by name under one root, and who hears about every commit."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lake.config import Settings, load_settings
from lake.errors import LakeError, TableNotFoundError
from lake.results import CommitResult
from lake.storage import Storage, storage_for
from lake.table import Table

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

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or load_settings()
        self.storage: Storage = storage_for(self.settings)
        self._listeners: list[CommitListener] = []

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
        for listener in list(self._listeners):
            listener(table, result)

    def spark(self, app_name: str = "lake", master: str | None = None) -> Any:
        """A Spark session configured for this lake (see :func:`lake.spark.get_spark`)."""
        from lake.spark import get_spark

        return get_spark(self.settings, app_name=app_name, master=master)
