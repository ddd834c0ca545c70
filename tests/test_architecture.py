"""The shape of the code, checked: no import cycles, no private names across modules,
imports inside functions only for heavy optional dependencies (and said so), one error tree.

The layers themselves are import-linter contracts in pyproject.toml (``lint-imports`` in
``make test``); these tests cover what import-linter does not.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lake", "catalog")
# The CLI loads each command's implementation when the command runs (``lake --help`` stays fast);
# the demo is a script. Both may import project modules inside functions.
LAZY_ALLOWED = ("lake/cli/", "lake/demo.py")


def sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py") if "migrations" not in p.parts)


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def test_no_import_cycles_in_lake_or_catalog() -> None:
    graph = grimp.build_graph(*PACKAGES, include_external_packages=False)
    modules = sorted(graph.modules)
    edges = {m: {i for i in graph.find_modules_directly_imported_by(m) if i in graph.modules} for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in modules:
        if module not in index:
            visit(module)
    assert cycles == [], f"import cycles (type-hint and in-function imports count): {cycles}"


def test_no_module_uses_another_modules_private_names() -> None:
    found = []
    for path in sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES:
                for alias in node.names:
                    if alias.name.startswith("_"):
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {node.module}.{alias.name}")
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] in PACKAGES:
                        aliases[alias.asname or alias.name.split(".")[0]] = alias.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and isinstance(node.value, ast.Name) and node.value.id in aliases):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} uses {aliases[node.value.id]}.{node.attr}")
    assert found == []


def commented(lines: list[str], lineno: int) -> bool:
    """A comment on the import's line, or above the block of imports it belongs to."""
    if "#" in lines[lineno - 1]:
        return True
    i = lineno - 2
    while i >= 0:
        text = lines[i].strip()
        if text.startswith("#") or ("#" in text and text.startswith(("import ", "from "))):
            return True
        if not text.startswith(("import ", "from ")):
            return False
        i -= 1
    return False


def test_imports_inside_functions_are_only_for_heavy_dependencies_and_say_so() -> None:
    found = []
    for path in sources():
        rel = str(path.relative_to(ROOT))
        lines = path.read_text(encoding="utf-8").splitlines()
        tree = ast.parse("\n".join(lines))
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(fn):
                if not isinstance(node, ast.Import | ast.ImportFrom):
                    continue
                target = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                project = (target or "").split(".")[0] in PACKAGES
                if rel.startswith(LAZY_ALLOWED):
                    continue
                said = commented(lines, node.lineno)
                if project and not said:
                    found.append(f"{rel}:{node.lineno} imports {target} inside a function (import it at the top)")
                elif not said:
                    found.append(f"{rel}:{node.lineno} imports {target} inside a function without saying why")
    assert found == []


def all_modules() -> list[object]:
    out = []
    for pkg in PACKAGES:
        package = importlib.import_module(pkg)
        for info in pkgutil.walk_packages(package.__path__, pkg + "."):
            if ".migrations" in info.name or info.name.endswith(("spark_entry", "__main__")):
                continue
            try:
                out.append(importlib.import_module(info.name))
            except ImportError as exc:  # an optional engine missing here would be a setup defect
                pytest.fail(f"cannot import {info.name}: {exc}")
    return out


def test_every_exception_the_project_defines_is_in_the_one_tree() -> None:
    from lake.errors import LakeError

    strays = []
    for module in all_modules():
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == module.__name__
                    and not issubclass(obj, LakeError | Warning)):
                strays.append(f"{module.__name__}.{name}")
    # Private control-flow signals that never leave their module are allowed, and listed here.
    assert sorted(strays) == sorted(ALLOWED_SIGNALS)


ALLOWED_SIGNALS = [
    "lake.predicate._Unsupported",      # "this predicate is beyond pruning": caught where raised
    "lake.features.server._BadRequest",  # turned into an HTTP 4xx by the same module
    "lake.features.registry_light._Unsupported",  # "leave this registry to Feast": caught where raised
]


def test_errors_live_in_the_error_modules() -> None:
    from lake.errors import LakeError

    homes = {"lake.errors", "catalog.errors"}
    elsewhere = sorted(
        f"{module.__name__}.{name}"
        for module in all_modules()
        for name, obj in vars(module).items()
        if inspect.isclass(obj) and issubclass(obj, LakeError) and obj.__module__ == module.__name__
        and module.__name__ not in homes
    )
    assert elsewhere == []
