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
from difflib import SequenceMatcher
from typing import Any

from sqlalchemy import Float, Integer, and_, exists, func, or_, select, text
from sqlalchemy.orm import Session

from catalog import models as m
from catalog.entities import SearchHit

_WORD = re.compile(r"\w+", re.UNICODE)
FIELDS = ("name", "description", "tags", "owners", "columns")
_WEIGHTS = (10.0, 1.0, 4.0, 2.0, 3.0)


def _close_enough(term: str, ratio: float) -> bool:
    # About one typo in a short word, two in a long one.
    return ratio >= (0.8 if len(term) <= 5 else 0.75)


def words(text_: str) -> list[str]:
    return [w for w in _WORD.findall(text_.lower()) if w]


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
    values["doc"] = " ".join(values[f] for f in FIELDS).lower()
    doc = session.get(m.SearchDoc, ds.id)
    if doc is None:
        session.add(m.SearchDoc(dataset_id=ds.id, **values))
    else:
        for key, value in values.items():
            if getattr(doc, key) != value:
                setattr(doc, key, value)
    session.flush()


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
    """Datasets matching ``query`` (every word, as a substring; or, failing that, closely),
    best first, narrowed by the filters. An empty query lists by filters, newest first."""
    limit = max(1, min(int(limit), 500))
    conds = _filters(tags, owner, layer, column, namespace, quality, kind)
    terms = words(query)
    if not terms:
        ids = list(session.scalars(select(m.Dataset.id).where(and_(*conds)).order_by(
            m.Dataset.updated_at.desc(), m.Dataset.name).limit(limit)))
        return _hits(session, [(i, 0.0) for i in ids], terms)
    backend = _sqlite if session.get_bind().dialect.name == "sqlite" else _postgres
    ranked = backend.exact(session, terms, conds, limit * 3)
    if len(ranked) < limit:
        seen = {i for i, _ in ranked}
        fuzzy = [(i, s) for i, s in backend.fuzzy(session, terms, conds, limit * 5) if i not in seen]
        ranked += _rescore_fuzzy(session, fuzzy, terms)
    return _hits(session, ranked, terms)[:limit]


def _rescore_fuzzy(session: Session, cands: list[tuple[int, float]], terms: list[str]) -> list[tuple[int, float]]:
    """Keep candidates where every query word is close to some word of the dataset."""
    if not cands:
        return []
    docs = dict(session.execute(select(m.SearchDoc.dataset_id, m.SearchDoc.doc)
                                .where(m.SearchDoc.dataset_id.in_([i for i, _ in cands]))).all())
    out = []
    for ds_id, _ in cands:
        vocab = set(_split(docs.get(ds_id, "")))
        score = 0.0
        for term in terms:
            best = max((SequenceMatcher(None, term, w).ratio() for w in vocab), default=0.0)
            if not _close_enough(term, best):
                break
            score += best
        else:
            out.append((ds_id, score / len(terms)))
    out.sort(key=lambda r: -r[1])
    return out


def _hits(session: Session, ranked: list[tuple[int, float]], terms: list[str]) -> list[SearchHit]:
    if not ranked:
        return []
    ids = [i for i, _ in ranked]
    rows = {d.id: d for d in session.scalars(select(m.Dataset).where(m.Dataset.id.in_(ids)))}
    docs = {d.dataset_id: d for d in session.scalars(select(m.SearchDoc).where(m.SearchDoc.dataset_id.in_(ids)))}
    tags: dict[int, set[str]] = {}
    for ds, tag in session.execute(select(m.DatasetTag.dataset_id, m.DatasetTag.tag).where(m.DatasetTag.dataset_id.in_(ids))):
        tags.setdefault(ds, set()).add(tag)
    owners: dict[int, list[str]] = {}
    for ds, owner in session.execute(select(m.DatasetOwner.dataset_id, m.DatasetOwner.owner)
                                     .where(m.DatasetOwner.dataset_id.in_(ids))):
        owners.setdefault(ds, []).append(owner)
    quality: dict[int, bool] = {}
    for ds, ok in session.execute(
        select(m.QualityResult.dataset_id, func.min(m.QualityResult.success.cast(Integer)))
        .join(m.Dataset, m.Dataset.id == m.QualityResult.dataset_id)
        .where(m.QualityResult.dataset_id.in_(ids), m.QualityResult.version == m.Dataset.current_version)
        .group_by(m.QualityResult.dataset_id)
    ):
        quality[ds] = bool(ok)
    hits = []
    for ds_id, score in ranked:
        d, doc = rows.get(ds_id), docs.get(ds_id)
        if d is None:
            continue
        matched = [f for f in FIELDS if doc is not None and any(t in str(getattr(doc, f)).lower() for t in terms)]
        bonus = 0.0
        name = d.name.lower()
        if terms and " ".join(terms) in (name, name.replace(".", " "), name.split(".")[-1]):
            bonus = 100.0
        elif terms and all(t in name for t in terms):
            bonus = 10.0
        hits.append(SearchHit(
            namespace=d.namespace, name=d.name, layer=d.layer, description=d.description,
            score=round(score + bonus, 4), tags=sorted(tags.get(ds_id, set())), owners=sorted(owners.get(ds_id, [])),
            matched=matched or (["similar"] if terms else []), current_version=d.current_version,
            quality=None if ds_id not in quality else ("passed" if quality[ds_id] else "failed"),
        ))
    hits.sort(key=lambda h: (-h.score, h.name))
    return hits


def suggest(session: Session, name: str, limit: int = 3) -> list[str]:
    """Names close to a mistyped one, for "did you mean" hints."""
    hits = search(session, name, limit=limit)
    return [h.name for h in hits if h.name != name]


def _trigrams(term: str) -> list[str]:
    return [term[i : i + 3] for i in range(len(term) - 2)] if len(term) >= 3 else []


class _sqlite:  # noqa: N801 - a namespace of the two SQLite queries
    @staticmethod
    def exact(session: Session, terms: list[str], conds: list[Any], k: int) -> list[tuple[int, float]]:
        long_terms = [t for t in terms if len(t) >= 3]
        short = [t for t in terms if len(t) < 3]
        where = list(conds)
        for t in short:  # the trigram index cannot look up 1-2 letter words
            where.append(m.SearchDoc.doc.like(f"%{_escape_like(t)}%", escape="\\"))
        if not long_terms:
            q = (select(m.Dataset.id).join(m.SearchDoc, m.SearchDoc.dataset_id == m.Dataset.id)
                 .where(and_(*where)).order_by(func.length(m.Dataset.name)).limit(k))
            return [(i, 1.0) for i in session.scalars(q)]
        match = " AND ".join(f'"{t}"' for t in long_terms)
        return _sqlite._fts(session, match, where, k)

    @staticmethod
    def fuzzy(session: Session, terms: list[str], conds: list[Any], k: int) -> list[tuple[int, float]]:
        grams = sorted({g for t in terms for g in _trigrams(t)})
        if not grams:
            return []
        return _sqlite._fts(session, " OR ".join(f'"{g}"' for g in grams), conds, k)

    @staticmethod
    def _fts(session: Session, match: str, conds: list[Any], k: int) -> list[tuple[int, float]]:
        weights = ", ".join(str(w) for w in _WEIGHTS)
        if not conds:
            fts = text(f"SELECT rowid AS id, bm25(search_fts, {weights}) AS rank FROM search_fts "
                       "WHERE search_fts MATCH :match ORDER BY rank LIMIT :k")
            return [(int(i), -float(r)) for i, r in session.execute(fts, {"match": match, "k": k})]
        # With filters, rank every match: a LIMIT before filtering could drop the only hits.
        fts = text(f"SELECT rowid AS id, bm25(search_fts, {weights}) AS rank FROM search_fts "
                   "WHERE search_fts MATCH :match").bindparams(match=match)
        sub = fts.columns(id=Integer, rank=Float).subquery()  # type: ignore[attr-defined]
        q = (select(sub.c.id, sub.c.rank).join(m.Dataset, m.Dataset.id == sub.c.id)
             .join(m.SearchDoc, m.SearchDoc.dataset_id == sub.c.id)
             .where(and_(*conds)).order_by(sub.c.rank).limit(k))
        return [(int(i), -float(r)) for i, r in session.execute(q)]


class _postgres:  # noqa: N801 - a namespace of the two PostgreSQL queries
    @staticmethod
    def exact(session: Session, terms: list[str], conds: list[Any], k: int) -> list[tuple[int, float]]:
        doc = m.SearchDoc
        likes = [doc.doc.like(f"%{_escape_like(t)}%", escape="\\") for t in terms]
        q_text = " ".join(terms)
        rank = func.similarity(doc.name, q_text) * 3 + func.word_similarity(q_text, doc.doc)
        q = (select(doc.dataset_id, rank).join(m.Dataset, m.Dataset.id == doc.dataset_id)
             .where(and_(*likes, *conds)).order_by(rank.desc()).limit(k))
        return [(int(i), float(r)) for i, r in session.execute(q)]

    @staticmethod
    def fuzzy(session: Session, terms: list[str], conds: list[Any], k: int) -> list[tuple[int, float]]:
        doc = m.SearchDoc
        session.execute(text("SET LOCAL pg_trgm.word_similarity_threshold = 0.45"))
        close = [doc.doc.op("%>")(t) for t in terms if len(t) >= 3]
        if not close:
            return []
        rank = sum((func.word_similarity(t, doc.doc) for t in terms), start=func.similarity(doc.name, " ".join(terms)))
        q = (select(doc.dataset_id, rank).join(m.Dataset, m.Dataset.id == doc.dataset_id)
             .where(or_(*close), *conds).order_by(rank.desc()).limit(k))
        return [(int(i), float(r)) for i, r in session.execute(q)]


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
