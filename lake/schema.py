"""Schema enforcement: does incoming data fit a table, and how to make it fit.

The rules follow Delta Lake's: columns match by name (order is free); a missing
nullable column is filled with nulls; an extra column fails unless evolution
was asked for, and then it joins the table as a nullable column; a type must be
the table's type or widen safely to it (int8 -> int16 -> int32 -> int64,
float32 -> float64, any timestamp unit -> microseconds). Anything else fails,
naming every offending column with both types.

Timestamps: Delta has two kinds. ``timestamp`` is an instant (stored as UTC; Arrow
``timestamp[us, tz=UTC]``; what Spark writes from its ``TIMESTAMP``), ``timestamp_ntz`` a
wall-clock time with no time zone (Arrow ``timestamp[us]``; pandas' naive datetimes). Naive
values written into a ``timestamp`` column are taken as UTC: the rule Spark applies with the
UTC session time zone the lake sets, so a table Spark made from naive datetimes takes the same
data from pandas. Time-zone-aware values are refused by a ``timestamp_ntz`` column (which wall
clock to keep is the writer's choice); the error says how to convert them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from lake.errors import SchemaMismatchError

_INT_ORDER = [pa.int8(), pa.int16(), pa.int32(), pa.int64()]


def normalize_type(dtype: pa.DataType) -> pa.DataType:
    """The Delta-compatible Arrow type for ``dtype`` (what the table will store)."""
    if pa.types.is_timestamp(dtype):
        return pa.timestamp("us", tz="UTC" if dtype.tz is not None else None)
    if pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype):
        return pa.string()
    if pa.types.is_large_binary(dtype) or pa.types.is_binary_view(dtype):
        return pa.binary()
    if pa.types.is_dictionary(dtype):
        return normalize_type(dtype.value_type)
    if pa.types.is_unsigned_integer(dtype):
        return {8: pa.int16(), 16: pa.int32(), 32: pa.int64(), 64: pa.int64()}[dtype.bit_width]
    if pa.types.is_date64(dtype):
        return pa.date32()
    if pa.types.is_null(dtype):
        return dtype
    if pa.types.is_struct(dtype):
        return pa.struct([f.with_type(normalize_type(f.type)) for f in dtype])
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype) or pa.types.is_list_view(dtype):
        return pa.list_(dtype.value_field.with_type(normalize_type(dtype.value_type)))
    if pa.types.is_map(dtype):
        return pa.map_(normalize_type(dtype.key_type), normalize_type(dtype.item_type))
    return dtype


def normalize_schema(schema: pa.Schema) -> pa.Schema:
    """Normalize every field's type (see :func:`normalize_type`), keeping nullability."""
    return pa.schema([f.with_type(normalize_type(f.type)) for f in schema])


DELTA_TIMESTAMPS = {"timestamp": "timestamp (an instant, in UTC)", "timestamp_ntz": "timestamp_ntz (no time zone)"}
"""Delta's two timestamp types, as ``lake table show`` names them."""


def type_name(dtype: pa.DataType) -> str:
    """A short, user-facing type name (``int64``, ``timestamp[us, tz=UTC]``...)."""
    return str(dtype)


def widens_to(src: pa.DataType, dst: pa.DataType) -> bool:
    """Whether values of ``src`` convert to ``dst`` without loss or surprise."""
    src, dst = normalize_type(src), normalize_type(dst)
    if src.equals(dst) or pa.types.is_null(src):
        return True
    if src in _INT_ORDER and dst in _INT_ORDER:
        return _INT_ORDER.index(src) <= _INT_ORDER.index(dst)
    if pa.types.is_float32(src) and pa.types.is_float64(dst):
        return True
    if pa.types.is_timestamp(src) and pa.types.is_timestamp(dst) and src.tz is None and dst.tz is not None:
        return True  # naive values are taken as UTC (Spark's rule with the lake's UTC session time zone)
    if pa.types.is_decimal(src) and pa.types.is_decimal(dst):
        return src.scale == dst.scale and src.precision <= dst.precision
    if pa.types.is_struct(src) and pa.types.is_struct(dst):
        names = {f.name: f for f in dst}
        return all(f.name in names and widens_to(f.type, names[f.name].type) for f in src)
    if pa.types.is_list(src) and pa.types.is_list(dst):
        return widens_to(src.value_type, dst.value_type)
    return False


def _aware_into_ntz(src: pa.DataType, dst: pa.DataType) -> bool:
    return pa.types.is_timestamp(src) and pa.types.is_timestamp(dst) and src.tz is not None and dst.tz is None


@dataclass(frozen=True)
class SchemaFit:
    """How incoming data maps onto a table."""

    target: pa.Schema
    """The schema the written files will have (table order, new columns last)."""
    casts: dict[str, pa.DataType] = field(default_factory=dict)
    """Columns whose incoming type widens to the table's."""
    missing: tuple[str, ...] = ()
    """Nullable table columns absent from the data (written as nulls)."""
    added: tuple[str, ...] = ()
    """New columns the write adds to the table (evolution)."""

    @property
    def changes_schema(self) -> bool:
        return bool(self.added)


def fit_schema(
    table: pa.Schema,
    data: pa.Schema,
    *,
    evolve: bool = False,
    table_name: str = "the table",
) -> SchemaFit:
    """Check that ``data`` fits ``table`` and say how.

    Args:
        table: the table's current schema.
        data: the incoming data's schema.
        evolve: allow new nullable columns to join the table.
        table_name: used in the error message.

    Returns:
        The mapping to apply before writing.

    Raises:
        SchemaMismatchError: with one line per offending column.
    """
    problems: list[str] = []
    incoming = {f.name: f for f in data}
    lower_table = {f.name.lower(): f.name for f in table}
    casts: dict[str, pa.DataType] = {}
    missing: list[str] = []
    for tf in table:
        df_ = incoming.get(tf.name)
        if df_ is None:
            if tf.nullable:
                missing.append(tf.name)
            else:
                problems.append(f"column {tf.name!r} ({type_name(tf.type)}, NOT NULL) is missing from the data")
            continue
        if _aware_into_ntz(df_.type, tf.type):
            problems.append(
                f"column {tf.name!r}: the table has timestamp_ntz (no time zone) and the data's values carry a "
                f"time zone: convert the values to the wall-clock time to keep, e.g. the UTC time in pandas "
                f"df[{tf.name!r}] = df[{tf.name!r}].dt.tz_convert('UTC').dt.tz_localize(None), in Spark "
                f"col({tf.name!r}).cast('timestamp_ntz')"
            )
        elif not widens_to(df_.type, tf.type):
            problems.append(
                f"column {tf.name!r}: the table has {type_name(tf.type)}, the data has "
                f"{type_name(df_.type)} (cast it in the job, or write to a new column)"
            )
        elif not normalize_type(df_.type).equals(tf.type):
            casts[tf.name] = tf.type
    added: list[pa.Field] = []
    for df_ in data:
        if df_.name in {f.name for f in table}:
            continue
        if df_.name.lower() in lower_table:
            problems.append(
                f"column {df_.name!r} differs only in case from the table's {lower_table[df_.name.lower()]!r}"
            )
        elif evolve:
            added.append(df_.with_type(normalize_type(df_.type)).with_nullable(True))
        else:
            problems.append(
                f"column {df_.name!r} ({type_name(df_.type)}) is not in the table "
                "(pass schema_mode='merge' / --evolve to add it as a nullable column)"
            )
    if problems:
        raise SchemaMismatchError(
            f"data does not fit the schema of {table_name}:\n  - " + "\n  - ".join(problems),
            table=table_name,
        )
    target = pa.schema(list(table) + added)
    return SchemaFit(target, casts, tuple(missing), tuple(f.name for f in added))


def conform_arrow(data: pa.Table, fit: SchemaFit) -> pa.Table:
    """Reorder, cast and null-fill an Arrow table so that it has ``fit.target``'s schema."""
    columns = []
    for f in fit.target:
        if f.name in data.column_names:
            col = data.column(f.name)
            if not col.type.equals(f.type):
                col = col.cast(f.type)
            columns.append(col)
        else:
            columns.append(pa.nulls(data.num_rows, f.type))
    return pa.Table.from_arrays(columns, schema=fit.target)
