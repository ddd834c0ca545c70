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
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from catalog import models as m
from catalog import records
from catalog.db import SessionSource, input_error
from catalog.entities import VersionRecord
from catalog.errors import CatalogError, CatalogInputError, LineageEventError
from catalog.events import DatasetEvent, RunEvent, parse_event
from catalog.redact import LAKE_TOKEN, redact, redact_text

log = logging.getLogger(__name__)

try:
    _VERSION = metadata.version("lake-backbone")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    _VERSION = "0.0.0"
PRODUCER = f"https://github.com/lake-backbone/lake-backbone/tree/v{_VERSION}"


class Emitter:
    """Sends each event to the configured OpenLineage transports (besides the catalog).

    Args:
        file: path of a JSON-lines file that receives every event.
        url: base URL of an OpenLineage HTTP endpoint (``POST {url}/api/v1/lineage``). User info
            in it becomes basic authentication; ``http://token:lake_<id>_<secret>@host`` sends
            that lake token as ``Authorization: Bearer`` (another lake's ``lake catalog serve``).
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
    """An Authorization header (basic credentials, or a lake token) as an OpenLineage token provider.

    The client logs its configuration, never this.
    """

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
    password = unquote(parts.password or "")
    if LAKE_TOKEN.fullmatch(password):  # http://token:lake_...@host: another lake's catalog, as a bearer token
        return urlunsplit(parts._replace(netloc=netloc)), _BasicAuth(f"Bearer {password}")
    token = base64.b64encode(f"{unquote(parts.username or '')}:{password}".encode()).decode()
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


def ingest(catalog: SessionSource, event: Any) -> str:
    """Add one OpenLineage RunEvent from another producer to the catalog; returns the run id.

    The whole event is recorded in one transaction: all of it or, on an error, none of it.

    Raises:
        LineageEventError: the event is malformed (the message names the field); nothing was stored.
    """
    return ingest_batch(catalog, [event])[0]


def ingest_batch(catalog: SessionSource, events: Sequence[Any]) -> list[str]:
    """Add several events in one transaction: every one of them, or none (returns their run ids).

    Each event is checked (:func:`catalog.events.parse_event`) before anything is written.

    Raises:
        LineageEventError: naming the first bad event (``event N: field: problem``); nothing was stored.
    """
    checked = []
    for i, event in enumerate(events):
        try:
            checked.append(parse_event(event))
        except LineageEventError as exc:
            where = f"event {i}: " if len(events) > 1 else ""
            raise LineageEventError(f"{where}{exc.message}; nothing was stored", index=i,
                                    path=exc.context.get("path")) from None
    with catalog.writing() as s:
        for ev in checked:
            record_event(s, catalog.namespace, ev)
    return [ev.run_id for ev in checked]


def record_event(s: Session, home: str, ev: RunEvent) -> None:
    """Record one checked event inside an open session (the caller commits)."""
    job = records.ensure_job(s, ev.job_namespace, ev.job_name)
    records.insert_run(s, ev.run_id, job, status=ev.status or "running", started_at=ev.event_time,
                       parent_run_id=ev.parent_run_id)
    run = records.find_run(s, ev.run_id)
    if ev.event_type == "START":
        run.started_at = ev.event_time
    if ev.status in ("completed", "failed", "aborted"):
        run.status, run.ended_at = ev.status, ev.event_time
    if ev.error is not None:
        run.error = redact_text(ev.error)[:20_000]
    s.add(m.LineageEvent(run_id=ev.run_id, event_type=ev.event_type, event_time=ev.event_time,
                         producer=redact_text(ev.producer), payload=redact(ev.payload)))
    for ds in ev.inputs:
        _record_dataset(s, home, ev.run_id, ds, output=False)
    for ds in ev.outputs:
        _record_dataset(s, home, ev.run_id, ds, output=True)


def _record_dataset(s: Session, home: str, run_id: str, ds: DatasetEvent, output: bool) -> None:
    row = records.ensure_dataset(s, ds.namespace, ds.name, home=ds.namespace == home, location=ds.location,
                                 description=ds.description)
    records.annotate(s, row, columns=ds.columns or None, owners=ds.owners)
    if output and ds.version is not None:
        records.record_version(s, row, VersionRecord(version=ds.version, columns=ds.columns, row_count=ds.row_count,
                                                     size_bytes=ds.size_bytes, file_count=ds.file_count), run_id)
    else:
        records.link(s, run_id, row.id, m.UNKNOWN_VERSION if ds.version is None else ds.version, output=output)
    if output:
        # Column lineage across namespaces: each source column is in its own dataset's namespace.
        for edge in ds.column_lineage:
            src_ds = records.ensure_dataset(s, edge.namespace, edge.name, home=edge.namespace == home)
            records.column_edge(s, (src_ds, edge.field), (row, edge.column), transformation=None,
                                run_id=run_id, replace=False)


MAX_REPORTED = 20
"""How many bad lines :func:`ingest_lines` names before it only counts them."""


def ingest_lines(catalog: SessionSource, lines: Iterable[str], source: str = "input") -> int:
    """Ingest a JSON-lines stream of events: all of them in one transaction, or none.

    Every line is read and checked; when any is bad, nothing is stored and the error names
    each bad line (``source, line N: problem``, the first :data:`MAX_REPORTED` of them).

    Returns:
        How many events were stored.

    Raises:
        LineageEventError: some lines are bad (``line`` in its context is the first); nothing was stored.
    """
    problems: list[tuple[int, str]] = []
    count = 0
    with catalog.writing() as s:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                ev = parse_event(_decode(line))
            except LineageEventError as exc:
                problems.append((number, exc.message))
                continue
            if problems:
                continue  # nothing will be stored: only check the rest
            try:
                with s.begin_nested():
                    record_event(s, catalog.namespace, ev)
                count += 1
            except (CatalogInputError, SQLAlchemyError) as exc:
                refused = exc if isinstance(exc, CatalogInputError) else input_error(exc)
                if refused is None:
                    raise
                problems.append((number, refused.message))
        if problems:
            s.rollback()
            shown = [f"{source}, line {n}: {p}" for n, p in problems[:MAX_REPORTED]]
            more = len(problems) - len(shown)
            raise LineageEventError(
                f"{len(problems)} bad event{'s' if len(problems) > 1 else ''} in {source}; nothing was stored "
                "(fix or remove them and ingest the file again):\n" + "\n".join(shown)
                + (f"\n... and {more} more" if more else ""),
                source_file=source, line=problems[0][0])
    return count


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _decode(line: str) -> Any:
    try:
        return json.loads(line, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise LineageEventError(f"not JSON ({exc.msg} at column {exc.colno})") from None
    except ValueError as exc:
        raise LineageEventError(f"not JSON ({exc})") from None
    except RecursionError:
        raise LineageEventError("JSON nested too deeply") from None
