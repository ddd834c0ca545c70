"""Recording runs, versions and metadata; concurrency; redaction. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from sqlalchemy import MetaData, create_engine, select, text

from catalog.db import migrate
from catalog.entities import ColumnSpec, VersionRecord
from catalog.errors import CatalogError, DatasetNotFoundError, RunNotFoundError
from catalog.store import Catalog
from tests.catalog.helpers import CUSTOMERS, build_graph
from tests.services import free_port


def test_runs_record_inputs_outputs_and_versions(catalog: Catalog) -> None:
    runs = build_graph(catalog)
    info = catalog.run_info(runs["clean"])
    assert info["status"] == "completed" and info["job"] == "clean.customers"
    assert info["inputs"] == [{"namespace": "lake", "name": "bronze.customers", "version": 0}]
    assert info["outputs"] == [{"namespace": "lake", "name": "silver.customers", "version": 0}]
    assert info["ended_at"] >= info["started_at"]
    ingest = catalog.run_info(runs["ingest"])
    assert ingest["inputs"] == [{"namespace": "file", "name": "raw.customers_csv", "version": None}]
    shown = catalog.show("bronze.customers")
    assert shown["layer"] == "bronze" and shown["current_version"] == 0
    assert [c["name"] for c in shown["schema"]] == ["id", "email", "country"]
    assert shown["version"]["rows"] == 100 and shown["version"]["run_id"] == runs["ingest"]
    assert shown["downstream"] == ["silver.customers"] and shown["upstream"] == ["raw.customers_csv"]
    assert catalog.counts() == {"datasets": 5, "versions": 4, "runs": 4, "edges": 5}


def test_failed_run_keeps_its_error(catalog: Catalog) -> None:
    with pytest.raises(ValueError, match="boom"), catalog.run("broken.job", parameters={"day": "2024-05-01"}) as r:
        r.input("bronze.customers", 3)
        raise ValueError("boom")
    failed = catalog.runs(status="failed")
    assert len(failed) == 1 and failed[0]["job"] == "broken.job"
    assert "ValueError: boom" in failed[0]["error"] and failed[0]["parameters"] == {"day": "2024-05-01"}
    assert catalog.runs(job="broken.job", status="completed") == []
    with pytest.raises(RunNotFoundError):
        catalog.run_info("00000000-0000-0000-0000-000000000000")


def test_versions_columns_and_annotations(catalog: Catalog) -> None:
    catalog.record_version("silver.orders", VersionRecord(0, CUSTOMERS, row_count=5))
    catalog.record_version("silver.orders", VersionRecord(0, CUSTOMERS, row_count=5))  # idempotent
    catalog.describe("silver.orders", "Orders, cleaned")
    catalog.describe("silver.orders", "Where the customer lives", column="country")
    catalog.tag("silver.orders", "pii", column="email")
    catalog.add_owner("silver.orders", "team-data")
    catalog.add_owner("silver.orders", "alice")
    catalog.remove_owner("silver.orders", "alice")
    evolved = [*CUSTOMERS, ColumnSpec("segment", "string")]
    catalog.record_version("silver.orders", VersionRecord(1, evolved, row_count=7))
    shown = catalog.show("silver.orders")
    assert shown["current_version"] == 1 and len(shown["versions"]) == 2
    assert shown["description"] == "Orders, cleaned" and shown["owners"] == ["team-data"]
    cols = {c["name"]: c for c in shown["schema"]}
    assert list(cols) == ["id", "email", "country", "segment"]
    assert cols["country"]["description"] == "Where the customer lives"  # kept across versions
    assert cols["email"]["tags"] == ["pii"] and shown["tags"] == ["pii"]
    old = catalog.show("silver.orders", version=0)
    assert [c["name"] for c in old["schema"]] == ["id", "email", "country"]
    assert old["version"]["schema_hash"] != shown["version"]["schema_hash"]
    with pytest.raises(CatalogError, match="no recorded version 9"):
        catalog.show("silver.orders", version=9)
    with pytest.raises(CatalogError, match="no column 'nope'"):
        catalog.describe("silver.orders", "x", column="nope")
    with pytest.raises(DatasetNotFoundError, match="did you mean silver.orders"):
        catalog.show("silver.ordrs")


def test_propagating_tags_reach_every_downstream_dataset(catalog: Catalog) -> None:
    build_graph(catalog)
    catalog.tag("bronze.customers", "pii")
    assert {h.name for h in catalog.search(tags=["pii"])} == {"bronze.customers"}
    catalog.define_tag("pii", propagate=True)
    derived = {"bronze.customers", "silver.customers", "gold.customer_stats", "gold.churn_features"}
    assert {h.name for h in catalog.search(tags=["pii"])} == derived
    assert "pii (from bronze.customers)" in catalog.show("gold.churn_features")["inherited_tags"]
    # A new downstream dataset inherits it when its lineage is recorded.
    with catalog.run("export.customers") as r:
        r.input("gold.churn_features", 0)
        r.output("export.churn_csv")
    assert "export.churn_csv" in {h.name for h in catalog.search(tags=["pii"])}
    catalog.untag("bronze.customers", "pii")
    assert catalog.search(tags=["pii"]) == []
    catalog.tag("silver.customers", "pii")
    assert {h.name for h in catalog.search(tags=["pii"])} == derived - {"bronze.customers"} | {"export.churn_csv"}


def test_concurrent_writers_neither_lose_nor_duplicate(catalog_url: str) -> None:
    """8 threads, each with its own Catalog (own connections), register overlapping records."""
    Catalog(catalog_url).close()  # migrate once, like a deployed catalog
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        cat = Catalog(catalog_url)
        try:
            for v in range(10):
                cat.record_version("bronze.shared", VersionRecord(v, CUSTOMERS, row_count=v))
                with cat.run(f"job.{n}") as r:
                    r.input("bronze.shared", v)
                    r.output(f"silver.out_{n}", v)
                cat.tag("bronze.shared", f"t{n % 3}")
        except BaseException as exc:
            errors.append(exc)
        finally:
            cat.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert errors == []
    cat = Catalog(catalog_url)
    assert [v["version"] for v in cat.show("bronze.shared")["versions"]] == list(range(9, -1, -1))
    assert cat.counts() == {"datasets": 9, "versions": 10, "runs": 80, "edges": 8}
    assert cat.show("bronze.shared")["tags"] == ["t0", "t1", "t2"]
    assert len(cat.runs(limit=1000)) == 80
    cat.close()


def test_credentials_never_stored(catalog_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    from catalog.openlineage import Emitter
    from tests.logcapture import all_loggers_at_debug, logged_text

    events = tmp_path / "events.jsonl"
    secret = "s3cr3t-P4ss"
    url = f"postgresql://etl:{secret}@db.internal:5432/sales"
    with all_loggers_at_debug(caplog):
        # An unreachable HTTP sink too: its delivery failure is logged, with the error and the run.
        cat = Catalog(catalog_url, emitter=Emitter(file=str(events), url=f"http://127.0.0.1:{free_port()}"))
        with pytest.raises(RuntimeError), cat.run("ingest.sales", parameters={
                "source": url, "password": secret, "options": {"token": secret}}) as r:
            r.input("public.sales", namespace="postgres://db.internal:5432", location=url)
            cat.record_version("bronze.sales", VersionRecord(0, CUSTOMERS, metrics={"AWS_SECRET_ACCESS_KEY": secret}),
                               run_id=r.run_id, location=f"s3://bucket/x?secret_key={secret}")
            raise RuntimeError(f"could not connect to {url}")
    logs = logged_text(caplog)
    assert "not delivered" in logs  # the logs were captured: the failed HTTP delivery is there
    assert secret not in logs
    printed = capsys.readouterr()
    assert secret not in printed.out + printed.err
    engine = create_engine(catalog_url)
    meta = MetaData()
    meta.reflect(engine)
    dumped = []
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            dumped.extend(json.dumps([str(v) for v in row]) for row in conn.execute(select(table)))
    engine.dispose()
    everything = "\n".join(dumped) + events.read_text()
    assert secret not in everything
    assert "etl:****@db.internal" in everything  # redacted, still useful
    cat.close()


def test_openlineage_endpoint_credentials_never_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from catalog.openlineage import Emitter
    from tests.logcapture import all_loggers_at_debug, logged_text

    secret = "s3cr3t-Http-P4ss"
    with all_loggers_at_debug(caplog):
        cat = Catalog(f"sqlite:///{tmp_path}/c.db",
                      emitter=Emitter(url=f"http://lineage:{secret}@127.0.0.1:{free_port()}"))
        with cat.run("x") as r:
            r.output("bronze.x", 0)
        cat.close()
    logs = logged_text(caplog)
    assert "not delivered" in logs
    assert secret not in logs


def test_migrations_are_at_head_and_reopen_is_a_no_op(catalog_url: str) -> None:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cat = Catalog(catalog_url)
    cat.record_version("bronze.a", VersionRecord(0))
    migrate(cat.engine)
    with cat.engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
        assert conn.execute(text("SELECT count(*) FROM datasets")).scalar() == 1
    script = ScriptDirectory(str(Path(__import__("catalog").__file__).parent / "migrations"))
    assert current == script.get_current_head()
    cat.close()
    assert Catalog(catalog_url).counts()["datasets"] == 1


def test_unreachable_database_is_one_clear_error() -> None:
    from catalog.errors import CatalogConnectionError

    with pytest.raises(CatalogConnectionError, match=r"cannot reach the catalog database .*u:\*\*\*\*@127.0.0.1"):
        Catalog("postgresql+psycopg://u:pw@127.0.0.1:1/nope")
