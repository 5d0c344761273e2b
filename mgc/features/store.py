"""The feature store on disk: a cache folder of shards, written one shard at a time, read row by row.

Layout of ``<cache_dir>/<feature>-<key>/`` (the cache of :class:`~mgc.features.base.Extractor`)::

    index.json            what every shard holds, in clip order (its presence marks the store complete)
    skipped.txt           the clips that could not be used, and why
    shards/00000/         the segments of clips [0, shard_clips): features.npy (or a feature's own files)
    shards/00000/shard.json   their track ids, genres, segment counts and skipped clips

**Writing.** The clip list is cut into shards of ``shard_clips`` clips in clip order. A shard is built in
a temporary folder and renamed into ``<cache>.partial/shards/`` only when complete, so a killed extraction
leaves whole shards and nothing half-written, and a rerun resumes at the first shard that is missing. A
shard is built under its own file lock, so two processes never write the same one. ``shard=i
num_shards=n`` builds the shards ``s`` with ``s % n == i`` (``mgc-extract shard=i num_shards=n``, e.g. a
multirun over ``shard=range(n)`` on a cluster); any later extraction without ``shard`` finds them done,
builds what is missing, writes ``index.json`` and renames ``.partial`` into place. Each shard's bytes
depend only on its clips, so shards from several jobs make the store a one-process extraction makes, bit
for bit.

**Why ``.npy`` shards.** Training draws random batches in a new order every epoch, random crops read a
segment's neighbours, and evaluation reads whole tracks: access is random, by row. A ``.npy`` file is a
header and a C-ordered array, so row ``r`` sits at a fixed offset and one ``pread`` fetches it; the
operating system's page cache is the cache, and a process holds only the batch it reads (mapping the
file instead would count every page touched in the process's resident memory). LitData's and
WebDataset's formats are built for streaming sequential chunks (tar members, compressed chunks), which
suits shuffling buffers, not exact per-epoch permutations or neighbour reads; and they would be a new
dependency for what numpy's own format already does.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock

from mgc.data.base import Clip
from mgc.errors import MgcError

#: Where a store is built until its index is written.
PARTIAL = ".partial"
#: Shard files and their folder.
SHARDS, SHARD_INDEX, FEATURES = "shards", "shard.json", "features.npy"

SaveSegments = Callable[[Path, list[tuple[Clip, np.ndarray]]], None]


def shard_ranges(clips: int, shard_clips: int) -> list[tuple[int, int]]:
    """``[start, end)`` of each shard's clips, in clip order."""
    return [(start, min(start + shard_clips, clips)) for start in range(0, clips, shard_clips)]


def shard_folder(root: Path, number: int) -> Path:
    return root / SHARDS / f"{number:05d}"


def building(cache: Path) -> Path:
    """The folder a store is built in: ``<cache>.partial``."""
    return cache.with_name(cache.name + PARTIAL)


def complete(cache: Path) -> bool:
    return (cache / "index.json").is_file()


def check_plan(cache: Path, clips: int, shard_clips: int) -> None:
    """Record how the clips are cut into shards, or fail in one line where earlier shards were cut otherwise."""
    root = building(cache)
    root.mkdir(parents=True, exist_ok=True)
    plan = {"clips": clips, "shard_clips": shard_clips}
    path = root / "plan.json"
    with FileLock(str(path) + ".lock"):
        if not path.exists():
            path.write_text(json.dumps(plan))
        elif json.loads(path.read_text()) != plan:
            raise MgcError(
                f"{root} holds shards of {json.loads(path.read_text())}, not {plan}: extract every shard with the "
                f"same features.shard_clips and clip list, or delete {root}"
            )


def build_shard(
    cache: Path, number: int, make: Callable[[], tuple[list[tuple[Clip, np.ndarray]], list[str]]], save: SaveSegments
) -> bool:
    """Build shard ``number`` of ``cache`` with ``make()`` (its kept clips and skipped lines) unless it exists;
    returns whether this call built it. Atomic: the shard folder appears complete or not at all."""
    folder = shard_folder(building(cache), number)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if (folder / SHARD_INDEX).is_file():  # built by an earlier run, or by another process meanwhile
            return False
        kept, skipped = make()
        tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".tmp-", dir=folder.parent))
        try:
            if kept:
                save(tmp, kept)
            index = {
                "track_ids": [c.track_id for c, _ in kept],
                "genres": [c.genre for c, _ in kept],
                "segments": [len(f) for _, f in kept],
                "skipped": skipped,
            }
            (tmp / SHARD_INDEX).write_text(json.dumps(index))
            shutil.rmtree(folder, ignore_errors=True)  # a shard folder without shard.json is not a shard
            os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return True


def write_index(cache: Path, shards: int, params: dict, genres: list[str]) -> None:
    """Join the shards' indexes into ``index.json`` and rename the built store into place (atomically)."""
    root = building(cache)
    parts = [json.loads((shard_folder(root, s) / SHARD_INDEX).read_text()) for s in range(shards)]
    if not any(p["track_ids"] for p in parts):
        skipped = sum(len(p["skipped"]) for p in parts)
        raise MgcError(f"no usable clips: all {skipped} clips were skipped (see the warnings above)")
    index = {
        "params": params,
        "class_names": genres,
        "track_ids": [t for p in parts for t in p["track_ids"]],
        "track_labels": [genres.index(g) for p in parts for g in p["genres"]],
        "segments": [n for p in parts for n in p["segments"]],
        "skipped": sum(len(p["skipped"]) for p in parts),
        "shards": [{"tracks": len(p["track_ids"]), "segments": sum(p["segments"])} for p in parts],
    }
    (root / "skipped.txt").write_text("".join(s + "\n" for p in parts for s in p["skipped"]))
    (root / "index.json").write_text(json.dumps(index))
    (root / "plan.json").unlink(missing_ok=True)
    for lock in [*root.glob("*.lock"), *(root / SHARDS).glob("*.lock")]:
        lock.unlink(missing_ok=True)
    shutil.rmtree(cache, ignore_errors=True)  # a damaged store without index.json
    os.replace(root, cache)


def shard_folders(cache: Path, index: dict) -> list[tuple[Path, dict]]:
    """``(folder, shard index)`` of each shard holding tracks, in clip order; an older single-file cache is one."""
    if "shards" not in index:
        return [(cache, index)]
    out, start = [], 0
    for number, shard in enumerate(index["shards"]):
        end = start + shard["tracks"]
        if shard["tracks"]:
            sub = {
                "class_names": index["class_names"],
                **{k: index[k][start:end] for k in ("track_ids", "track_labels", "segments")},
            }
            out.append((shard_folder(cache, number), sub))
        start = end
    return out


@dataclass(frozen=True)
class _ShardFile:
    path: Path
    offset: int  # where the array's data starts in the file
    first: int  # the store row of the shard's first row
    rows: int


class SegmentStore:
    """The segments of a store, read from disk by row: array-like ``(segments, channels, bins, frames)``.

    Indexing with rows (an int, a slice, or an array of ints) reads just those rows with ``os.pread``;
    nothing else is held in memory. ``np.asarray(store)`` reads everything (for small stores only).
    """

    def __init__(self, files: Sequence[Path]):
        self._files: list[_ShardFile] = []
        first, shape, dtype = 0, None, None
        for path in files:
            array = np.load(path, mmap_mode="r")  # reads the header only
            if shape is not None and (array.shape[1:] != shape or array.dtype != dtype):
                raise MgcError(f"{path} holds rows of {array.shape[1:]} {array.dtype}, not {shape} {dtype}")
            shape, dtype = array.shape[1:], array.dtype
            if not array.flags.c_contiguous:
                raise MgcError(f"{path} is not a C-ordered array; delete the store and extract again")
            self._files.append(_ShardFile(path, int(array.offset), first, len(array)))
            first += len(array)
            del array
        if shape is None:
            raise MgcError("a feature store needs at least one shard with rows")
        self.shape = (first, *shape)
        self.dtype = np.dtype(dtype)
        self.row_bytes = int(np.prod(shape)) * self.dtype.itemsize
        self._starts = np.asarray([f.first for f in self._files])
        self._fds: dict[int, int] = {}  # shard -> open file, opened on first read (a worker process opens its own)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_fds": {}}

    def __del__(self) -> None:
        for fd in getattr(self, "_fds", {}).values():
            os.close(fd)

    def _fd(self, shard: int) -> int:
        if shard not in self._fds:
            self._fds[shard] = os.open(self._files[shard].path, os.O_RDONLY)
        return self._fds[shard]

    @classmethod
    def open(cls, cache: Path, index: dict) -> SegmentStore:
        return cls([folder / FEATURES for folder, _ in shard_folders(cache, index)])

    @property
    def nbytes(self) -> int:
        return self.shape[0] * self.row_bytes

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[np.arange(len(self))]
        return out if dtype is None else out.astype(dtype)

    def __getitem__(self, rows) -> np.ndarray:
        if isinstance(rows, (int, np.integer)):
            return self[np.asarray([rows])][0]
        if isinstance(rows, slice):
            rows = np.arange(*rows.indices(len(self)))
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"rows outside the store's {len(self)} segments")
        order = np.argsort(rows, kind="stable")
        ascending = np.empty((len(rows), *self.shape[1:]), dtype=self.dtype)
        self._read_ascending(rows[order], ascending)
        out = np.empty_like(ascending)
        out[order] = ascending
        return out

    def _read_ascending(self, rows: np.ndarray, out: np.ndarray) -> None:
        """Read ascending ``rows`` into ``out``, straight into its buffer: one ``preadv`` per run of consecutive
        rows of a shard."""
        shard_of = np.searchsorted(self._starts, rows, side="right") - 1
        starts = np.flatnonzero(np.diff(rows, prepend=-2) != 1) if len(rows) else np.zeros(0, dtype=np.int64)
        starts = np.union1d(starts, np.flatnonzero(np.diff(shard_of, prepend=-1) != 0))
        buffer = memoryview(out.reshape(-1).view(np.uint8))
        size = self.row_bytes
        for a, b in zip(starts.tolist(), [*starts[1:].tolist(), len(rows)]):
            number = int(shard_of[a])
            shard = self._files[number]
            offset = shard.offset + (int(rows[a]) - shard.first) * size
            if os.preadv(self._fd(number), [buffer[a * size : b * size]], offset) != (b - a) * size:
                raise MgcError(f"{shard.path} ends early: delete the store {shard.path.parents[2]} and extract again")
