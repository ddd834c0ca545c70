"""Pipelines that keep themselves fresh: jobs, feature views and drift checks, in order.

``lake pipeline run`` orders the jobs in ``jobs/`` by the tables they read and write (no
hand-written DAG), runs only what is stale, then materializes the feature views whose
sources moved on and runs the drift checks declared in ``monitors/``: one catalog run is
the parent of every step. The same plan is exposed to Dagster as software-defined assets
(:mod:`lake.orchestrate.dagster_assets`), with sensors and schedules there: the lake has no
scheduler of its own.
"""

from __future__ import annotations

from lake.orchestrate.plan import Plan, Step, build_plan
from lake.orchestrate.run import PipelineReport, StepResult, pipeline_status, run_pipeline

__all__ = ["PipelineReport", "Plan", "Step", "StepResult", "build_plan", "pipeline_status", "run_pipeline"]
