"""Saved queries: SQL kept by name (the text only; running it is the lake's business)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog import models as m
from catalog.errors import CatalogInputError, SavedQueryNotFoundError
from catalog.redact import redact_text

QUERY_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
"""A saved query's name: lower-case letters, digits and ``_``, starting with a letter (it names the
dataset ``query.<name>``)."""
QUERY_PREFIX = "query."
MAX_SQL = 100_000
"""Characters a saved query may have."""


def check_name(name: str) -> str:
    name = name.strip().removeprefix(QUERY_PREFIX)
    if not QUERY_NAME.match(name):
        raise CatalogInputError(f"{name[:80]!r} is not a saved query name: lower-case letters, digits and _, "
                                "starting with a letter, at most 64 characters")
    return name


def query_dict(q: m.SavedQuery) -> dict[str, Any]:
    return {"name": q.name, "dataset": QUERY_PREFIX + q.name, "sql": q.sql, "description": q.description,
            "owner": q.owner, "created_at": q.created_at, "updated_at": q.updated_at}


def check_sql(sql: str) -> str:
    """The text of a query the catalog may keep: not empty, not huge, no NUL, no credential."""
    if not sql.strip() or len(sql) > MAX_SQL or "\x00" in sql:
        raise CatalogInputError(f"a saved query is 1 to {MAX_SQL} characters of SQL (no NUL)")
    if redact_text(sql) != sql:  # refused, not altered: a redacted query would no longer run
        raise CatalogInputError("the query holds what looks like a credential (a password, key or token); "
                                "secrets never go into the catalog: read the data through the lake's settings")
    return sql


def save(session: Session, name: str, sql: str, *, description: str | None, owner: str | None) -> dict[str, Any]:
    name = check_name(name)
    sql = check_sql(sql)
    description = redact_text(description) if description else description
    row = session.get(m.SavedQuery, name)
    now = m.utcnow()
    if row is None:
        row = m.SavedQuery(name=name, sql=sql, description=description, owner=owner, created_at=now, updated_at=now)
        session.add(row)
    else:
        row.sql, row.updated_at = sql, now
        if description is not None:
            row.description = description
        if owner is not None:
            row.owner = owner
    session.flush()
    return query_dict(row)


def find(session: Session, name: str) -> m.SavedQuery:
    row = session.get(m.SavedQuery, name.strip().removeprefix(QUERY_PREFIX))
    if row is None:
        raise SavedQueryNotFoundError(f"no saved query {name[:80]!r}; `lake sql --saved-list` lists them",
                                      query=name[:80])
    return row


def listing(session: Session) -> list[dict[str, Any]]:
    return [query_dict(q) for q in session.scalars(select(m.SavedQuery).order_by(m.SavedQuery.name))]
