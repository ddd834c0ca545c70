"""Jobs run as a service account once principals exist: write on the target, read on the inputs."""

from __future__ import annotations

import pytest

from catalog import access as acl
from lake.errors import JobError
from lake.lakehouse import Lake
from lake.pipeline.runner import JobRunner, authorize
from lake.pipeline.spec import FileSource, Job, TableSource


def test_a_job_needs_write_on_its_target_and_read_on_its_inputs(local_lake: Lake) -> None:
    daily = Job(name="daily", source=TableSource(tables=["silver.trips", "silver.drivers"], sql="SELECT 1"),
                target="gold.daily")
    authorize(local_lake, daily)  # embedded, no principal yet: every job runs
    with local_lake.catalog.writing() as s:
        acl.create_principal(s, "svc:etl", "service")
        acl.grant(s, "svc:etl", "write", "gold")
        acl.grant(s, "svc:etl", "read", "silver.trips")
    with pytest.raises(JobError, match="runs as a service account"):
        authorize(local_lake, daily)
    as_etl = Job(name="daily", source=daily.source, target="gold.daily", principal="svc:etl")
    with pytest.raises(JobError, match="svc:etl lacks read on silver.drivers"):
        JobRunner(local_lake).run(as_etl)  # refused before anything is read (no Spark session started)
    with local_lake.catalog.writing() as s:
        acl.grant(s, "svc:etl", "read", "silver")
    authorize(local_lake, as_etl)
    ingest = Job(name="raw", source=FileSource(path="/tmp/none.csv"), target="bronze.raw", principal="svc:etl")
    with pytest.raises(JobError, match="lacks write on bronze.raw"):
        authorize(local_lake, ingest)
    with local_lake.catalog.reading() as s:
        outcomes = [(r["principal"], r["object"], r["outcome"]) for r in acl.audit_records(s, action="job")]
    assert outcomes == [("svc:etl", "bronze.raw", "denied"), ("svc:etl", "gold.daily", "allowed"),
                        ("svc:etl", "gold.daily", "denied")]
