"""Expectation suites: Great Expectations 1.x expectations per table, declared in YAML.

``quality/<anything>.yaml`` (versioned with the code, next to ``jobs/``)::

    suite: stocks_bronze
    table: bronze.stocks
    policy: quarantine            # fail | quarantine | warn
    expectations:
      - expect_column_values_to_not_be_null: {column: symbol}
      - expect_column_values_to_be_between: {column: price, min_value: 0}
      - expect_column_values_to_match_regex: {column: symbol, regex: "^[A-Z]+$"}
      - expect_table_row_count_to_be_between: {min_value: 1}
      - expect_column_values_to_be_fresh: {column: date, max_age_days: 4000}   # freshness

Any GE 1.x expectation type is accepted (``expect_column_values_to_be_in_set``,
``expect_column_pair_values_a_to_be_greater_than_b``...); ``expect_column_values_to_be_fresh``
is the lake's shorthand for a freshness check (the column's maximum is recent enough).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from lake.errors import SuiteError

Policy = Literal["fail", "quarantine", "warn"]
FRESHNESS = "expect_column_values_to_be_fresh"


@dataclass(frozen=True)
class Expectation:
    type: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def column(self) -> str | None:
        col = self.kwargs.get("column") or self.kwargs.get("column_A")
        return str(col) if col is not None else None

    def describe(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"{self.type}({args})"


@dataclass(frozen=True)
class Suite:
    name: str
    table: str
    policy: Policy = "fail"
    expectations: tuple[Expectation, ...] = ()
    source: str | None = None

    def to_gx(self) -> Any:
        """The Great Expectations ``ExpectationSuite`` (freshness expanded to a max-between check)."""
        import great_expectations as gx  # heavy: Great Expectations takes seconds to import; only when a suite runs

        suite = gx.ExpectationSuite(name=self.name)
        for exp in self.expectations:
            suite.add_expectation(_gx_expectation(exp))
        return suite


def _class_name(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def _gx_expectation(exp: Expectation) -> Any:
    import great_expectations as gx  # heavy: Great Expectations takes seconds to import; only when a suite runs

    if exp.type == FRESHNESS:
        days = float(exp.kwargs.get("max_age_days", 1))
        since = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=days)
        return gx.expectations.ExpectColumnMaxToBeBetween(column=exp.kwargs["column"], min_value=since)
    cls = getattr(gx.expectations, _class_name(exp.type), None)
    if cls is None:
        raise SuiteError(f"{exp.type} is not a Great Expectations expectation (see the GE gallery)")
    try:
        return cls(**dict(exp.kwargs))
    except Exception as exc:
        raise SuiteError(f"{exp.describe()}: {exc}") from None


def parse_suite(data: Mapping[str, Any], source: str) -> Suite:
    if not isinstance(data, Mapping) or "table" not in data:
        raise SuiteError(f"{source}: a suite needs 'table' and 'expectations'")
    policy = data.get("policy", "fail")
    if policy not in ("fail", "quarantine", "warn"):
        raise SuiteError(f"{source}: policy must be fail, quarantine or warn, not {policy!r}")
    items = []
    for i, entry in enumerate(data.get("expectations") or [], start=1):
        if not isinstance(entry, Mapping) or len(entry) != 1:
            raise SuiteError(f"{source}: expectation {i} must be one `type: {{kwargs}}` mapping")
        (kind, kwargs), = entry.items()
        if not str(kind).startswith("expect_"):
            raise SuiteError(f"{source}: expectation {i}: {kind!r} is not an expectation type")
        items.append(Expectation(str(kind), dict(kwargs or {})))
    suite = Suite(str(data.get("suite") or Path(source).stem), str(data["table"]), policy, tuple(items), source)
    for exp in suite.expectations:  # fail on a typo now, not in the middle of a job
        _gx_expectation(exp)
    return suite


def load_suite(path: Path | str) -> Suite:
    """The suite in one YAML file (see the README's quality section for the format).

    Raises:
        SuiteError: the file is missing, is not YAML, or is not a valid suite.
    """
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SuiteError(f"no suite file {path} (suites live in the quality folder, e.g. quality/x.yaml)") from None
    except OSError as exc:
        raise SuiteError(f"cannot read the suite file {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SuiteError(f"{path} is not valid YAML: {exc}") from None
    return parse_suite(data, str(path))


def load_suites(folder: Path) -> dict[str, Suite]:
    """Every suite in ``folder`` by table name."""
    suites: dict[str, Suite] = {}
    if not folder.is_dir():
        return suites
    for path in sorted(folder.glob("*.y*ml")):
        suite = load_suite(path)
        if suite.table in suites:
            raise SuiteError(f"two suites for {suite.table}: {suites[suite.table].source} and {path}")
        suites[suite.table] = suite
    return suites


def quality_folder(configured: str | None) -> Path:
    return Path(configured).expanduser() if configured else Path("quality")
