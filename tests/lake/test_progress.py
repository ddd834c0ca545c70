"""Progress reports of the long commands (issue 17): what their callbacks say, and the bars drawn from them.

Ingest/job runs: tests/lake/pipeline/test_files.py; exports: tests/lake/handoff/test_export.py.
"""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pytest
from rich.console import Console

from lake.cli import progress as progress_module
from lake.cli.progress import Bars
from lake.lakehouse import Lake
from lake.monitor import drift_report
from lake.pipeline.context import FilesProgress


def test_drift_reports_columns_compared_and_rows(local_lake: Lake) -> None:
    rng = np.random.default_rng(3)
    ref = pa.table({"x": rng.normal(0, 1, 500), "y": rng.normal(5, 1, 500), "c": rng.choice(["a", "b"], 500).tolist()})
    cur = pa.table({"x": rng.normal(1, 1, 300), "y": rng.normal(5, 1, 300), "c": rng.choice(["a", "b"], 300).tolist()})
    seen: list[tuple[int, int, int]] = []
    report = drift_report(local_lake, ref, cur, record=False, progress=lambda *args: seen.append(args))
    assert seen == [(1, 3, 800), (2, 3, 800), (3, 3, 800)] and len(report.features) == 3


def test_bars_draw_files_and_rows_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=120)
    monkeypatch.setattr(progress_module, "err_console", terminal)
    with Bars("orders") as bars:
        report = bars.job("orders")
        report("3 file(s) to ingest (0 changed)")
        report(FilesProgress(2, 3, 1_234_567))
        bars._progress.refresh()  # type: ignore[union-attr]
        drawn = screen.getvalue()
    assert "2/3 files" in drawn and "1,234,567 rows" in drawn and "orders: parsing" in drawn
    piped = io.StringIO()
    monkeypatch.setattr(progress_module, "err_console", Console(file=piped, force_terminal=False))
    with Bars("orders") as bars:
        bars.update(files=(1, 2), rows=10)
    assert not bars.enabled and piped.getvalue() == ""
