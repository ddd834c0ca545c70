"""Delta file statistics (``numRecords``, ``minValues``, ``maxValues``, ``nullCount``).

Built from a Parquet footer, so writers never scan data twice. Readers use these
statistics to skip files (see :mod:`lake.predicate`); a wrong minimum or maximum
would silently drop rows, so every value here errs on the wide side: timestamps
are floored/ceiled to the millisecond Delta stores, long strings lose their max.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

_MAX_STRING_STAT = 32


def _ms_floor(value: dt.datetime) -> dt.datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _ms_ceil(value: dt.datetime) -> dt.datetime:
    floor = _ms_floor(value)
    return floor if floor == value else floor + dt.timedelta(milliseconds=1)


def _fmt_ts(value: dt.datetime, with_tz: bool) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    text = value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}"
    return text + ("Z" if with_tz else "")


def _json_value(value: Any, dtype: pa.DataType, is_max: bool) -> Any:
    """A stats value as Delta writes it in JSON, or ``None`` to leave it out."""
    if value is None:
        return None
    if pa.types.is_timestamp(dtype):
        if isinstance(value, int):  # raw physical value
            unit = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[dtype.unit]
            value = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=value * 1_000_000 // unit)
        if not isinstance(value, dt.datetime):
            return None
        value = _ms_ceil(value) if is_max else _ms_floor(value)
        return _fmt_ts(value, dtype.tz is not None)
    if pa.types.is_date(dtype):
        if isinstance(value, int):
            value = dt.date(1970, 1, 1) + dt.timedelta(days=value)
        return value.isoformat() if isinstance(value, dt.date) else None
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        if isinstance(value, bytes):
            value = value.decode("utf-8", errors="replace")
        if len(value) > _MAX_STRING_STAT:
            # A truncated prefix is still a valid lower bound, never a valid upper bound.
            return None if is_max else value[:_MAX_STRING_STAT]
        return value
    if pa.types.is_floating(dtype):
        return None if math.isnan(value) else float(value)
    if pa.types.is_integer(dtype):
        return int(value)
    if pa.types.is_decimal(dtype):
        return float(value) if isinstance(value, Decimal) else None
    return None  # booleans, binary and nested types: no min/max


def file_stats(metadata: pq.FileMetaData, schema: pa.Schema) -> str:
    """Delta ``stats`` JSON for one Parquet file from its footer.

    Args:
        metadata: the file's footer.
        schema: the Arrow schema of the columns stored in the file (no partition columns).

    Returns:
        The JSON string for the ``stats`` field of the Delta add action.
    """
    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    top = {field.name: field for field in schema}
    paths = {}
    for i in range(metadata.num_columns):
        path = metadata.schema.column(i).path
        if path in top:
            paths[path] = i
    for name, index in paths.items():
        field = top[name]
        lo: Any = None
        hi: Any = None
        null_count = 0
        complete = True
        for rg in range(metadata.num_row_groups):
            col = metadata.row_group(rg).column(index)
            st = col.statistics
            if st is None:
                complete = False
                break
            if st.null_count is None:
                complete = False
            else:
                null_count += st.null_count
            if st.has_min_max:
                try:
                    lo = st.min if lo is None or st.min < lo else lo
                    hi = st.max if hi is None or st.max > hi else hi
                except TypeError:
                    complete = False
        if not complete:
            continue
        nulls[name] = null_count
        jlo, jhi = _json_value(lo, field.type, False), _json_value(hi, field.type, True)
        if jlo is not None:
            mins[name] = jlo
        if jhi is not None:
            maxs[name] = jhi
    return json.dumps(
        {"numRecords": metadata.num_rows, "minValues": mins, "maxValues": maxs, "nullCount": nulls},
        separators=(",", ":"),
    )
