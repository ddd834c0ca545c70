"""The one place an online store backend is chosen: ``[feast] online_store`` names one of :data:`BACKENDS`.

Adding a backend: write a module implementing :class:`~lake.features.online_store.OnlineStore`
in Feast's layout for that store, register its factory here, and add it to the
parametrized suite in ``tests/lake/features/test_online_stores.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType

from lake.config import FeastSettings
from lake.errors import FeatureError
from lake.features.online_redis import RedisStore
from lake.features.online_sqlite import SqliteStore
from lake.features.online_store import OnlineStore

__all__ = ["BACKENDS", "open_online_store"]

Factory = Callable[[FeastSettings, Path], OnlineStore]
"""``factory(feast settings, local Feast folder) -> store``."""

BACKENDS: Mapping[str, Factory] = MappingProxyType({
    "sqlite": lambda settings, folder: SqliteStore(folder / "online.db", settings.project),
    "redis": lambda settings, folder: RedisStore(settings.redis_url, settings.project),
})
"""Online store factories by the ``[feast] online_store`` setting."""


def open_online_store(settings: FeastSettings, folder: Path) -> OnlineStore:
    """The online store the settings name.

    Args:
        settings: the lake's ``[feast]`` settings (``online_store``, ``project``, ``redis_url``).
        folder: the lake's local Feast folder (where the SQLite store lives).

    Raises:
        FeatureError: the setting names no known backend.
    """
    factory = BACKENDS.get(settings.online_store)
    if factory is None:
        raise FeatureError(f"[feast] online_store = {settings.online_store!r} is not a known online store; "
                           f"use one of {', '.join(sorted(BACKENDS))}")
    return factory(settings, folder)
