"""The pipeline's plan: every job, feature view and drift check as a step, in dependency order.

Dependencies come from what each step reads and writes (lake table names): a job's table
sources and its target, a feature view's source table, a monitor's current table. Nothing
is declared twice. Whether a step is *stale* is read from the lake and the catalog:

- a job with file sources: files it has not ingested yet (the ledger);
- a job with a SQL source: always (it reads above its watermark, so an idle run is cheap);
- a job with table sources, a monitor: an input table moved on since its last successful run
  (the input versions that run recorded), or it never ran;
- a feature view: its source table moved on since its last materialization.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lake.errors import JobSpecError, LakeError
from lake.features.materialize import last_version
from lake.features.repo import feature_repo_folder, load_definitions
from lake.lakehouse import Lake
from lake.monitor.monitors import Monitor, load_monitors, monitors_folder
from lake.naming import feature_view_dataset, is_location, quarantine_name
from lake.pipeline import ledger
from lake.pipeline.files import discover, pending_files
from lake.pipeline.registry import discover_jobs, jobs_folder
from lake.pipeline.spec import FileSource, Job, SqlSource, TableSource

Kind = Literal["job", "features", "monitor"]
MONITOR_JOB = "monitor."
"""Catalog job name prefix of a monitor's runs."""


@dataclass(frozen=True)
class Step:
    """One unit of the pipeline."""

    kind: Kind
    name: str
    """The job name, the feature view name, or the monitor name."""
    inputs: tuple[str, ...]
    """Lake tables it reads."""
    outputs: tuple[str, ...]
    """Lake tables (or catalog datasets) it writes."""
    job: Job | None = None
    monitor: Monitor | None = None
    view: Any = None

    @property
    def key(self) -> str:
        """A unique, readable id: ``job:bronze_stocks``, ``features:stock_stats``, ``monitor:drift``."""
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True)
class Staleness:
    stale: bool
    reason: str


@dataclass
class Plan:
    """Every step, upstream first."""

    steps: list[Step]
    project: str | None = None
    """The Feast project of the feature views (None without a feature repository)."""
    notes: list[str] = field(default_factory=list)

    def step(self, key: str) -> Step:
        for step in self.steps:
            if step.key == key or step.name == key:
                return step
        raise LakeError(f"no pipeline step {key!r}; steps: {', '.join(s.key for s in self.steps)}")

    def select(self, targets: list[str]) -> list[Step]:
        """The steps needed for ``targets`` (step names, keys or tables): them, what they depend
        on, and the feature views and monitors downstream of what they write."""
        if not targets:
            return list(self.steps)
        chosen: set[str] = set()
        for target in targets:
            hits = [s for s in self.steps if target in (s.key, s.name) or target.lower() in s.outputs]
            if not hits:
                raise LakeError(f"no pipeline step or table {target!r}; steps: "
                                + ", ".join(s.key for s in self.steps))
            for hit in hits:
                chosen |= self._upstream(hit)
        written = {t for s in self.steps if s.key in chosen for t in s.outputs}
        chosen |= {s.key for s in self.steps if s.kind != "job" and set(s.inputs) & written}
        return [s for s in self.steps if s.key in chosen]

    def _upstream(self, step: Step) -> set[str]:
        found, todo = {step.key}, [step]
        while todo:
            current = todo.pop()
            for other in self.steps:
                if other.key not in found and set(other.outputs) & set(current.inputs):
                    found.add(other.key)
                    todo.append(other)
        return found


def _table(lake: Lake, name: str) -> str:
    return lake.table(name).name


def job_steps(lake: Lake, jobs: dict[str, Job]) -> list[Step]:
    steps = []
    for job in jobs.values():
        inputs = tuple(_table(lake, t) for t in job.source.tables) if isinstance(job.source, TableSource) else ()
        target = _table(lake, job.target)
        steps.append(Step("job", job.name, inputs, (target, quarantine_name(target)), job=job))
    return steps


def feature_steps(lake: Lake) -> tuple[list[Step], str | None]:
    """A step per online feature view whose source is a lake table (none without a repository)."""
    try:
        folder = feature_repo_folder(lake)
    except LakeError:
        return [], None
    if not folder.is_dir():
        return [], None
    from feast import FeatureView  # heavy: feast, only when a feature repository exists

    steps = []
    for view in load_definitions(folder).of(FeatureView):
        source = getattr(view.batch_source, "path", None) or ""
        if not view.online or not source or is_location(source) or "." not in source:
            continue
        steps.append(Step("features", view.name, (_table(lake, source),), (feature_view_dataset(view.name),),
                          view=view))
    return steps, lake.settings.feast.project


def monitor_steps(lake: Lake) -> list[Step]:
    steps = []
    for monitor in load_monitors(monitors_folder(lake.settings.monitors_dir)).values():
        inputs = [_table(lake, monitor.current)]
        if not monitor.reference.startswith("training:") and "." in monitor.reference.split("@")[0]:
            inputs.append(_table(lake, monitor.reference.split("@")[0]))
        steps.append(Step("monitor", monitor.name, tuple(inputs), (), monitor=monitor))
    return steps


def order(steps: list[Step]) -> list[Step]:
    """Upstream first (stable: otherwise in the order given); a cycle is a declaration error."""
    writers: dict[str, list[Step]] = {}
    for step in steps:
        for out in step.outputs:
            writers.setdefault(out, []).append(step)
    done: list[Step] = []
    state: dict[str, str] = {}

    def visit(step: Step, path: list[str]) -> None:
        if state.get(step.key) == "done":
            return
        if state.get(step.key) == "visiting":
            cycle = path[path.index(step.key):] + [step.key]
            raise JobSpecError("the jobs read and write each other's tables in a cycle: " + " -> ".join(cycle))
        state[step.key] = "visiting"
        for table in step.inputs:
            for writer in writers.get(table, []):
                if writer.key != step.key:
                    visit(writer, [*path, step.key])
        state[step.key] = "done"
        done.append(step)

    for step in steps:
        visit(step, [])
    return done


def build_plan(lake: Lake, jobs: dict[str, Job] | None = None, folder: Path | None = None) -> Plan:
    """The plan of the lake's jobs (``jobs/``), feature views and monitors (``monitors/``)."""
    if jobs is None:
        jobs = discover_jobs(folder or jobs_folder(lake.settings.jobs_dir))
    features, project = feature_steps(lake)
    return Plan(order([*job_steps(lake, jobs), *features, *monitor_steps(lake)]), project)


# ---------------------------------------------------------------- staleness


def _moved_on(lake: Lake, job_name: str, inputs: tuple[str, ...]) -> Staleness:
    """Whether an input moved on since the last successful run of ``job_name`` read it."""
    runs = lake.catalog.runs(job=job_name, status="completed", limit=1)
    if not runs:
        return Staleness(True, "never ran")
    read = {i["name"]: i["version"] for i in lake.catalog.run_info(runs[0]["run_id"])["inputs"]}
    for name in inputs:
        table = lake.table(name)
        if not table.exists():
            return Staleness(False, f"waiting for {name} (it does not exist yet)")
        now = table.version()
        if read.get(name) is None or now > int(read[name]):
            return Staleness(True, f"{name} moved on (v{read.get(name)} -> v{now})")
    return Staleness(False, "inputs unchanged since the last run")


def staleness(lake: Lake, step: Step, project: str | None = None) -> Staleness:
    """Whether ``step`` has anything to do, and why (see the module doc)."""
    if step.kind == "job":
        job = step.job
        assert job is not None
        if isinstance(job.source, FileSource):
            pending = pending_files(discover(lake, job.source)[1], ledger.load(lake, job.name))
            return Staleness(bool(pending), f"{len(pending)} new or changed file(s)" if pending
                             else "no new files")
        if isinstance(job.source, SqlSource):
            return Staleness(True, "a SQL source: reads above its watermark")
        if not lake.table(job.target).exists():
            return Staleness(True, f"{_table(lake, job.target)} does not exist yet")
        return _moved_on(lake, job.name, step.inputs)
    if step.kind == "features":
        source = lake.table(step.inputs[0])
        if not source.exists():
            return Staleness(False, f"waiting for {source.name}")
        assert project is not None
        done = last_version(lake, project, step.name)
        now = source.version()
        if done is None:
            return Staleness(True, "never materialized")
        return Staleness(now > done, f"{source.name} moved on (v{done} -> v{now})" if now > done
                         else "online values current")
    return _moved_on(lake, MONITOR_JOB + step.name, step.inputs)
