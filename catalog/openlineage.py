"""OpenLineage in and out.

Out: every run emits RunEvents (START, then COMPLETE/FAIL/ABORT) built with the
official ``openlineage-python`` client, with schema, dataSource, version,
outputStatistics and columnLineage facets (plus dataQuality facets when a
validation ran). They go to the catalog itself (``lineage_events``) and to any
configured transports: a JSON-lines file, an HTTP endpoint such as Marquez.

In: events from other producers (a JSON-lines file, an HTTP ``POST``) join the same
graph: jobs, runs, datasets, schemas, versions and column lineage.

Everything stored or sent is built from redacted values: no credentials.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog import models as m
from catalog import records
from catalog.db import SessionSource
from catalog.entities import ColumnSpec, VersionRecord
from catalog.errors import CatalogError
from catalog.redact import redact, redact_text

log = logging.getLogger(__name__)

try:
    _VERSION = metadata.version("lake-backbone")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    _VERSION = "0.0.0"
PRODUCER = f"https://github.com/lake-backbone/lake-backbone/tree/v{_VERSION}"
EVENT_TYPES = {"START": "running", "RUNNING": "running", "COMPLETE": "completed", "FAIL": "failed",
               "ABORT": "aborted", "OTHER": None}


class Emitter:
    """Sends each event to the configured OpenLineage transports (besides the catalog).

    Args:
        file: path of a JSON-lines file that receives every event.
        url: base URL of an OpenLineage HTTP endpoint (``POST {url}/api/v1/lineage``).
    """

    def __init__(self, file: str | None = None, url: str | None = None) -> None:
        self.file = file
        self.url = url
        self._clients: list[Any] | None = None

    def _transports(self) -> list[Any]:
        if self._clients is None:
            # The OpenLineage client is imported on first use: it takes most of a second to
            # import, and most catalog calls never emit.
            from openlineage.client import OpenLineageClient
            from openlineage.client.transport.file import FileConfig, FileTransport
            from openlineage.client.transport.http import HttpConfig, HttpTransport

            clients = []
            if self.file:
                Path(self.file).parent.mkdir(parents=True, exist_ok=True)
                clients.append(OpenLineageClient(transport=FileTransport(FileConfig(log_file_path=self.file,
                                                                                    append=True))))
            if self.url:
                url, auth = _split_credentials(self.url)
                clients.append(OpenLineageClient(transport=HttpTransport(HttpConfig(
                    url=url, auth=auth, timeout=5.0, retry={"total": 2, "backoff_factor": 0.2,
                                                      "status_forcelist": [500, 502, 503, 504],
                                                      "allowed_methods": ["POST"]}))))
            self._clients = clients
        return self._clients

    def emit(self, catalog: SessionSource, run_id: str, event_type: str) -> dict[str, Any]:
        """Build the event for a run, store it in the catalog and send it everywhere else."""
        event = build_event(catalog, run_id, event_type)
        from openlineage.client.serde import Serde  # heavy, imported on first use (see _transports)

        payload = redact(json.loads(Serde.to_json(event)))
        with catalog.writing() as s:
            s.add(m.LineageEvent(run_id=run_id, event_type=event_type, event_time=_parse_time(payload["eventTime"]),
                                 producer=PRODUCER, payload=payload))
        for client in self._transports():
            try:
                client.emit(event)
            except Exception as exc:  # a lineage sink must never fail the job
                log.warning("OpenLineage event for run %s not delivered: %s", run_id, redact_text(str(exc)))
        return payload


class _BasicAuth:
    """HTTP basic credentials as an OpenLineage token provider (the client logs its config, never this)."""

    def __init__(self, header: str) -> None:
        self._header = header

    def get_bearer(self) -> str | None:
        return self._header

    def __repr__(self) -> str:
        return "_BasicAuth(****)"


def _split_credentials(url: str) -> tuple[str, Any]:
    """The endpoint URL without ``user:password@`` and, if there were credentials, a provider for them."""
    from openlineage.client.transport.http import TokenProvider  # heavy, imported on first use

    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, TokenProvider({})
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    token = base64.b64encode(f"{unquote(parts.username or '')}:{unquote(parts.password or '')}".encode()).decode()
    return urlunsplit(parts._replace(netloc=netloc)), _BasicAuth(f"Basic {token}")


def _parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _iso(value: dt.datetime | None) -> str:
    value = value or m.utcnow()
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat()


def build_event(catalog: SessionSource, run_id: str, event_type: str) -> Any:
    """The OpenLineage RunEvent describing a run as the catalog knows it now."""
    # The client's event and facet classes are heavy: imported on first use.
    from openlineage.client import event_v2 as ol
    from openlineage.client.facet_v2 import (
        column_lineage_dataset,
        data_quality_assertions_dataset,
        data_quality_metrics_dataset,
        dataset_version_dataset,
        datasource_dataset,
        error_message_run,
        job_type_job,
        output_statistics_output_dataset,
        parent_run,
        schema_dataset,
    )

    with catalog.reading() as s:
        run = s.get(m.Run, run_id)
        if run is None:
            raise CatalogError(f"no run {run_id}")
        job = s.get(m.Job, run.job_id)
        assert job is not None

        def datasets(model: type[m.RunInput] | type[m.RunOutput]) -> list[tuple[m.Dataset, int]]:
            rows = s.execute(select(m.Dataset, model.version).join(model, model.dataset_id == m.Dataset.id)
                             .where(model.run_id == run_id).order_by(m.Dataset.name))
            return [(d, v) for d, v in rows]

        def facets(d: m.Dataset, version: int) -> tuple[dict[str, Any], m.DatasetVersion | None]:
            row = None
            if version != m.UNKNOWN_VERSION:
                row = s.scalar(select(m.DatasetVersion).where(m.DatasetVersion.dataset_id == d.id,
                                                              m.DatasetVersion.version == version))
            if row is not None and row.schema:
                cols = [(c["name"], c.get("type"), c.get("description")) for c in row.schema]
            else:
                cols = [(c.name, c.type, c.description) for c in s.scalars(
                    select(m.Column).where(m.Column.dataset_id == d.id).order_by(m.Column.position))]
            out: dict[str, Any] = {}
            if cols:
                out["schema"] = schema_dataset.SchemaDatasetFacet(
                    fields=[schema_dataset.SchemaDatasetFacetFields(name=n, type=t, description=desc)
                            for n, t, desc in cols], producer=PRODUCER)
            if d.location:
                uri = d.location if "://" in d.location else f"file://{d.location}"
                out["dataSource"] = datasource_dataset.DatasourceDatasetFacet(
                    name=d.namespace, uri=uri, producer=PRODUCER)
            if version != m.UNKNOWN_VERSION:
                out["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
                    datasetVersion=str(version), producer=PRODUCER)
            quality = list(s.scalars(select(m.QualityResult).where(
                m.QualityResult.dataset_id == d.id, m.QualityResult.run_id == run_id)))
            assertions = [
                data_quality_assertions_dataset.Assertion(
                    assertion=str(r.get("expectation", "expectation")), success=bool(r.get("success")),
                    column=r.get("column"))
                for q in quality for r in (q.results or [])
            ]
            if assertions:
                out["dataQualityAssertions"] = data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
                    assertions=assertions, producer=PRODUCER)
                columns: dict[str, Any] = {}
                for q in quality:
                    for r in q.results or []:
                        if r.get("expectation") == "expect_column_values_to_not_be_null" and r.get("column"):
                            columns[r["column"]] = data_quality_metrics_dataset.ColumnMetrics(
                                nullCount=r.get("unexpected_count"))
                rows = next((q.statistics.get("rows_checked") for q in quality if q.statistics), None)
                out["dataQualityMetrics"] = data_quality_metrics_dataset.DataQualityMetricsDatasetFacet(
                    columnMetrics=columns, rowCount=rows, producer=PRODUCER)
            drift = s.scalars(select(m.Report).where(m.Report.dataset_id == d.id, m.Report.version == version,
                                                     m.Report.run_id == run_id, m.Report.kind == "drift")
                              .order_by(m.Report.created_at.desc())).first()
            if drift is not None:
                out["lake_drift"] = _drift_facet(drift)
            return out, row

        inputs = []
        for d, v in datasets(m.RunInput):
            f, _ = facets(d, v)
            inputs.append(ol.InputDataset(namespace=d.namespace, name=d.name, facets=f))
        outputs = []
        for d, v in datasets(m.RunOutput):
            f, row = facets(d, v)
            lineage_rows = s.execute(
                select(m.ColumnLineage, m.Dataset.namespace, m.Dataset.name)
                .join(m.Dataset, m.Dataset.id == m.ColumnLineage.src_dataset_id)
                .where(m.ColumnLineage.dst_dataset_id == d.id)).all()
            if lineage_rows:
                fields: dict[str, list[Any]] = {}
                for cl, ns, name in lineage_rows:
                    how = column_lineage_dataset.Transformation(
                        type="DIRECT", subtype="TRANSFORMATION" if cl.transformation else "IDENTITY",
                        description=cl.transformation, masking=False)
                    fields.setdefault(cl.dst_column, []).append(column_lineage_dataset.InputField(
                        namespace=ns, name=name, field=cl.src_column, transformations=[how]))
                f["columnLineage"] = column_lineage_dataset.ColumnLineageDatasetFacet(
                    fields={k: column_lineage_dataset.Fields(inputFields=v) for k, v in fields.items()},
                    producer=PRODUCER)
            out_facets: dict[str, Any] = {}
            if row is not None and (row.row_count is not None or row.size_bytes is not None):
                out_facets["outputStatistics"] = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                    rowCount=row.row_count, size=row.size_bytes, fileCount=row.file_count, producer=PRODUCER)
            outputs.append(ol.OutputDataset(namespace=d.namespace, name=d.name, facets=f, outputFacets=out_facets))
        run_facets: dict[str, Any] = {}
        if event_type == "FAIL" and run.error:
            run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=run.error[:4000], programmingLanguage="python", producer=PRODUCER)
        if run.parent_run_id:
            parent = s.get(m.Run, run.parent_run_id)
            parent_job = s.get(m.Job, parent.job_id) if parent else None
            if parent_job is not None:
                run_facets["parent"] = parent_run.ParentRunFacet(
                    run=parent_run.Run(runId=run.parent_run_id),
                    job=parent_run.Job(namespace=parent_job.namespace, name=parent_job.name), producer=PRODUCER)
        when = run.started_at if event_type == "START" else (run.ended_at or m.utcnow())
        return ol.RunEvent(
            eventType=getattr(ol.RunState, event_type),
            eventTime=_iso(when),
            run=ol.Run(runId=run_id, facets=run_facets),
            job=ol.Job(namespace=job.namespace, name=job.name, facets={
                "jobType": job_type_job.JobTypeJobFacet(processingType="BATCH", integration="LAKE",
                                                        jobType="JOB", producer=PRODUCER)}),
            inputs=inputs,
            outputs=outputs,
            producer=PRODUCER,
        )


def _drift_facet(report: m.Report) -> Any:
    """The custom ``lake_drift`` dataset facet: the summary of a drift report made by the run."""
    import attr  # comes with the OpenLineage client, imported on first use like it
    from openlineage.client.facet_v2 import DatasetFacet

    @attr.define
    class LakeDriftDatasetFacet(DatasetFacet):
        status: str
        reportId: str  # OpenLineage facet fields are camelCase
        reference: str | None = None
        location: str | None = None
        summary: dict[str, Any] = attr.field(factory=dict)

        @staticmethod
        def _get_schema() -> str:
            return f"{PRODUCER}/schemas/LakeDriftDatasetFacet.json"

    return LakeDriftDatasetFacet(status=report.status, reportId=report.id, reference=report.reference,
                                 location=report.location, summary=dict(report.summary or {}), producer=PRODUCER)


# -------------------------------------------------------------------- ingest


def _require(event: dict[str, Any], path: str) -> Any:
    value: Any = event
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value or value[key] in (None, ""):
            raise CatalogError(f"OpenLineage event has no {path}: not a RunEvent?")
        value = value[key]
    return value


def ingest(catalog: SessionSource, event: dict[str, Any]) -> str:
    """Add one OpenLineage RunEvent from another producer to the catalog; returns the run id.

    The whole event is recorded in one transaction: all of it or, on an error, none of it.
    """
    if not isinstance(event, dict):
        raise CatalogError("an OpenLineage event must be a JSON object")
    run_id = str(_require(event, "run.runId"))
    job_ns, job_name = str(_require(event, "job.namespace")), str(_require(event, "job.name"))
    event_time = _parse_time(str(_require(event, "eventTime")))
    event_type = str(event.get("eventType") or "OTHER").upper()
    if event_type not in EVENT_TYPES:
        raise CatalogError(f"unknown OpenLineage eventType {event_type!r}")
    status = EVENT_TYPES[event_type]
    run_facets = (event.get("run") or {}).get("facets") or {}
    parent = ((run_facets.get("parent") or {}).get("run") or {}).get("runId")
    with catalog.writing() as s:
        job = records.ensure_job(s, job_ns, job_name)
        records.insert_run(s, run_id, job, status=status or "running", started_at=event_time,
                           parent_run_id=parent)
        run = records.find_run(s, run_id)
        if event_type == "START":
            run.started_at = event_time
        if status in ("completed", "failed", "aborted"):
            run.status, run.ended_at = status, event_time
        if "errorMessage" in run_facets:
            run.error = redact_text(str(run_facets["errorMessage"].get("message", "")))
        s.add(m.LineageEvent(run_id=run_id, event_type=event_type, event_time=event_time,
                             producer=str(event.get("producer") or ""), payload=redact(event)))
        for key, output in (("inputs", False), ("outputs", True)):
            for ds in event.get(key) or []:
                _ingest_dataset(s, catalog.namespace, run_id, ds, output)
    return run_id


def _ingest_dataset(s: Session, home: str, run_id: str, ds: dict[str, Any], output: bool) -> None:
    ns, name = str(_require(ds, "namespace")), str(_require(ds, "name"))
    facets = ds.get("facets") or {}
    out_facets = ds.get("outputFacets") or {}
    fields = (facets.get("schema") or {}).get("fields") or []
    columns = [ColumnSpec(f["name"], f.get("type"), True, f.get("description")) for f in fields if "name" in f]
    location = (facets.get("dataSource") or {}).get("uri")
    raw_version = (facets.get("version") or {}).get("datasetVersion")
    version = int(raw_version) if isinstance(raw_version, str | int) and str(raw_version).isdigit() else None
    description = (facets.get("documentation") or {}).get("description")
    row = records.ensure_dataset(s, ns, name, home=ns == home, location=location, description=description)
    records.annotate(s, row, columns=columns or None,
                     owners=[o.get("name") for o in (facets.get("ownership") or {}).get("owners", [])
                             if o.get("name")])
    if output and version is not None:
        stats = out_facets.get("outputStatistics") or {}
        records.record_version(s, row, VersionRecord(version=version, columns=columns,
                                                     row_count=stats.get("rowCount"), size_bytes=stats.get("size"),
                                                     file_count=stats.get("fileCount")), run_id)
    else:
        records.link(s, run_id, row.id, m.UNKNOWN_VERSION if version is None else version,
                     output=output)
    lineage = (facets.get("columnLineage") or {}).get("fields") or {}
    if output and lineage:
        # Column lineage across namespaces: each source column is in its own dataset's namespace.
        for dst_col, spec in lineage.items():
            for src in spec.get("inputFields") or []:
                src_ds = records.ensure_dataset(s, src["namespace"], src["name"], home=src["namespace"] == home)
                records.column_edge(s, (src_ds, src["field"]), (row, dst_col), transformation=None,
                                    run_id=run_id, replace=False)


def ingest_lines(catalog: SessionSource, lines: Iterable[str], source: str = "input") -> int:
    """Ingest a JSON-lines stream of events; errors name the line."""
    count = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CatalogError(f"{source}, line {number}: not JSON ({exc.msg}); nothing after it was read",
                               source_file=source, line=number) from None
        try:
            ingest(catalog, event)
        except CatalogError as exc:
            raise CatalogError(f"{source}, line {number}: {exc.message}", source_file=source, line=number) from None
        count += 1
    return count
