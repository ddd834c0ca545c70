"""Loading a dataset for training: a saved training dataset or a curated table, with its provenance.

A reference names either

- a **saved training dataset** (made by the feature store, recorded in the catalog):
  ``training:<id>`` (an id or a unique id prefix of 6+ characters), ``training:<name>``,
  or simply ``<name>`` / ``<id>`` (no dot), or ``training.<name>``. Its frame is the lake
  table ``training.<name>`` at the Delta version the catalog recorded;
- a **curated table**: any lake table ``layer.name`` (``gold.customer_stats``) or path.

Either may carry a version, ``gold.x@3`` or ``version=3``: a table version for a
curated table; for a training dataset, the saved dataset whose frame is that version.

Every read is recorded in the catalog: inside the caller's own run, as an input of
that run; otherwise in a run of its own, job ``handoff.load.<name>``, whose input is the
exact table version handed over.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from deltalake import DeltaTable

from catalog.errors import CatalogError, TrainingDatasetNotFoundError
from lake import delta_log, protocol
from lake.errors import (
    DatasetRefError,
    HandoffError,
    LakeError,
    UnknownDatasetError,
    UnknownVersionError,
)
from lake.handoff.dataset import DEFAULT_BATCH_SIZE, DEFAULT_BUFFER_SIZE, Dataset
from lake.handoff.metadata import DatasetMetadata, Kind
from lake.lakehouse import Lake, is_location
from lake.naming import training_table
from lake.spark_io import file_dataset
from lake.table import Table, wrap_delta_error

if TYPE_CHECKING:
    pass

__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_BUFFER_SIZE", "Dataset", "DatasetMetadata", "Kind", "catalog_facts",
           "find_training", "load", "parse_ref"]
_AT_VERSION = re.compile(r"^(?P<ref>.+?)@(?P<version>-?\d+)$")


# ----------------------------------------------------------------------- loading


def load(lake: Lake, ref: str, *, version: int | None = None) -> Dataset:
    """A saved training dataset or a curated table, at a version, with its metadata.

    Args:
        lake: the lake (and its catalog).
        ref: ``training:<id or name>``, a training dataset's name or id (no dot),
            ``training.<name>``, or a curated table ``layer.name`` (or a path); any of
            them may end in ``@<version>``.
        version: the version (same as ``@<version>``).

    Returns:
        The dataset; nothing is read until you ask for rows. For a lake made with
        :meth:`~lake.lakehouse.Lake.connect`, a :class:`~lake.handoff.remote.RemoteDataset` streamed from
        the service (its grants and masks apply).

    Raises:
        DatasetRefError: the reference is malformed or its two versions disagree.
        UnknownDatasetError: no saved training dataset by that name or id.
        UnknownVersionError: no saved training dataset at that version.
        TableNotFoundError, VersionNotFoundError: no such table, or table version.
    """
    text, version = parse_ref(ref, version)
    if lake.remote is not None:  # through `lake serve`: its grants, masks and audit apply
        from lake.handoff.remote import RemoteDataset  # deferred: only a connected lake needs it

        return RemoteDataset.open(lake, lake.remote, text, version)
    if text.startswith("training:"):
        return _load_training(lake, text, version)
    if "." not in text and not is_location(text):
        return _load_training(lake, text, version)
    saved_name = text.split(".", 1)[-1]
    if (text.lower().startswith(training_table("")) and not is_location(text) and lake.recorder is not None
            and lake.catalog.training_datasets(name=saved_name, limit=1)):
        return _load_training(lake, saved_name, version)
    return _load_curated(lake, text, version)


def parse_ref(ref: str, version: int | None = None) -> tuple[str, int | None]:
    """Split ``name@3`` into ``("name", 3)``, checking it against an explicit ``version``.

    Raises:
        DatasetRefError: empty reference, negative version, or two different versions.
    """
    text = (ref or "").strip()
    match = _AT_VERSION.match(text)
    if match:
        text, at = match["ref"].strip(), int(match["version"])
        if version is not None and version != at:
            raise DatasetRefError(f"{ref!r} names version {at} but version={version} was also given; give one")
        version = at
    if not text or text == "training:":
        raise DatasetRefError("empty dataset reference: give a training dataset name or id, or a table such as "
                              "gold.customers")
    if version is not None and version < 0:
        raise DatasetRefError(f"versions start at 0, not {version}")
    return text, version


def find_training(lake: Lake, ref: str, version: int | None = None) -> dict[str, Any]:
    """The recipe of a saved training dataset (``lake.catalog.training_dataset``) by id, prefix or name.

    Args:
        lake: the lake whose catalog records the training datasets.
        ref: an id, a unique id prefix (6+ characters) or a name (the newest with it);
            ``training:`` and ``training.`` prefixes and an ``@<version>`` suffix are accepted.
        version: with a name, the saved dataset whose frame is this table version.

    Raises:
        UnknownDatasetError: nothing saved answers to ``ref``.
        UnknownVersionError: nothing saved at that version.
    """
    text, version = parse_ref(ref, version)
    text = text.removeprefix("training:").strip()
    if lake.recorder is None:
        raise HandoffError("training datasets are recorded in the catalog, and this Lake was created with "
                           "catalog=False")
    catalog = lake.catalog
    try:
        recipe = catalog.training_dataset(text)
    except TrainingDatasetNotFoundError as exc:
        bare = text.removeprefix(training_table(""))
        raise UnknownDatasetError(f"{exc.message} (a curated table is named layer.name, e.g. gold.{bare})",
                                  dataset=text) from None
    if version is not None and recipe["version"] != version:
        if recipe["name"] != text.removeprefix(training_table("")):  # asked by id: it is one exact dataset
            raise UnknownVersionError(
                f"training dataset {recipe['id']} is version {recipe['version']} of training.{recipe['name']}, "
                f"not {version}; drop the version, or ask for {recipe['name']}@{version}", dataset=text)
        saved = catalog.training_datasets(name=recipe["name"], limit=10_000)
        match = next((r for r in saved if r["version"] == version), None)
        if match is None:
            versions = sorted({r["version"] for r in saved if r["version"] is not None})
            raise UnknownVersionError(
                f"training dataset {recipe['name']} has no saved version {version} (saved: "
                f"{', '.join(map(str, versions)) or 'none'}); `lake training list` shows them",
                dataset=text, version=version)
        recipe = match
    return recipe


def _load_training(lake: Lake, ref: str, version: int | None) -> Dataset:
    recipe = find_training(lake, ref, version)
    if recipe["version"] is None:
        raise HandoffError(f"training dataset {recipe['id']} recorded no table version, so its frame cannot be "
                           f"pinned; rebuild it with `lake training reproduce {recipe['id']}`")
    table = lake.table(training_table(recipe['name']))
    if not table.exists():
        raise UnknownDatasetError(
            f"the frame of training dataset {recipe['name']} ({recipe['id']}) is gone: no table {table.name} at "
            f"{table.uri}; rebuild it with `lake training reproduce {recipe['id']}`", dataset=recipe["name"])
    delta = table.delta(int(recipe["version"]))
    facts = catalog_facts(lake, table.name, int(recipe["version"]))
    base = _table_metadata(table, delta)
    meta = DatasetMetadata(
        kind="training", name=recipe["name"], table=table.name, version=int(recipe["version"]),
        location=table.uri, row_count=base["row_count"], content_hash=recipe["content_hash"],
        columns=base["columns"], sources={k: dict(v) if isinstance(v, dict) else {"version": v}
                                          for k, v in (recipe["sources"] or {}).items()},
        quality_status=facts["quality_status"], features=tuple(recipe["features"] or ()),
        feature_service=recipe["feature_service"], training_id=recipe["id"], entity_hash=recipe["entity_hash"],
        entity_location=recipe["entity_location"], options=dict(recipe["options"] or {}),
        run_id=recipe["run_id"], created_at=recipe["created_at"],
    )
    return Dataset(lake, table, delta, meta)


def _load_curated(lake: Lake, ref: str, version: int | None) -> Dataset:
    table = lake.existing(ref)
    delta = table.delta(version)
    at = int(delta.version())
    base = _table_metadata(table, delta)
    facts = catalog_facts(lake, table.name, at) if lake.recorder is not None else {}
    info = delta_log.commit_info(table.storage, table.uri, at) or {}
    committed = dt.datetime.fromtimestamp(info["timestamp"] / 1000, dt.UTC) if info.get("timestamp") else None
    meta = DatasetMetadata(
        kind="curated", name=table.name, table=table.name, version=at, location=table.uri,
        row_count=base["row_count"], content_hash=base["fingerprint"], columns=base["columns"],
        sources=facts.get("sources") or {}, quality_status=facts.get("quality_status"),
        run_id=facts.get("run_id") or info.get("lake.run_id"), created_at=committed,
    )
    return Dataset(lake, table, delta, meta)


def _table_metadata(table: Table, delta: DeltaTable) -> dict[str, Any]:
    """Rows, columns and a fingerprint of one version, from the Delta log alone."""
    protocol.check(delta, protocol.HANDOFF, table.name)
    try:
        files = pa.table(delta.get_add_actions(flatten=False))
        schema = pa.schema(delta.schema().to_arrow())
    except Exception as exc:
        raise wrap_delta_error(exc, table.name, "read") from exc
    columns = tuple({"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema)
    entries = sorted(zip(files.column("path").to_pylist(), files.column("size_bytes").to_pylist(),
                         files.column("num_records").to_pylist(), strict=True)) if files.num_rows else []
    row_count = sum(r or 0 for _, _, r in entries)
    if any(r is None for _, _, r in entries):  # files committed without statistics: count from footers
        row_count = int(file_dataset(table, delta).count_rows())
    digest = hashlib.sha256()
    digest.update(repr([(c["name"], c["type"], c["nullable"]) for c in columns]).encode())
    for path, size, rows in entries:
        digest.update(f"\n{path}\t{size}\t{rows}".encode())
    return {"row_count": int(row_count), "columns": columns,
            "fingerprint": digest.hexdigest()}


def catalog_facts(lake: Lake, name: str, version: int) -> dict[str, Any]:
    """Quality status, producing run and its inputs for one version, as far as the catalog knows."""
    try:
        shown = lake.catalog.show(name, version=version)
    except CatalogError:
        return {"quality_status": None, "run_id": None, "sources": {}}
    run_id = (shown.get("version") or {}).get("run_id")
    sources: dict[str, dict[str, Any]] = {}
    if run_id:
        try:
            for item in lake.catalog.run_info(run_id)["inputs"]:
                if item["name"] != name:
                    sources[item["name"]] = {"version": item["version"]}
        except LakeError:
            pass
    return {"quality_status": shown.get("quality_status"), "run_id": run_id, "sources": sources}
