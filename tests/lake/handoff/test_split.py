"""Stable split hashing: an independent pure-Python oracle, golden values, type and chunking invariance."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from lake.handoff import SplitError, SplitSpec, key_hash

M64 = (1 << 64) - 1


def oracle_hash(*values: bytes | None, salt: str = "") -> int:
    """The documented algorithm, written independently in plain Python."""
    data = b""
    if salt:
        data += f"{len(salt.encode())}:".encode() + salt.encode()
    for v in values:
        data += b"-" if v is None else f"{len(v)}:".encode() + v
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & M64
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & M64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & M64
    return h ^ (h >> 33)


def oracle_split(fractions: list[float], h: int) -> int:
    top, acc = h >> 11, 0.0
    for i, f in enumerate(fractions):
        acc += f
        if i == len(fractions) - 1 or top < round(acc * 2**53):
            return i
    raise AssertionError


SPEC = SplitSpec.parse("train=0.8,validation=0.1,test=0.1", keys="id")


def test_hash_matches_the_oracle_and_golden_values_that_must_never_change() -> None:
    table = pa.table({"id": [0, 1, 42, -7, 2**62], "name": ["a", "é", "", None, "long" * 50]})
    got = key_hash(table, ["id"]).tolist()
    assert got == [oracle_hash(str(i).encode()) for i in table.column("id").to_pylist()]
    # Frozen values: a change here moves keys between splits for every user. Do not update them.
    assert got[:3] == [1115365693623337124, 4199854001559831477, 3801884306869458520]
    both = key_hash(table, ["id", "name"]).tolist()
    expected = [oracle_hash(str(i).encode(), None if n is None else n.encode())
                for i, n in zip(table.column("id").to_pylist(), table.column("name").to_pylist(), strict=True)]
    assert both == expected
    assert key_hash(table, ["id"], salt="v2").tolist() == [oracle_hash(str(i).encode(), salt="v2")
                                                           for i in table.column("id").to_pylist()]


def test_assignment_matches_the_oracle_and_fractions() -> None:
    table = pa.table({"id": np.arange(200_000)})
    assigned = SPEC.assign(table)
    hashes = key_hash(table, ["id"])
    sample = range(0, 200_000, 997)
    assert [int(assigned[i]) for i in sample] == [oracle_split([0.8, 0.1, 0.1], int(hashes[i])) for i in sample]
    share = np.bincount(assigned, minlength=3) / len(assigned)
    assert abs(share[0] - 0.8) < 0.005 and abs(share[1] - 0.1) < 0.005 and abs(share[2] - 0.1) < 0.005
    assert SPEC.labels(table.slice(0, 3)).to_pylist() == [SPEC.names[int(i)] for i in assigned[:3]]


def test_same_key_same_split_whatever_the_type_width_chunking_and_order() -> None:
    ids = list(range(5000))
    base = SPEC.assign(pa.table({"id": pa.array(ids, pa.int64())}))
    assert (SPEC.assign(pa.table({"id": pa.array(ids, pa.int32())})) == base).all()
    assert (SPEC.assign(pa.table({"id": pa.array(ids, pa.uint16())})) == base).all()
    chunked = pa.Table.from_batches([pa.record_batch({"id": ids[i:i + 333]}) for i in range(0, 5000, 333)])
    assert (SPEC.assign(chunked) == base).all()
    reversed_ = SPEC.assign(pa.table({"id": ids[::-1]}))
    assert (reversed_[::-1] == base).all()
    sliced = pa.table({"id": ids}).slice(1000, 10)  # a non-zero offset into the buffers
    assert (SPEC.assign(sliced) == base[1000:1010]).all()
    words = pa.table({"id": [str(i) for i in ids]})
    assert (SPEC.assign(words) == base).all()  # an int key and its decimal text are the same key
    dictionary = pa.table({"id": pa.array([str(i) for i in ids]).dictionary_encode()})
    assert (SPEC.assign(dictionary) == base).all()


def test_other_key_types() -> None:
    when = dt.datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=dt.UTC)
    micros = int(when.timestamp()) * 1_000_000 + 123456
    us = pa.table({"t": pa.array([when], pa.timestamp("us", "UTC"))})
    ns = pa.table({"t": pa.array([when], pa.timestamp("ns", "UTC"))})
    assert key_hash(us, ["t"]).tolist() == key_hash(ns, ["t"]).tolist() == [oracle_hash(str(micros).encode())]
    day = pa.table({"d": pa.array([dt.date(2024, 5, 1)], pa.date32())})
    assert key_hash(day, ["d"]).tolist() == [oracle_hash(b"2024-05-01")]
    flags = pa.table({"b": [True, False, None]})
    assert key_hash(flags, ["b"]).tolist() == [oracle_hash(b"true"), oracle_hash(b"false"), oracle_hash(None)]
    money = pa.table({"m": pa.array([Decimal("1.50")], pa.decimal128(10, 2))})
    assert key_hash(money, ["m"]).tolist() == [oracle_hash(b"1.50")]
    raw = pa.table({"r": pa.array([b"\x00\xff"], pa.binary())})
    assert key_hash(raw, ["r"]).tolist() == [oracle_hash(b"\x00\xff")]
    # Length prefixes keep column boundaries: ("ab", "c") is not ("a", "bc").
    pairs = pa.table({"x": ["ab", "a"], "y": ["c", "bc"]})
    a, b = key_hash(pairs, ["x", "y"]).tolist()
    assert a != b


def test_the_split_is_the_same_in_another_process() -> None:
    """Another interpreter, another hash seed: same labels (nothing depends on Python's hash())."""
    code = ("import pyarrow as pa; from lake.handoff import SplitSpec; "
            "s = SplitSpec.parse('train=0.8,validation=0.1,test=0.1', keys='id'); "
            "print(','.join(s.labels(pa.table({'id': [f'user-{i}' for i in range(300)]})).to_pylist()))")
    here = SPEC.labels(pa.table({"id": [f"user-{i}" for i in range(300)]})).to_pylist()
    for seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        assert out.stdout.strip().split(",") == here


@settings(max_examples=60, deadline=None)
@given(hs.lists(hs.one_of(hs.none(), hs.text(max_size=40)), min_size=1, max_size=50), hs.text(max_size=5))
def test_any_text_keys_follow_the_oracle(keys: list[str | None], salt: str) -> None:
    table = pa.table({"k": pa.array(keys, pa.string())})
    expected = [oracle_hash(None if k is None else k.encode(), salt=salt) for k in keys]
    assert key_hash(table, ["k"], salt=salt).tolist() == expected
    spec = SplitSpec((("a", 0.3), ("b", 0.7)), ("k",), salt)
    assert spec.assign(table).tolist() == [oracle_split([0.3, 0.7], h) for h in expected]


def test_bad_split_definitions_are_clear_errors() -> None:
    cases = [
        ("train=0.8,test=0.3", "id", "sum to 1"),
        ("train=0.8,test", "id", "not name=fraction"),
        ("train=abc,test=0.2", "id", "not name=fraction"),
        ("train=0.5,train=0.5", "id", "repeat"),
        ("train=1.2,test=-0.2", "id", r"\(0, 1\]"),
        ("train=0.8,test=0.2", "", "key column"),
        ("tr ain=0.8,test=0.2", "id", "letters, digits"),
    ]
    for text, keys, message in cases:
        with pytest.raises(SplitError, match=message):
            SplitSpec.parse(text, keys)
    with pytest.raises(SplitError, match="no split 'dev'"):
        SPEC.index("dev")
    with pytest.raises(SplitError, match="cannot be a split key"):
        SPEC.assign(pa.table({"id": [1.5]}))
    with pytest.raises(SplitError, match=r"\['id'\] are not in the data"):
        SPEC.assign(pa.table({"other": [1]}))


def test_spec_round_trips_through_its_dict() -> None:
    spec = SplitSpec.parse("train=0.7, test=0.3", keys="a, b", salt="s")
    assert spec.keys == ("a", "b") and spec.names == ["train", "test"]
    assert SplitSpec.from_dict(spec.as_dict()) == spec
    assert str(spec) == "train=0.7,test=0.3 by a,b"
