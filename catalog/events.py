"""OpenLineage events from other producers, checked before anything is stored.

:func:`parse_event` turns one decoded JSON event into a :class:`RunEvent` of plain, typed
values, or raises :class:`~catalog.errors.LineageEventError` naming the first problem and
where it is (``outputs[0].facets.version.datasetVersion: ...``). Everything the catalog
would choke on is refused here, the same way on SQLite and PostgreSQL: a missing field,
a field of the wrong type (facets are objects, lists are lists), an ``eventTime`` that is
not an ISO 8601 date-time, a ``runId`` that is not a UUID, a version or count beyond
what the catalog's integer columns hold, a name longer than its column, a NUL character
anywhere (PostgreSQL refuses them), nesting deeper than :data:`MAX_DEPTH`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from catalog import models as m
from catalog.entities import ColumnSpec
from catalog.errors import CatalogInputError, LineageEventError

EVENT_TYPES = {"START": "running", "RUNNING": "running", "COMPLETE": "completed", "FAIL": "failed",
               "ABORT": "aborted", "OTHER": None}
"""OpenLineage event types -> the run status they set (None: no change)."""
MAX_DEPTH = 64
"""How deeply an event may nest objects and lists."""
MAX_TEXT = 1_000_000
"""The longest string kept from an event (an error message, a description)."""


@dataclass(frozen=True)
class ColumnEdge:
    """Output column ``column`` comes from ``field`` of the dataset ``(namespace, name)``."""

    column: str
    namespace: str
    name: str
    field: str


@dataclass(frozen=True)
class DatasetEvent:
    """One input or output dataset of an event."""

    namespace: str
    name: str
    columns: list[ColumnSpec] = field(default_factory=list)
    location: str | None = None
    description: str | None = None
    version: int | None = None
    owners: list[str] = field(default_factory=list)
    row_count: int | None = None
    size_bytes: int | None = None
    file_count: int | None = None
    column_lineage: list[ColumnEdge] = field(default_factory=list)


@dataclass(frozen=True)
class RunEvent:
    """An OpenLineage RunEvent, checked."""

    run_id: str
    event_type: str
    event_time: dt.datetime
    job_namespace: str
    job_name: str
    producer: str
    parent_run_id: str | None
    error: str | None
    inputs: list[DatasetEvent]
    outputs: list[DatasetEvent]
    payload: dict[str, Any]
    """The event as received (redacted when stored)."""

    @property
    def status(self) -> str | None:
        return EVENT_TYPES[self.event_type]


def _fail(path: str, problem: str) -> LineageEventError:
    return LineageEventError(f"{path}: {problem}" if path else problem, path=path or None)


class _At:
    """A value and its JSON path, with typed accessors that fail naming the path."""

    def __init__(self, value: Any, path: str) -> None:
        self.value, self.path = value, path

    def child(self, key: str | int) -> _At:
        path = f"{self.path}[{key}]" if isinstance(key, int) else (f"{self.path}.{key}" if self.path else key)
        value = self.value.get(key) if isinstance(self.value, dict) and isinstance(key, str) else None
        return _At(value, path)

    def obj(self, required: bool = False) -> _At | None:
        if self.value is None:
            if required:
                raise _fail(self.path, "missing (an object is required)")
            return None
        if not isinstance(self.value, dict):
            raise _fail(self.path, f"must be an object, not {_kind(self.value)}")
        return self

    def items(self) -> Iterator[_At]:
        """The elements of a list (none when absent)."""
        if self.value is None:
            return
        if not isinstance(self.value, list):
            raise _fail(self.path, f"must be a list, not {_kind(self.value)}")
        for i in range(len(self.value)):
            yield _At(self.value[i], f"{self.path}[{i}]")

    def text(self, required: bool = False, limit: Any = None, what: str | None = None) -> str | None:
        if self.value is None or (self.value == "" and not required):
            if required:
                raise _fail(self.path, "missing (a non-empty string is required)")
            return None
        if not isinstance(self.value, str):
            raise _fail(self.path, f"must be a string, not {_kind(self.value)}")
        if required and not self.value.strip():
            raise _fail(self.path, "must not be blank")
        if limit is not None:
            try:
                m.check_length(limit, self.value, what or self.path)
            except CatalogInputError as exc:
                raise _fail(self.path, exc.message) from None
        elif len(self.value) > MAX_TEXT:
            raise _fail(self.path, f"is {len(self.value)} characters long; at most {MAX_TEXT} are kept")
        return self.value

    def count(self, limit: int) -> int | None:
        if self.value is None:
            return None
        if (isinstance(self.value, bool) or not isinstance(self.value, int | float)
                or (isinstance(self.value, float) and not self.value.is_integer())):
            raise _fail(self.path, f"must be a whole number, not {_shown(self.value)}")
        if not 0 <= self.value <= limit:
            raise _fail(self.path, f"{_shown(self.value)} is out of range (0 to {limit})")
        return int(self.value)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number"}.get(type(value), "null")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_tree(value: Any, path: str = "") -> None:
    """No NUL character in any key or string, nesting at most MAX_DEPTH (iteratively: no recursion limit)."""
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        node, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _fail(where, f"nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, str):
            if "\x00" in node:
                raise _fail(where, "contains a NUL character (\\x00), which the catalog cannot store")
        elif isinstance(node, dict):
            for key, child in node.items():
                if "\x00" in key:
                    raise _fail(where, "has a key with a NUL character (\\x00), which the catalog cannot store")
                stack.append((child, f"{where}.{key}" if where else key, depth + 1))
        elif isinstance(node, list):
            stack.extend((child, f"{where}[{i}]", depth + 1) for i, child in enumerate(node))


def _uuid(at: _At) -> str:
    text = at.text(required=True)
    assert text is not None
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise _fail(at.path, f"{_shown(text)} is not a UUID (OpenLineage run ids are UUIDs)") from None


def parse_time(at: _At) -> dt.datetime:
    """An ISO 8601 date-time (``Z`` or an offset; none means UTC) as an aware UTC datetime."""
    text = at.text(required=True)
    assert text is not None
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return when.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise _fail(at.path, f"{_shown(text)} is not an ISO 8601 date-time "
                             "(e.g. 2024-05-01T10:00:00.000Z)") from None


def _dataset(at: _At) -> DatasetEvent:
    at.obj(required=True)
    ns = at.child("namespace").text(required=True, limit=m.Dataset.namespace, what="dataset namespace")
    name = at.child("name").text(required=True, limit=m.Dataset.name, what="dataset name")
    assert ns is not None and name is not None
    facets = at.child("facets").obj() or _At({}, at.path + ".facets")
    out_facets = at.child("outputFacets").obj() or _At({}, at.path + ".outputFacets")
    for key in facets.value:
        facets.child(key).obj()  # every facet is an object
    for key in out_facets.value:
        out_facets.child(key).obj()
    columns = []
    for f in facets.child("schema").child("fields").items():
        f.obj(required=True)
        col = f.child("name").text(required=True, limit=m.Column.name, what="column name")
        assert col is not None
        columns.append(ColumnSpec(col, f.child("type").text(limit=m.Column.type, what="column type"), True,
                                  f.child("description").text()))
    raw = facets.child("version").child("datasetVersion")
    version = None
    if isinstance(raw.value, bool) or (raw.value is not None and not isinstance(raw.value, str | int)):
        raise _fail(raw.path, f"must be a string or a number, not {_kind(raw.value)}")
    if raw.value is not None and str(raw.value).isdigit():
        version = int(raw.value)
        if version > m.MAX_INT:
            raise _fail(raw.path, f"{_shown(raw.value)} is larger than the largest version the catalog keeps "
                                  f"({m.MAX_INT}); send a non-numeric version id to record it as unknown")
    owners = []
    for o in facets.child("ownership").child("owners").items():
        o.obj(required=True)
        owner = o.child("name").text(limit=m.DatasetOwner.owner, what="owner")
        if owner:
            owners.append(owner)
    stats = out_facets.child("outputStatistics")
    edges = []
    fields = facets.child("columnLineage").child("fields")
    if fields.obj() is not None:
        for dst in fields.value:
            spec = fields.child(dst)
            spec.obj(required=True)
            m.check_length(m.ColumnLineage.dst_column, dst, "column name")
            for src in spec.child("inputFields").items():
                src.obj(required=True)
                src_ns = src.child("namespace").text(required=True, limit=m.Dataset.namespace,
                                                     what="dataset namespace")
                src_name = src.child("name").text(required=True, limit=m.Dataset.name, what="dataset name")
                src_field = src.child("field").text(required=True, limit=m.ColumnLineage.src_column,
                                                    what="column name")
                assert src_ns is not None and src_name is not None and src_field is not None
                edges.append(ColumnEdge(dst, src_ns, src_name, src_field))
    return DatasetEvent(
        namespace=ns, name=name, columns=columns, location=facets.child("dataSource").child("uri").text(),
        description=facets.child("documentation").child("description").text(), version=version, owners=owners,
        row_count=stats.child("rowCount").count(m.MAX_BIGINT), size_bytes=stats.child("size").count(m.MAX_BIGINT),
        file_count=stats.child("fileCount").count(m.MAX_INT), column_lineage=edges)


def parse_event(event: Any) -> RunEvent:
    """Check one OpenLineage RunEvent (decoded JSON) and return its values.

    Raises:
        LineageEventError: the first problem found, with its JSON path (``path`` in its context).
    """
    if not isinstance(event, dict):
        raise _fail("", f"an OpenLineage event must be a JSON object, not {_kind(event)}")
    _check_tree(event)
    root = _At(event, "")
    event_type = root.child("eventType").text() or "OTHER"
    if event_type.upper() not in EVENT_TYPES:
        raise _fail("eventType", f"{_shown(event_type)} is not one of {', '.join(EVENT_TYPES)}")
    run = root.child("run")
    run.obj(required=True)
    run_facets = run.child("facets").obj() or _At({}, "run.facets")
    for key in run_facets.value:
        run_facets.child(key).obj()
    parent = run_facets.child("parent").child("run").child("runId")
    error = run_facets.child("errorMessage").child("message").text()
    job = root.child("job")
    job.obj(required=True)
    job_ns = job.child("namespace").text(required=True, limit=m.Job.namespace, what="job namespace")
    job_name = job.child("name").text(required=True, limit=m.Job.name, what="job name")
    assert job_ns is not None and job_name is not None
    return RunEvent(
        run_id=_uuid(run.child("runId")), event_type=event_type.upper(), event_time=parse_time(root.child("eventTime")),
        job_namespace=job_ns, job_name=job_name, producer=root.child("producer").text() or "",
        parent_run_id=_uuid(parent) if parent.value is not None else None, error=error,
        inputs=[_dataset(d) for d in root.child("inputs").items()],
        outputs=[_dataset(d) for d in root.child("outputs").items()], payload=event)
