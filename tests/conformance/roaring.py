"""Deletion vectors as the Delta protocol serializes them, written from the specification.

Independent of the lake and of delta-rs: the conformance tables carry deletion vectors
made here, and a reader is right only if it drops exactly the rows listed.

- ``RoaringBitmapArray`` ("portable" format): magic number 1681511377, then a 64-bit
  roaring bitmap in the standard portable layout (number of 32-bit buckets as a
  uint64, then per bucket its high 32 bits and a serialized 32-bit roaring bitmap),
  everything little endian.
- The 32-bit roaring layout (RoaringFormatSpec): cookie 12346 without run containers
  (then the container count, the descriptive header, the offsets, the containers) or
  cookie 12347 with them (count-1 in the high 16 bits, a run-flag bitset, the header,
  offsets only from 4 containers on). Containers: sorted uint16 arrays (up to 4096
  values), 8 KiB bitmaps, or runs (count, then start/length-1 pairs).
- On disk: a version byte 1, then per vector its size (big endian int32), the bytes and
  their CRC-32 (big endian). Inline: Z85 (the ZeroMQ base85), padded to 4 bytes.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Iterable

Z85 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
PORTABLE_MAGIC = 1681511377


def z85_encode(data: bytes) -> str:
    """Z85 text of ``data`` (zero-padded to a multiple of 4 bytes, as Delta writes it)."""
    data = data + b"\0" * (-len(data) % 4)
    out = []
    for i in range(0, len(data), 4):
        value = int.from_bytes(data[i:i + 4], "big")
        chars = []
        for _ in range(5):
            value, rem = divmod(value, 85)
            chars.append(Z85[rem])
        out.append("".join(reversed(chars)))
    return "".join(out)


def z85_decode(text: str) -> bytes:
    out = bytearray()
    for i in range(0, len(text), 5):
        value = 0
        for ch in text[i:i + 5]:
            value = value * 85 + Z85.index(ch)
        out += value.to_bytes(4, "big")
    return bytes(out)


def _runs(values: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for v in values:
        if runs and runs[-1][0] + runs[-1][1] == v:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((v, 1))
    return runs


def _container(values: list[int], use_runs: bool) -> tuple[str, bytes]:
    runs = _runs(values)
    if use_runs and 2 + 4 * len(runs) < min(2 * len(values), 8192):
        return "run", struct.pack("<H", len(runs)) + b"".join(struct.pack("<HH", s, n - 1) for s, n in runs)
    if len(values) <= 4096:
        return "array", struct.pack(f"<{len(values)}H", *values)
    words = [0] * 1024
    for v in values:
        words[v >> 6] |= 1 << (v & 63)
    return "bitmap", struct.pack("<1024Q", *words)


def roaring32(values: Iterable[int], *, use_runs: bool = False) -> bytes:
    """A 32-bit roaring bitmap in the portable serialization."""
    by_key: dict[int, list[int]] = {}
    for v in sorted(set(values)):
        by_key.setdefault(v >> 16, []).append(v & 0xFFFF)
    keys = sorted(by_key)
    containers = [_container(by_key[k], use_runs) for k in keys]
    n = len(keys)
    has_runs = any(kind == "run" for kind, _ in containers)
    header = b"".join(struct.pack("<HH", k, len(by_key[k]) - 1) for k in keys)
    if has_runs:
        flags = bytearray((n + 7) // 8)
        for i, (kind, _) in enumerate(containers):
            if kind == "run":
                flags[i // 8] |= 1 << (i % 8)
        head = struct.pack("<I", 12347 | ((n - 1) << 16)) + bytes(flags) + header
        with_offsets = n >= 4
    else:
        head = struct.pack("<II", 12346, n) + header
        with_offsets = True
    body = b"".join(data for _, data in containers)
    if with_offsets:
        start = len(head) + 4 * n
        offsets = []
        for _, data in containers:
            offsets.append(struct.pack("<I", start))
            start += len(data)
        head += b"".join(offsets)
    return head + body


def bitmap_array(rows: Iterable[int], *, use_runs: bool = False) -> bytes:
    """Delta's ``RoaringBitmapArray`` (portable format) of 64-bit row indexes."""
    buckets: dict[int, list[int]] = {}
    for r in sorted(set(rows)):
        if r < 0 or r >= 1 << 63:
            raise ValueError(f"row index {r} out of range")
        buckets.setdefault(r >> 32, []).append(r & 0xFFFFFFFF)
    out = struct.pack("<IQ", PORTABLE_MAGIC, len(buckets))
    for key in sorted(buckets):
        out += struct.pack("<I", key) + roaring32(buckets[key], use_runs=use_runs)
    return out


def dv_file(vectors: list[bytes]) -> tuple[bytes, list[int]]:
    """A deletion-vector file holding ``vectors``; returns its bytes and each vector's offset."""
    out = bytearray(b"\x01")
    offsets = []
    for data in vectors:
        offsets.append(len(out))
        out += struct.pack(">I", len(data)) + data + struct.pack(">I", zlib.crc32(data) & 0xFFFFFFFF)
    return bytes(out), offsets


def uuid_path_token(value: uuid.UUID, prefix: str = "") -> str:
    """``pathOrInlineDv`` for storage type ``u``: optional prefix, then the Z85 of the UUID's 16 bytes."""
    return prefix + z85_encode(value.bytes)


def inline_descriptor(rows: list[int], *, use_runs: bool = False) -> dict[str, object]:
    data = bitmap_array(rows, use_runs=use_runs)
    return {"storageType": "i", "pathOrInlineDv": z85_encode(data), "sizeInBytes": len(data),
            "cardinality": len(set(rows))}
