"""Feast's online values, entity keys and event times, encoded and decoded without protobuf objects where possible."""

from __future__ import annotations

import calendar
import datetime as dt
import struct
import time
from collections.abc import Sequence
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from lake.errors import OnlineRequestError

_D, _F = struct.Struct("<d").unpack_from, struct.Struct("<f").unpack_from


def proto_value(raw: bytes) -> Any:
    # heavy: feast (its protos) is imported only when a value needs a protobuf object
    from feast.protos.feast.types.Value_pb2 import Value

    return Value.FromString(raw)


def decode(raw: bytes | None) -> Any:
    """A stored ``Value`` as a Python scalar (double, float, int, string, bool), else the proto."""
    if not raw:
        return None
    n, tag = len(raw), raw[0]
    if tag == 0x29 and n == 9:
        return _D(raw, 1)[0]
    if tag == 0x12 and n > 1 and raw[1] < 0x80 and n == raw[1] + 2:
        return raw[2:].decode()
    if tag == 0x20 or tag == 0x18:
        value = shift = 0
        for i in range(1, n):
            byte = raw[i]
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                if i == n - 1:
                    return value - (1 << 64) if value >= 1 << 63 else value
                break
    elif tag == 0x35 and n == 5:
        return _F(raw, 1)[0]
    elif tag == 0x38 and n == 2 and raw[1] < 2:
        return raw[1] == 1
    value = proto_value(raw)
    kind = value.WhichOneof("val")
    if kind in ("double_val", "float_val", "int64_val", "int32_val", "string_val", "bool_val"):
        return getattr(value, kind)
    return value


def python_value(cell: Any, value_type: Any) -> Any:
    # heavy: feast is imported only when a cell is a protobuf Value
    from feast.protos.feast.types.Value_pb2 import Value
    from feast.type_map import feast_value_type_to_python_type
    from feast.value_type import ValueType

    if type(cell) is not Value:
        return cell
    return feast_value_type_to_python_type(cell, ValueType(value_type) if isinstance(value_type, int) else value_type)


def native_value(cell: Any) -> Any:
    # heavy: feast is imported only when a cell is a protobuf Value
    from feast.feature_server_utils import _value_to_native
    from feast.protos.feast.types.Value_pb2 import Value

    return _value_to_native(cell) if type(cell) is Value else cell


_TS_CACHE: dict[tuple[int, int], str] = {}


def ts_text(seconds: int, nanos: int) -> str:
    """RFC 3339 as Feast's server writes it (fraction only when non-zero)."""
    text = _TS_CACHE.get((seconds, nanos))
    if text is None:
        base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        if nanos == 0:
            text = base + "Z"
        elif nanos % 1_000_000 == 0:
            text = f"{base}.{nanos // 1_000_000:03d}Z"
        elif nanos % 1_000 == 0:
            text = f"{base}.{nanos // 1_000:06d}Z"
        else:
            text = f"{base}.{nanos:09d}Z"
        if len(_TS_CACHE) > 100_000:
            _TS_CACHE.clear()
        _TS_CACHE[(seconds, nanos)] = text
    return text


_KEY_TYPES = {4: (b"\x04\x00\x00\x00\x08\x00\x00\x00", struct.Struct("<q").pack, 1 << 63),
              3: (b"\x03\x00\x00\x00\x04\x00\x00\x00", struct.Struct("<i").pack, 1 << 31)}
U32 = struct.Struct("<I").pack


_KEY_NAMES = {2: "a string", 3: "a whole number (INT32)", 4: "a whole number (INT64)"}
_TYPE_WORDS = {str: "a string", int: "an integer", float: "a float", bool: "a boolean", type(None): "null",
               list: "a list", dict: "an object"}


def _check_keys(name: str, values: Sequence[Any], value_type: int) -> None:
    """A string key takes strings, an integer key integers in range: never converted silently."""
    want = _KEY_NAMES.get(value_type)
    if want is None:
        return
    for i, v in enumerate(values):
        ok = type(v) is str if value_type == 2 else (type(v) is int and -_KEY_TYPES[value_type][2] <= v
                                                       < _KEY_TYPES[value_type][2])
        if not ok:
            shown = repr(v) if len(repr(v)) <= 40 else repr(v)[:37] + "..."
            got = ("out of range" if type(v) is int and value_type != 2
                   else _TYPE_WORDS.get(type(v), type(v).__name__))
            raise OnlineRequestError(f"entities: {name!r}[{i}] is {shown} ({got}); the join key {name!r} takes "
                                     f"{want}", column=name)


def key_column(name: str, values: Sequence[Any], value_type: int) -> tuple[list[bytes], list[Any]]:
    """Entity values of one join key in Feast's key encoding, and as cells for the response.

    Raises:
        OnlineRequestError: a value of the wrong type (an int for a string key, a string or a float for
            an integer key...): named with its position, never converted.
    """
    if value_type == 2 and all(type(v) is str for v in values):
        return [b"\x02\x00\x00\x00" + U32(len(u)) + u for u in (v.encode() for v in values)], list(values)
    fixed = _KEY_TYPES.get(value_type)
    if fixed is not None and all(type(v) is int and -fixed[2] <= v < fixed[2] for v in values):
        head, pack, _ = fixed
        return [head + pack(v) for v in values], list(values)
    _check_keys(name, values, value_type)
    # heavy: feast encodes the other key types; imported only for them
    from feast.infra.key_encoding_utils import _serialize_val
    from feast.type_map import python_values_to_proto_values
    from feast.value_type import ValueType

    try:
        protos = python_values_to_proto_values(list(values), ValueType(value_type))
        encoded = []
        for proto in protos:
            raw, kind = _serialize_val(proto.WhichOneof("val"), proto, 3)
            encoded.append(U32(kind) + U32(len(raw)) + raw)
    except Exception as exc:
        raise OnlineRequestError(f"entities: {name!r} holds values that are not {ValueType(value_type).name} "
                                 f"({type(exc).__name__}: {exc})", column=name) from exc
    return encoded, protos


_TS_PARSED: dict[Any, tuple[int, int]] = {}


def event_time(raw: Any) -> tuple[int, int]:
    """A stored event time as ``(seconds, nanos)``: a serialized ``Timestamp`` (Redis) or SQLite's value."""
    found = _TS_PARSED.get(raw)
    if found is None:
        if raw is None:
            found = (0, 0)
        elif isinstance(raw, bytes) and not raw.isdigit():
            ts = Timestamp.FromString(raw)
            found = (ts.seconds, ts.nanos)
        else:
            # Feast's SQLite adapter stores int(naive_utc.timestamp()) and reads it back with
            # datetime.fromtimestamp(): local wall time labelled UTC. Same arithmetic here.
            text = raw.decode() if isinstance(raw, bytes) else str(raw)
            when = (raw if isinstance(raw, dt.datetime) else dt.datetime.fromtimestamp(int(text))
                    if text.lstrip("-").isdigit() else dt.datetime.fromisoformat(text))
            if when.tzinfo is not None:
                when = when.astimezone(dt.UTC)
            found = (calendar.timegm(when.timetuple()), when.microsecond * 1000)
        if len(_TS_PARSED) > 100_000:
            _TS_PARSED.clear()
        _TS_PARSED[raw] = found
    return found
