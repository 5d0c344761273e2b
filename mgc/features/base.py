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
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np
from filelock import FileLock
from joblib import Parallel, delayed
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from mgc.data.base import Clip, Source
from mgc.errors import MgcError

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
    ):
        self.sample_rate = int(sample_rate)
        self.segment_seconds = float(segment_seconds)
        self.segments_per_clip = segments_per_clip
        self.cache_dir = Path(cache_dir)
        self.num_workers = num_workers

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

    # -- a whole source, cached ---------------------------------------------
    def extract(self, source: Source) -> FeatureSet:
        """Features of every clip of ``source``, from the cache when it is there."""
        source.prepare()
        clips = source.clips()
        cache = self.cache_dir / f"{self.name}-{self._key(source, clips)}"
        if not _complete(cache):
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            with FileLock(str(cache) + ".lock"):
                if not _complete(cache):  # another process may have finished it meanwhile
                    self._build(cache, clips, source.genres)
        return self.with_source_columns(self.load(cache, source.name), clips)

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

    def _build(self, cache: Path, clips: list[Clip], genres: list[str]) -> None:
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
        if not kept:
            raise MgcError(f"no usable clips: all {len(clips)} clips were skipped (see the warnings above)")
        self.write_cache(cache, kept, genres, skipped)
        elapsed = time.perf_counter() - start
        log.info(
            "extracted %s from %d clips in %.1f s (%.1f clips/s), skipped %d",
            self.name,
            len(kept),
            elapsed,
            len(kept) / elapsed,
            len(skipped),
        )

    def write_cache(
        self, cache: Path, kept: list[tuple[Clip, np.ndarray]], genres: list[str], skipped: list[str] = ()
    ) -> None:
        """Write a complete cache folder atomically (temporary folder, then rename)."""
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=cache.name + ".tmp-", dir=cache.parent))
        try:
            self.save_segments(tmp, kept)
            index = {
                "params": self.params(),
                "class_names": genres,
                "track_ids": [c.track_id for c, _ in kept],
                "track_labels": [genres.index(c.genre) for c, _ in kept],
                "segments": [len(f) for _, f in kept],
                "skipped": len(skipped),
            }
            (tmp / "skipped.txt").write_text("".join(s + "\n" for s in skipped))
            (tmp / "index.json").write_text(json.dumps(index))
            shutil.rmtree(cache, ignore_errors=True)  # a damaged cache without index.json
            os.replace(tmp, cache)  # atomic: the cache appears complete or not at all
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def save_segments(self, folder: Path, kept: list[tuple[Clip, np.ndarray]]) -> None:
        """Store the arrays of every kept clip (binary ``.npy``)."""
        np.save(folder / "features.npy", np.concatenate([f for _, f in kept]))

    def load_segments(self, folder: Path, index: dict) -> np.ndarray:
        """Read back what :meth:`save_segments` stored."""
        return np.load(folder / "features.npy")

    def load(self, cache: Path, source_name: str = "") -> FeatureSet:
        """A :class:`FeatureSet` from a complete cache folder."""
        index = json.loads((cache / "index.json").read_text())
        counts = np.asarray(index["segments"])
        tracks = np.repeat(np.arange(len(counts)), counts)
        return FeatureSet(
            x=self.load_segments(cache, index),
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


def _complete(cache: Path) -> bool:
    return (cache / "index.json").is_file()
