"""Catalog search and lineage at scale, on SQLite and PostgreSQL, vs the naive approach.

A catalog of 100,000 datasets, 1,000,000 columns and ~1,000,000 lineage edges
(``--quick``: a tenth) shaped like real pipelines: groups of 100 datasets in 10
layers, each fed by about 11 datasets of earlier layers. Measured in the same run:

- search p50/p95 through the catalog (FTS5 trigram / pg_trgm, typos included) vs the
  naive ``LIKE '%q%'`` scan over the same text;
- lineage traversal (upstream, depth 5 and 10) p50/p95 through the catalog (one
  recursive query) vs the naive walk (one query per node per hop);
- listing the latest 50 of 10,000 runs (100 of them open, from other hosts) with the
  dead-run check that every listing makes vs the same listing without it.

Targets: search p95 under 20 ms and depth-10 lineage p95 under 50 ms on both.
``value`` is the worst search p95 over both databases; ``ratio`` = catalog search
p95 / naive search p95 (SQLite), ``ratio_lineage`` likewise for depth-10 lineage.
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from benchmarks.common import emit, parse_args
from catalog import models as m
from catalog import views
from catalog.search import FIELDS, vocabulary
from catalog.store import Catalog

DOMAINS = ["sales", "marketing", "finance", "web", "crm", "hr", "logistics", "support", "billing", "inventory",
           "payments", "risk", "fraud", "pricing", "ads", "search", "mobile", "iot", "supply", "legal"]
ENTITIES = ["orders", "customers", "invoices", "sessions", "clicks", "payments", "products", "shipments",
            "tickets", "accounts", "events", "transactions", "devices", "campaigns", "leads", "refunds"]
SUFFIXES = ["daily", "hourly", "raw", "clean", "agg", "features", "snapshot", "history", "latest", "summary"]
LAYERS = ["bronze", "bronze", "silver", "silver", "silver", "gold", "gold", "gold", "feature", "training"]
COLUMNS = ["id", "customer_id", "order_id", "amount", "currency", "country", "created_at", "updated_at", "status",
           "email", "phone", "price", "quantity", "discount", "channel", "device", "session_id", "revenue",
           "margin", "score", "label", "region", "city", "zip", "category", "sku", "vendor", "latency_ms"]
TEAMS = ["data-eng", "analytics", "finance-bi", "growth", "ml-platform", "risk-team", "web-team"]
TAGS = ["pii", "gdpr", "kpi", "certified", "deprecated", "sensitive", "experimental"]
PIPELINE = 100
LAYER_SIZE = 10


def dataset_name(i: int) -> str:
    rng = random.Random(i)
    layer = LAYERS[(i % PIPELINE) // LAYER_SIZE]
    return f"{layer}.{rng.choice(DOMAINS)}_{rng.choice(ENTITIES)}_{rng.choice(SUFFIXES)}_{i}"


def generate(url: str, datasets: int) -> None:
    """Bulk-load a synthetic catalog (straight to the tables: this measures reads, not loading)."""
    Catalog(url).close()  # schema through the real migrations
    engine = create_engine(url)
    rng = random.Random(42)
    now = m.utcnow()
    ds_rows, col_rows, doc_rows, tag_rows, owner_rows, edge_rows = [], [], [], [], [], []
    terms: dict[str, bool] = {}
    for i in range(1, datasets + 1):
        name = dataset_name(i)
        domain, entity = name.split(".", 1)[1].split("_")[:2]
        desc = f"{entity.title()} of the {domain} domain, {rng.choice(SUFFIXES)} grain, maintained by the platform"
        cols = rng.sample(COLUMNS, 10)
        tags = rng.sample(TAGS, rng.randint(0, 2))
        owners = [rng.choice(TEAMS)]
        ds_rows.append({"id": i, "namespace": "lake", "name": name, "kind": "table", "layer": name.split(".")[0],
                        "description": desc, "current_version": 0, "created_at": now, "updated_at": now})
        col_rows.extend({"dataset_id": i, "name": c, "type": "string", "nullable": True, "position": p}
                        for p, c in enumerate(cols))
        tag_rows.extend({"dataset_id": i, "tag": t, "source_id": 0} for t in tags)
        owner_rows.extend({"dataset_id": i, "owner": o} for o in owners)
        doc = {"name": name, "description": desc, "tags": " ".join(tags), "owners": " ".join(owners),
               "columns": " ".join(cols)}
        doc["doc"] = " ".join(doc[f] for f in FIELDS).lower()
        doc_rows.append({"dataset_id": i, **doc})
        for word, in_name in vocabulary(doc).items():
            terms[word] = terms.get(word, False) or in_name
        pos = (i - 1) % PIPELINE
        if pos >= LAYER_SIZE:  # fed by ~11 datasets of earlier layers of the same pipeline
            base = i - pos
            for src in rng.sample(range(base, base + (pos // LAYER_SIZE) * LAYER_SIZE), 11 if pos >= 20 else 10):
                edge_rows.append({"src_id": src, "dst_id": i, "updated_at": now})
    tables = [("datasets", ds_rows), ("columns", col_rows), ("dataset_owners", owner_rows),
              ("tags", [{"name": t, "propagate": False} for t in TAGS]), ("dataset_tags", tag_rows),
              ("search_docs", doc_rows), ("search_terms", [{"term": t, "in_name": n} for t, n in sorted(terms.items())]),
              ("lineage_edges", edge_rows)]
    meta = m.Base.metadata
    with engine.begin() as conn:
        for table, rows in tables:
            for start in range(0, len(rows), 20_000):
                conn.execute(meta.tables[table].insert(), rows[start : start + 20_000])
    if engine.dialect.name == "postgresql":
        # Steady state, as autovacuum leaves it: GIN pending lists merged, statistics fresh.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.exec_driver_sql("INSERT INTO search_fts(search_fts) VALUES('optimize')")
            conn.exec_driver_sql("INSERT INTO terms_fts(terms_fts) VALUES('optimize')")
    engine.dispose()
    print(f"  loaded {len(ds_rows):,} datasets, {len(col_rows):,} columns, {len(edge_rows):,} edges")


def queries(datasets: int) -> list[str]:
    rng = random.Random(7)
    out = []
    for _ in range(20):
        name = dataset_name(rng.randint(1, datasets))
        out.append(name.split(".", 1)[1])                     # a near-exact name
        out.append(name.split("_")[1][:5])                    # a partial word
    out += ["custmer orders", "invoces daily", "sesion clicks", "payemnts", "fraud features", "revenue",
            "latency_ms", "certified sales", "growth", "shipments snapshot"]
    return out


def percentiles(fn: Callable[[Any], Any], args: list[Any], repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        for a in args:
            t = time.perf_counter()
            fn(a)
            times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return statistics.median(times), times[max(int(len(times) * 0.95) - 1, 0)]


def naive_search(engine: Any) -> Callable[[str], Any]:
    def run(q: str) -> Any:
        words = q.lower().split()
        cond = " AND ".join(f"doc LIKE :w{i}" for i in range(len(words)))
        with engine.connect() as conn:
            return conn.execute(text(f"SELECT dataset_id FROM search_docs WHERE {cond} LIMIT 20"),
                                {f"w{i}": f"%{w}%" for i, w in enumerate(words)}).fetchall()
    return run


def naive_lineage(engine: Any, depth: int) -> Callable[[int], Any]:
    def run(start: int) -> set[int]:
        seen, frontier = {start}, [start]
        with engine.connect() as conn:
            for _ in range(depth):
                nxt = []
                for node in frontier:  # one query per node per hop
                    for (src,) in conn.execute(text("SELECT src_id FROM lineage_edges WHERE dst_id = :d"), {"d": node}):
                        if src not in seen:
                            seen.add(src)
                            nxt.append(src)
                frontier = nxt
        return seen
    return run


def measure(url: str, datasets: int) -> dict[str, Any]:
    cat = Catalog(url)
    engine = create_engine(url)
    qs = queries(datasets)
    rng = random.Random(3)
    deep = [rng.randint(0, datasets // PIPELINE - 1) * PIPELINE + rng.randint(90, 100) for _ in range(50)]
    names = {}
    with engine.connect() as conn:
        ids = ",".join(map(str, deep))
        for i, n in conn.execute(text(f"SELECT id, name FROM datasets WHERE id IN ({ids})")):
            names[i] = n
    starts = [names[i] for i in deep]
    hits = [len(cat.search(q)) for q in qs]
    assert sum(1 for h in hits if h) >= len(qs) * 0.9, f"too many empty searches: {hits}"
    res: dict[str, Any] = {}
    res["search_p50_ms"], res["search_p95_ms"] = percentiles(lambda q: cat.search(q), qs, 3)
    res["naive_search_p50_ms"], res["naive_search_p95_ms"] = percentiles(naive_search(engine), qs, 1)
    for depth in (5, 10):
        res[f"lineage{depth}_p50_ms"], res[f"lineage{depth}_p95_ms"] = percentiles(
            lambda n, d=depth: cat.lineage(n, direction="upstream", depth=d), starts, 2)
        res[f"naive_lineage{depth}_p50_ms"], res[f"naive_lineage{depth}_p95_ms"] = percentiles(
            naive_lineage(engine, depth), deep, 1)
    sample = cat.lineage(starts[0], direction="upstream", depth=10)
    res["lineage10_nodes"] = len(sample.nodes)
    res["lineage10_edges"] = len(sample.edges)
    add_runs(engine, 10_000, running=100)

    def plain(_: int) -> Any:
        with cat.reading() as s:
            return views.runs(s, limit=50)

    res["runs_p50_ms"], res["runs_p95_ms"] = percentiles(lambda _: cat.runs(limit=50), list(range(50)), 2)
    res["plain_runs_p50_ms"], res["plain_runs_p95_ms"] = percentiles(plain, list(range(50)), 2)
    engine.dispose()
    cat.close()
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in res.items()}


def add_runs(engine: Any, count: int, *, running: int) -> None:
    """``count`` runs of one job; the newest ``running`` are open on another host, heartbeats fresh."""
    now = m.utcnow()
    with engine.begin() as conn:
        job_id = conn.execute(m.Job.__table__.insert().values(namespace="lake", name="bench.job", created_at=now)
                              .returning(m.Job.__table__.c.id)).scalar_one()
        rows = [{"id": f"bench-run-{i:08d}", "job_id": job_id, "started_at": now - dt.timedelta(seconds=count - i),
                 "parameters": {}, "stats": {}, "status": "running" if i >= count - running else "completed",
                 "host": "elsewhere", "pid": 1000 + i, "heartbeat_at": now}
                for i in range(count)]
        conn.execute(m.Run.__table__.insert(), rows)


def postgres_url(name: str) -> str | None:
    import socket

    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
    except OSError:
        return None
    admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def main() -> None:
    args = parse_args(__doc__ or "", default_rows=100_000, quick_rows=10_000)
    results: dict[str, Any] = {}
    work = Path(tempfile.mkdtemp(prefix="lake-bench-catalog-"))
    backends = {"sqlite": f"sqlite:///{work}/catalog.db", "postgres": postgres_url("lake_bench_catalog")}
    for backend, url in backends.items():
        if url is None:
            print(f"{backend}: not reachable, skipped")
            continue
        print(f"{backend}:")
        t = time.perf_counter()
        generate(url, args.rows)
        print(f"  generated in {time.perf_counter() - t:.1f}s")
        results[backend] = measure(url, args.rows)
        print(f"  {results[backend]}")
    worst_search = max(r["search_p95_ms"] for r in results.values())
    worst_lineage = max(r["lineage10_p95_ms"] for r in results.values())
    sq = results["sqlite"]
    emit({
        "benchmark": "catalog",
        "metric": "search_p95_ms",
        "value": worst_search,
        "unit": "ms",
        "baseline": "naive_like_scan",
        "ratio": round(sq["search_p95_ms"] / sq["naive_search_p95_ms"], 3),
        "ratio_lineage": round(sq["lineage10_p95_ms"] / sq["naive_lineage10_p95_ms"], 3),
        "lineage10_p95_ms": worst_lineage,
        "targets": {"search_p95_ms": 20, "lineage10_p95_ms": 50},
        "datasets": args.rows,
        "results": results,
    })


if __name__ == "__main__":
    main()
