"""Read the tensors of a TensorFlow 1 checkpoint bundle without TensorFlow.

A bundle is ``<prefix>.index`` plus ``<prefix>.data-00000-of-0000N``. The
index is a LevelDB-format table (the same ``Table`` code TensorFlow and
LevelDB share): data blocks of prefix-compressed ``key -> value`` entries, an
index block pointing at them and a 48-byte footer ending in a magic number.
Its keys are variable names; each value is a ``BundleEntryProto`` (dtype,
shape, shard, offset, size, masked crc32c) locating the tensor's bytes in a
data file. The empty key holds the ``BundleHeaderProto``.

Why not a package: TensorFlow weighs gigabytes, and the one pure-Python reader
on the registry pins an old protobuf and fails on NumPy 2. The format is small
and stable, so a short reader with tests is the lighter dependency. Every
tensor's bytes are checked against its crc32c, so a damaged file is refused
rather than turned into wrong weights.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import google_crc32c
import numpy as np

from mgc.errors import MgcError

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER_SIZE = 5  # compression type (1 byte) + masked crc32c (4 bytes)
#: TensorFlow's ``DataType`` enum values that checkpoints of float models hold.
DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64, 19: np.float16}


class CheckpointError(MgcError):
    """A checkpoint file is missing, torn or not in the bundle format."""


@dataclass(frozen=True)
class TensorEntry:
    """Where one tensor lies in the data files (a ``BundleEntryProto``)."""

    dtype: int
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int
    crc32c: int


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """A protobuf/LevelDB base-128 varint at ``pos``: ``(value, position after it)``."""
    value, shift = 0, 0
    while True:
        byte = buf[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """The ``(field number, value)`` pairs of a protobuf message (varint, fixed and length-delimited)."""
    out, pos = [], 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + size], pos + size
        elif wire == 5:
            value, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
        else:
            raise ValueError(f"protobuf wire type {wire}")
        out.append((number, value))
    return out


def _entry(value: bytes) -> TensorEntry:
    """Decode a ``BundleEntryProto``: dtype 1, shape 2 (dims 2, each with size 1), shard 3, offset 4, size 5, crc 6."""
    fields = dict.fromkeys(("dtype", "shard", "offset", "size", "crc32c"), 0)
    shape: list[int] = []
    names = {1: "dtype", 3: "shard", 4: "offset", 5: "size", 6: "crc32c"}
    for number, item in _fields(value):
        if number == 2:
            shape = [dict(_fields(dim)).get(1, 0) for n, dim in _fields(item) if n == 2]
        elif number in names:
            fields[names[number]] = item
    return TensorEntry(shape=tuple(shape), **fields)


def _block(data: bytes, handle: bytes) -> list[tuple[bytes, bytes]]:
    """The ``(key, value)`` entries of the table block that ``handle`` (offset, size varints) points to."""
    offset, pos = _varint(handle, 0)
    size, _ = _varint(handle, pos)
    if offset + size + BLOCK_TRAILER_SIZE > len(data) or data[offset + size] != 0:
        raise ValueError("block out of range or compressed")
    block = data[offset : offset + size]
    restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end, pos, key, out = len(block) - 4 * (restarts + 1), 0, b"", []
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        length, pos = _varint(block, pos)
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        out.append((key, block[pos : pos + length]))
        pos += length
    return out


def read_index(path: Path) -> dict[str, TensorEntry]:
    """Every tensor entry of a bundle's ``.index`` file, by variable name."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read the checkpoint index ({err.strerror})") from None
    try:
        footer = data[-FOOTER_SIZE:]
        if len(data) < FOOTER_SIZE or struct.unpack("<Q", footer[-8:])[0] != TABLE_MAGIC:
            raise ValueError("no table footer")
        _, pos = _varint(footer, _varint(footer, 0)[1])  # skip the metaindex handle
        entries = {}
        for _, handle in _block(data, footer[pos:]):
            for key, value in _block(data, handle):
                if key:  # the empty key is the bundle header
                    entries[key.decode()] = _entry(value)
        return entries
    except (ValueError, IndexError, struct.error, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path}: not a TensorFlow checkpoint index or torn ({err})") from None


def _unmask(crc: int) -> int:
    """Undo TensorFlow's (LevelDB's) crc masking: rotate right by 15 bits after subtracting a constant."""
    rot = (crc - 0xA282EAD8) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


def read_checkpoint(prefix: str | Path, names: list[str] | None = None) -> dict[str, np.ndarray]:
    """The tensors of the bundle at ``prefix`` (``names`` of them, or all), each checked against its crc32c.

    ``prefix`` is the path without ``.index``; musicnn's bundles have an empty
    file prefix, so theirs is the folder with a trailing separator.
    """
    prefix = str(prefix)
    entries = read_index(Path(prefix + ".index"))
    missing = sorted(set(names or ()) - set(entries))
    if missing:
        raise CheckpointError(f"{prefix}.index has no variable {missing[0]} (and {len(missing) - 1} more missing)")
    shards: dict[int, bytes] = {}
    out = {}
    for name in names or sorted(entries):
        entry = entries[name]
        if entry.dtype not in DTYPES:
            raise CheckpointError(f"{prefix}: variable {name} has TensorFlow dtype {entry.dtype}, not a number type")
        if entry.shard not in shards:
            shards[entry.shard] = _data_file(prefix, entry.shard)
        raw = shards[entry.shard][entry.offset : entry.offset + entry.size]
        if len(raw) != entry.size or google_crc32c.value(raw) != _unmask(entry.crc32c):
            raise CheckpointError(
                f"{prefix}: variable {name} fails its checksum (a torn or damaged data file); reinstall the package"
            )
        out[name] = np.frombuffer(raw, dtype=DTYPES[entry.dtype]).reshape(entry.shape).copy()
    return out


def _data_file(prefix: str, shard: int) -> bytes:
    """The bytes of data shard ``shard``; one line when it is missing."""
    folder, stem = os.path.split(prefix)  # not Path: an empty stem ("MSD_musicnn/") must stay empty
    matches = sorted(Path(folder or ".").glob(f"{stem}.data-{shard:05d}-of-*"))
    if not matches:
        raise CheckpointError(f"{prefix}.data-{shard:05d}-of-*: missing checkpoint data file; reinstall the package")
    return matches[0].read_bytes()
