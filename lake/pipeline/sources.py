"""The source runners, by source kind: adding a source is one entry here.

Each runner has the one signature ``run(ctx: SourceRun) -> list[ledger entries]``
(see :mod:`lake.pipeline.context`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lake.errors import JobError
from lake.pipeline import files, sqlsource, transform
from lake.pipeline.context import SourceRun
from lake.pipeline.spec import Source

SourceRunner = Callable[[SourceRun], list[dict[str, Any]]]

RUNNERS: dict[str, SourceRunner] = {
    "files": files.run_files,
    "sql": sqlsource.run_sql,
    "tables": transform.run_transform,
}


def runner_for(source: Source) -> SourceRunner:
    """The runner of a source's kind."""
    try:
        return RUNNERS[source.kind]
    except KeyError:
        raise JobError(f"no runner for source kind {source.kind!r}; kinds: {', '.join(sorted(RUNNERS))}") from None
