"""What a job declares: a source, a target table, and how to write it.

A job module in ``jobs/`` exposes ``JOB = Job(...)`` (or a ``job.yaml`` beside it):

    JOB = Job(
        name="bronze_stocks",
        source=FileSource("landing/stocks/*.csv", format="csv",
                          columns={"symbol": "VARCHAR", "date": "DATE", "price": "DOUBLE"},
                          csv=CsvOptions(date_format="%b %d %Y")),
        target="bronze.stocks",
        mode="append",
        partition_by=["symbol"],
    )

Silver and gold jobs read lake tables and transform them in Spark (SQL or a function).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from lake.errors import JobSpecError

Mode = Literal["append", "overwrite", "merge"]
SchemaPolicy = Literal["strict", "add_columns"]


@dataclass(frozen=True)
class CsvOptions:
    """How CSV files are read (DuckDB's CSV reader runs on the executors)."""

    header: bool = True
    delimiter: str = ","
    quote: str = '"'
    escape: str = '"'
    encoding: str = "utf-8"
    """utf-8, utf-16 or latin-1."""
    null_values: tuple[str, ...] = ("", "NA", "N/A", "null", "NULL")
    date_format: str | None = None
    """strftime format such as ``%d/%m/%Y``; default ISO 8601."""
    timestamp_format: str | None = None
    multiline: bool = False
    """Quoted values may contain line breaks."""
    sample_rows: int = 20_000
    """Rows the type sniffer reads when ``columns`` are not declared."""


@dataclass(frozen=True)
class FileSource:
    """Files in a local folder or under an S3 prefix, read incrementally.

    Args:
        path: a folder, a file or a glob (``landing/orders/*.csv``, ``s3://bucket/raw/**/*.json``);
            relative paths are relative to the lake root.
        format: ``csv``, ``json`` (JSON lines) or ``parquet``.
        columns: declared types, DuckDB names (``BIGINT``, ``DOUBLE``, ``DATE``, ``VARCHAR``...);
            default: inferred from a sample of the first file.
    """

    path: str
    format: Literal["csv", "json", "parquet"] = "csv"
    columns: Mapping[str, str] | None = None
    csv: CsvOptions = field(default_factory=CsvOptions)
    kind: str = "files"


@dataclass(frozen=True)
class SqlSource:
    """A table or query of a SQL database reached by SQLAlchemy URL.

    Args:
        url: SQLAlchemy URL; the password may come from the environment (``${PG_PASSWORD}``).
        table: a table name, or
        query: a SELECT.
        watermark: a monotonically growing column (``updated_at``, ``id``): incremental runs
            read only rows above the last run's maximum.
        partition_column: a numeric column to split the read into ``partitions`` ranges,
            read in parallel by Spark tasks.
    """

    url: str
    table: str | None = None
    query: str | None = None
    watermark: str | None = None
    partition_column: str | None = None
    partitions: int = 4
    fetch_size: int = 50_000
    kind: str = "sql"


@dataclass(frozen=True)
class TableSource:
    """Lake tables, transformed in Spark: SQL over their names, or a function.

    Args:
        tables: the lake tables read (each becomes a temp view named ``layer_name`` and is
            recorded as an input at the exact version read).
        sql: a Spark SQL query; lake names (``silver.flights``) may be used as written.
        transform: ``fn(spark, inputs: dict[name, DataFrame], params) -> DataFrame``.
    """

    tables: Sequence[str]
    sql: str | None = None
    transform: Callable[..., Any] | None = None
    kind: str = "tables"


Source = FileSource | SqlSource | TableSource


@dataclass(frozen=True)
class Job:
    """A declared ingestion or transformation job."""

    name: str
    source: Source
    target: str
    mode: Mode = "append"
    keys: Sequence[str] = ()
    """Merge keys (mode ``merge``)."""
    partition_by: Sequence[str] = ()
    schema_policy: SchemaPolicy = "strict"
    """``add_columns``: a new source column joins the table; ``strict``: the run fails."""
    description: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    """Defaults for ``--param k=v``."""
    quality: str | None = None
    """An expectation suite (YAML, relative to the jobs folder) checked before every commit;
    default: the suite for the target table in the quality folder, if any."""
    principal: str | None = None
    """The service account the job runs as; once principals exist it needs ``write`` on the target
    and ``read`` on every input table (default ``[service] job_principal``)."""

    def __post_init__(self) -> None:
        if self.mode not in ("append", "overwrite", "merge"):
            raise JobSpecError(f"job {self.name}: mode must be append, overwrite or merge, not {self.mode!r}")
        if self.mode == "merge" and not self.keys:
            raise JobSpecError(f"job {self.name}: mode merge needs keys")
        if self.schema_policy not in ("strict", "add_columns"):
            raise JobSpecError(f"job {self.name}: schema_policy must be strict or add_columns")
        if isinstance(self.source, TableSource) and not (self.source.sql or self.source.transform):
            raise JobSpecError(f"job {self.name}: a table source needs sql or transform")
        if isinstance(self.source, SqlSource) and not (self.source.table or self.source.query):
            raise JobSpecError(f"job {self.name}: a SQL source needs table or query")
        if isinstance(self.source, FileSource) and self.source.format not in ("csv", "json", "parquet"):
            raise JobSpecError(f"job {self.name}: file format must be csv, json or parquet")


def from_mapping(data: Mapping[str, Any], name: str) -> Job:
    """A job from its YAML form (``source: {kind: files, path: ..., format: csv, ...}``)."""
    try:
        src = dict(data["source"])
        kind = src.pop("kind", "files")
        if kind == "files":
            csv = CsvOptions(**src.pop("csv", {}))
            if "null_values" in csv.__dict__:
                csv = CsvOptions(**{**csv.__dict__, "null_values": tuple(csv.null_values)})
            source: Source = FileSource(csv=csv, **src)
        elif kind == "sql":
            source = SqlSource(**src)
        elif kind == "tables":
            source = TableSource(**src)
        else:
            raise JobSpecError(f"job {name}: unknown source kind {kind!r} (files, sql or tables)")
        fields = {k: v for k, v in data.items() if k != "source"}
        fields.setdefault("name", name)
        return Job(source=source, **fields)
    except (KeyError, TypeError) as exc:
        raise JobSpecError(f"job {name}: {exc}") from None
