"""Validate OpenLineage events against the official OpenLineage JSON Schemas, offline.

The schemas are vendored in ``openlineage_spec/`` (its README.txt names the source
repository, paths, commits, versions and license). Each file is registered under its
``$id`` in a ``referencing`` registry whose retrieval refuses every other URI, so the
``$ref`` between files resolve locally and nothing is ever fetched.

An event is checked in two passes:

1. as a whole against the core ``OpenLineage.json#/$defs/RunEvent``: required fields,
   formats (date-time, uri, uuid), and every facet against the base facet of its kind;
2. each facet against its own facet schema, chosen by its key and where it sits (a
   dataset's ``facets``, an output's ``outputFacets``, the run's or the job's facets),
   and its ``_schemaURL`` must name that same facet schema.

Custom facets (a producer prefix and an underscore, such as ``lake_drift``) have no
official schema: the core's base facet is their check. A facet without a prefix that has
no vendored schema is an error, so a new standard facet cannot go out unchecked: vendor
its schema and add it to ``FACET_SCHEMAS``.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker, ValidationError
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource

SPEC_DIR = Path(__file__).with_name("openlineage_spec")
CORE_FILE = "OpenLineage.json"
# URIs the facet schemas reference whose exact file is not vendored (see README.txt).
_ALIASES = {"https://openlineage.io/spec/2-0-2/OpenLineage.json": CORE_FILE}

# (where a facet sits, its key) -> its vendored schema file.
FACET_SCHEMAS: dict[tuple[str, str], str] = {
    ("run", "errorMessage"): "ErrorMessageRunFacet.json",
    ("run", "parent"): "ParentRunFacet.json",
    ("run", "tags"): "TagsRunFacet.json",  # added by openlineage-python to what its transports send
    ("job", "jobType"): "JobTypeJobFacet.json",
    ("dataset", "schema"): "SchemaDatasetFacet.json",
    ("dataset", "dataSource"): "DatasourceDatasetFacet.json",
    ("dataset", "version"): "DatasetVersionDatasetFacet.json",
    ("dataset", "columnLineage"): "ColumnLineageDatasetFacet.json",
    ("dataset", "dataQualityAssertions"): "DataQualityAssertionsDatasetFacet.json",
    ("dataset", "dataQualityMetrics"): "DataQualityMetricsDatasetFacet.json",
    ("output", "outputStatistics"): "OutputStatisticsOutputDatasetFacet.json",
}


@dataclass(frozen=True)
class CheckedFacet:
    """One facet that was validated against its own schema."""

    where: str
    key: str
    schema_file: str


_formats = FormatChecker(formats=())


@_formats.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if isinstance(value, str):
        if "T" not in value.upper():
            raise ValueError("not a date-time")
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            raise ValueError("a date-time needs a time zone offset")
    return True


@_formats.checks("uri", raises=ValueError)
def _uri(value: object) -> bool:
    if isinstance(value, str):
        parts = urlsplit(value)
        if not (parts.scheme and (parts.netloc or parts.path)) or " " in value:
            raise ValueError("not an absolute URI")
    return True


@_formats.checks("uuid", raises=ValueError)
def _uuid(value: object) -> bool:
    if isinstance(value, str):
        uuid.UUID(value)
    return True


def _offline(uri: str) -> Resource[Any]:
    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]


@cache
def _documents() -> dict[str, dict[str, Any]]:
    docs = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(SPEC_DIR.glob("*.json"))}
    for name, doc in docs.items():
        Draft202012Validator.check_schema(doc)
        assert "$id" in doc, f"{name} has no $id"
    return docs


@cache
def registry() -> Registry[Any]:
    """Every vendored schema by its ``$id`` (and the aliases); any other URI is refused."""
    docs = _documents()
    pairs = [(doc["$id"], Resource.from_contents(doc)) for doc in docs.values()]
    pairs += [(alias, Resource.from_contents(docs[name])) for alias, name in _ALIASES.items()]
    return Registry(retrieve=_offline).with_resources(pairs).crawl()  # type: ignore[call-arg]


@cache
def _validator(schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_json), registry=registry(), format_checker=_formats)


def _core_id() -> str:
    return str(_documents()[CORE_FILE]["$id"])


def _facets(event: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(where, owner, facets) for every facet map of the event."""
    yield "run", "run", (event.get("run") or {}).get("facets") or {}
    yield "job", "job", (event.get("job") or {}).get("facets") or {}
    for key, extra in (("inputs", "input"), ("outputs", "output")):
        for i, ds in enumerate(event.get(key) or []):
            owner = f"{key}[{i}] {ds.get('name')}"
            yield "dataset", owner, ds.get("facets") or {}
            yield extra, owner, ds.get(f"{extra}Facets") or {}


def _raise(where: str, err: ValidationError) -> NoReturn:
    path = "/".join(str(p) for p in err.absolute_path)
    raise ValidationError(f"{where}: {err.message}" + (f" (at {path})" if path else ""))


def validate_run_event(event: dict[str, Any]) -> list[CheckedFacet]:
    """Raise ``jsonschema.ValidationError`` unless ``event`` is a valid OpenLineage RunEvent.

    Returns the facets checked against their own schemas (custom facets are not listed).
    """
    core = _validator(json.dumps({"$ref": f"{_core_id()}#/$defs/RunEvent"}))
    error = best_match(core.iter_errors(event))
    if error is not None:
        _raise("RunEvent", error)
    url = str(event.get("schemaURL", ""))
    if not urlsplit(url).path.endswith("/OpenLineage.json") or urlsplit(url).fragment != "/$defs/RunEvent":
        raise ValidationError(f"schemaURL {url!r} does not name the OpenLineage RunEvent schema")
    checked = []
    docs = _documents()
    for where, owner, facets in _facets(event):
        for key, facet in facets.items():
            file = FACET_SCHEMAS.get((where, key))
            if file is None:
                if "_" in key.strip("_"):
                    continue  # a custom facet: the core's base facet already checked it
                raise ValidationError(f"{owner}: {where} facet {key!r} has no vendored OpenLineage schema; "
                                      "vendor it in tests/catalog/openlineage_spec and map it in FACET_SCHEMAS")
            doc = docs[file]
            label = f"{owner}: {where} facet {key!r} against {file}"
            error = best_match(_validator(json.dumps(doc)).iter_errors({key: facet}))
            if error is not None:
                _raise(label, error)
            definition = doc["properties"][key]["$ref"].rsplit("/", 1)[-1]
            schema_url = urlsplit(str(facet.get("_schemaURL", "")))
            if not schema_url.path.endswith(f"/{file}") or schema_url.fragment != f"/$defs/{definition}":
                raise ValidationError(f"{label}: _schemaURL {facet.get('_schemaURL')!r} names another schema")
            checked.append(CheckedFacet(where, key, file))
    return checked
