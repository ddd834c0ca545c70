"""Importing user code (job modules, feature definitions) from a file, with one clear error."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from lake.errors import LakeError


def import_file(path: Path, module_name: str, error: type[LakeError]) -> ModuleType:
    """Import ``path`` as ``module_name``; any failure but a LakeError becomes ``error`` naming the file."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except LakeError:
        raise
    except Exception as exc:
        raise error(f"{path} failed to load: {type(exc).__name__}: {exc}") from exc
    return module
