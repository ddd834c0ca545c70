"""README.md is executable: its ``bash`` and ``python`` blocks run in order, as a user would paste them.

In a fresh folder with no settings: ``bash`` lines run ``lake`` in this process (so the suite's
Spark session serves the jobs) and ``cd``; globs expand as a shell would, ``> FILE`` redirects.
``python`` blocks run one after another in one namespace. A block preceded by the comment
``<!-- readme-test: skip: <reason> -->`` is not run (it needs a cluster, a server, or data the
README does not make); every other block must succeed.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lake.cli.main import main

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```(\w*)\s*$")
SKIP = re.compile(r"<!--\s*readme-test:\s*skip:\s*(.+?)\s*-->")


@dataclass(frozen=True)
class Block:
    lang: str
    line: int
    code: str
    skip: str | None


def blocks(text: str) -> list[Block]:
    lines = text.splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        start = FENCE.match(lines[i])
        if not start or not start.group(1):
            i += 1
            continue
        lang, first = start.group(1), i
        i += 1
        body: list[str] = []
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        marker = SKIP.search(lines[first - 1]) if first else None
        out.append(Block(lang, first + 1, "\n".join(body), marker.group(1) if marker else None))
        i += 1
    return out


def commands(code: str) -> list[str]:
    """Logical lines (backslash continuations joined), then split on ``;``."""
    joined = re.sub(r"\\\n\s*", " ", code)
    return [line for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


def words(line: str) -> list[list[str]]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    parts: list[list[str]] = [[]]
    for token in lexer:
        if token == ";":
            parts.append([])
        else:
            parts[-1].append(token)
    return [p for p in parts if p]


def expand(token: str, line: str) -> list[str]:
    """A glob the shell would expand (unquoted in the line), else the word itself."""
    if "*" in token and f"'{token}'" not in line and f'"{token}"' not in line:
        return sorted(glob.glob(token)) or [token]
    return [token]


def run_bash(block: Block, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for line in commands(block.code):
        for argv in words(line):
            where = f"README.md:{block.line}: {' '.join(argv)}"
            if argv[0] == "cd":
                monkeypatch.chdir(argv[1])
                continue
            assert argv[0] == "lake", f"{where}: only `lake` and `cd` run here; mark the block readme-test: skip"
            args = [a for t in argv[1:] for a in expand(t, line)]
            target = None
            if ">" in args:
                target = args[args.index(">") + 1]
                args = args[:args.index(">")]
            with (open(target, "w", encoding="utf-8") if target else contextlib.nullcontext()) as fh, \
                    (contextlib.redirect_stdout(fh) if fh else contextlib.nullcontext()):
                code = main(args)
            out = capsys.readouterr()
            assert code == 0, f"{where} exited {code}:\n{out.err[-2000:]}"
            assert "Traceback" not in out.err, f"{where}:\n{out.err}"


@pytest.mark.spark
def test_readme_blocks_run_in_order(spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    for name in [n for n in os.environ if n.startswith("LAKE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LAKE_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    found = blocks(README.read_text(encoding="utf-8"))
    runnable = [b for b in found if b.lang in ("bash", "python") and b.skip is None]
    assert len(runnable) >= 10, "the README lost its runnable examples"
    namespace: dict[str, Any] = {"__name__": "__readme__"}
    for block in found:
        if block.lang not in ("bash", "python") or block.skip is not None:
            continue
        if block.lang == "bash":
            run_bash(block, monkeypatch, capsys)
        else:
            exec(compile(block.code, f"README.md:{block.line}", "exec"), namespace)  # noqa: S102
    # What the examples said they did, they did.
    lake = namespace["lake"]
    assert lake.table("gold.stock_features").to_arrow().num_rows > 500
    events = lake.table("bronze.events").to_arrow().to_pylist()
    assert {e["id"] for e in events} == {1, 3, 4, 5} and "op" not in events[0]
    assert lake.catalog.show("silver.events")["upstream"]
    # A job's description reaches the catalog (on its target, which had none).
    assert lake.catalog.show("bronze.stocks")["description"] == "Monthly closing prices per stock symbol, as delivered"


def test_skipped_blocks_say_why() -> None:
    found = blocks(README.read_text(encoding="utf-8"))
    skipped = [b for b in found if b.skip is not None]
    assert all(len(b.skip or "") > 10 for b in skipped)
    assert all(b.lang in ("bash", "python") for b in skipped)


def test_the_parser_reads_shell_lines_like_a_shell() -> None:
    assert words("lake a 'b c' # note") == [["lake", "a", "b c"]]
    assert words("lake x ; lake y > out.txt") == [["lake", "x"], ["lake", "y", ">", "out.txt"]]
    assert [" ".join(c.split()) for c in commands("lake a \\\n   --b\n# c\n\nlake d")] == ["lake a --b", "lake d"]


def test_the_readme_links_only_to_files_in_the_repository() -> None:
    """Issue 17: the README linked to a design file outside the repository."""
    text = README.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)", text)
    local = [t for t in targets if "://" not in t and not t.startswith("mailto:")]
    assert local, "the README links to its companion documents"
    for target in local:
        path = (README.parent / target).resolve()
        assert path.is_relative_to(README.parent.resolve()) and path.exists(), target
