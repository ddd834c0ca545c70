"""Small SQL predicates: parse, check the columns, and skip files by their statistics.

A predicate is the ``WHERE`` text users already know (``country = 'FR' AND ts >=
TIMESTAMP '2024-01-01'``). The full text always goes to the engine that filters
rows (Spark, delta-rs); this module only decides which files *cannot* hold a
matching row, from partition values and Delta min/max/null statistics. When in
doubt a file is kept, so skipping never changes a result.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from lake.errors import InvalidPredicateError

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<num>-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)
    | (?P<str>'(?:[^']|'')*')
    | (?P<qid>`[^`]+`|"[^"]+")
    | (?P<op><=|>=|<>|!=|==|=|<|>|\(|\)|,)
    | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)

_KEYWORDS = {"AND", "OR", "NOT", "IN", "IS", "NULL", "TRUE", "FALSE", "BETWEEN", "DATE", "TIMESTAMP"}


@dataclass(frozen=True)
class Col:
    name: str


@dataclass(frozen=True)
class Lit:
    value: Any


@dataclass(frozen=True)
class Cmp:
    op: str
    left: Col | Lit
    right: Col | Lit


@dataclass(frozen=True)
class In:
    col: Col
    values: tuple[Any, ...]
    negated: bool


@dataclass(frozen=True)
class IsNull:
    col: Col
    negated: bool


@dataclass(frozen=True)
class And:
    parts: tuple[Any, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Any, ...]


@dataclass(frozen=True)
class Not:
    part: Any


class _Unsupported(Exception):
    """The text uses SQL this module does not model (the engine still evaluates it)."""


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise _Unsupported(text[pos:])
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


MAX_DEPTH = 100
"""Nesting (parentheses, NOT) deeper than this is refused: no real filter needs it."""


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.depth = 0

    def deeper(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise InvalidPredicateError(f"the predicate nests parentheses or NOT more than {MAX_DEPTH} deep")

    def peek(self, upper: bool = True) -> str | None:
        if self.i >= len(self.toks):
            return None
        kind, val = self.toks[self.i]
        return val.upper() if upper and kind == "word" else val

    def take(self) -> tuple[str, str]:
        if self.i >= len(self.toks):
            raise _Unsupported("unexpected end")
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expect(self, value: str) -> None:
        kind, val = self.take()
        if (val.upper() if kind == "word" else val) != value:
            raise _Unsupported(f"expected {value}")

    def parse(self) -> Any:
        node = self.or_()
        if self.i != len(self.toks):
            raise _Unsupported("trailing text")
        return node

    def or_(self) -> Any:
        parts = [self.and_()]
        while self.peek() == "OR":
            self.take()
            parts.append(self.and_())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def and_(self) -> Any:
        parts = [self.not_()]
        while self.peek() == "AND":
            self.take()
            parts.append(self.not_())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def not_(self) -> Any:
        if self.peek() == "NOT":
            self.take()
            self.deeper()
            node = Not(self.not_())
            self.depth -= 1
            return node
        return self.cmp()

    def cmp(self) -> Any:
        if self.peek() == "(":
            self.take()
            self.deeper()
            node = self.or_()
            self.expect(")")
            self.depth -= 1
            return node
        left = self.operand()
        nxt = self.peek()
        if nxt == "IS":
            self.take()
            negated = self.peek() == "NOT"
            if negated:
                self.take()
            self.expect("NULL")
            return IsNull(self._col(left), negated)
        negated = False
        if nxt == "NOT":
            self.take()
            negated = True
            nxt = self.peek()
        if nxt == "IN":
            self.take()
            self.expect("(")
            values = [self.literal()]
            while self.peek() == ",":
                self.take()
                values.append(self.literal())
            self.expect(")")
            return In(self._col(left), tuple(v.value for v in values), negated)
        if nxt == "BETWEEN":
            self.take()
            lo = self.literal()
            self.expect("AND")
            hi = self.literal()
            between: Any = And((Cmp(">=", left, lo), Cmp("<=", left, hi)))
            return Not(between) if negated else between
        if negated:
            raise _Unsupported("NOT without IN/BETWEEN")
        kind, op = self.take()
        if kind != "op" or op in "(),":
            raise _Unsupported(op)
        op = {"==": "=", "<>": "!=", "!=": "!="}.get(op, op)
        return Cmp(op, left, self.operand())

    @staticmethod
    def _col(node: Col | Lit) -> Col:
        if not isinstance(node, Col):
            raise _Unsupported("expected a column")
        return node

    def operand(self) -> Col | Lit:
        kind, val = self.toks[self.i] if self.i < len(self.toks) else ("", "")
        if kind == "qid":
            self.take()
            return Col(val[1:-1])
        if kind == "word" and val.upper() not in _KEYWORDS:
            self.take()
            if self.peek() == "(":
                raise _Unsupported(f"function {val}")
            return Col(val)
        return self.literal()

    def literal(self) -> Lit:
        kind, val = self.take()
        if kind == "num":
            return Lit(float(val) if any(c in val for c in ".eE") else int(val))
        if kind == "str":
            return Lit(val[1:-1].replace("''", "'"))
        up = val.upper() if kind == "word" else val
        if up in ("TRUE", "FALSE"):
            return Lit(up == "TRUE")
        if up == "NULL":
            return Lit(None)
        if up in ("DATE", "TIMESTAMP"):
            k2, v2 = self.take()
            if k2 != "str":
                raise _Unsupported(up)
            text = v2[1:-1]
            try:
                if up == "DATE":
                    return Lit(dt.date.fromisoformat(text))
                return Lit(_parse_ts(text))
            except ValueError as exc:
                raise InvalidPredicateError(f"{up} {v2} is not a valid {up.lower()}") from exc
        raise _Unsupported(val)


def _parse_ts(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def parse(text: str) -> Any | None:
    """The predicate's tree, or ``None`` when it uses SQL beyond what pruning models."""
    try:
        return _Parser(text).parse()
    except _Unsupported:
        return None


def columns_of(node: Any) -> set[str]:
    """Every column name the tree mentions."""
    if isinstance(node, Col):
        return {node.name}
    if isinstance(node, Cmp):
        return columns_of(node.left) | columns_of(node.right)
    if isinstance(node, In | IsNull):
        return {node.col.name}
    if isinstance(node, And | Or):
        return set().union(*(columns_of(p) for p in node.parts))
    if isinstance(node, Not):
        return columns_of(node.part)
    return set()


def check_columns(text: str, known: list[str], table: str) -> Any | None:
    """Parse ``text`` and fail clearly when it names a column the table lacks."""
    if not text or not text.strip():
        raise InvalidPredicateError(f"empty predicate for {table}", table=table)
    tree = parse(text)
    if tree is not None:
        unknown = sorted(columns_of(tree) - set(known))
        if unknown:
            raise InvalidPredicateError(
                f"predicate {text!r} names unknown column(s) {', '.join(unknown)} of {table}; "
                f"its columns are: {', '.join(known)}",
                table=table,
            )
    return tree


# ---------------------------------------------------------------- file skipping


@dataclass(frozen=True)
class FileStats:
    """What the Delta log knows about one data file."""

    num_records: int | None
    partition: dict[str, Any]
    mins: dict[str, Any]
    maxs: dict[str, Any]
    nulls: dict[str, Any]


def _coerce(value: Any, like: Any) -> Any:
    """Make a literal comparable with a statistics value."""
    if value is None or like is None:
        return value
    try:
        return _coerced(value, like)
    except ValueError:  # a text that is no date or time: nothing to compare, the file is kept
        raise _Unsupported(f"{value!r} against {type(like).__name__} statistics") from None


def _coerced(value: Any, like: Any) -> Any:
    if isinstance(like, dt.datetime):
        if isinstance(value, str):
            value = _parse_ts(value)
        elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            value = dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
        if isinstance(value, dt.datetime):
            if like.tzinfo is None and value.tzinfo is not None:
                value = value.astimezone(dt.UTC).replace(tzinfo=None)
            elif like.tzinfo is not None and value.tzinfo is None:
                value = value.replace(tzinfo=dt.UTC)
        return value
    if isinstance(like, dt.date) and isinstance(value, str):
        return dt.date.fromisoformat(value)
    if isinstance(like, bool) or isinstance(value, bool):
        return value
    if isinstance(like, int | float) and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    if isinstance(like, str) and not isinstance(value, str):
        return str(value)
    return value


def _lt(a: Any, b: Any) -> bool:
    try:
        return bool(a < b)
    except TypeError:
        raise _Unsupported("incomparable") from None


def may_match(node: Any, f: FileStats) -> bool:
    """False only when no row of the file can satisfy ``node``."""
    try:
        return _may(node, f)
    except _Unsupported:
        return True


def _range(f: FileStats, col: str) -> tuple[Any, Any, bool] | None:
    """(min, max, all_null) for a column, or None when unknown."""
    if col in f.partition:
        v = f.partition[col]
        return v, v, v is None
    nulls = f.nulls.get(col)
    all_null = nulls is not None and f.num_records is not None and nulls == f.num_records
    if all_null:
        return None, None, True
    lo, hi = f.mins.get(col), f.maxs.get(col)
    if lo is None or hi is None:
        return None
    return lo, hi, False


def _may(node: Any, f: FileStats) -> bool:
    if isinstance(node, And):
        return all(_may(p, f) for p in node.parts)
    if isinstance(node, Or):
        return any(_may(p, f) for p in node.parts)
    if isinstance(node, Not):
        inner = node.part
        # Only the exact negations we can reason about; anything else keeps the file.
        if isinstance(inner, IsNull):
            return _may(IsNull(inner.col, not inner.negated), f)
        if isinstance(inner, In):
            return _may(In(inner.col, inner.values, not inner.negated), f)
        return True
    if isinstance(node, IsNull):
        col = node.col.name
        if col in f.partition:
            return (f.partition[col] is None) != node.negated
        nulls = f.nulls.get(col)
        if nulls is None:
            return True
        if node.negated:
            return f.num_records is None or nulls < f.num_records
        return nulls > 0
    if isinstance(node, In):
        r = _range(f, node.col.name)
        if r is None:
            return True
        lo, hi, all_null = r
        if all_null:
            return False
        if node.negated:
            return not (lo == hi and any(_coerce(v, lo) == lo for v in node.values))
        return any(
            v is not None and not _lt(_coerce(v, lo), lo) and not _lt(hi, _coerce(v, hi))
            for v in node.values
        )
    if isinstance(node, Cmp):
        left, right, op = node.left, node.right, node.op
        if isinstance(left, Lit) and isinstance(right, Col):
            left, right = right, left
            op = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(op, op)
        if not (isinstance(left, Col) and isinstance(right, Lit)):
            return True
        r = _range(f, left.name)
        if r is None:
            return True
        lo, hi, all_null = r
        if all_null or right.value is None:
            return False  # comparisons with NULL are never true
        v_lo, v_hi = _coerce(right.value, lo), _coerce(right.value, hi)
        if op == "=":
            return not _lt(v_lo, lo) and not _lt(hi, v_hi)
        if op == "!=":
            return not (lo == hi == v_lo)
        if op == "<":
            return _lt(lo, v_lo)
        if op == "<=":
            return not _lt(v_lo, lo)
        if op == ">":
            return _lt(v_hi, hi)
        if op == ">=":
            return not _lt(hi, v_hi)
    return True


def partition_only(node: Any, partition_cols: list[str]) -> bool:
    """Whether the predicate mentions partition columns only."""
    return node is not None and columns_of(node) <= set(partition_cols)


# ------------------------------------------------------------- row filtering


def _scalar(value: Any, dtype: pa.DataType) -> pa.Scalar:
    if value is None:
        return pa.scalar(None, dtype)
    if pa.types.is_timestamp(dtype):
        if isinstance(value, str):
            value = _parse_ts(value)
        elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            value = dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
        if isinstance(value, dt.datetime):
            if dtype.tz is None and value.tzinfo is not None:
                value = value.astimezone(dt.UTC).replace(tzinfo=None)
            elif dtype.tz is not None and value.tzinfo is None:
                value = value.replace(tzinfo=dt.UTC)
    elif pa.types.is_date(dtype) and isinstance(value, str):
        value = dt.date.fromisoformat(value)
    elif pa.types.is_date(dtype) and isinstance(value, dt.datetime):
        raise _Unsupported("a timestamp compared with a date")
    elif (pa.types.is_string(dtype) or pa.types.is_large_string(dtype)) and not isinstance(value, str):
        raise _Unsupported("a non-string literal compared with a string column")
    try:
        return pa.scalar(value, dtype)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError):
        raise _Unsupported("a literal of another type") from None


def _expr(node: Any, schema: pa.Schema) -> pc.Expression:
    if isinstance(node, And | Or):
        parts = [_expr(p, schema) for p in node.parts]
        out = parts[0]
        for p in parts[1:]:
            out = (out & p) if isinstance(node, And) else (out | p)
        return out
    if isinstance(node, Not):
        return ~_expr(node.part, schema)
    if isinstance(node, IsNull):
        e = pc.field(node.col.name).is_null()
        return ~e if node.negated else e
    if isinstance(node, In):
        dtype = schema.field(node.col.name).type
        values = [_scalar(v, dtype) for v in node.values if v is not None]
        e = pc.field(node.col.name).isin(pa.array([v.as_py() for v in values], dtype))
        if node.negated:
            # NOT IN with a NULL in the list is never true; otherwise null rows stay unknown
            return pc.scalar(False) if None in node.values else ~e & pc.field(node.col.name).is_valid()
        return e
    if isinstance(node, Cmp):
        left, right, op = node.left, node.right, node.op
        if isinstance(left, Lit) and isinstance(right, Col):
            left, right = right, left
            op = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(op, op)
        if not (isinstance(left, Col) and isinstance(right, Lit)):
            raise _Unsupported("only column <op> literal")
        field = pc.field(left.name)
        lit = _scalar(right.value, schema.field(left.name).type)
        return {"=": field == lit, "!=": field != lit, "<": field < lit, "<=": field <= lit, ">": field > lit,
                ">=": field >= lit}[op]
    raise _Unsupported(type(node).__name__)


def arrow_filter(node: Any, schema: pa.Schema) -> pc.Expression | None:
    """The predicate tree as a pyarrow expression over ``schema`` (SQL's three-valued logic), or
    None when the tree uses something the expression cannot state exactly."""
    if node is None:
        return None
    try:
        return _expr(node, schema)
    except (_Unsupported, KeyError):
        return None
