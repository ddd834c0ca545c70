"""Ranked, typo-tolerant search over names, descriptions, tags, owners and column names.

SQLite: an FTS5 table with the trigram tokenizer (substring matches for partial
words, BM25 ranking with the name weighted highest). PostgreSQL: pg_trgm GIN
indexes (``LIKE`` for substrings, word similarity for typos). Both go the same two
steps: exact substring matches of every word first; only when those are too few,
trigram-similar matches (typos), re-ranked by how close the closest word is.
Query text only ever reaches the database as bound parameters or as quoted
trigram terms built from word characters, so any input is safe.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

from sqlalchemy import Column as SAColumn
from sqlalchemy import (
    Float,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    exists,
    func,
    literal,
    or_,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Session

from catalog import models as m
from catalog.db import among
from catalog.entities import SearchHit
from catalog.redact import redact_text

_WORD = re.compile(r"\w+", re.UNICODE)
FIELDS = ("name", "description", "tags", "owners", "columns")
_WEIGHTS = (10.0, 1.0, 4.0, 2.0, 3.0)
RANK_CAP = 1000
COMPOUND = 200
"""Words looked up per statement (SQLite refuses more than 500 SELECTs in one UNION)."""
MAX_CORRECTED = 8
"""At most this many words of a query are typo-corrected."""


def _close_enough(term: str, ratio: float) -> bool:
    # About one typo in a short word, two in a long one.
    return ratio >= (0.8 if len(term) <= 5 else 0.75)


def words(text_: str) -> list[str]:
    """The searchable words of a query, lower-cased, each once, in order (``_`` joins parts of a word)."""
    return list(dict.fromkeys(w for w in _WORD.findall(text_.lower()) if _parts(w)))


@dataclass(frozen=True)
class SearchQuery:
    """A query as search reads it: its words, and a note when there is text but nothing to search for."""

    text: str
    words: list[str]

    @property
    def note(self) -> str | None:
        if self.words or not self.text.strip():
            return None
        return redact_text(f"nothing to search for in {self.text[:40]!r}: search matches words (letters and "
                           "digits); punctuation, symbols, _ and % are separators, never wildcards")


def parse_query(text_: str) -> SearchQuery:
    """How :func:`search` reads ``text_``: ``''`` lists by filters; text without words finds nothing."""
    return SearchQuery(text_, words(text_))


def _split(name: str) -> list[str]:
    return [w for w in re.split(r"[\W_]+", name.lower()) if w]


def refresh_doc(session: Session, ds: m.Dataset) -> None:
    """Rebuild the search text of one dataset (the indexes follow)."""
    session.flush()
    tags = sorted(set(session.scalars(select(m.DatasetTag.tag).where(m.DatasetTag.dataset_id == ds.id))))
    owners = sorted(session.scalars(select(m.DatasetOwner.owner).where(m.DatasetOwner.dataset_id == ds.id)))
    cols = session.execute(select(m.Column.id, m.Column.name, m.Column.description)
                           .where(m.Column.dataset_id == ds.id).order_by(m.Column.position)).all()
    col_tags = dict(
        session.execute(select(m.ColumnTag.column_id, func.min(m.ColumnTag.tag))
                        .where(m.ColumnTag.column_id.in_([c.id for c in cols])).group_by(m.ColumnTag.column_id)).all()
    ) if cols else {}
    columns = " ".join(
        " ".join(filter(None, [c.name, c.description or "", col_tags.get(c.id, "")])) for c in cols
    )
    values = {
        "name": ds.name,
        "description": ds.description or "",
        "tags": " ".join(tags),
        "owners": " ".join(owners),
        "columns": columns,
    }
    # What is stored is redacted anyway (catalog.db); the vocabulary must not learn a password's words either.
    values = {k: redact_text(v) for k, v in values.items()}
    values["doc"] = " ".join(values[f] for f in FIELDS).lower()
    doc = session.get(m.SearchDoc, ds.id)
    if doc is None:
        session.add(m.SearchDoc(dataset_id=ds.id, **values))
    else:
        for key, value in values.items():
            if getattr(doc, key) != value:
                setattr(doc, key, value)
    session.flush()
    terms = vocabulary(values)
    if terms:
        dialect = session.get_bind().dialect.name
        insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(m.SearchTerm)
        stmt = insert.values([{"term": t, "in_name": n} for t, n in sorted(terms.items())])
        session.execute(stmt.on_conflict_do_update(
            index_elements=["term"], set_={"in_name": or_(m.SearchTerm.in_name, stmt.excluded.in_name)}))


def _filters(
    tags: Sequence[str], owner: str | None, layer: str | None, column: str | None, namespace: str | None,
    quality: str | None, kind: str | None,
) -> list[Any]:
    d = m.Dataset
    conds: list[Any] = []
    for tag in tags:
        conds.append(exists().where(m.DatasetTag.dataset_id == d.id, m.DatasetTag.tag == tag))
    if owner:
        conds.append(exists().where(m.DatasetOwner.dataset_id == d.id, m.DatasetOwner.owner == owner))
    if layer:
        conds.append(d.layer == layer.lower())
    if namespace:
        conds.append(d.namespace == namespace)
    if kind:
        conds.append(d.kind == kind)
    if column:
        conds.append(exists().where(m.Column.dataset_id == d.id, func.lower(m.Column.name) == column.lower()))
    if quality in ("failed", "passed"):
        q = m.QualityResult
        conds.append(exists().where(q.dataset_id == d.id, q.version == d.current_version,
                                    q.success.is_(quality == "passed")))
    return conds


def search(
    session: Session,
    query: str = "",
    *,
    tags: Sequence[str] = (),
    owner: str | None = None,
    layer: str | None = None,
    column: str | None = None,
    namespace: str | None = None,
    quality: str | None = None,
    kind: str | None = None,
    limit: int = 20,
) -> list[SearchHit]:
    """Datasets matching ``query`` (every word, as a substring; or, failing that, a close word),
    best first, narrowed by the filters. An empty query lists by filters, newest first."""
    limit = max(1, min(int(limit), 500))
    conds = _filters(tags, owner, layer, column, namespace, quality, kind)
    parsed = parse_query(query)
    terms = parsed.words
    if parsed.note:
        return []  # '%', '*', an emoji: nothing to search for (not everything)
    if not terms:
        ids = list(session.scalars(select(m.Dataset.id).where(and_(true(), *conds)).order_by(
            m.Dataset.updated_at.desc(), m.Dataset.name).limit(limit)))
        return _hits(session, [(i, 0.0) for i in ids], terms, limit)
    backend = _sqlite if session.get_bind().dialect.name == "sqlite" else _postgres
    reach = _reach(session, terms)
    # A word that starts no word of the vocabulary cannot match: skip straight to typos.
    unknown = [t for t, r in reach.items() if r is not None and not r[0]]
    ranked = [] if unknown else _staged(session, backend, [[t] for t in terms], conds, limit,
                                        names=all(r is None or r[1] for r in reach.values()))
    if not ranked:
        # Correct the words the vocabulary lacks against it (a few of them: a long query of unknown
        # words would cost a lookup each for a result that stays empty), and retry.
        fix = set((unknown or terms)[:MAX_CORRECTED])
        groups = [[t, *corrections(session, t)] if t in fix else [t] for t in terms]
        if any(len(g) > 1 for g in groups):
            ranked = [(i, score * 0.5) for i, score in _staged(session, backend, groups, conds, limit)]
    return _hits(session, ranked, terms, limit)


def _reach(session: Session, terms: list[str]) -> dict[str, tuple[bool, bool] | None]:
    """For each word: do vocabulary words start with it, and is one in a dataset name?

    ``None`` for words the vocabulary does not hold (numbers, 1-2 letters, snake_case).
    One round trip: an index range scan per word.
    """
    out: dict[str, tuple[bool, bool] | None] = {t: None for t in terms}
    words_ = [t for t in dict.fromkeys(terms) if t.isalpha() and len(t) >= 3]
    if not words_:
        return out
    col: Any = m.SearchTerm.term
    if session.get_bind().dialect.name == "postgresql":
        col = col.collate("C")  # byte order, served by ix_search_terms_prefix
    # SQLite allows at most 500 terms in a compound SELECT: a round trip per COMPOUND words.
    for start in range(0, len(words_), COMPOUND):
        parts = [
            select(literal(i).label("i"), func.count().label("n"),
                   func.max(m.SearchTerm.in_name.cast(Integer)).label("names"))
            .where(col >= w, col < w + "\uffff")
            for i, w in enumerate(words_[start:start + COMPOUND], start=start)
        ]
        for i, n, names in session.execute(union_all(*parts)):
            out[words_[i]] = (bool(n), bool(names))
    return out


def _staged(session: Session, backend: Any, groups: list[list[str]], conds: list[Any],
            limit: int, names: bool = True) -> list[tuple[int, float]]:
    """Matches in names first (ranked); only if too few, matches anywhere else.

    ``names=False`` skips the first step when no dataset name holds the words.
    """
    ranked = backend.match(session, groups, conds, limit * 3, names_only=True) if names else []
    if len(ranked) < limit:
        seen = {i for i, _ in ranked}
        ranked += [(i, score * 0.5) for i, score in backend.match(session, groups, conds, limit * 3)
                   if i not in seen]
    return ranked


def vocabulary(values: dict[str, str]) -> dict[str, bool]:
    """The words a search document contributes to the vocabulary -> whether the name holds it."""
    out: dict[str, bool] = {}
    for field in FIELDS:
        for token in _WORD.findall(values[field].lower()):
            for word in {token, *_split(token)}:
                if 3 <= len(word) <= 64 and word.isalpha():
                    out[word] = out.get(word, False) or field == "name"
    return out


def corrections(session: Session, term: str, k: int = 3) -> list[str]:
    """Vocabulary words within a typo or two of ``term`` (closest first), ``term`` excluded."""
    if len(term) < 4 or not term.isalpha():  # ids and snake_case names are not typo-corrected
        return []
    if session.get_bind().dialect.name == "sqlite":
        grams = " OR ".join(f'"{g}"' for g in sorted(set(_trigrams(term))))
        rows = session.execute(text("SELECT term FROM terms_fts WHERE terms_fts MATCH :m ORDER BY rank LIMIT 40"),
                               {"m": grams})
    else:
        rows = session.execute(text("SELECT term FROM search_terms WHERE term % :t "
                                    "ORDER BY similarity(term, :t) DESC LIMIT 40"), {"t": term})
    scored = [(SequenceMatcher(None, term, w).ratio(), w) for (w,) in rows if w != term]
    close = [w for r, w in sorted(scored, reverse=True) if _close_enough(term, r)][:k]
    # "session" already matches "sessions": keep only words no other candidate is part of.
    return [w for w in close if not any(o != w and o in w for o in close)]


def _name_bonus(name: str, terms: list[str]) -> float:
    name = name.lower()
    if terms and " ".join(terms) in (name, name.replace(".", " "), name.split(".")[-1]):
        return 100.0
    if terms and all(t in name for t in terms):
        return 10.0
    return 0.0


def _hits(session: Session, ranked: list[tuple[int, float]], terms: list[str], limit: int) -> list[SearchHit]:
    """Re-rank candidates (names matching the query first) and describe the best ``limit``."""
    if not ranked:
        return []
    d = m.Dataset
    doc_cols = [getattr(m.SearchDoc, f).label(f"doc_{f}") for f in FIELDS] if terms else []
    rows = {r.id: r for r in session.execute(
        select(d.id, d.namespace, d.name, d.layer, d.description, d.current_version, d.kind, *doc_cols)
        .outerjoin(m.SearchDoc, m.SearchDoc.dataset_id == d.id)
        .where(among(session, d.id, [i for i, _ in ranked]))).all()}
    scored = sorted(((score + _name_bonus(rows[i].name, terms), i) for i, score in ranked if i in rows),
                    key=lambda r: (-r[0], rows[r[1]].name))[:limit]
    ids = [i for _, i in scored]
    tags: dict[int, set[str]] = {}
    owners: dict[int, list[str]] = {}
    quality: dict[int, bool] = {}
    # Tags, owners and quality of the current version in one round trip.
    q = m.QualityResult
    facts = union_all(
        select(m.DatasetTag.dataset_id, literal("t").label("k"), m.DatasetTag.tag.label("v"))
        .where(among(session, m.DatasetTag.dataset_id, ids)),
        select(m.DatasetOwner.dataset_id, literal("o"), m.DatasetOwner.owner)
        .where(among(session, m.DatasetOwner.dataset_id, ids)),
        select(q.dataset_id, literal("q"), func.min(q.success.cast(Integer)).cast(String))
        .join(d, d.id == q.dataset_id).where(among(session, q.dataset_id, ids), q.version == d.current_version)
        .group_by(q.dataset_id),
    )
    for ds, kind, value in session.execute(facts).all():
        if kind == "t":
            tags.setdefault(ds, set()).add(value)
        elif kind == "o":
            owners.setdefault(ds, []).append(value)
        else:
            quality[ds] = value == "1"
    hits = []
    for score, ds_id in scored:
        r = rows[ds_id]
        matched = [f for f in FIELDS if terms and any(t in str(getattr(r, f"doc_{f}") or "").lower() for t in terms)]
        hits.append(SearchHit(
            namespace=r.namespace, name=r.name, layer=r.layer, description=r.description, score=round(score, 4),
            tags=sorted(tags.get(ds_id, set())), owners=sorted(owners.get(ds_id, [])),
            matched=matched or (["similar"] if terms else []), current_version=r.current_version,
            quality=None if ds_id not in quality else ("passed" if quality[ds_id] else "failed"), kind=r.kind,
        ))
    return hits


def suggest(session: Session, name: str, limit: int = 3) -> list[str]:
    """Names close to a mistyped one, for "did you mean" hints."""
    hits = search(session, name, limit=limit)
    return [h.name for h in hits if h.name != name]


def _trigrams(term: str) -> list[str]:
    return [term[i : i + 3] for i in range(len(term) - 2)] if len(term) >= 3 else []


def _parts(word: str) -> list[str]:
    """A query word as the word index sees it (``customer_orders`` -> customer, orders)."""
    return [p for p in re.split(r"[\W_]+", word) if p]


class _sqlite:  # noqa: N801 - a namespace for the SQLite query
    @staticmethod
    def match(session: Session, groups: list[list[str]], conds: list[Any], k: int,
              names_only: bool = False) -> list[tuple[int, float]]:
        """Datasets with, for every group, one of its words as a word prefix (FTS5, BM25-ranked)."""
        clauses = []
        for group in groups:
            alts = []
            for w in group:
                parts = _parts(w)
                if parts:
                    alts.append(" ".join(f'"{p}"' for p in parts) + "*")
            if alts:
                clauses.append("(" + " OR ".join(f"({a.strip()})" for a in alts) + ")")
        if not clauses:
            return []
        query = " AND ".join(clauses)
        return _sqlite._fts(session, f"name : ({query})" if names_only else query, conds, k)

    @staticmethod
    def _fts(session: Session, match: str, conds: list[Any], k: int) -> list[tuple[int, float]]:
        weights = ", ".join(str(w) for w in _WEIGHTS)
        if not conds:
            # A word half the catalog contains: BM25-ranking every match costs tens of
            # milliseconds and orders near-ties, so past RANK_CAP matches take them as stored.
            probe = text("SELECT rowid FROM search_fts WHERE search_fts MATCH :match LIMIT :cap")
            ids = [int(i) for (i,) in session.execute(probe, {"match": match, "cap": RANK_CAP})]
            if len(ids) == RANK_CAP:
                return [(i, 0.0) for i in ids[:k]]
            fts = text(f"SELECT rowid AS id, bm25(search_fts, {weights}) AS rank FROM search_fts "
                       "WHERE search_fts MATCH :match ORDER BY rank LIMIT :k")
            return [(int(i), -float(r)) for i, r in session.execute(fts, {"match": match, "k": k})]
        # With filters, filter first (a cap before filtering could drop the only hits).
        fts = text(f"SELECT rowid AS id, bm25(search_fts, {weights}) AS rank FROM search_fts "
                   "WHERE search_fts MATCH :match").bindparams(match=match)
        sub = fts.columns(id=Integer, rank=Float).subquery()  # type: ignore[attr-defined]
        q = (select(sub.c.id, sub.c.rank).join(m.Dataset, m.Dataset.id == sub.c.id)
             .where(and_(*conds)).order_by(sub.c.rank).limit(k))
        return [(int(i), -float(r)) for i, r in session.execute(q)]


class _postgres:  # noqa: N801 - a namespace for the PostgreSQL query
    @staticmethod
    def match(session: Session, groups: list[list[str]], conds: list[Any], k: int,
              names_only: bool = False) -> list[tuple[int, float]]:
        """Datasets with, for every group, one of its words as a word prefix (weighted tsvector, GIN)."""
        clauses = []
        for group in groups:
            alts = []
            for w in group:
                parts = [p.replace("'", "") for p in _parts(w)]
                if parts:
                    alts.append("(" + " & ".join([*(f"'{p}'" for p in parts[:-1]), f"'{parts[-1]}':*"]) + ")")
            if alts:
                clauses.append("(" + " | ".join(alts) + ")")
        if not clauses:
            return []
        col = _PG_DOCS.c.name_tsv if names_only else _PG_DOCS.c.doc_tsv
        tsq = func.to_tsquery("simple", " & ".join(clauses))
        # Rank at most the first RANK_CAP matches (filters applied first): ranking every row
        # of a word half the catalog contains is what makes naive search slow.
        ranking = select(_PG_DOCS.c.dataset_id, func.ts_rank(col, tsq).label("r"))
        if conds:  # the filters name the datasets' columns (a search doc always has its dataset)
            ranking = ranking.join(m.Dataset, m.Dataset.id == _PG_DOCS.c.dataset_id)
        matches = ranking.where(col.op("@@")(tsq), *conds).limit(RANK_CAP).subquery()
        q = select(matches.c.dataset_id, matches.c.r).order_by(matches.c.r.desc(), matches.c.dataset_id).limit(k)
        return [(int(i), float(r)) for i, r in session.execute(q)]


# The PostgreSQL-only generated columns of search_docs (created by the migration).
_PG_DOCS = Table("search_docs", MetaData(), SAColumn("dataset_id", Integer), SAColumn("name_tsv", TSVECTOR),
                 SAColumn("doc_tsv", TSVECTOR))


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
