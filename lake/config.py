"""One settings object for the whole backbone.

Resolution order, first wins: explicit arguments, then ``LAKE_*`` environment
variables, then a ``lake.toml`` file, then the embedded defaults (a local
``./lakehouse/`` folder with the catalog's SQLite file beside the tables, Spark
``local[*]``, Feast with a file registry and a SQLite online store).

Environment variables are the upper-cased dotted field path with ``_`` for dots:
``LAKE_ROOT``, ``LAKE_S3_ENDPOINT``, ``LAKE_S3_SECRET_KEY``, ``LAKE_CATALOG_URL``,
``LAKE_SPARK_MASTER``, ``LAKE_FEAST_ONLINE_STORE``... ``LAKE_CONFIG`` names the
TOML file (default ``./lake.toml``).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from catalog.redact import redact_text, redact_url
from lake.errors import ConfigError

__all__ = ["Settings", "load_settings", "redact_url"]

DEFAULT_ROOT = "./lakehouse"
DEFAULT_HOME = "~/.lake"
CONFIG_FILE_ENV = "LAKE_CONFIG"
DEFAULT_CONFIG_FILE = "lake.toml"


class _Section(BaseModel):
    # No NaN or infinity in any number: a heartbeat of nan seconds would pass every range check.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class S3Settings(_Section):
    """Object storage reached through the S3 API (MinIO, AWS, any compatible server)."""

    endpoint: str | None = None
    """Endpoint URL such as ``http://127.0.0.1:9000``; ``None`` means AWS itself."""
    access_key: str | None = None
    """Access key id."""
    secret_key: SecretStr | None = None
    """Secret access key (never printed, logged or stored in the catalog)."""
    region: str = "us-east-1"
    """Region name; MinIO accepts any."""
    allow_http: bool | None = None
    """Allow plain HTTP; by default true when the endpoint starts with ``http://``."""

    @property
    def http_allowed(self) -> bool:
        if self.allow_http is not None:
            return self.allow_http
        return bool(self.endpoint and self.endpoint.startswith("http://"))


class CatalogSettings(_Section):
    """Where the metadata catalog lives."""

    url: SecretStr | None = None
    """SQLAlchemy URL; default ``sqlite:///<root>/catalog.db`` (beside the tables)."""
    lineage_file: str | None = None
    """JSON-lines file that receives every OpenLineage event, if set."""
    openlineage_url: str | None = None
    """HTTP endpoint (e.g. Marquez) that receives every OpenLineage event, if set."""
    namespace: str = "lake"
    """OpenLineage namespace of the jobs this project runs."""
    heartbeat_seconds: float | None = 30.0
    """How often an open run's process says it is alive (none: runs are ended by pid only)."""
    stale_after_seconds: float = 600.0
    """A run with no heartbeat for this long is ended as failed (its process died elsewhere)."""


class SparkSettings(_Section):
    """How Spark sessions are made."""

    master: str = "local[*]"
    """``local[*]`` or a cluster URL such as ``spark://host:7077``."""
    shuffle_partitions: int = Field(default=8, ge=1)
    """``spark.sql.shuffle.partitions``; the stock 200 is far too many on a laptop."""
    driver_memory: str = "2g"
    """``spark.driver.memory``."""
    conf: dict[str, str] = Field(default_factory=dict)
    """Extra Spark configuration, applied last."""
    quiet: bool = False
    """Send the Spark JVM's own output (its startup lines, log4j) to ``<cache>/spark-jvm.log`` instead of
    the terminal; the ``lake`` command sets it unless ``--verbose``."""


class FeastSettings(_Section):
    """Feast deployment generated from the lake settings."""

    project: str = "lake"
    """Feast project name."""
    registry: SecretStr | None = None
    """A SQLAlchemy URL for a SQL registry; default a file registry in the lake root."""
    online_store: Literal["sqlite", "redis"] = "sqlite"
    """Online store type."""
    redis_url: str = "127.0.0.1:6379"
    """Redis connection string used when ``online_store = "redis"`` (``host:port[,db=N,password=...]``)."""
    repo: str | None = None
    """The feature repository folder (default ``./feature_repo``)."""
    serving_log: bool = False
    """Log every online request and the values served to the lake table ``logs.serving_<project>``."""
    max_keys_per_request: int = Field(default=100_000, ge=1)
    """The most entity rows one feature-server request may ask for (413 beyond)."""
    offload_keys: int = Field(default=1_000, ge=1)
    """Feature-server requests with more entity rows than this are served by worker processes
    (:attr:`offload_workers`), so single-key requests keep their latency while large ones run."""
    offload_workers: int = Field(default=1, ge=1)
    """Worker processes for the large requests (each holds a registry snapshot and its Feast imports,
    a few hundred MB); large requests beyond them wait their turn."""
    registry_refresh_seconds: float = Field(default=60.0, gt=0)
    """How often a running feature server reloads the registry: what ``lake features apply`` changed
    is served this long after it, with no restart (a reload that fails keeps the previous snapshot)."""


class FeaturesSettings(_Section):
    """Which engine runs the feature path's batch work (point-in-time retrieval, training sets,
    materialization, drift and profile statistics)."""

    engine: Literal["auto", "duckdb", "spark"] = "auto"
    """``duckdb``: one process. ``spark``: the Spark cluster of ``[spark] master``. ``auto``: Spark once
    the rows involved (entity rows plus the source rows at the pinned versions, summed over the
    views; for statistics the rows of the table) reach :attr:`spark_min_rows`, else DuckDB."""
    spark_min_rows: int = Field(default=100_000_000, ge=0)
    """The size at which ``auto`` moves to Spark. On one machine DuckDB is faster at every size
    measured (BENCHMARKS.md, "Feature path on Spark"); what it cannot do is hold more than memory:
    building a view's point-in-time index takes about 120 bytes per source row at its peak
    (measured: 3M rows, 313 MB), so 100M rows is about 12 GB, more than a shared 24 GB machine
    gives one process. Set it lower when a real cluster waits."""
    spark_group_rows: int = Field(default=500_000, ge=1_000)
    """Spark engine: the rows (entity + source) one partition of a point-in-time join aims to hold in
    memory; a key with more entity rows than half of it is salted over several partitions."""


class ServerSettings(_Section):
    """The HTTP boundary of ``lake catalog serve`` and ``lake features serve``."""

    auth: Literal["auto", "required"] = "auto"
    """``auto``: requests need a bearer token once any API token exists (``lake token create``); without
    one, the servers listen on loopback only. ``required``: always (no token, no access)."""
    token_cache_seconds: float = Field(default=5.0, ge=0)
    """How long a server trusts a token it verified (a revoked token works at most this much longer)."""
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    """The largest request body a server reads (413 beyond)."""
    max_json_depth: int = Field(default=64, ge=2)
    """The deepest nesting of objects and lists a JSON body may have (400 beyond)."""


class ServiceSettings(_Section):
    """``lake serve`` (the shared service), and where the CLI finds one (issue 18)."""

    url: str | None = None
    """A running service (``http://lake.internal:8080``): catalog reads and ``lake sql`` go through it
    instead of opening the catalog database and the files."""
    token: SecretStr | None = None
    """The bearer token the CLI sends to :attr:`url` (``LAKE_SERVICE_TOKEN``; never printed)."""
    mask_salt: SecretStr | None = None
    """The secret salt of ``hash`` masking (``LAKE_SERVICE_MASK_SALT``; never stored). Without it,
    columns under a ``hash`` policy are masked to null."""
    policy_cache_seconds: float = Field(default=5.0, ge=0)
    """How long the service trusts its snapshot of principals, grants and masks (changes made
    through the service apply at once)."""
    jwks_url: str | None = None
    """An OIDC issuer's JWKS (``https://idp/.well-known/jwks.json``): bearer JWTs it signed are taken."""
    jwt_issuer: str | None = None
    """The ``iss`` a JWT must carry."""
    jwt_audience: str | None = None
    """The ``aud`` a JWT must carry."""
    jwt_claim: str = "sub"
    """The claim naming the principal (``sub``, ``email``, ``preferred_username``)."""
    jwt_groups_claim: str | None = None
    """The claim listing the principal's groups (``groups``, ``roles``): each that names a group principal
    in the catalog gives its grants (the holder need not be a principal itself); others are ignored."""
    max_rows: int = Field(default=10_000, ge=1)
    """The most rows a query or preview through the service returns."""
    job_principal: str | None = None
    """The service account jobs run as when their spec names none (``LAKE_SERVICE_JOB_PRINCIPAL``); once
    principals exist, a job needs write on its target and read on its inputs."""


class MetricsSettings(_Section):
    """Where batch work (jobs, materialization, drift checks) sends its metrics; servers expose /metrics."""

    pushgateway: str | None = None
    """A Prometheus Pushgateway (``http://127.0.0.1:9091``) batch work pushes to when it ends."""
    textfile: str | None = None
    """A ``.prom`` file (node_exporter's textfile collector) batch work writes when it ends."""
    enabled: bool = True
    """Servers record request metrics and answer ``GET /metrics`` (off: neither)."""
    public: bool = False
    """``/metrics`` answers without a token (for a scraper on a private network); by default it
    needs one whenever the server's other endpoints do (Prometheus: ``authorization.credentials_file``)."""


class Settings(_Section):
    """The resolved configuration of the backbone.

    Build it with :func:`load_settings`; pass it explicitly to what needs it.
    """

    root: str = DEFAULT_ROOT
    """Lake root: a local folder or ``s3://bucket/prefix``."""
    s3: S3Settings = Field(default_factory=S3Settings)
    catalog: CatalogSettings = Field(default_factory=CatalogSettings)
    spark: SparkSettings = Field(default_factory=SparkSettings)
    feast: FeastSettings = Field(default_factory=FeastSettings)
    features: FeaturesSettings = Field(default_factory=FeaturesSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    quality_dir: str | None = None
    """Folder of expectation suites (YAML); default ``./quality``."""
    jobs_dir: str | None = None
    """Folder of job modules and YAML files; default ``./jobs`` or the project's ``jobs`` package."""
    monitors_dir: str | None = None
    """Folder of declared drift checks (``monitors/*.yaml``) that pipelines run; default ``./monitors``."""
    cache_dir: str | None = None
    """Local folder for rebuildable indexes (point-in-time retrieval); default ``<root>/_cache`` for a local
    lake, ``<state_dir>/_cache`` for an S3 lake."""
    home: str | None = None
    """Where this machine keeps what an S3 lake cannot hold in object storage (its embedded SQLite catalog,
    caches): ``<home>/s3/<bucket>/<prefix>/``, the same from any working folder. Default ``~/.lake``
    (``LAKE_HOME``). Unused by a local lake, which keeps them in its root."""
    sql_read_dirs: list[str] = Field(default_factory=list)
    """Folders outside the lake root whose files ``lake sql`` may read (``read_csv``,
    ``read_parquet``); DuckDB may open nothing else but the lake tables' own files.
    ``LAKE_SQL_READ_DIRS`` takes them separated by the path separator (``:``)."""
    source_file: str | None = None
    """The ``lake.toml`` these settings were read from, if any."""

    @field_validator("sql_read_dirs", mode="before")
    @classmethod
    def _split_dirs(cls, value: Any) -> Any:
        return [p for p in value.split(os.pathsep) if p] if isinstance(value, str) else value

    @property
    def is_s3(self) -> bool:
        return self.root.startswith(("s3://", "s3a://"))

    @property
    def root_uri(self) -> str:
        """The lake root as an absolute local path or an ``s3://`` URI, without a trailing slash."""
        if self.is_s3:
            return "s3://" + self.root.split("://", 1)[1].rstrip("/")
        return str(Path(self.root).expanduser().resolve())

    @property
    def state_dir(self) -> str:
        """The local folder of the lake's embedded catalog and caches, as an absolute path.

        A local lake: its root. An S3 lake: ``<home>/s3/<bucket>/<prefix>`` (default home ``~/.lake``),
        so the same lake has the same catalog whatever the current folder.
        """
        if not self.is_s3:
            return self.root_uri
        home = Path(self.home or DEFAULT_HOME).expanduser().resolve()
        return str(home.joinpath("s3", *[p for p in self.root_uri.split("://", 1)[1].split("/") if p]))

    @property
    def cache_path(self) -> str:
        """The cache folder as an absolute local path."""
        if self.cache_dir:
            return str(Path(self.cache_dir).expanduser().resolve())
        return str(Path(self.state_dir, "_cache"))

    @property
    def catalog_url(self) -> str:
        """The catalog's SQLAlchemy URL (contains credentials: never print it as is).

        Default: SQLite in :attr:`state_dir` (the root of a local lake; ``~/.lake/s3/...`` for an S3 lake).
        """
        if self.catalog.url is not None:
            return self.catalog.url.get_secret_value()
        return f"sqlite:///{Path(self.state_dir) / 'catalog.db'}"

    def masked(self) -> dict[str, Any]:
        """The settings as plain data with every secret masked, for display."""
        data = self.model_dump(mode="json")
        data["s3"]["secret_key"] = "****" if self.s3.secret_key else None
        data["catalog"]["url"] = redact_url(self.catalog_url)
        data["service"]["token"] = "****" if self.service.token else None
        data["service"]["mask_salt"] = "****" if self.service.mask_salt else None
        if self.feast.registry is not None:
            data["feast"]["registry"] = redact_url(self.feast.registry.get_secret_value())
        data["root"] = self.root_uri
        # Credentials inside other values too: a Redis password, an OpenLineage URL's user info.
        return _redact_strings(data)


def _redact_strings(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _redact_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_strings(v) for v in value]
    return value


# Environment variables: every leaf field, named LAKE_<SECTION>_<FIELD>.
def _env_names() -> dict[str, tuple[str, ...]]:
    names: dict[str, tuple[str, ...]] = {}
    for field in Settings.model_fields:
        if field == "source_file":
            continue
        annotation = Settings.model_fields[field].annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            for sub in annotation.model_fields:
                if sub == "conf":
                    continue
                names[f"LAKE_{field}_{sub}".upper()] = (field, sub)
        else:
            names[f"LAKE_{field}".upper()] = (field,)
    return names


def _set(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}. Fix the file or remove it.") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start}): TOML files are UTF-8. "
                          "Fix the file or remove it.") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read the settings file {path}: {exc.strerror}") from exc


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    config_file: str | Path | Literal[False] | None = None,
) -> Settings:
    """Resolve the settings: ``overrides`` > ``LAKE_*`` environment > ``lake.toml`` > defaults.

    Args:
        overrides: explicit values, nested like the TOML file
            (``{"root": "...", "s3": {"endpoint": "..."}}``); ``None`` values are ignored.
        env: the environment to read (default ``os.environ``).
        config_file: the TOML file (default ``$LAKE_CONFIG`` or ``./lake.toml`` if present);
            ``False`` reads no file.

    Returns:
        The frozen, validated settings.

    Raises:
        ConfigError: a value is malformed or the file cannot be read.
    """
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    explicit_file = config_file or env.get(CONFIG_FILE_ENV)
    path = Path(explicit_file) if explicit_file else Path(DEFAULT_CONFIG_FILE)
    if config_file is False:
        path = Path("/nonexistent/lake.toml")
    elif explicit_file and not path.is_file():
        raise ConfigError(f"settings file {path} does not exist (from {CONFIG_FILE_ENV} or --config)")
    if path.is_file():
        data = _read_toml(path)
        data["source_file"] = str(path.resolve())
        root = data.get("root")
        # A relative root in a settings file is relative to that file, not the working directory.
        if isinstance(root, str) and "://" not in root and not Path(root).expanduser().is_absolute():
            data["root"] = str((path.resolve().parent / root).resolve())
    for name, fpath in _env_names().items():
        if env.get(name) not in (None, ""):
            _set(data, fpath, env[name])
    data = _merge(data, _drop_none(overrides or {}))
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        where = f" (file {data.get('source_file')})" if data.get("source_file") else ""
        raise ConfigError(f"invalid settings{where}: {problems}") from None


def _drop_none(tree: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            value = _drop_none(value)
            if value:
                out[key] = value
        elif value is not None:
            out[key] = value
    return out
