"""Segment clips into feature tensors, in parallel, behind an atomic cache.

Every feature turns a clip into segments shaped ``(channels, bins, frames)``.
:class:`Extractor` does the part that is the same for all of them: read each
clip (resampled to mono at ``sample_rate``, as ``librosa.load`` does), cut it
into ``segments_per_clip`` segments of ``segment_seconds``, call
:meth:`Extractor.compute` on the stacked segments, and cache the result.

The cache lives in ``<cache_dir>/<name>-<key>/``, where ``key`` hashes the
clip list (path, size, mtime) and every parameter that changes the numbers.
It is built in a temporary folder and renamed into place only when complete,
under a file lock, so a killed extraction leaves nothing a later run reads and
two runs started together extract once.

Clips are extracted by a pool of threads, one per core, each with single-threaded
BLAS: the heavy steps (decoding, FFT, mel projection) run in numpy and libsndfile
code that releases the GIL, and threads start instantly where worker processes
first import librosa (``make bench`` measures both). Clips that cannot be used are
skipped with one warning each and listed in ``skipped.txt`` inside the cache folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import librosa
import numpy as np
from filelock import FileLock
from joblib import Parallel, delayed
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from mgc.data.base import Clip, Source
from mgc.errors import MgcError
from mgc.features import store

log = logging.getLogger(__name__)

CACHE_VERSION = 3  # 2: a last segment a few samples short is kept (extract_data.py's count); 3: sparse mel projection


@dataclass
class FeatureSet:
    """All segments of a data set, in memory.

    ``tracks[i]`` indexes ``track_ids`` for segment ``i``. Without track
    information (a plain ``data_10.json``) every segment is its own track and
    ``has_tracks`` is False, so only segment splits make sense.
    """

    x: np.ndarray  # (segments, channels, bins, frames) float32
    labels: np.ndarray  # (segments,) int64
    tracks: np.ndarray  # (segments,) int64
    track_ids: list[str]
    class_names: list[str]
    has_tracks: bool = True
    source: str = ""
    track_groups: list[str | None] | None = None  # each track's group (e.g. artist), where the source has them
    track_parts: list[str | None] | None = None  # each track's part as the source prescribes it (split=manifest)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def track_labels(self) -> np.ndarray:
        """The label of each track, in ``track_ids`` order."""
        out = np.zeros(len(self.track_ids), dtype=np.int64)
        out[self.tracks] = self.labels
        return out


class Extractor:
    """Base of every feature: segmenting, parallel extraction, caching.

    Parameters
    ----------
    sample_rate : int
        Every clip is resampled to this rate (Hz), mono.
    segment_seconds : float
        Length of one segment. Segments are cut from the start of the clip;
        a last partial segment is dropped, as in the classic extract_data.py.
    segments_per_clip : int or None
        At most this many segments per clip (None: as many as fit).
    cache_dir : str
        Root of the feature cache.
    num_workers : int
        Threads for extraction (-1: one per usable core).
    """

    name = "feature"
    #: Whether :meth:`clip` computes these features from an audio file (what predict needs).
    from_audio = True
    #: Whether the data module may standardise them (``datamodule.normalize``); not so for a pretrained
    #: encoder's input, whose own first layer expects the values as they are.
    standardize = True
    #: Whether the segments are embeddings whose per-track means TensorBoard's projector shows (mgc.callbacks).
    projectable = False

    def __init__(
        self,
        sample_rate: int = 22050,
        segment_seconds: float = 3.0,
        segments_per_clip: int | None = 10,
        cache_dir: str = "outputs/cache",
        num_workers: int = -1,
        shard_clips: int = 256,
    ):
        self.sample_rate = int(sample_rate)
        self.segment_seconds = float(segment_seconds)
        self.segments_per_clip = segments_per_clip
        self.cache_dir = Path(cache_dir)
        self.num_workers = num_workers
        if int(shard_clips) < 1:
            raise MgcError(f"features.shard_clips={shard_clips}: a shard holds at least one clip")
        self.shard_clips = int(shard_clips)  # clips per shard of the store; does not change the numbers

    @property
    def reads_audio(self) -> bool:
        """Whether :meth:`extract` reads the source's audio (not so for a ready-made feature file)."""
        return True

    @property
    def segment_samples(self) -> int:
        return round(self.sample_rate * self.segment_seconds)

    def params(self) -> dict:
        """Every parameter that changes the numbers (part of the cache key)."""
        return {
            "feature": self.name,
            "sample_rate": self.sample_rate,
            "segment_seconds": self.segment_seconds,
            "segments_per_clip": self.segments_per_clip,
        }

    def gain_response(self) -> np.ndarray | None:
        """How each ``(channel, bin)`` moves when the audio gets 1 dB louder (random gain in :mod:`mgc.augment`).

        None (the default) where there is no such fixed shift: normalised or
        colour-mapped features, statistics tables.
        """
        return None

    def compute(self, segments: np.ndarray) -> np.ndarray:
        """Features of stacked segments ``(n, samples)`` as ``(n, channels, bins, frames)``."""
        raise NotImplementedError

    # -- one clip -----------------------------------------------------------
    def segments_of(self, y: np.ndarray) -> np.ndarray:
        """Cut ``y`` into consecutive segments ``(n, segment_samples)``, counted as extract_data.py counts them.

        The classic loop keeps a segment when its MFCC has the full number of
        frames, so a last segment a few samples short (real GTZAN clips run
        92 samples short of 30 s) is kept; here it is zero-padded, which gives
        the same numbers, as librosa's centred STFT pads with zeros too.
        """
        size = self.segment_samples
        n = len(y) // size
        hop = getattr(self, "hop_length", None)  # features without frames keep full segments only
        if hop and (len(y) - n * size) // hop == size // hop:
            n += 1
        if self.segments_per_clip is not None:
            n = min(n, int(self.segments_per_clip))
        return np.pad(y[: n * size], (0, max(0, n * size - len(y)))).reshape(n, size)

    def clip(self, path: str | os.PathLike) -> tuple[np.ndarray | None, str]:
        """Features of one audio file, or ``(None, reason)`` when it cannot be used."""
        try:
            y, _ = librosa.load(path, sr=self.sample_rate, mono=True)
        except Exception as err:
            return None, f"unreadable ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'no detail'})"
        if len(y) == 0:
            return None, "no audio samples (empty or truncated file)"
        if not np.all(np.isfinite(y)):
            return None, "contains NaN or inf samples"
        segments = self.segments_of(y)
        if len(segments) == 0:
            return None, f"too short ({len(y) / self.sample_rate:.2f} s < one {self.segment_seconds:g}-s segment)"
        return self.compute(segments).astype(np.float32), ""

    # -- a whole source, in the store ----------------------------------------
    def extract(self, source: Source, in_memory: bool = True) -> FeatureSet:
        """Features of every clip of ``source``, from the store when it is there (extracted into it first).

        ``in_memory=False`` leaves the segments on disk: the set's ``x`` is a
        :class:`~mgc.features.store.SegmentStore` that reads rows on demand.
        """
        cache = self.prepare(source)
        data = self.load(cache, source.name) if in_memory else self.open_store(cache, source.name)
        return self.with_source_columns(data, source.clips())

    def prepare(self, source: Source) -> Path:
        """Make the store of ``source`` complete (extracting what is missing) without loading it; its path."""
        source.prepare()
        clips = source.clips()
        cache = self.store_path(source, clips)
        if not store.complete(cache):
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            with FileLock(str(cache) + ".lock"):
                if not store.complete(cache):  # another process may have finished it meanwhile
                    self._build_shards(cache, clips)
                    store.write_index(cache, len(self._shards(clips)), self.params(), source.genres)
        return cache

    def store_path(self, source: Source, clips: list[Clip] | None = None) -> Path:
        """The store (cache folder) of ``source``'s clips with these parameters."""
        return self.cache_dir / f"{self.name}-{self._key(source, source.clips() if clips is None else clips)}"

    def extract_shards(self, source: Source, shard: int | None = None, num_shards: int = 1) -> int:
        """Build the missing shards of the store (those ``s % num_shards == shard``, or all for ``shard=None``);
        returns how many this call built. Indexing them is :meth:`extract`'s last step."""
        clips = source.clips()
        cache = self.store_path(source, clips)
        return 0 if store.complete(cache) else self._build_shards(cache, clips, shard, num_shards)

    def _build_shards(self, cache: Path, clips: list[Clip], shard: int | None = None, num_shards: int = 1) -> int:
        ranges = self._shards(clips)
        store.check_plan(cache, len(clips), self.shard_clips)
        mine = [s for s in range(len(ranges)) if shard is None or s % num_shards == shard]
        built = 0
        for number in mine:
            start, end = ranges[number]
            built += store.build_shard(cache, number, partial(self._extract, clips[start:end]), self.save_segments)
        return built

    def _shards(self, clips: list[Clip]) -> list[tuple[int, int]]:
        return store.shard_ranges(len(clips), self.shard_clips)

    @staticmethod
    def with_source_columns(data: FeatureSet, clips: list[Clip]) -> FeatureSet:
        """``data`` with each track's group and prescribed part from the source's clips (not cached: they do not
        change the numbers, so a manifest's split or group column can change without a new extraction)."""
        by_id = {c.track_id: c for c in clips}
        if any(c.group for c in clips):
            data.track_groups = [by_id[t].group for t in data.track_ids]
        if any(c.part for c in clips):
            data.track_parts = [by_id[t].part for t in data.track_ids]
        return data

    def _key(self, source: Source, clips: list[Clip]) -> str:
        h = hashlib.sha256()
        h.update(json.dumps({**self.params(), "cache_version": CACHE_VERSION}, sort_keys=True).encode())
        h.update(source.fingerprint().encode())
        for c in clips:
            try:
                st = c.path.stat()
            except FileNotFoundError:  # a listed file that is missing is skipped, and keyed as missing
                st = None
            h.update(f"{c.path.name}|{c.genre}|{st and st.st_size}|{st and st.st_mtime_ns}\n".encode())
        return h.hexdigest()[:16]

    def _extract(self, clips: list[Clip]) -> tuple[list[tuple[Clip, np.ndarray]], list[str]]:
        """The features of ``clips`` (one shard's) on the extractor's threads, and the lines of those skipped."""
        start = time.perf_counter()
        # One BLAS thread per extraction thread: two-level parallelism would oversubscribe the
        # cores, and a fixed BLAS thread count makes the numbers the same to the bit whatever
        # num_workers is (a multithreaded mel projection sums in another order).
        with threadpool_limits(1), decoder_warnings_silenced():
            results = Parallel(n_jobs=self.num_workers, prefer="threads", return_as="generator")(
                delayed(self.clip)(c.path) for c in clips
            )
            kept: list[tuple[Clip, np.ndarray]] = []
            skipped: list[str] = []
            for c, (feats, reason) in tqdm(zip(clips, results), total=len(clips), desc=f"extract {self.name}"):
                if feats is None:
                    log.warning("skipping %s: %s", c.path, reason)
                    skipped.append(f"{c.path}\t{reason}")
                else:
                    kept.append((c, feats))
        elapsed = time.perf_counter() - start
        rate = len(kept) / elapsed if elapsed else 0.0
        log.info("extracted %s from %d clips in %.1f s (%.1f clips/s), skipped %d", self.name, len(kept), elapsed,
                 rate, len(skipped))  # fmt: skip
        return kept, skipped

    def write_cache(
        self, cache: Path, kept: list[tuple[Clip, np.ndarray]], genres: list[str], skipped: list[str] = ()
    ) -> None:
        """Write a complete one-shard store of ``kept`` (already computed features) at ``cache``."""
        store.build_shard(cache, 0, lambda: (kept, list(skipped)), self.save_segments)
        store.write_index(cache, 1, self.params(), genres)

    def save_segments(self, folder: Path, kept: list[tuple[Clip, np.ndarray]]) -> None:
        """Store the arrays of one shard's kept clips (binary ``.npy``, which :class:`SegmentStore` reads by row)."""
        np.save(folder / store.FEATURES, np.concatenate([f for _, f in kept]))

    def load_segments(self, folder: Path, index: dict) -> np.ndarray:
        """Read back what :meth:`save_segments` stored in one shard."""
        return np.load(folder / store.FEATURES)

    #: Whether :meth:`open_store` can leave this feature's segments on disk (``.npy`` shards).
    streamable = True

    def load(self, cache: Path, source_name: str = "") -> FeatureSet:
        """A :class:`FeatureSet` of a complete store, every segment in memory."""
        index = json.loads((cache / "index.json").read_text())
        x = np.concatenate([self.load_segments(folder, sub) for folder, sub in store.shard_folders(cache, index)])
        return self._feature_set(x, index, source_name)

    def open_store(self, cache: Path, source_name: str = "") -> FeatureSet:
        """A :class:`FeatureSet` of a complete store whose ``x`` stays on disk (read by row)."""
        if not self.streamable:
            raise MgcError(f"features={self.name} stores its segments as images; it cannot stay on disk")
        index = json.loads((cache / "index.json").read_text())
        return self._feature_set(store.SegmentStore.open(cache, index), index, source_name)

    @staticmethod
    def _feature_set(x: np.ndarray | store.SegmentStore, index: dict, source_name: str) -> FeatureSet:
        counts = np.asarray(index["segments"])
        tracks = np.repeat(np.arange(len(counts)), counts)
        return FeatureSet(
            x=x,
            labels=np.asarray(index["track_labels"], dtype=np.int64)[tracks],
            tracks=tracks,
            track_ids=index["track_ids"],
            class_names=index["class_names"],
            source=source_name,
        )


@contextmanager
def decoder_warnings_silenced() -> Iterator[None]:
    """Hide librosa's per-file notice that it falls back to audioread (mp3 and the like).

    Enter it on the calling thread around :meth:`Extractor.clip` calls, not inside
    them: ``warnings.catch_warnings`` swaps process-wide state and is not thread-safe.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
