"""Delta tables built by hand, from the protocol text, for the conformance suite.

Nothing here uses the lake or delta-rs: the ``_delta_log`` is JSON written line by line,
data files are Parquet written with pyarrow (physical column names and field ids under
column mapping, INT96 or INT64 timestamps as asked), deletion vectors come from
:mod:`tests.conformance.roaring`, and checkpoints (classic, multi-part, v2 with or
without sidecars, JSON or Parquet) are written from the reconciled log state. The
expected rows of a table are the Python rows handed to :meth:`DeltaBuilder.add_file`
minus the rows a deletion vector removes, so a reader is checked against the protocol,
not against another reader.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq

from tests.conformance import roaring

EPOCH_MS = 1_700_000_000_000


# ---------------------------------------------------------------------- schema


@dataclass
class Field:
    """A column (or nested field): logical name, Delta type, nullability; physical name and id
    are assigned by the builder when the table uses column mapping."""

    name: str
    type: Any  # a primitive type name, or Struct / Array / Map
    nullable: bool = True
    metadata: dict[str, Any] = field(default_factory=dict)
    physical: str | None = None
    id: int | None = None


@dataclass
class Struct:
    fields: list[Field]


@dataclass
class Array:
    element: Any
    contains_null: bool = True


@dataclass
class Map:
    key: Any
    value: Any


def _type_json(t: Any) -> Any:
    if isinstance(t, str):
        return t
    if isinstance(t, Struct):
        return {"type": "struct", "fields": [_field_json(f) for f in t.fields]}
    if isinstance(t, Array):
        return {"type": "array", "elementType": _type_json(t.element), "containsNull": t.contains_null}
    if isinstance(t, Map):
        return {"type": "map", "keyType": _type_json(t.key), "valueType": _type_json(t.value),
                "valueContainsNull": True}
    raise TypeError(t)


def _field_json(f: Field) -> dict[str, Any]:
    meta = dict(f.metadata)
    if f.physical is not None:
        meta["delta.columnMapping.physicalName"] = f.physical
        meta["delta.columnMapping.id"] = f.id
    return {"name": f.name, "type": _type_json(f.type), "nullable": f.nullable, "metadata": meta}


def arrow_type(t: Any, *, physical: bool, timestamps: str = "us") -> pa.DataType:
    """The Arrow type of a Delta type (physical: struct children by physical name with field ids)."""
    if isinstance(t, str):
        if t.startswith("decimal("):
            p, s = t[len("decimal("):-1].split(",")
            return pa.decimal128(int(p), int(s))
        unit = "ns" if timestamps == "ns" else "ms" if timestamps == "ms" else "us"
        return {
            "long": pa.int64(), "integer": pa.int32(), "short": pa.int16(), "byte": pa.int8(),
            "double": pa.float64(), "float": pa.float32(), "boolean": pa.bool_(), "string": pa.string(),
            "binary": pa.binary(), "date": pa.date32(),
            "timestamp": pa.timestamp(unit, tz="UTC"), "timestamp_ntz": pa.timestamp(unit),
        }[t]
    if isinstance(t, Struct):
        return pa.struct([arrow_field(f, physical=physical, timestamps=timestamps) for f in t.fields])
    if isinstance(t, Array):
        return pa.list_(arrow_type(t.element, physical=physical, timestamps=timestamps))
    if isinstance(t, Map):
        return pa.map_(arrow_type(t.key, physical=physical, timestamps=timestamps),
                       arrow_type(t.value, physical=physical, timestamps=timestamps))
    raise TypeError(t)


def arrow_field(f: Field, *, physical: bool, timestamps: str = "us") -> pa.Field:
    name = f.physical if physical and f.physical else f.name
    meta = {b"PARQUET:field_id": str(f.id).encode()} if physical and f.id is not None else None
    return pa.field(name, arrow_type(f.type, physical=physical, timestamps=timestamps), f.nullable, metadata=meta)


def _physical_value(t: Any, value: Any) -> Any:
    """A logical Python value with struct keys renamed to physical names."""
    if value is None:
        return None
    if isinstance(t, Struct):
        return {(f.physical or f.name): _physical_value(f.type, value.get(f.name)) for f in t.fields}
    if isinstance(t, Array):
        return [_physical_value(t.element, v) for v in value]
    if isinstance(t, Map):
        return [(k, _physical_value(t.value, v)) for k, v in value.items()]
    return value


_ESCAPED = set('"#%\'*/:=?\\\x7f{[]^')


def escape_path_name(text: str) -> str:
    """A partition folder name as delta-spark writes it (Hive's escaping: %XX for special characters)."""
    return "".join(f"%{ord(c):02X}" if c in _ESCAPED or ord(c) < 0x20 else c for c in text)


# ------------------------------------------------------------------------ stats


def _stat_value(t: Any, value: Any, *, is_max: bool) -> Any:
    """A JSON statistic as delta-spark writes it (timestamps truncated to the millisecond,
    strings cut at 32 characters), or None when it is not kept."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        value = value.replace(microsecond=value.microsecond // 1000 * 1000)  # truncated, even the max
        text = value.isoformat(timespec="milliseconds")
        return text + ("Z" if t == "timestamp" else "")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return value[:32] if not is_max or len(value) <= 32 else None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bool | bytes):
        return None
    return value


def file_stats(fields: Sequence[Field], rows: list[dict[str, Any]], skip: set[str]) -> dict[str, Any]:
    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    nulls: dict[str, Any] = {}
    for f in fields:
        if f.name in skip or not isinstance(f.type, str):
            continue
        key = f.physical or f.name
        values = [r.get(f.name) for r in rows]
        present = [v for v in values if v is not None]
        nulls[key] = len(values) - len(present)
        if present and f.type not in ("boolean", "binary"):
            lo, hi = _stat_value(f.type, min(present), is_max=False), _stat_value(f.type, max(present), is_max=True)
            if lo is not None:
                mins[key] = lo
            if hi is not None:
                maxs[key] = hi
    return {"numRecords": len(rows), "minValues": mins, "maxValues": maxs, "nullCount": nulls}


# ---------------------------------------------------------------------- builder


class DeltaBuilder:
    """Writes one Delta table by hand: commits, data files, deletion vectors, checkpoints.

    Args:
        path: the table folder (created).
        fields: the logical schema.
        partition_by: logical partition column names.
        mapping: ``none``, ``name`` or ``id`` (column mapping mode); physical names and ids
            are assigned to every field, nested ones included.
        protocol: ``(minReaderVersion, minWriterVersion)``.
        reader_features / writer_features: the feature lists (reader version 3 / writer 7).
        configuration: extra table properties.
        timestamps: how timestamp columns are stored: ``int96``, ``ms``, ``us`` or ``ns``.
        mapping_property: False leaves ``delta.columnMapping.mode`` out of the configuration.
    """

    def __init__(self, path: Path, fields: list[Field], *, partition_by: Sequence[str] = (),
                 mapping: str = "none", protocol: tuple[int, int] = (1, 2),
                 reader_features: list[str] | None = None, writer_features: list[str] | None = None,
                 configuration: dict[str, str] | None = None, timestamps: str = "us",
                 mapping_property: bool = True) -> None:
        self.path = Path(path)
        (self.path / "_delta_log").mkdir(parents=True, exist_ok=True)
        self.fields = fields
        self.partition_by = list(partition_by)
        self.mapping = mapping
        self.timestamps = timestamps
        self._next_id = 0
        if mapping != "none":
            self._assign(fields)
        self.protocol: dict[str, Any] = {"minReaderVersion": protocol[0], "minWriterVersion": protocol[1]}
        if reader_features is not None:
            self.protocol["readerFeatures"] = list(reader_features)
        if writer_features is not None:
            self.protocol["writerFeatures"] = list(writer_features)
        config = dict(configuration or {})
        if mapping != "none" and mapping_property:
            config["delta.columnMapping.mode"] = mapping
            config["delta.columnMapping.maxColumnId"] = str(self._next_id)
        self.metadata = {
            "id": str(uuid.uuid4()), "format": {"provider": "parquet", "options": {}},
            "schemaString": json.dumps({"type": "struct", "fields": [_field_json(f) for f in fields]}),
            "partitionColumns": self.partition_by, "configuration": config, "createdTime": EPOCH_MS,
        }
        self.versions: list[list[dict[str, Any]]] = []
        self._counter = 0

    def _assign(self, fields: Iterable[Field]) -> None:
        for f in fields:
            self._next_id += 1
            f.id = self._next_id
            f.physical = f"col-{self._next_id:03d}-{uuid.UUID(int=self._next_id * 7919 + 0x5F4E0000).hex[-12:]}"
            self._nested(f.type)

    def _nested(self, t: Any) -> None:
        if isinstance(t, Struct):
            self._assign(t.fields)
        elif isinstance(t, Array):
            self._nested(t.element)
        elif isinstance(t, Map):
            self._nested(t.key)
            self._nested(t.value)

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    def physical(self, name: str) -> str:
        f = self.field(name)
        return f.physical or f.name

    # ---------------------------------------------------------------- data files

    def data_schema(self, extra: Sequence[pa.Field] = ()) -> pa.Schema:
        return pa.schema([arrow_field(f, physical=True, timestamps=self.timestamps)
                          for f in self.fields if f.name not in self.partition_by] + list(extra))

    def write_parquet(self, rows: list[dict[str, Any]], rel: str, *, extra: dict[str, list[Any]] | None = None,
                      row_group_size: int | None = None) -> int:
        """Write rows (logical names) as a Parquet file at ``rel`` (decoded path); returns its size."""
        schema = self.data_schema([pa.field(k, pa.string()) for k in (extra or {})])
        physical_rows = []
        for i, r in enumerate(rows):
            row = {(f.physical or f.name): _physical_value(f.type, r.get(f.name))
                   for f in self.fields if f.name not in self.partition_by}
            for k, values in (extra or {}).items():
                row[k] = values[i]
            physical_rows.append(row)
        table = pa.Table.from_pylist(physical_rows, schema=schema)
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        options: dict[str, Any] = {}
        if self.timestamps == "int96":
            options["use_deprecated_int96_timestamps"] = True
        elif self.timestamps == "ns":
            options["version"] = "2.6"
        else:
            options["coerce_timestamps"] = self.timestamps
            options["allow_truncated_timestamps"] = False
        pq.write_table(table, target, row_group_size=row_group_size, **options)
        return target.stat().st_size

    def add_file(self, rows: list[dict[str, Any]], *, partition: dict[str, str | None] | None = None,
                 name: str | None = None, stats: str = "json", dv: dict[str, Any] | None = None,
                 row_group_size: int | None = None, stats_skip: Sequence[str] = ()) -> dict[str, Any]:
        """Write a data file and return its ``add`` action (not committed yet).

        ``partition`` maps logical partition columns to their serialized values; the file
        goes into hive folders named after them (percent-encoded), as delta-spark does.
        """
        self._counter += 1
        fname = name or f"part-{self._counter:05d}-{uuid.UUID(int=self._counter).hex}.c000.snappy.parquet"
        values = dict(partition or {})
        folder = "/".join(
            f"{escape_path_name(self.physical(c))}="
            f"{'__HIVE_DEFAULT_PARTITION__' if values.get(c) is None else escape_path_name(values[c])}"
            for c in self.partition_by)
        rel = f"{folder}/{fname}" if folder else fname
        size = self.write_parquet(rows, rel, row_group_size=row_group_size)
        action: dict[str, Any] = {
            "path": quote(rel, safe="/"),
            "partitionValues": {self.physical(c): values.get(c) for c in self.partition_by},
            "size": size, "modificationTime": EPOCH_MS + self._counter, "dataChange": True,
        }
        data_fields = [f for f in self.fields if f.name not in self.partition_by]
        if stats == "json":
            action["stats"] = json.dumps(file_stats(data_fields, rows, set(stats_skip)))
        if dv is not None:
            action["deletionVector"] = dv
        return action

    def dv_on_disk(self, deleted: list[int], *, prefix: str = "", extra_before: Sequence[list[int]] = ()
                   ) -> dict[str, Any]:
        """Write a deletion-vector file (storage type ``u``) and return the descriptor of ``deleted``.

        ``extra_before`` puts other vectors first in the same file, so the offset is not 1.
        """
        vectors = [roaring.bitmap_array(v) for v in extra_before] + [roaring.bitmap_array(deleted)]
        data, offsets = roaring.dv_file(vectors)
        self._counter += 1
        dv_id = uuid.UUID(int=(0xD2C639AA << 96) + self._counter)
        folder = self.path / prefix if prefix else self.path
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"deletion_vector_{dv_id}.bin").write_bytes(data)
        return {"storageType": "u", "pathOrInlineDv": roaring.uuid_path_token(dv_id, prefix),
                "offset": offsets[-1], "sizeInBytes": len(vectors[-1]), "cardinality": len(set(deleted))}

    def dv_absolute(self, deleted: list[int]) -> dict[str, Any]:
        """A deletion vector in a file named by an absolute path (storage type ``p``)."""
        data, offsets = roaring.dv_file([roaring.bitmap_array(deleted)])
        target = self.path / "dvs" / f"abs-{uuid.uuid4().hex}.bin"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return {"storageType": "p", "pathOrInlineDv": target.resolve().as_uri(), "offset": offsets[0],
                "sizeInBytes": len(data) - 9, "cardinality": len(set(deleted))}

    # ------------------------------------------------------------------- commits

    def commit(self, actions: list[dict[str, Any]], *, operation: str = "WRITE", timestamp: int | None = None,
               protocol: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None) -> int:
        """Write the next version: commitInfo, then protocol/metaData (version 0 or when given), then actions."""
        version = len(self.versions)
        lines: list[dict[str, Any]] = [{"commitInfo": {
            "timestamp": timestamp if timestamp is not None else EPOCH_MS + version * 1000,
            "operation": operation, "operationParameters": {}, "engineInfo": "conformance-builder"}}]
        if protocol is not None:
            self.protocol = protocol
        if metadata is not None:
            self.metadata = metadata
        if version == 0 or protocol is not None:
            lines.append({"protocol": self.protocol})
        if version == 0 or metadata is not None:
            lines.append({"metaData": self.metadata})
        lines.extend(actions)
        self.versions.append(lines)
        (self.path / "_delta_log" / f"{version:020d}.json").write_text(
            "\n".join(json.dumps(line) for line in lines) + "\n")
        return version

    @staticmethod
    def add(action: dict[str, Any]) -> dict[str, Any]:
        return {"add": action}

    @staticmethod
    def remove(action: dict[str, Any], *, deletion_vector: bool = True) -> dict[str, Any]:
        out = {k: action[k] for k in ("path", "partitionValues", "size")}
        out.update({"deletionTimestamp": EPOCH_MS + 10**6, "dataChange": True, "extendedFileMetadata": True})
        if deletion_vector and action.get("deletionVector"):
            out["deletionVector"] = action["deletionVector"]
        return {"remove": out}

    # ---------------------------------------------------------------- log state

    def state(self, version: int) -> dict[str, Any]:
        """The reconciled snapshot at ``version`` (protocol, metadata, txns, adds, tombstones)."""
        protocol = metadata = None
        txns: dict[str, dict[str, Any]] = {}
        files: dict[tuple[str, str | None], dict[str, Any]] = {}
        tombstones: dict[tuple[str, str | None], dict[str, Any]] = {}
        for lines in self.versions[: version + 1]:
            for line in lines:
                if "protocol" in line:
                    protocol = line["protocol"]
                elif "metaData" in line:
                    metadata = line["metaData"]
                elif "txn" in line:
                    txns[line["txn"]["appId"]] = line["txn"]
                elif "add" in line or "remove" in line:
                    kind = "add" if "add" in line else "remove"
                    act = line[kind]
                    dvd = act.get("deletionVector")
                    dv_id = None if not dvd else dvd["storageType"] + dvd["pathOrInlineDv"] + (
                        f"@{dvd['offset']}" if dvd.get("offset") is not None else "")
                    key = (act["path"], dv_id)
                    if kind == "add":
                        for k in [k for k in files if k[0] == act["path"]]:
                            del files[k]
                        files[key] = act
                        tombstones.pop(key, None)
                    else:
                        files.pop(key, None)
                        tombstones[key] = act
        return {"protocol": protocol, "metaData": metadata, "txn": list(txns.values()),
                "add": list(files.values()), "remove": list(tombstones.values())}

    # --------------------------------------------------------------- checkpoints

    def _stats_struct_type(self) -> pa.DataType:
        cols = [f for f in self.fields if f.name not in self.partition_by and isinstance(f.type, str)
                and f.type not in ("boolean", "binary")]
        values = pa.struct([pa.field(f.physical or f.name, arrow_type(f.type, physical=True)) for f in cols])
        counts = pa.struct([pa.field(f.physical or f.name, pa.int64()) for f in self.fields
                            if f.name not in self.partition_by and isinstance(f.type, str)])
        return pa.struct([("numRecords", pa.int64()), ("minValues", values), ("maxValues", values),
                          ("nullCount", counts)])

    def _add_type(self, stats_as: str) -> pa.DataType:
        fields = [
            ("path", pa.string()), ("partitionValues", pa.map_(pa.string(), pa.string())), ("size", pa.int64()),
            ("modificationTime", pa.int64()), ("dataChange", pa.bool_()),
        ]
        if stats_as in ("json", "both"):
            fields.append(("stats", pa.string()))
        fields += [("tags", pa.map_(pa.string(), pa.string())), ("deletionVector", DV_TYPE),
                   ("baseRowId", pa.int64()), ("defaultRowCommitVersion", pa.int64())]
        if stats_as in ("struct", "both"):
            fields.append(("stats_parsed", self._stats_struct_type()))
            if self.partition_by:
                fields.append(("partitionValues_parsed", pa.struct([
                    pa.field(self.physical(c), arrow_type(self.field(c).type, physical=True))
                    for c in self.partition_by])))
        return pa.struct(fields)

    def _parsed_stats(self, stats: str | None) -> dict[str, Any] | None:
        if stats is None:
            return None
        raw = json.loads(stats)
        by_physical = {f.physical or f.name: f for f in self.fields}

        def parse(key: str, v: Any) -> Any:
            f = by_physical.get(key)
            if v is None or f is None:
                return v
            if f.type == "timestamp" or f.type == "timestamp_ntz":
                return dt.datetime.fromisoformat(v.rstrip("Z")).replace(
                    tzinfo=dt.UTC if f.type == "timestamp" else None)
            if f.type == "date":
                return dt.date.fromisoformat(v)
            return v

        return {"numRecords": raw.get("numRecords"),
                "minValues": {k: parse(k, v) for k, v in raw.get("minValues", {}).items()},
                "maxValues": {k: parse(k, v) for k, v in raw.get("maxValues", {}).items()},
                "nullCount": raw.get("nullCount", {})}

    def _parsed_partition(self, values: dict[str, str | None]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for c in self.partition_by:
            raw = values.get(self.physical(c))
            t = self.field(c).type
            if raw is None or raw == "":
                out[self.physical(c)] = None
            elif t in ("long", "integer", "short", "byte"):
                out[self.physical(c)] = int(raw)
            elif t == "date":
                out[self.physical(c)] = dt.date.fromisoformat(raw)
            elif t in ("timestamp", "timestamp_ntz"):
                out[self.physical(c)] = dt.datetime.fromisoformat(raw.rstrip("Z"))
            else:
                out[self.physical(c)] = raw
        return out

    def _action_rows(self, state: dict[str, Any], stats_as: str, files: bool = True,
                     others: bool = True) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        if others:
            rows.append({"protocol": state["protocol"]})
            meta = dict(state["metaData"])
            meta["configuration"] = list(meta["configuration"].items())
            meta["format"] = {"provider": "parquet", "options": []}
            rows.append({"metaData": meta})
            rows += [{"txn": t} for t in state["txn"]]
        if files:
            for act in state["add"]:
                row = {k: act.get(k) for k in ("path", "size", "modificationTime", "dataChange",
                                                "deletionVector", "baseRowId", "defaultRowCommitVersion")}
                row["partitionValues"] = list(act["partitionValues"].items())
                row["tags"] = None
                if stats_as in ("json", "both"):
                    row["stats"] = act.get("stats")
                if stats_as in ("struct", "both"):
                    row["stats_parsed"] = self._parsed_stats(act.get("stats"))
                    if self.partition_by:
                        row["partitionValues_parsed"] = self._parsed_partition(act["partitionValues"])
                rows.append({"add": row})
            for act in state["remove"]:
                rows.append({"remove": {"path": act["path"], "deletionTimestamp": act.get("deletionTimestamp"),
                                        "dataChange": act.get("dataChange", True), "extendedFileMetadata": False,
                                        "partitionValues": None, "size": act.get("size"),
                                        "deletionVector": act.get("deletionVector")}})
        return rows

    def _checkpoint_schema(self, stats_as: str, v2: bool) -> pa.Schema:
        fields = [
            ("txn", TXN_TYPE), ("add", self._add_type(stats_as)), ("remove", REMOVE_TYPE),
            ("metaData", METADATA_TYPE), ("protocol", PROTOCOL_TYPE),
        ]
        if v2:
            fields += [("checkpointMetadata", pa.struct([("version", pa.int64()),
                                                         ("tags", pa.map_(pa.string(), pa.string()))])),
                       ("sidecar", SIDECAR_TYPE)]
        return pa.schema(fields)

    def checkpoint(self, version: int, *, kind: str = "classic", parts: int = 2, stats_as: str = "json",
                   last_checkpoint: bool = True, sidecars: int = 0, last_checkpoint_version: int | None = None
                   ) -> list[Path]:
        """Write a checkpoint of ``version``.

        Args:
            kind: ``classic`` (``n.checkpoint.parquet``, V1 spec), ``multipart`` (``parts`` part files),
                ``v2-parquet`` / ``v2-json`` (UUID-named V2 spec), ``v2-classic`` (classic name, V2 spec).
            stats_as: file statistics as ``json`` (``stats``), ``struct`` (``stats_parsed``) or ``both``.
            sidecars: with a V2 checkpoint, put the file actions into this many sidecar files.
            last_checkpoint: write ``_last_checkpoint`` (pointing at ``last_checkpoint_version``
                when given: a stale pointer).
        """
        state = self.state(version)
        log = self.path / "_delta_log"
        v2 = kind.startswith("v2")
        written: list[Path] = []
        if not v2:
            rows = self._action_rows(state, stats_as)
            schema = self._checkpoint_schema(stats_as, False)
            if kind == "classic":
                target = log / f"{version:020d}.checkpoint.parquet"
                pq.write_table(pa.Table.from_pylist(rows, schema=schema), target)
                written.append(target)
            else:
                chunks: list[list[dict[str, Any]]] = [[] for _ in range(parts)]
                for i, row in enumerate(rows):
                    chunks[i % parts].append(row)
                for i, chunk in enumerate(chunks, 1):
                    target = log / f"{version:020d}.checkpoint.{i:010d}.{parts:010d}.parquet"
                    pq.write_table(pa.Table.from_pylist(chunk, schema=schema), target)
                    written.append(target)
            size = len(rows)
        else:
            schema = self._checkpoint_schema(stats_as, True)
            rows = [{"checkpointMetadata": {"version": version, "tags": None}}]
            rows += self._action_rows(state, stats_as, files=not sidecars)
            if sidecars:
                file_rows = self._action_rows(state, stats_as, others=False)
                side_schema = pa.schema([("add", self._add_type(stats_as)), ("remove", REMOVE_TYPE)])
                (log / "_sidecars").mkdir(exist_ok=True)
                for i in range(sidecars):
                    chunk = file_rows[i::sidecars]
                    target = log / "_sidecars" / f"{uuid.uuid4()}.parquet"
                    pq.write_table(pa.Table.from_pylist(chunk, schema=side_schema), target)
                    written.append(target)
                    rows.append({"sidecar": {"path": target.name, "sizeInBytes": target.stat().st_size,
                                             "modificationTime": EPOCH_MS, "tags": None}})
            if kind == "v2-classic":
                target = log / f"{version:020d}.checkpoint.parquet"
                pq.write_table(pa.Table.from_pylist(rows, schema=schema), target)
            elif kind == "v2-parquet":
                target = log / f"{version:020d}.checkpoint.{uuid.uuid4()}.parquet"
                pq.write_table(pa.Table.from_pylist(rows, schema=schema), target)
            else:
                target = log / f"{version:020d}.checkpoint.{uuid.uuid4()}.json"
                target.write_text("\n".join(json.dumps(_json_action(r)) for r in rows) + "\n")
            written.append(target)
            size = len(rows)
        if last_checkpoint:
            info: dict[str, Any] = {"version": last_checkpoint_version if last_checkpoint_version is not None
                                    else version, "size": size}
            if kind == "multipart":
                info["parts"] = parts
            (log / "_last_checkpoint").write_text(json.dumps(info))
        return written

    def delete_commits(self, upto: int) -> None:
        """Remove the JSON commits of versions ``0..upto`` (metadata cleanup below a checkpoint)."""
        for v in range(upto + 1):
            (self.path / "_delta_log" / f"{v:020d}.json").unlink(missing_ok=True)


def _json_action(row: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint row as a JSON action (maps back to objects, nulls dropped)."""
    (kind, value), = ((k, v) for k, v in row.items() if v is not None)
    def fix(v: Any, key: str = "") -> Any:
        if isinstance(v, dict):
            return {k: fix(x, k) for k, x in v.items() if x is not None}
        if key in MAP_KEYS and isinstance(v, list):
            return dict(v)
        return v
    value = fix(value)
    if kind == "metaData":
        value["format"] = {"provider": "parquet", "options": {}}
    return {kind: value}


MAP_KEYS = {"configuration", "options", "partitionValues", "tags"}
DV_TYPE = pa.struct([("storageType", pa.string()), ("pathOrInlineDv", pa.string()), ("offset", pa.int32()),
                     ("sizeInBytes", pa.int32()), ("cardinality", pa.int64())])
TXN_TYPE = pa.struct([("appId", pa.string()), ("version", pa.int64()), ("lastUpdated", pa.int64())])
REMOVE_TYPE = pa.struct([("path", pa.string()), ("deletionTimestamp", pa.int64()), ("dataChange", pa.bool_()),
                         ("extendedFileMetadata", pa.bool_()), ("partitionValues", pa.map_(pa.string(), pa.string())),
                         ("size", pa.int64()), ("deletionVector", DV_TYPE)])
METADATA_TYPE = pa.struct([
    ("id", pa.string()), ("name", pa.string()), ("description", pa.string()),
    ("format", pa.struct([("provider", pa.string()), ("options", pa.map_(pa.string(), pa.string()))])),
    ("schemaString", pa.string()), ("partitionColumns", pa.list_(pa.string())),
    ("configuration", pa.map_(pa.string(), pa.string())), ("createdTime", pa.int64()),
])
PROTOCOL_TYPE = pa.struct([("minReaderVersion", pa.int32()), ("minWriterVersion", pa.int32()),
                           ("readerFeatures", pa.list_(pa.string())), ("writerFeatures", pa.list_(pa.string()))])
SIDECAR_TYPE = pa.struct([("path", pa.string()), ("sizeInBytes", pa.int64()), ("modificationTime", pa.int64()),
                          ("tags", pa.map_(pa.string(), pa.string()))])
