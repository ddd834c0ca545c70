"""A JSON Schema (Draft 2020-12) of the OpenLineage RunEvent and the facets the lake emits.

Written for these tests from the OpenLineage 2-0-2 specification (RunEvent, BaseFacet,
and the schema, dataSource, version, outputStatistics, columnLineage, errorMessage,
dataQualityAssertions, parent and jobType facets). The official schema files cannot be
vendored here and the test machines have no network, so this restates their
requirements: required fields, types, formats (date-time, uri, uuid), and where each
facet may appear. Unknown facets stay allowed, as in the specification, but must still
be facets (``_producer`` and ``_schemaURL``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker

_STR = {"type": "string"}
_INT = {"type": "integer"}


def _facet(properties: dict[str, Any] | None = None, required: list[str] | None = None) -> dict[str, Any]:
    """A facet: the base facet's fields plus its own."""
    return {
        "type": "object",
        "properties": {
            "_producer": {"type": "string", "format": "uri"},
            "_schemaURL": {"type": "string", "format": "uri"},
            "_deleted": {"type": "boolean"},
            **(properties or {}),
        },
        "required": ["_producer", "_schemaURL", *(required or [])],
    }


_FIELD = {
    "type": "object",
    "properties": {"name": _STR, "type": _STR, "description": _STR,
                   "fields": {"type": "array", "items": {"$ref": "#/$defs/SchemaField"}}},
    "required": ["name"],
}
_INPUT_FIELD = {
    "type": "object",
    "properties": {"namespace": _STR, "name": _STR, "field": _STR,
                   "transformations": {"type": "array", "items": {"type": "object"}}},
    "required": ["namespace", "name", "field"],
}

DATASET_FACETS = {
    "schema": _facet({"fields": {"type": "array", "items": {"$ref": "#/$defs/SchemaField"}}}),
    "dataSource": _facet({"name": _STR, "uri": {"type": "string", "format": "uri"}}),
    "version": _facet({"datasetVersion": _STR}, ["datasetVersion"]),
    "columnLineage": _facet({
        "fields": {"type": "object", "additionalProperties": {
            "type": "object",
            "properties": {"inputFields": {"type": "array", "items": _INPUT_FIELD},
                           "transformationDescription": _STR, "transformationType": _STR},
            "required": ["inputFields"],
        }},
        "dataset": {"type": "array", "items": _INPUT_FIELD},
    }, ["fields"]),
    "dataQualityAssertions": _facet({"assertions": {"type": "array", "items": {
        "type": "object",
        "properties": {"assertion": _STR, "success": {"type": "boolean"}, "column": _STR},
        "required": ["assertion", "success"],
    }}}, ["assertions"]),
    "documentation": _facet({"description": _STR}, ["description"]),
    "dataQualityMetrics": _facet({"rowCount": _INT, "bytes": _INT, "fileCount": _INT,
                                  "columnMetrics": {"type": "object", "additionalProperties": {
                                      "type": "object", "properties": {"nullCount": _INT, "distinctCount": _INT}}}},
                                 ["columnMetrics"]),
}
OUTPUT_FACETS = {"outputStatistics": _facet({"rowCount": _INT, "size": _INT, "fileCount": _INT})}
INPUT_FACETS = {"dataQualityMetrics": _facet({"rowCount": _INT, "bytes": _INT, "fileCount": _INT,
                                              "columnMetrics": {"type": "object"}}, ["columnMetrics"])}
RUN_FACETS = {
    "errorMessage": _facet({"message": _STR, "programmingLanguage": _STR, "stackTrace": _STR},
                           ["message", "programmingLanguage"]),
    "parent": _facet({
        "run": {"type": "object", "properties": {"runId": {"type": "string", "format": "uuid"}}, "required": ["runId"]},
        "job": {"type": "object", "properties": {"namespace": _STR, "name": _STR}, "required": ["namespace", "name"]},
    }, ["run", "job"]),
    "nominalTime": _facet({"nominalStartTime": {"type": "string", "format": "date-time"}}, ["nominalStartTime"]),
}
JOB_FACETS = {
    "jobType": _facet({"processingType": {"enum": ["BATCH", "STREAMING"]}, "integration": _STR, "jobType": _STR},
                      ["processingType", "integration"]),
    "documentation": _facet({"description": _STR}, ["description"]),
}


def _facets(known: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": known, "additionalProperties": _facet()}


def _dataset(extra_key: str, extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"namespace": _STR, "name": _STR, "facets": _facets(DATASET_FACETS), extra_key: _facets(extra)},
        "required": ["namespace", "name"],
    }


RUN_EVENT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "eventType": {"enum": ["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]},
        "eventTime": {"type": "string", "format": "date-time"},
        "producer": {"type": "string", "format": "uri"},
        "schemaURL": {"type": "string", "format": "uri"},
        "run": {"type": "object", "properties": {"runId": {"type": "string", "format": "uuid"},
                                                 "facets": _facets(RUN_FACETS)}, "required": ["runId"]},
        "job": {"type": "object", "properties": {"namespace": _STR, "name": _STR, "facets": _facets(JOB_FACETS)},
                "required": ["namespace", "name"]},
        "inputs": {"type": "array", "items": _dataset("inputFacets", INPUT_FACETS)},
        "outputs": {"type": "array", "items": _dataset("outputFacets", OUTPUT_FACETS)},
    },
    "required": ["eventTime", "producer", "schemaURL", "run", "job"],
    "$defs": {"SchemaField": _FIELD},
}

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
    if isinstance(value, str) and not (urlsplit(value).scheme and (urlsplit(value).netloc or urlsplit(value).path)):
        raise ValueError("not an absolute URI")
    return True


@_formats.checks("uuid", raises=ValueError)
def _uuid(value: object) -> bool:
    if isinstance(value, str):
        uuid.UUID(value)
    return True


_VALIDATOR = Draft202012Validator(RUN_EVENT_SCHEMA, format_checker=_formats)


def validate_run_event(event: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` when ``event`` is not a valid RunEvent."""
    _VALIDATOR.validate(event)
