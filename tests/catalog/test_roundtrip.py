"""Arbitrary text through the catalog on SQLite and PostgreSQL: stored and found back as given.

Quotes, backslashes, semicolons, SQL comments, newlines, LIKE and FTS operators, NUL, very long
strings, any unicode: as dataset names, namespaces, tags, owners, descriptions, column names and
search strings. What comes back is the value (redacted, trimmed where the catalog trims), or a
:class:`~catalog.errors.CatalogInputError` naming the problem, the same on both backends;
never a database error, and the schema is intact afterwards.
"""

from __future__ import annotations

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect

from catalog.entities import ColumnSpec
from catalog.errors import CatalogInputError
from catalog.redact import redact_text
from catalog.store import Catalog

HOSTILE = ["'", '"', "\\", ";", "--", "/*", "*/", "\n", "\r\n", "\t", "%", "_", "*", "(", ")", "NEAR", "OR", "AND",
           "NOT", ":", "'; DROP TABLE datasets; --", "\" OR 1=1 --", "$$", "\\x00", "é", "ß", "☃", "🙂", "\u202e",
           "\ufeff", "\u0000"]
TEXT = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(HOSTILE) | st.text(max_size=5), max_size=8).map("".join),
    st.integers(min_value=100, max_value=800).map(lambda n: "x;'\\" * n),  # very long
)
BUDGET = settings(max_examples=30, deadline=5000, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                         HealthCheck.too_slow])
TABLES = {"datasets", "dataset_owners", "dataset_tags", "tags", "columns", "search_docs", "runs", "api_tokens"}


def intact(catalog: Catalog) -> None:
    assert set(inspect(catalog.engine).get_table_names()) >= TABLES


@BUDGET
@given(name=TEXT, namespace=TEXT, description=TEXT, owner=TEXT, tag=TEXT, column=TEXT)
def test_any_text_round_trips(catalog: Catalog, name: str, namespace: str, description: str, owner: str, tag: str,
                              column: str) -> None:
    assume(name.strip() and namespace.strip())
    try:
        catalog.register_dataset(name, namespace=namespace, description=description,
                                 columns=[ColumnSpec(column or "c", "string", description=description)],
                                 owners=[owner], tags=[tag])
    except CatalogInputError as exc:
        values = [name, namespace, description, owner, tag, column]
        problem = (any("\x00" in v for v in values) or not owner.strip() or not tag.strip()
                   or len(name) > 512 or len(namespace) > 255 or len(owner.strip()) > 255 or len(tag.strip()) > 128
                   or len(column) > 512)
        assert problem, exc.message
        intact(catalog)
        return
    shown = catalog.show(name, namespace=namespace)
    assert shown["name"] == redact_text(name) and shown["namespace"] == redact_text(namespace)
    assert shown["description"] == redact_text(description)
    # (Examples share the catalog: the same name may have owners and tags from an earlier one.)
    assert redact_text(owner.strip()) in shown["owners"]
    assert redact_text(tag.strip()) in shown["tags"]
    assert [c["name"] for c in shown["schema"]] == [redact_text(column or "c")]
    # Found by the filters (exact values), and by its name's words; any search text is safe.
    hits = catalog.search("", namespace=namespace, owner=owner.strip(), tags=[tag.strip()], limit=500)
    assert redact_text(name) in {h.name for h in hits}
    catalog.search(description, limit=5)
    catalog.search(name, limit=5)
    catalog.search(tag)
    intact(catalog)


@BUDGET
@given(query=TEXT)
def test_any_search_text_is_safe(catalog: Catalog, query: str) -> None:
    catalog.register_dataset("bronze.orders", description="orders from the shop")
    try:
        hits = catalog.search(query)
    except CatalogInputError:
        assert "\x00" in query  # on PostgreSQL the filter value cannot hold NUL either: refused alike
        return
    assert all(h.name for h in hits)
    assert catalog.counts()["datasets"] == 1
    intact(catalog)
