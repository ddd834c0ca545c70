"""Feast's online-store byte layout, produced a column at a time.

Feast serializes every value as a ``feast.types.Value`` protobuf and every entity key
with its own stable encoding (``serialize_entity_key``, version 3). Building one proto
object per value is most of the cost of Feast's materialization; here the common
scalar types (double, float, int64, int32, bool, string) are encoded straight from
Arrow buffers into the identical bytes, and anything else falls back to Feast's own
conversion. Tests compare both byte for byte.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Value.proto field numbers: string_val=2, int32_val=3, int64_val=4, double_val=5, float_val=6, bool_val=7.
_TAG_STRING = b"\x12"
_TAG_INT32 = b"\x18"
_TAG_INT64 = b"\x20"
_TAG_DOUBLE = b"\x29"
_TAG_FLOAT = b"\x35"
_TAG_BOOL = b"\x38"
_EMPTY = b""
# Feast's ValueType enum values used in entity keys.
_VT_STRING = 2
_VT_INT32 = 3
_VT_INT64 = 4


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _fixed(arr: pa.Array, np_type: Any, width: int, tag: bytes) -> list[bytes]:
    values = np.ascontiguousarray(arr.to_numpy(zero_copy_only=False), dtype=np_type)
    raw = values.tobytes()
    out = [tag + raw[i:i + width] for i in range(0, len(raw), width)]
    if np.issubdtype(values.dtype, np.floating):
        # Feast writes an empty value for NaN as for null (pandas turns nulls into NaN).
        for i in np.flatnonzero(np.isnan(values)):
            out[i] = _EMPTY
    return out


def _ints(arr: pa.Array, tag: bytes) -> list[bytes]:
    cache: dict[int, bytes] = {}
    out = []
    for v in pc.fill_null(arr, 0).to_pylist():
        b = cache.get(v)
        if b is None:
            b = cache[v] = tag + _varint(v)
        out.append(b)
    return out


def _strings(arr: pa.Array) -> list[bytes]:
    out = []
    for v in pc.fill_null(arr, "").to_pylist():
        data = v.encode("utf-8")
        out.append(_TAG_STRING + _varint(len(data)) + data)
    return out


def _bools(arr: pa.Array) -> list[bytes]:
    return [_TAG_BOOL + (b"\x01" if v else b"\x00") for v in pc.fill_null(arr, False).to_pylist()]


_FAST: dict[str, Callable[[pa.Array], list[bytes]]] = {
    "DOUBLE": lambda a: _fixed(pc.cast(a, pa.float64()), np.float64, 8, _TAG_DOUBLE),
    "FLOAT": lambda a: _fixed(pc.cast(a, pa.float32()), np.float32, 4, _TAG_FLOAT),
    "INT64": lambda a: _ints(pc.cast(a, pa.int64()), _TAG_INT64),
    "INT32": lambda a: _ints(pc.cast(a, pa.int32()), _TAG_INT32),
    "BOOL": lambda a: _bools(pc.cast(a, pa.bool_())),
    "STRING": lambda a: _strings(pc.cast(a, pa.string())),
}


def fast_types() -> frozenset[str]:
    """The Feast value type names :func:`encode_values` encodes without Feast."""
    return frozenset(_FAST)


def encode_values(arr: pa.Array | pa.ChunkedArray, value_type: Any) -> list[bytes]:
    """Serialized ``feast.types.Value`` bytes for each element (nulls as an empty value).

    Args:
        arr: the column.
        value_type: the feature's Feast ``ValueType``.
    """
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    fast = _FAST.get(value_type.name)
    if fast is None:
        return _feast_encode(arr, value_type)
    out = fast(arr)
    if arr.null_count:
        for i in np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False)):
            out[i] = _EMPTY
    return out


def _feast_encode(arr: pa.Array, value_type: Any) -> list[bytes]:
    # heavy: feast encodes the types without a fast path; imported only for them
    from feast.type_map import python_values_to_proto_values

    return [v.SerializeToString() for v in python_values_to_proto_values(arr.to_pylist(), value_type)]


def _key_part(arr: pa.Array, value_type: Any) -> list[bytes]:
    name = value_type.name
    if name == "STRING":
        head = struct.pack("<I", _VT_STRING)
        out = []
        for v in pc.cast(arr, pa.string()).to_pylist():
            data = v.encode("utf-8")
            out.append(head + struct.pack("<I", len(data)) + data)
        return out
    if name in ("INT64", "INT32"):
        vt, dtype, width = (_VT_INT64, "<i8", 8) if name == "INT64" else (_VT_INT32, "<i4", 4)
        head = struct.pack("<II", vt, width)
        raw = np.asarray(pc.cast(arr, pa.int64()).to_numpy(zero_copy_only=False)).astype(dtype).tobytes()
        return [head + raw[i:i + width] for i in range(0, len(raw), width)]
    raise ValueError(f"entity key type {name} is not supported by the fast path")


def entity_keys(columns: dict[str, pa.Array], types: dict[str, Any]) -> list[bytes]:
    """Feast's ``serialize_entity_key`` (version 3) for every row of the join-key columns."""
    names = sorted(columns)
    for name in names:
        if columns[name].null_count:
            raise ValueError(f"join key {name} has {columns[name].null_count} null values")
    try:
        parts = [_key_part(columns[n], types[n]) for n in names]
    except ValueError:
        # heavy: feast encodes the key types without a fast path; imported only for them
        from feast.infra.key_encoding_utils import serialize_entity_key
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.type_map import python_values_to_proto_values

        protos = {n: python_values_to_proto_values(columns[n].to_pylist(), types[n]) for n in names}
        rows = len(next(iter(columns.values())))
        return [serialize_entity_key(EntityKey(join_keys=names, entity_values=[protos[n][i] for n in names]),
                                     entity_key_serialization_version=3) for i in range(rows)]
    head = struct.pack("<I", len(names)) + b"".join(
        struct.pack("<II", _VT_STRING, len(n.encode())) + n.encode() for n in names)
    if len(parts) == 1:
        return [head + p for p in parts[0]]
    return [head + b"".join(p) for p in zip(*parts, strict=True)]


def timestamp_proto(epoch_us: int) -> bytes:
    """A serialized ``google.protobuf.Timestamp`` (seconds, nanos) as Feast stores ``_ts``."""
    seconds, micros = divmod(int(epoch_us), 1_000_000)
    out = b""
    if seconds:
        out += b"\x08" + _varint(seconds)
    if micros:
        out += b"\x10" + _varint(micros * 1000)
    return out
