"""A small bronze -> silver -> gold graph recorded through the public API."""

from __future__ import annotations

from typing import Any

from catalog.entities import ColumnSpec, VersionRecord
from catalog.store import Catalog

CUSTOMERS = [ColumnSpec("id", "int64"), ColumnSpec("email", "string"), ColumnSpec("country", "string")]


def build_graph(cat: Catalog) -> dict[str, str]:
    """raw.customers_csv -> bronze.customers -> silver.customers -> gold.customer_stats (+ gold.churn)."""
    runs = {}
    with cat.run("ingest.customers") as r:
        r.input("raw.customers_csv", namespace="file")
        cat.record_version("bronze.customers", VersionRecord(0, CUSTOMERS, row_count=100), run_id=r.run_id,
                           location="/lake/bronze/customers", format="delta")
        runs["ingest"] = r.run_id
    with cat.run("clean.customers") as r:
        r.input("bronze.customers", 0)
        cat.record_version("silver.customers", VersionRecord(0, [CUSTOMERS[0], CUSTOMERS[2]], row_count=98),
                           run_id=r.run_id)
        r.column_lineage("silver.customers", {"id": [("bronze.customers", "id")],
                                              "country": [("bronze.customers", "country", "upper()")]})
        runs["clean"] = r.run_id
    with cat.run("aggregate.customers") as r:
        r.input("silver.customers", 0)
        cat.record_version("gold.customer_stats", VersionRecord(0, [ColumnSpec("country", "string"),
                                                                    ColumnSpec("customers", "int64")]),
                           run_id=r.run_id)
        r.column_lineage("gold.customer_stats", {"country": [("silver.customers", "country")],
                                                 "customers": [("silver.customers", "id", "count")]})
        runs["aggregate"] = r.run_id
    with cat.run("model.churn") as r:
        r.input("silver.customers", 0)
        r.input("gold.customer_stats", 0)
        cat.record_version("gold.churn_features", VersionRecord(0, [ColumnSpec("id", "int64"),
                                                                    ColumnSpec("churn_score", "double")]),
                           run_id=r.run_id)
        runs["churn"] = r.run_id
    return runs


def airflow_event(event_type: str, run_id: str) -> dict[str, Any]:
    """An event as another producer (an Airflow task) would send it."""
    return {
        "eventType": event_type,
        "eventTime": "2024-05-01T10:00:00.000Z" if event_type == "START" else "2024-05-01T10:05:00.000Z",
        "producer": "https://github.com/apache/airflow/tree/providers-openlineage/1.0",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id},
        "job": {"namespace": "airflow", "name": "crm_export.extract"},
        "inputs": [{"namespace": "postgres://crm:5432", "name": "crm.public.accounts",
                    "facets": {"schema": {"_producer": "x", "_schemaURL": "https://x/s.json",
                                          "fields": [{"name": "account_id", "type": "integer"}]}}}],
        "outputs": [{"namespace": "file", "name": "raw.customers_csv",
                     "facets": {"columnLineage": {"_producer": "x", "_schemaURL": "https://x/c.json", "fields": {
                         "id": {"inputFields": [{"namespace": "postgres://crm:5432", "name": "crm.public.accounts",
                                                 "field": "account_id"}]}}}}}],
    }


def stored_events(cat: Catalog) -> list[dict[str, Any]]:
    """The OpenLineage events the catalog stored, oldest first."""
    from sqlalchemy import select

    from catalog import models as m

    with cat.reading() as s:
        return [e.payload for e in s.scalars(select(m.LineageEvent).order_by(m.LineageEvent.id))]
