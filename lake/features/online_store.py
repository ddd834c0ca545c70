"""The interface every online store implements, and the types it shares with the reader.

An online store holds the latest feature values per entity key in Feast's own layout,
so that Feast's SDK and ``feast serve`` read what the lake writes and the reverse. One
implementation per backend (:mod:`lake.features.online_sqlite`,
:mod:`lake.features.online_redis`), chosen in one place from ``[feast] online_store``
(:mod:`lake.features.online_backends`). Nothing else knows which backend is configured.

Entity keys are passed already serialized (Feast's ``serialize_entity_key``, version 3,
without the project) and values as serialized ``Value`` protos (see
:mod:`lake.features.encoding`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["OnlineStore", "OnlineWriter", "Row", "ViewRead"]

Row = tuple[tuple[int, int] | None, list[bytes | None]]
"""``(event time as (seconds, nanos) or None when the entity is absent, raw value per feature)``."""


@dataclass(frozen=True)
class ViewRead:
    """The features read from one feature view (as a service projects it), and how."""

    name: str
    """Registry name: the SQLite table and the Redis field prefix."""
    alias: str
    features: tuple[str, ...]
    types: tuple[int, ...]
    """Feast ``ValueType`` number of each feature."""
    keys: tuple[tuple[str, str, int], ...]
    """``(view join key, request column, ValueType)``, sorted by join key as Feast encodes them."""
    key_head: bytes
    """The serialized entity key up to the values: key count and join key names."""
    simple: bool
    """Every feature is a scalar kind decoded without protobuf."""


class OnlineWriter(Protocol):
    """Writes batches of one feature view; made by :meth:`OnlineStore.writer`."""

    def write(self, keys: list[bytes], values: dict[str, list[bytes]], ts_us: list[int]) -> int:
        """Write one batch; returns how many entity rows were written.

        Args:
            keys: serialized entity keys.
            values: serialized ``Value`` per feature name, one per key.
            ts_us: event time per key, microseconds since the epoch (UTC).

        A value already online whose event time is newer than the incoming one is kept
        (an equal event time overwrites: a correction); such rows are not counted.
        """
        ...

    def close(self) -> None:
        """Release what the writer holds."""
        ...


class OnlineStore(Protocol):
    """An online store backend: where materialization writes and the feature server reads."""

    kind: str
    """The ``[feast] online_store`` setting that selects this backend (``sqlite``, ``redis``)."""
    where: str
    """Human-readable location for messages (``SQLite at /x/online.db``)."""
    identity: str
    """Stable identity of the store's contents, recorded with each materialization so an
    incremental run only continues from a run into the same store."""

    def feast_config(self) -> Any:
        """Feast's ``online_store`` configuration object for this store (for ``RepoConfig``)."""
        ...

    def feast_yaml(self) -> dict[str, Any]:
        """The ``online_store`` section of the generated ``feature_store.yaml``."""
        ...

    def writer(self, config: Any, view: Any) -> OnlineWriter:
        """A writer for one Feast feature view, given the deployment's ``RepoConfig``."""
        ...

    def read(self, work: Sequence[tuple[ViewRead, Sequence[bytes]]]) -> list[list[Row]]:
        """One row per (view, serialized entity key), in order; an absent key reads ``(None, [None...])``.

        Raises:
            OnlineStoreError: the store cannot be reached or refuses the read.
        """
        ...

    def delete(self, view: ViewRead, keys: Sequence[bytes]) -> int:
        """Remove a feature view's values for some entity keys (other views' values stay).

        Returns:
            How many of the keys had values of that view.
        """
        ...

    def health(self) -> None:
        """Raise :class:`~lake.features.errors.OnlineStoreError` unless the store answers."""
        ...
