"""Propagating tags: a tag such as ``pii`` marked ``propagate`` shows on every downstream dataset.

Stored, not computed at query time, so ``search --tag pii`` stays an index lookup:
a propagated row carries the dataset it came from (``source_id``); a direct tag has 0.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from catalog import models as m
from catalog.search import refresh_doc


def _propagating(session: Session) -> set[str]:
    return set(session.scalars(select(m.Tag.name).where(m.Tag.propagate.is_(True))))


def _held(session: Session, ids: set[int], tags: set[str]) -> dict[int, set[tuple[str, int]]]:
    """(tag, origin dataset) pairs each dataset holds among ``tags``."""
    out: dict[int, set[tuple[str, int]]] = {i: set() for i in ids}
    if not ids:
        return out
    rows = session.execute(
        select(m.DatasetTag.dataset_id, m.DatasetTag.tag, m.DatasetTag.source_id)
        .where(m.DatasetTag.dataset_id.in_(ids), m.DatasetTag.tag.in_(tags))
    )
    for ds, tag, source in rows:
        out[ds].add((tag, source or ds))
    return out


def propagate(session: Session, start: set[int], *, from_sources: bool = False) -> None:
    """Push propagating tags from (the parents of) ``start`` down the lineage graph.

    Args:
        start: datasets that gained a tag (``from_sources=True``: they are the sources)
            or gained an upstream edge (their parents' tags flow into them).
    """
    tags = _propagating(session)
    if not tags or not start:
        return
    session.flush()
    carry = _held(session, set(start), tags)
    if not from_sources:
        parents = session.execute(select(m.LineageEdge.src_id, m.LineageEdge.dst_id)
                                  .where(m.LineageEdge.dst_id.in_(start))).all()
        parent_pairs = _held(session, {p for p, _ in parents}, tags)
        for parent, child in parents:
            carry[child] |= parent_pairs.get(parent, set())
    frontier = carry
    seen: dict[int, set[tuple[str, int]]] = {}
    while frontier:
        nxt: dict[int, set[tuple[str, int]]] = {}
        have = _held(session, set(frontier), tags)
        for node, pairs in frontier.items():
            new = {p for p in pairs if p[1] != node and p not in have[node]}
            for tag, origin in new:
                session.add(m.DatasetTag(dataset_id=node, tag=tag, source_id=origin))
            known = seen.setdefault(node, set())
            fresh = pairs - known
            known |= pairs
            if not fresh:
                continue
            for (child,) in session.execute(select(m.LineageEdge.dst_id).where(m.LineageEdge.src_id == node)):
                nxt.setdefault(child, set()).update(fresh)
        session.flush()
        frontier = {k: v for k, v in nxt.items() if not v <= seen.get(k, set())}
    _refresh(session, set(seen))


def repropagate(session: Session, tag: str) -> None:
    """Recompute where ``tag`` propagated (after it was removed or stopped propagating)."""
    affected = set(session.scalars(select(m.DatasetTag.dataset_id)
                                   .where(m.DatasetTag.tag == tag, m.DatasetTag.source_id != 0)))
    session.execute(delete(m.DatasetTag).where(m.DatasetTag.tag == tag, m.DatasetTag.source_id != 0))
    row = session.get(m.Tag, tag)
    if row is not None and row.propagate:
        holders = set(session.scalars(select(m.DatasetTag.dataset_id).where(m.DatasetTag.tag == tag)))
        propagate(session, holders, from_sources=True)
    _refresh(session, affected)


def _refresh(session: Session, ids: set[int]) -> None:
    for ds in session.scalars(select(m.Dataset).where(m.Dataset.id.in_(ids))) if ids else []:
        refresh_doc(session, ds)
