"""What a Delta table asks of its readers and writers, and which of the lake's readers honor it.

Every reader of the lake calls :func:`check_read` before it touches a data file, every
writer calls :func:`check_write` before it writes one: an **allow list** per reader and
per writer, so a feature the lake has never heard of is refused, never skipped.

The protocol's version rules (PROTOCOL.md, "Reader Version Requirements", "Column
Mapping", "Table Features"):

- reader version 1: no reader feature;
- reader version 2: column mapping, in the mode of ``delta.columnMapping.mode`` (there
  is no ``readerFeatures`` list at this version);
- reader version 3: exactly the features in ``readerFeatures``; column mapping is then
  honored only when listed there;
- any other reader version: refused.

Writers likewise: writer versions 2-6 imply their features (2: append-only,
invariants; 3: CHECK constraints; 4: change data feed, generated columns; 5: column
mapping; 6: identity columns), version 7 lists ``writerFeatures``, and a writer must
honor the reader features too. A feature that is supported but not active (column
mapping in mode ``none``, ``delta.appendOnly`` unset) asks nothing more of a reader or
writer, so it is not refused.

Which reader honors what was measured by the conformance suite (``tests/conformance``),
which builds one table per feature by hand and compares every reader with the rows the
protocol defines; ``README.md`` shows the resulting table.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

from lake.errors import UnsupportedTableFeatureError

# -------------------------------------------------------------------- features

COLUMN_MAPPING = "columnMapping"
DELETION_VECTORS = "deletionVectors"
TIMESTAMP_NTZ = "timestampNtz"
V2_CHECKPOINT = "v2Checkpoint"
VACUUM_PROTOCOL_CHECK = "vacuumProtocolCheck"

APPEND_ONLY = "appendOnly"
INVARIANTS = "invariants"
CHECK_CONSTRAINTS = "checkConstraints"
CHANGE_DATA_FEED = "changeDataFeed"
GENERATED_COLUMNS = "generatedColumns"
IDENTITY_COLUMNS = "identityColumns"

_WRITER_VERSION_FEATURES = {
    2: (APPEND_ONLY, INVARIANTS),
    3: (CHECK_CONSTRAINTS,),
    4: (CHANGE_DATA_FEED, GENERATED_COLUMNS),
    5: (COLUMN_MAPPING,),
    6: (IDENTITY_COLUMNS,),
}
MAX_READER_VERSION = 3
MAX_WRITER_VERSION = 7


@dataclass(frozen=True)
class TableProtocol:
    """A table's protocol, read with the version rules: what a reader and a writer must honor.

    ``reader_features`` / ``writer_features`` are the features in force (implied by the
    version or listed), active ones only where activity is defined by a property (column
    mapping in a mode other than ``none``; append-only with ``delta.appendOnly=true``;
    change data feed with ``delta.enableChangeDataFeed=true``).
    """

    reader_version: int
    writer_version: int
    reader_features: frozenset[str]
    writer_features: frozenset[str]
    column_mapping: str
    """``none``, ``name`` or ``id``: how data files name their columns."""
    configuration: dict[str, str]
    partitioned: bool = False

    @property
    def mapped(self) -> bool:
        return self.column_mapping != "none"


def table_protocol(table: DeltaTable) -> TableProtocol:
    """The protocol of a delta-rs table handle (at the version it is loaded at)."""
    proto = table.protocol()
    config = dict(table.metadata().configuration)
    return protocol_of(proto.min_reader_version, proto.min_writer_version, proto.reader_features,
                       proto.writer_features, config, _schema_metadata(table),
                       partitioned=bool(table.metadata().partition_columns))


def _schema_metadata(table: DeltaTable) -> list[dict[str, Any]]:
    return [dict(f.metadata or {}) for f in table.schema().fields]


def protocol_of(reader_version: int, writer_version: int, reader_features: Iterable[str] | None,
                writer_features: Iterable[str] | None, configuration: dict[str, str],
                column_metadata: list[dict[str, Any]] | None = None, *, partitioned: bool = False
                ) -> TableProtocol:
    """Apply the protocol's version rules to a ``protocol`` action and the table properties."""
    listed_r = frozenset(reader_features or ())
    listed_w = frozenset(writer_features or ())
    mode = (configuration.get("delta.columnMapping.mode") or "none").lower()
    if reader_version >= 3:
        readers = set(listed_r)
        mapping_on = COLUMN_MAPPING in listed_r
    else:
        readers = {COLUMN_MAPPING} if reader_version == 2 else set()
        mapping_on = reader_version == 2
    if not mapping_on or mode == "none":
        readers.discard(COLUMN_MAPPING)
        mode = "none"
    if writer_version >= 7:
        writers = set(listed_w)
    else:
        writers = {f for v, names in _WRITER_VERSION_FEATURES.items() if writer_version >= v for f in names}
    # Supported but inactive: nothing to honor.
    if configuration.get("delta.appendOnly", "false").lower() != "true":
        writers.discard(APPEND_ONLY)
    if configuration.get("delta.enableChangeDataFeed", "false").lower() != "true":
        writers.discard(CHANGE_DATA_FEED)
    if mode == "none":
        writers.discard(COLUMN_MAPPING)
    meta = column_metadata or []
    if not any(k.startswith("delta.constraints.") for k in configuration):
        writers.discard(CHECK_CONSTRAINTS)
    if not any("delta.generationExpression" in m for m in meta):
        writers.discard(GENERATED_COLUMNS)
    if not any(any(k.startswith("delta.identity.") for k in m) for m in meta):
        writers.discard(IDENTITY_COLUMNS)
    if not any("delta.invariants" in m for m in meta):
        writers.discard(INVARIANTS)
    return TableProtocol(reader_version, writer_version, frozenset(readers), frozenset(writers), mode,
                         dict(configuration), partitioned)


# --------------------------------------------------------------------- readers


@dataclass(frozen=True)
class Reader:
    """One way the lake reads a table, and the reader features it honors (measured)."""

    name: str
    label: str
    honors: frozenset[str]
    mapped_partitions: bool = True
    """Whether it reads the partition columns of a column-mapped table (False: refused)."""


_ALWAYS = frozenset({TIMESTAMP_NTZ, V2_CHECKPOINT, VACUUM_PROTOCOL_CHECK})

ARROW = Reader("arrow", "delta-rs: to_arrow, to_pandas, to_polars, to_batches",
               _ALWAYS | {COLUMN_MAPPING, DELETION_VECTORS})
SPARK = Reader("spark", "Spark through the lake: to_spark (executors read the file list)",
               _ALWAYS | {COLUMN_MAPPING, DELETION_VECTORS})
DUCKDB = Reader("duckdb", "DuckDB delta_scan: lake sql, lake_at, point-in-time index, drift sources, "
                "full materialization", _ALWAYS | {COLUMN_MAPPING, DELETION_VECTORS},
                # measured (duckdb-extension-delta 1.5.5): partition columns of column-mapped tables read as NULL
                mapped_partitions=False)
FILES = Reader("files", "the lake's file-list reader: incremental materialization (pyarrow over the files added)",
               _ALWAYS | {COLUMN_MAPPING, DELETION_VECTORS})
HANDOFF = Reader("handoff", "hand-off loads and exports (a pyarrow dataset of the version, files in path order)",
                 _ALWAYS)

READERS: dict[str, Reader] = {r.name: r for r in (ARROW, SPARK, DUCKDB, FILES, HANDOFF)}


def check_read(protocol: TableProtocol, reader: Reader, table: str) -> TableProtocol:
    """Refuse a table whose protocol ``reader`` cannot honor; returns the protocol.

    Raises:
        UnsupportedTableFeatureError: naming the feature (or reader version) and the reader,
            with ``table``, ``feature`` and ``reader`` as context.
    """
    if protocol.reader_version > MAX_READER_VERSION or protocol.reader_version < 1:
        raise UnsupportedTableFeatureError(
            f"table {table} needs Delta reader version {protocol.reader_version}; the lake reads versions 1 to "
            f"{MAX_READER_VERSION}, so {reader.label} cannot read it correctly",
            table=table, feature=f"readerVersion {protocol.reader_version}", reader=reader.name)
    if protocol.mapped and protocol.partitioned and not reader.mapped_partitions:
        raise UnsupportedTableFeatureError(
            f"table {table} uses column mapping (mode {protocol.column_mapping}) and is partitioned; "
            f"{reader.label} reads the partition columns of such tables as NULL, so the read is refused. "
            f"{_other_readers([COLUMN_MAPPING], reader)}",
            table=table, feature=COLUMN_MAPPING, reader=reader.name)
    missing = sorted(protocol.reader_features - reader.honors)
    if missing:
        raise UnsupportedTableFeatureError(
            f"table {table} uses the Delta reader feature(s) {', '.join(missing)}, which {reader.label} does not "
            f"honor; rather than return rows that differ from the table, the read is refused. "
            f"{_other_readers(missing, reader)}",
            table=table, feature=missing[0], features=missing, reader=reader.name)
    return protocol


def _other_readers(missing: list[str], reader: Reader) -> str:
    able = [r.label.split(":")[0] for r in READERS.values() if r is not reader and set(missing) <= r.honors
            and r.mapped_partitions]
    return f"Readers that honor it: {'; '.join(able)}." if able else "No reader of the lake honors it yet."


def check(table: DeltaTable, reader: Reader, name: str) -> TableProtocol:
    """:func:`table_protocol` then :func:`check_read`: the one call every reader makes."""
    return check_read(table_protocol(table), reader, name)


# --------------------------------------------------------------------- writers


@dataclass(frozen=True)
class Writer:
    """One way the lake writes a table, and the writer features it honors (measured)."""

    name: str
    label: str
    honors: frozenset[str]


# Writers must also honor every reader feature (they read the table to write it).
# measured with deltalake 1.6.6 on hand-built tables: constraints, invariants and generation
# expressions are enforced (generated values filled in), deletes and merges on tables with
# deletion vectors or column mapping read back exactly, change data files are written;
# identity columns are refused by delta-rs itself
ARROW_WRITER = Writer(
    "arrow", "delta-rs writes (Table.write, merge, delete of Python data)",
    _ALWAYS | {COLUMN_MAPPING, DELETION_VECTORS, APPEND_ONLY, INVARIANTS, CHECK_CONSTRAINTS, GENERATED_COLUMNS,
               CHANGE_DATA_FEED},
)
SPARK_WRITER = Writer(
    "spark", "Spark writes through the lake (executors write Parquet files, the driver commits them)",
    _ALWAYS | {APPEND_ONLY},
)
WRITERS: dict[str, Writer] = {w.name: w for w in (ARROW_WRITER, SPARK_WRITER)}


def check_write(protocol: TableProtocol, writer: Writer, table: str, *, changes_data: bool) -> None:
    """Refuse, before anything is written, a write ``writer`` cannot make correctly.

    ``changes_data``: the write removes or rewrites rows (overwrite, merge, delete), which
    an append-only table forbids.

    Raises:
        UnsupportedTableFeatureError: naming the feature and the writer.
    """
    if protocol.writer_version > MAX_WRITER_VERSION:
        raise UnsupportedTableFeatureError(
            f"table {table} needs Delta writer version {protocol.writer_version}; {writer.label} writes versions "
            f"up to {MAX_WRITER_VERSION}. Nothing was written.",
            table=table, feature=f"writerVersion {protocol.writer_version}", writer=writer.name)
    if APPEND_ONLY in protocol.writer_features and changes_data:
        raise UnsupportedTableFeatureError(
            f"table {table} is append-only (delta.appendOnly=true): an overwrite, merge or delete would change "
            "or remove rows. Append instead, or unset the property. Nothing was written.",
            table=table, feature=APPEND_ONLY, writer=writer.name)
    needed = (protocol.writer_features | protocol.reader_features) - {APPEND_ONLY}
    if not changes_data:  # adding rows needs no change data files (PROTOCOL.md, Change Data Files)
        needed -= {CHANGE_DATA_FEED}
    missing = sorted(needed - writer.honors)
    if missing:
        raise UnsupportedTableFeatureError(
            f"table {table} uses the Delta feature(s) {', '.join(missing)}, which {writer.label} cannot honor; "
            "the write is refused before anything is written.",
            table=table, feature=missing[0], features=missing, writer=writer.name)


# ------------------------------------------------------------ column mapping


def physical_names(table: DeltaTable) -> dict[str, str]:
    """Top-level logical column name -> physical name (identity without column mapping)."""
    out = {}
    for f in table.schema().fields:
        meta = f.metadata or {}
        out[f.name] = str(meta.get("delta.columnMapping.physicalName") or f.name)
    return out


# ------------------------------------------------------------------ timestamps

def int96_as_micros() -> Any:
    """Parquet read options with INT96 timestamps read as microseconds (Delta's precision): years
    1 to 9999 fit, where the nanosecond default overflows outside 1677-2262 (9999-12-31 read as
    1816-03-28)."""
    import pyarrow.dataset as pads  # heavy (it loads pandas): only once files are read, not for `lake sql`

    return pads.ParquetReadOptions(coerce_int96_timestamp_unit="us")


def __getattr__(name: str) -> Any:
    # ``INT96_AS_MICROS``, the constant this module had, made on first use (pyarrow.dataset is heavy).
    if name == "INT96_AS_MICROS":
        return int96_as_micros()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def conform_reader(stream: pa.RecordBatchReader, schema: pa.Schema) -> pa.RecordBatchReader:
    """``stream`` with the table's Arrow types (delta-rs' engine answers string views)."""
    if stream.schema.equals(schema, check_metadata=False):
        return stream

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in stream:
            yield batch.select(schema.names).cast(schema)

    return pa.RecordBatchReader.from_batches(schema, batches())


def filtered_reader(stream: pa.RecordBatchReader, expr: pc.Expression | None, schema: pa.Schema
                    ) -> pa.RecordBatchReader:
    """The rows of ``stream`` where ``expr`` holds, with the columns of ``schema``."""
    def batches() -> Iterator[pa.RecordBatch]:
        for batch in stream:
            table = pa.Table.from_batches([batch])
            if expr is not None:
                table = table.filter(expr)
            yield from table.select(schema.names).cast(schema).to_batches()

    return pa.RecordBatchReader.from_batches(schema, batches())
