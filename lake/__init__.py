"""The lake: Delta tables written by Spark and Python, committed through delta-rs.

The public names below load on first use (PEP 562): ``import lake.cli`` (the ``lake``
command) must not pay for pyarrow, pandas and the catalog before it knows what to run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lake.config import Settings, load_settings
    from lake.errors import LakeError
    from lake.lakehouse import Lake
    from lake.results import CommitResult
    from lake.table import Table

__all__ = ["CommitResult", "Lake", "LakeError", "Settings", "Table", "load_settings"]

_HOMES = {
    "CommitResult": "lake.results",
    "Lake": "lake.lakehouse",
    "LakeError": "lake.errors",
    "Settings": "lake.config",
    "Table": "lake.table",
    "load_settings": "lake.config",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'lake' has no attribute {name!r}")
    # Deferred on purpose (see the module docstring): the heavy modules load when first named.
    import importlib

    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
