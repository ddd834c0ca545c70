"""Streaming a dataset to training: file order, exact batches, stable splits, seeded shuffles.

Everything here works batch by batch, so memory stays bounded by a few batches (plus
the shuffle buffer) however large the table is.

**Order.** A Delta version is read file by file in the order of the files' paths
(not the order delta-rs happens to list them), each file in its stored row order, so
the same version always streams the same rows in the same order, on any machine.

**Splits.** A row's split depends only on the values of its key columns, never on
its position, the table version, the machine or a library's hash seed:

1. each key value is written as text (``canonical_key``): integers in decimal, strings
   as UTF-8, booleans ``true``/``false``, dates ``YYYY-MM-DD``, timestamps as integer
   microseconds since the epoch (UTC), decimals in pyarrow's text form (their scale is
   part of the value), binary as is; floats are refused (a rounding away from another
   split); a null is ``-``;
2. the key is the concatenation over the key columns, in order, of
   ``<byte length>:<bytes>`` (a null is just ``-``), so ``("ab", "c")`` and
   ``("a", "bc")`` differ; a ``salt`` is prepended the same way when given;
3. the hash is 64-bit FNV-1a over those bytes, then the MurmurHash3 ``fmix64``
   finalizer, computed vectorised with numpy (``key_hash``);
4. ``u = (hash >> 11) / 2**53`` lies in [0, 1); the row goes to the first split whose
   cumulative fraction is above ``u`` (fractions in the order given).

So a key keeps its split across runs, table versions and machines, and for ever
across library versions (the arithmetic is this module's, not a library's hash).
Changing the fractions moves only the keys near a boundary.

**Shuffling.** A seeded shuffle permutes the file order, then passes rows through a
buffer of ``buffer_size`` rows: each output batch takes ``batch_size`` rows drawn
uniformly from the buffer, which refills from the stream (as ``tf.data``'s shuffle
buffer does). It is a bounded-buffer shuffle, not a global permutation: a row can
only move about ``buffer_size`` rows away from where the file order put it. For a
given version, seed, ``batch_size`` and ``buffer_size`` the order is identical on
every run: the randomness comes from the raw output of numpy's ``PCG64`` bit
generator, whose stream numpy keeps stable across releases.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds

from lake.errors import SplitError

HASH_ALGORITHM = "fnv1a64+fmix64 over <len>:<bytes> key text, u=(h>>11)/2^53 (lake split v1)"
FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
_MASK64 = (1 << 64) - 1
_NULL = b"-"


# ------------------------------------------------------------------------ splits


def canonical_key(data: pa.RecordBatch | pa.Table, keys: Sequence[str], salt: str = "") -> pa.Array:
    """The bytes that are hashed for each row: ``<len>:<value>`` per key column (see the module doc).

    Raises:
        SplitError: a key column is missing or of a type that cannot be a stable key.
    """
    missing = [k for k in keys if k not in data.schema.names]
    if missing:
        raise SplitError(f"split key column(s) {missing} are not in the data (columns: {data.schema.names})")
    empty = pa.scalar(b"", pa.large_binary())
    parts = [_netstring(_key_bytes(_combined(data.column(k)), k)) for k in keys]
    if salt:
        parts.insert(0, pa.repeat(pa.scalar(_netstring_scalar(salt.encode()), pa.large_binary()), data.num_rows))
    if len(parts) == 1:
        return parts[0]
    return pc.binary_join_element_wise(*parts, empty)  # type: ignore[no-any-return]


def _combined(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return column


def _key_bytes(arr: pa.Array, name: str) -> pa.Array:
    t = arr.type
    if pa.types.is_dictionary(t):
        arr, t = arr.cast(t.value_type), t.value_type
    textual = pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)
    if pa.types.is_integer(t) or pa.types.is_decimal(t) or textual:
        text = pc.cast(arr, pa.large_string())
    elif pa.types.is_boolean(t):
        text = pc.cast(pc.if_else(arr, "true", "false"), pa.large_string())
    elif pa.types.is_date(t):
        text = pc.cast(pc.cast(arr, pa.date32()), pa.large_string())
    elif pa.types.is_timestamp(t):
        micros = pc.cast(pc.cast(arr, pa.timestamp("us", t.tz), safe=False), pa.int64())
        text = pc.cast(micros, pa.large_string())
    elif pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return pc.cast(arr, pa.large_binary())
    else:
        raise SplitError(
            f"column {name!r} of type {t} cannot be a split key: use integer, string, date, timestamp, "
            "boolean, decimal or binary columns (floats would put near-equal keys in different splits)"
        )
    return pc.cast(text, pa.large_binary())


def _netstring(values: pa.Array) -> pa.Array:
    length = pc.cast(pc.cast(pc.binary_length(values), pa.large_string()), pa.large_binary())
    colon, empty = pa.scalar(b":", pa.large_binary()), pa.scalar(b"", pa.large_binary())
    joined = pc.binary_join_element_wise(length, colon, values, empty)
    return pc.fill_null(joined, pa.scalar(_NULL, pa.large_binary()))


def _netstring_scalar(value: bytes) -> bytes:
    return str(len(value)).encode() + b":" + value


def fnv1a64(values: pa.Array) -> np.ndarray:
    """64-bit FNV-1a of every value of a binary array, vectorised over rows."""
    values = pc.cast(values, pa.large_binary())
    n = len(values)
    h = np.full(n, FNV_OFFSET, dtype=np.uint64)
    if n == 0:
        return h
    if values.null_count:
        values = pc.fill_null(values, pa.scalar(_NULL, pa.large_binary()))
    bufs = values.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64)[values.offset : values.offset + n + 1]
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    starts = offsets[:-1]
    lengths = offsets[1:] - starts
    prime = np.uint64(FNV_PRIME)
    shortest, longest = int(lengths.min()), int(lengths.max())
    for j in range(shortest):  # every row has a byte here: whole-vector steps
        h = (h ^ data[starts + j]) * prime
    active = np.arange(n)
    for j in range(shortest, longest):
        active = active[lengths[active] > j]
        h[active] = (h[active] ^ data[starts[active] + j]) * prime
    return h


def fmix64(h: np.ndarray) -> np.ndarray:
    """The MurmurHash3 64-bit finalizer: spreads FNV's bits so every bit of the result is usable."""
    h = h.astype(np.uint64, copy=True)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return h


def key_hash(data: pa.RecordBatch | pa.Table, keys: Sequence[str], salt: str = "") -> np.ndarray:
    """The stable 64-bit hash of each row's key (see the module doc), as a ``uint64`` array."""
    return fmix64(fnv1a64(canonical_key(data, keys, salt)))


@dataclass(frozen=True)
class SplitSpec:
    """A deterministic train/validation/test split by entity key.

    Args:
        fractions: ``(name, fraction)`` pairs in order; fractions are positive and sum to 1.
        keys: the key columns whose values decide a row's split (all rows of one entity
            land in the same split).
        salt: optional text mixed into the hash, for a different but still stable split.

    Example:
        >>> spec = SplitSpec.parse("train=0.8,validation=0.1,test=0.1", keys=["customer_id"])
        >>> spec.labels(table)       # "train", "validation" or "test" for every row
    """

    fractions: tuple[tuple[str, float], ...]
    keys: tuple[str, ...]
    salt: str = ""
    _bounds: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        fractions = tuple((str(n), float(f)) for n, f in self.fractions)
        keys = tuple(self.keys)
        object.__setattr__(self, "fractions", fractions)
        object.__setattr__(self, "keys", keys)
        if not fractions:
            raise SplitError("a split needs at least one name=fraction")
        names = [n for n, _ in fractions]
        bad = [n for n in names if not n or not n.replace("_", "").replace("-", "").isalnum()]
        if bad:
            raise SplitError(f"split names must be letters, digits, _ or -: {bad}")
        if len(set(names)) != len(names):
            raise SplitError(f"split names repeat: {names}")
        if any(not 0 < f <= 1 for _, f in fractions):
            raise SplitError(f"split fractions must be in (0, 1]: {dict(fractions)}")
        total = sum(f for _, f in fractions)
        if abs(total - 1) > 1e-9:
            raise SplitError(f"split fractions must sum to 1, not {total:g}: {dict(fractions)}")
        if not keys or any(not k for k in keys):
            raise SplitError("a split needs at least one key column (--key COL,...)")
        cumulative = np.cumsum([f for _, f in fractions])
        bounds = np.array([int(round(c * 2**53)) for c in cumulative], dtype=np.uint64)
        bounds[-1] = np.uint64(2**53)  # everything lands somewhere despite rounding
        object.__setattr__(self, "_bounds", bounds)

    @classmethod
    def parse(cls, text: str, keys: str | Sequence[str], salt: str = "") -> SplitSpec:
        """From ``"train=0.8,validation=0.1,test=0.1"`` and ``"id"`` / ``"a,b"`` / ``["a", "b"]``.

        Raises:
            SplitError: the text is not ``name=fraction`` pairs, or the result is invalid.
        """
        pairs = []
        for part in (p.strip() for p in text.split(",")):
            name, sep, value = part.partition("=")
            try:
                fraction = float(value)
            except ValueError:
                fraction = None
            if not sep or fraction is None or not name.strip():
                raise SplitError(f"{part!r} in {text!r} is not name=fraction (e.g. train=0.8,validation=0.1,test=0.1)")
            pairs.append((name.strip(), fraction))
        key_list = [k.strip() for k in keys.split(",")] if isinstance(keys, str) else [str(k) for k in keys]
        return cls(tuple(pairs), tuple(k for k in key_list if k), salt)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SplitSpec:
        """The inverse of :meth:`as_dict` (e.g. read back from an export manifest)."""
        return cls(tuple(data["fractions"].items()), tuple(data["keys"]), data.get("salt") or "")

    @property
    def names(self) -> list[str]:
        """The split names in order."""
        return [n for n, _ in self.fractions]

    def index(self, name: str) -> int:
        """The position of a split name (raises :class:`SplitError` for an unknown one)."""
        try:
            return self.names.index(name)
        except ValueError:
            raise SplitError(f"no split {name!r}: this split defines {', '.join(self.names)}") from None

    def assign(self, data: pa.RecordBatch | pa.Table) -> np.ndarray:
        """The split index (into :attr:`names`) of every row, as an ``int8`` array."""
        top = key_hash(data, self.keys, self.salt) >> np.uint64(11)
        return np.searchsorted(self._bounds, top, side="right").astype(np.int8)

    def labels(self, data: pa.RecordBatch | pa.Table) -> pa.Array:
        """The split name of every row."""
        return pa.DictionaryArray.from_arrays(pa.array(self.assign(data)), pa.array(self.names)).cast(pa.string())

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready description (what an export manifest records)."""
        return {"keys": list(self.keys), "fractions": dict(self.fractions), "salt": self.salt,
                "algorithm": HASH_ALGORITHM}

    def __str__(self) -> str:
        return ",".join(f"{n}={f:g}" for n, f in self.fractions) + f" by {','.join(self.keys)}"


# ----------------------------------------------------------------------- batches


def scan(
    dataset: pds.FileSystemDataset,
    *,
    columns: Sequence[str] | None = None,
    batch_size: int = 65_536,
    seed: int | None = None,
) -> Iterator[pa.RecordBatch]:
    """Batches of a Delta version's pyarrow dataset, file by file in path order.

    With a ``seed`` the file order is a seeded permutation of the path order. Files
    are read one at a time (a whole-dataset scanner reads ahead across files as fast
    as it can, so a slow consumer would find most of the table in memory): memory
    stays at about one Parquet row group plus a batch or two.
    """
    fragments = sorted(dataset.get_fragments(), key=lambda f: f.path)
    if seed is not None and fragments:
        order = np.argsort(np.random.PCG64(seed).random_raw(len(fragments)), kind="stable")
        fragments = [fragments[i] for i in order]
    cols = list(columns) if columns is not None else None
    for fragment in fragments:
        for batch in fragment.to_batches(schema=dataset.schema, columns=cols, batch_size=batch_size,
                                         batch_readahead=1, fragment_readahead=0):
            if batch.num_rows:
                yield batch


class Rebatcher:
    """Re-cuts pushed batches into batches of exactly ``size`` rows (push-based :func:`rebatch`)."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise SplitError(f"batch size must be at least 1, not {size}")
        self.size = size
        self._pending: list[pa.RecordBatch] = []
        self._held = 0

    def push(self, batch: pa.RecordBatch) -> Iterator[pa.RecordBatch]:
        """Add a batch; yields every full batch now available."""
        if not batch.num_rows:
            return
        self._pending.append(batch)
        self._held += batch.num_rows
        while self._held >= self.size:
            table = pa.Table.from_batches(self._pending)
            yield _one_batch(table.slice(0, self.size))
            self._pending = table.slice(self.size).to_batches()
            self._held -= self.size

    def flush(self) -> Iterator[pa.RecordBatch]:
        """The last, shorter batch (if any rows are left)."""
        if self._held:
            yield _one_batch(pa.Table.from_batches(self._pending))
        self._pending, self._held = [], 0


def rebatch(batches: Iterable[pa.RecordBatch], size: int) -> Iterator[pa.RecordBatch]:
    """Re-cut a stream into batches of exactly ``size`` rows (the last one may be shorter)."""
    cutter = Rebatcher(size)
    for batch in batches:
        yield from cutter.push(batch)
    yield from cutter.flush()


def _one_batch(table: pa.Table) -> pa.RecordBatch:
    combined = table.combine_chunks()
    batches = combined.to_batches()
    if len(batches) == 1:
        return batches[0]
    return pa.RecordBatch.from_arrays([c.combine_chunks() for c in combined.columns], schema=combined.schema)


def shuffle(
    batches: Iterable[pa.RecordBatch], *, batch_size: int, buffer_size: int, seed: int
) -> Iterator[pa.RecordBatch]:
    """A seeded, bounded-buffer shuffle (see the module doc); batches of exactly ``batch_size``.

    Holds at most ``max(buffer_size, batch_size)`` rows plus one incoming batch.
    """
    if batch_size < 1:
        raise SplitError(f"batch_size must be at least 1, not {batch_size}")
    capacity = max(buffer_size, batch_size)
    bits = np.random.PCG64(seed)
    pending: list[pa.RecordBatch] = []
    held = 0
    schema: pa.Schema | None = None
    for batch in batches:
        if not batch.num_rows:
            continue
        schema = batch.schema
        pending.append(batch)
        held += batch.num_rows
        while held >= capacity:
            table = pa.Table.from_batches(pending, schema=schema)
            order = np.argsort(bits.random_raw(held), kind="stable")
            yield _one_batch(table.take(order[:batch_size]))
            rest = table.take(np.sort(order[batch_size:]))
            pending = rest.combine_chunks().to_batches()
            held -= batch_size
    if held and schema is not None:
        table = pa.Table.from_batches(pending, schema=schema)
        permuted = table.take(np.argsort(bits.random_raw(held), kind="stable"))
        for start in range(0, held, batch_size):
            yield _one_batch(permuted.slice(start, batch_size))


def only_split(batches: Iterable[pa.RecordBatch], spec: SplitSpec, name: str,
               columns: Sequence[str] | None) -> Iterator[pa.RecordBatch]:
    """The rows of one split, projected to ``columns`` (key columns are dropped unless asked for)."""
    target = spec.index(name)
    for batch in batches:
        kept = batch.filter(pa.array(spec.assign(batch) == target))
        if columns is not None:
            kept = kept.select(list(columns))
        if kept.num_rows:
            yield kept
