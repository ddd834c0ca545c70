"""Training datasets and monitoring reports: the artifacts handed to training and monitoring."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from catalog import models as m
from catalog.errors import TrainingDatasetNotFoundError
from catalog.redact import redact

# Defined in catalog.errors with the other catalog errors; still importable from here because
# lake/handoff/load.py and tests/lake/features/test_training.py import it from this module.
__all__ = ["TrainingDatasetNotFoundError", "add_training", "find_training", "list_reports", "list_training",
           "report_dict", "training_dict"]


def training_dict(t: m.TrainingDataset) -> dict[str, Any]:
    return {
        "id": t.id, "name": t.name, "version": t.version, "features": list(t.features or []),
        "feature_service": t.feature_service, "sources": dict(t.sources or {}),
        "entity_location": t.entity_location, "entity_hash": t.entity_hash, "content_hash": t.content_hash,
        "row_count": t.row_count, "columns": list(t.columns or []), "options": dict(t.options or {}),
        "run_id": t.run_id, "created_at": t.created_at,
    }


def add_training(session: Session, dataset_id: int | None, values: dict[str, Any]) -> None:
    session.add(m.TrainingDataset(dataset_id=dataset_id, created_at=m.utcnow(),
                                  **{k: redact(v) if k == "options" else v for k, v in values.items()}))


def find_training(session: Session, ref: str) -> m.TrainingDataset:
    """By id (or a unique id prefix of 6+ characters), else the newest with that name."""
    row = session.get(m.TrainingDataset, ref)
    if row is not None:
        return row
    name = ref.removeprefix("training.")
    match = m.TrainingDataset.name == name
    if len(ref) >= 6:
        match = or_(match, m.TrainingDataset.id.startswith(ref, autoescape=True))
    candidates = list(session.scalars(
        select(m.TrainingDataset).where(match).order_by(m.TrainingDataset.created_at.desc())))
    by_name = [c for c in candidates if c.name == name]
    if by_name:
        return by_name[0]
    if len(candidates) == 1:
        return candidates[0]
    if len(candidates) > 1:
        raise TrainingDatasetNotFoundError(
            f"{ref!r} matches {len(candidates)} training datasets; give more of the id", dataset=ref)
    raise TrainingDatasetNotFoundError(
        f"no training dataset {ref!r}; `lake training list` shows the saved ones", dataset=ref)


def list_training(session: Session, name: str | None, limit: int) -> list[dict[str, Any]]:
    q = select(m.TrainingDataset).order_by(m.TrainingDataset.created_at.desc()).limit(limit)
    if name:
        q = q.where(m.TrainingDataset.name == name.removeprefix("training."))
    return [training_dict(t) for t in session.scalars(q)]


def report_dict(r: m.Report, dataset: str | None) -> dict[str, Any]:
    return {"id": r.id, "kind": r.kind, "dataset": dataset, "version": None if r.version == m.UNKNOWN_VERSION
            else r.version, "reference": r.reference, "status": r.status, "summary": dict(r.summary or {}),
            "body": dict(r.body or {}), "location": r.location, "run_id": r.run_id, "created_at": r.created_at}


def list_reports(session: Session, dataset_id: int | None, kind: str | None, limit: int) -> list[dict[str, Any]]:
    q = (select(m.Report, m.Dataset.name).outerjoin(m.Dataset, m.Dataset.id == m.Report.dataset_id)
         .order_by(m.Report.created_at.desc()).limit(limit))
    if dataset_id is not None:
        q = q.where(m.Report.dataset_id == dataset_id)
    if kind:
        q = q.where(m.Report.kind == kind)
    return [report_dict(r, name) for r, name in session.execute(q)]
