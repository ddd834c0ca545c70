"""Finding jobs: Python modules exposing ``JOB`` (or ``JOBS``) and YAML files, in a jobs folder.

The folder is ``jobs_dir`` from the settings, else ``./jobs`` when it exists, else the
project's ``jobs`` package. Job modules are user code loaded at run time, so the lake
never imports ``jobs`` statically (the layering contract stays checkable).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

from lake.errors import JobSpecError, LakeError
from lake.loading import import_file
from lake.pipeline.spec import Job, from_mapping


def jobs_folder(configured: str | None = None) -> Path:
    if configured:
        path = Path(configured).expanduser()
        if not path.is_dir():
            raise LakeError(f"jobs folder {path} does not exist (jobs_dir in lake.toml or LAKE_JOBS_DIR)")
        return path
    local = Path("jobs")
    if local.is_dir():
        return local
    spec = importlib.util.find_spec("jobs")
    if spec is None or not spec.submodule_search_locations:
        raise LakeError("no jobs folder: create ./jobs or set jobs_dir in lake.toml")
    return Path(next(iter(spec.submodule_search_locations)))


def _load_module(path: Path) -> list[Job]:
    module = import_file(path, f"lake_jobs_{path.stem}", JobSpecError)
    found = [getattr(module, "JOB", None), *getattr(module, "JOBS", [])]
    return [j for j in found if isinstance(j, Job)]


def _load_yaml(path: Path) -> list[Job]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise JobSpecError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise JobSpecError(f"{path}: a job file holds one mapping (name, source, target...)")
    return [from_mapping(data, data.get("name", path.stem))]


def discover_jobs(folder: Path) -> dict[str, Job]:
    """Every job in the folder, by name (duplicate names are an error)."""
    jobs: dict[str, Job] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith("_") or path.suffix not in (".py", ".yaml", ".yml"):
            continue
        for job in _load_module(path) if path.suffix == ".py" else _load_yaml(path):
            if job.name in jobs:
                raise JobSpecError(f"two jobs are named {job.name!r} in {folder}")
            jobs[job.name] = job
    return jobs


def find_job(folder: Path, name: str) -> Job:
    jobs = discover_jobs(folder)
    if name not in jobs:
        known = ", ".join(sorted(jobs)) or "none"
        raise LakeError(f"no job named {name!r} in {folder}; jobs there: {known} (`lake jobs list`)")
    return jobs[name]
