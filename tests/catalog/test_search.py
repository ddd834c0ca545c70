"""Search: ranked, partial words, typos, filters, any text safe. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.entities import ColumnSpec, VersionRecord
from catalog.store import Catalog
from tests.catalog.helpers import build_graph


@pytest.fixture
def filled(catalog: Catalog) -> Catalog:
    build_graph(catalog)
    catalog.register_dataset("gold.revenue_daily", description="Revenue per day and country, in EUR",
                             columns=[ColumnSpec("day", "date"), ColumnSpec("revenue_eur", "double")],
                             owners=["finance"], tags=["kpi"])
    catalog.register_dataset("silver.web_sessions", description="Sessionized clickstream",
                             columns=[ColumnSpec("session_id"), ColumnSpec("user_agent")], owners=["web-team"])
    catalog.register_dataset("bronze.invoices", namespace="erp", description="Raw invoices from the ERP")
    catalog.tag("silver.customers", "gdpr")
    return catalog


def names(hits: list) -> list[str]:
    return [h.name for h in hits]


def test_exact_name_ranks_first_and_partial_words_match(filled: Catalog) -> None:
    hits = filled.search("customer_stats")
    assert names(hits)[0] == "gold.customer_stats"
    assert set(names(filled.search("custom"))) >= {"bronze.customers", "silver.customers", "gold.customer_stats"}
    assert names(filled.search("revenue"))[0] == "gold.revenue_daily"
    assert names(filled.search("sessions"))[:1] == ["silver.web_sessions"]


def test_typos_still_find(filled: Catalog) -> None:
    assert "gold.revenue_daily" in names(filled.search("revnue"))
    assert "silver.web_sessions" in names(filled.search("sesions"))
    assert names(filled.search("custmer stats"))[0] == "gold.customer_stats"
    assert filled.search("zzzzqqqq") == []


def test_descriptions_owners_tags_and_columns_are_searched(filled: Catalog) -> None:
    hit = filled.search("clickstream")[0]
    assert hit.name == "silver.web_sessions" and "description" in hit.matched
    assert names(filled.search("user_agent")) == ["silver.web_sessions"]
    assert "columns" in filled.search("user_agent")[0].matched
    assert names(filled.search("finance")) == ["gold.revenue_daily"]
    assert "silver.customers" in names(filled.search("gdpr"))


def test_filters(filled: Catalog) -> None:
    assert set(names(filled.search("", layer="gold"))) == {"gold.customer_stats", "gold.churn_features",
                                                           "gold.revenue_daily"}
    assert names(filled.search("", tags=["kpi"])) == ["gold.revenue_daily"]
    assert names(filled.search("revenue", owner="finance")) == ["gold.revenue_daily"]
    assert names(filled.search("revenue", owner="web-team")) == []
    assert set(names(filled.search("", column="country"))) == {"bronze.customers", "silver.customers",
                                                              "gold.customer_stats"}
    assert names(filled.search("invoices", namespace="erp")) == ["bronze.invoices"]
    assert names(filled.search("invoices", namespace="lake")) == []
    assert names(filled.search("customers", layer="silver", tags=["gdpr"])) == ["silver.customers"]


def test_quality_filter(filled: Catalog) -> None:
    filled.record_quality("silver.customers", 0, "customers_suite", False, results=[{"expectation": "not_null",
                                                                                  "success": False}])
    filled.record_quality("gold.customer_stats", 0, "stats_suite", True)
    assert names(filled.search("", quality="failed")) == ["silver.customers"]
    assert names(filled.search("", quality="passed")) == ["gold.customer_stats"]
    assert filled.search("silver.customers")[0].quality == "failed"


WEIRD = ["'; DROP TABLE datasets; --", '"', "*", "NEAR(a b)", "a OR b AND", "%_%", "\\", "ü∂ß ☃", "col:val",
         "", "   ", "a", "ab", "(((", "-"]


@pytest.mark.parametrize("query", WEIRD)
def test_any_query_text_is_safe(filled: Catalog, query: str) -> None:
    hits = filled.search(query)
    assert isinstance(hits, list)
    assert filled.counts()["datasets"] == 8  # nothing was dropped


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=40))
def test_arbitrary_text_never_crashes(filled: Catalog, query: str) -> None:
    for hit in filled.search(query, limit=5):
        assert hit.name


def test_many_versions_do_not_change_search(catalog: Catalog) -> None:
    for v in range(5):
        catalog.record_version("bronze.events", VersionRecord(v, [ColumnSpec("id"), ColumnSpec(f"c{v}")]))
    hit = catalog.search("events")[0]
    assert hit.name == "bronze.events" and hit.current_version == 4
    assert names(catalog.search("", column="c4")) == ["bronze.events"]
    assert catalog.search("", column="c0") == []  # columns follow the current version


@pytest.mark.parametrize("query", ["'", "%", "*", "_", "__", "%_%", "🙂", "😀 🚀", "-- ;", "\\", '"'])
def test_a_query_with_no_words_finds_nothing_and_says_so(filled: Catalog, query: str) -> None:
    from catalog.search import parse_query

    assert filled.search(query) == []
    note = parse_query(query).note
    assert note is not None and "nothing to search for" in note
    assert parse_query("").note is None and parse_query("   ").note is None  # blank: list by filters
    assert len(filled.search("")) == 8


def test_underscore_and_percent_are_never_wildcards(filled: Catalog) -> None:
    # A LIKE would read '%' as anything and '_' as any character: here they only separate words.
    assert names(filled.search("revenue%")) == names(filled.search("revenue")) == ["gold.revenue_daily"]
    assert names(filled.search("revenue_daily")) == ["gold.revenue_daily"]
    assert "gold.revenue_daily" not in names(filled.search("rev%daily%x"))


def test_any_number_of_words(filled: Catalog) -> None:
    import random
    import string

    rng = random.Random(3)
    vocab = ["".join(rng.choice(string.ascii_lowercase) for _ in range(7)) for _ in range(700)]
    filled.register_dataset("bronze.wordy", description=" ".join(vocab))
    assert names(filled.search(" ".join(vocab))) == ["bronze.wordy"]  # 700 words, every one must match
    assert filled.search(" ".join(vocab) + " customers") == []
    assert filled.search(" ".join(f"{w}x" for w in vocab)) == []  # 700 unknown words: typo lookups bounded
    assert names(filled.search(" ".join(["revenue"] * 2000))) == ["gold.revenue_daily"]
