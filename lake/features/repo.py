"""The Feast deployment generated from the lake settings, and the definitions in ``feature_repo/``.

One settings object drives both: the embedded default is a file registry and a SQLite
online store beside the tables with Feast's DuckDB offline store reading the Delta
tables; production is a SQL registry on PostgreSQL and a Redis online store
(``[feast] registry = "postgresql+psycopg://..."``, ``online_store = "redis"``).
The generated ``feature_store.yaml`` is also written to ``<root>/_feast/`` for the
``feast`` command line.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import yaml

from lake.duck import load_extensions
from lake.errors import FeatureError, NotInstalledError
from lake.features.online_backends import open_online_store
from lake.features.online_store import OnlineStore
from lake.lakehouse import Lake
from lake.loading import import_file

if TYPE_CHECKING:
    from feast import FeatureStore

__all__ = ["Definitions", "FeatureError", "feast_dir", "feature_repo_folder", "feature_store", "load_definitions",
           "online_store", "repo_config"]


def feature_repo_folder(lake: Lake) -> Path:
    configured = lake.settings.feast.repo
    if configured:
        return Path(configured).expanduser()
    local = Path("feature_repo")
    if local.is_dir():
        return local
    raise FeatureError("no feature repository: create ./feature_repo or set [feast] repo in lake.toml")


def feast_dir(lake: Lake) -> Path:
    """Local folder for the file registry, the SQLite online store and the generated YAML.

    Beside the tables on a local lake; on an S3 lake, beside the catalog's SQLite file
    (the embedded catalog lives in ``./lakehouse/`` then), else ``./lakehouse/_feast``.
    """
    if lake.storage.is_local:
        return Path(lake.storage.root) / "_feast"
    url = lake.settings.catalog_url
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///")).resolve().parent / "_feast"
    return Path("lakehouse").resolve() / "_feast"


def online_store(lake: Lake) -> OnlineStore:
    """The lake's online store (SQLite or Redis, from ``[feast] online_store``)."""
    return open_online_store(lake.settings.feast, feast_dir(lake))


def repo_config(lake: Lake) -> Any:
    """The Feast ``RepoConfig`` for this lake."""
    try:
        # heavy: feast is imported only when the feature store is used
        from feast import RepoConfig
        from feast.infra.offline_stores.duckdb import DuckDBOfflineStoreConfig
        from feast.repo_config import RegistryConfig
    except ImportError as exc:  # pragma: no cover - feast and ibis are dependencies
        raise NotInstalledError(f"Feast is not fully installed ({exc}): pip install 'feast[redis,postgres]' ibis-framework[duckdb]") from exc
    settings = lake.settings.feast
    folder = feast_dir(lake)
    folder.mkdir(parents=True, exist_ok=True)
    if settings.registry is not None:
        # heavy: feast's SQL registry (SQLAlchemy models) is imported only when configured
        from feast.infra.registry.sql import SqlRegistryConfig

        registry: Any = SqlRegistryConfig(registry_type="sql", path=settings.registry.get_secret_value(),
                                          cache_ttl_seconds=60, sqlalchemy_config_kwargs={"pool_pre_ping": True})
    else:
        registry = RegistryConfig(path=str(folder / "registry.db"), cache_ttl_seconds=60)
    online = open_online_store(settings, folder).feast_config()
    return RepoConfig(project=settings.project, provider="local", registry=registry, online_store=online,
                      offline_store=DuckDBOfflineStoreConfig(), entity_key_serialization_version=3,
                      repo_path=str(folder))


def _ensure_duckdb_delta() -> None:
    """Feast's DuckDB offline store loads the delta extension by name: install it offline first."""
    load_extensions(duckdb.connect(), "delta")


_STORES: weakref.WeakKeyDictionary[Lake, FeatureStore] = weakref.WeakKeyDictionary()


def feature_store(lake: Lake) -> FeatureStore:
    """The Feast ``FeatureStore`` for this lake (one per lake object; its registry is cached 60 s)."""
    # heavy: feast is imported only when the feature store is used
    from feast import FeatureStore

    store = _STORES.get(lake)
    if store is None:
        _ensure_duckdb_delta()
        config = repo_config(lake)
        _write_yaml(lake, config)
        store = _STORES[lake] = FeatureStore(config=config)
    return store


def _write_yaml(lake: Lake, config: Any) -> None:
    settings = lake.settings.feast
    registry: dict[str, Any] = ({"registry_type": "sql", "path": "${LAKE_FEAST_REGISTRY}"} if settings.registry
                                else {"path": str(feast_dir(lake) / "registry.db")})
    online = online_store(lake).feast_yaml()
    doc = {"project": settings.project, "provider": "local", "registry": registry, "online_store": online,
           "offline_store": {"type": "duckdb"}, "entity_key_serialization_version": 3}
    path = feast_dir(lake) / "feature_store.yaml"
    text = "# Generated by the lake from its settings; edit lake.toml instead.\n" + yaml.safe_dump(doc, sort_keys=False)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


@dataclass(frozen=True)
class Definitions:
    """The Feast objects found in a feature repository folder."""

    objects: list[Any]
    """Entities, feature views, on-demand feature views, feature services."""

    def of(self, kind: type) -> list[Any]:
        return [o for o in self.objects if isinstance(o, kind)]


def load_definitions(folder: Path) -> Definitions:
    """Import every ``*.py`` of the feature repository and collect its Feast objects.

    Raises:
        FeatureError: a file fails to import, or the folder defines nothing.
    """
    # heavy: feast is imported only when definitions are loaded
    from feast import Entity, FeatureService, FeatureView, OnDemandFeatureView

    if not folder.is_dir():
        raise FeatureError(f"feature repository {folder} does not exist; create it or set [feast] repo in lake.toml")
    kinds = (Entity, FeatureView, OnDemandFeatureView, FeatureService)
    found: list[Any] = []
    seen: set[int] = set()
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        module = import_file(path, f"lake_feature_repo_{path.stem}", FeatureError)
        for value in vars(module).values():
            if isinstance(value, kinds) and id(value) not in seen:
                seen.add(id(value))
                found.append(value)
    if not found:
        raise FeatureError(f"no Feast definitions (Entity, FeatureView, FeatureService) in {folder}")
    return Definitions(found)
