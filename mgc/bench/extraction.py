"""Part 1 of the benchmark: feature extraction against the classic per-segment librosa loops.

Baseline A is the journal's ``extract_data.py`` loop (``librosa.load``, ``librosa.feature.mfcc`` per
segment, ``.T.tolist()``, ``json.dump(indent=4)``), baseline B the same loop over files under joblib; both
are re-implemented here so mgc's numbers can be compared to theirs to 1e-4.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
from joblib import Parallel, delayed

from mgc.bench import targets
from mgc.data import GTZAN
from mgc.data.base import Clip
from mgc.errors import MgcError
from mgc.features import MFCC, LogMel

SR, N_MFCC, N_FFT, HOP, SEG = 22050, 13, 2048, 512, 66150
FRAMES = -(-SEG // HOP)  # extract_data.py's expected_num_mfcc_vectors_per_segment: ceil(66150 / 512) = 130


def classic_segments(path: str, feature: Callable[[np.ndarray], np.ndarray]) -> list[np.ndarray]:
    """The extract_data.py inner loop for one file, with any per-segment ``feature`` (bins x frames).

    As there, a segment is kept when its feature has every frame, so a last segment a few samples
    short (real GTZAN clips run 92 samples short of 30 s) is computed and kept.
    """
    signal, _ = librosa.load(path, sr=SR)
    kept = []
    for d in range(10):
        if SEG * d >= len(signal):  # extract_data.py computes the empty slice and drops it; nothing to keep
            break
        values = feature(signal[SEG * d : SEG * (d + 1)])
        if values.shape[1] == FRAMES:
            kept.append(values)
    return kept


def classic_clip(path: str) -> list[list[list[float]]]:
    """Baseline A's work on one file: MFCC per segment, as the lists extract_data.py dumps to JSON."""
    return [m.T.tolist() for m in classic_segments(path, classic_mfcc)]


def classic_mfcc(segment: np.ndarray) -> np.ndarray:
    return librosa.feature.mfcc(y=segment, sr=SR, n_mfcc=N_MFCC, n_fft=N_FFT, hop_length=HOP)


def classic_logmel(segment: np.ndarray) -> np.ndarray:
    return librosa.power_to_db(librosa.feature.melspectrogram(y=segment, sr=SR, n_fft=N_FFT, hop_length=HOP))


def classic_extract(clips: list[Clip], out: Path, n_jobs: int | None) -> dict:
    """Baseline A (``n_jobs=None``: sequential) or B (joblib over files, one thread each)."""
    if n_jobs is None:
        per_clip = [classic_clip(str(c.path)) for c in clips]
    else:
        per_clip = Parallel(n_jobs=n_jobs, inner_max_num_threads=1)(delayed(classic_clip)(str(c.path)) for c in clips)
    genres = sorted({c.genre for c in clips})
    data = {"mapping": genres, "labels": [], "mfcc": []}
    for c, segs in zip(clips, per_clip):
        data["mfcc"] += segs
        data["labels"] += [genres.index(c.genre)] * len(segs)
    with open(out, "w") as f:
        json.dump(data, f, indent=4)
    return data


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def bench_extraction(source: GTZAN, work: Path, repeats: int = 2, goals: dict = targets.EXTRACTION) -> dict:
    """Best of ``repeats`` interleaved runs of each; mgc starts from an empty cache every time.

    Everything it writes (baseline JSON files, mgc's caches) goes under ``work``.
    """
    work.mkdir(parents=True, exist_ok=True)
    clips = source.clips()
    audio_seconds = sum(librosa.get_duration(path=str(c.path)) for c in clips)
    t_a = t_b = t_m = float("inf")
    for r in range(repeats):
        t, data = timed(classic_extract, clips, work / "a.json", None)
        t_a = min(t_a, t)
        t_b = min(t_b, timed(classic_extract, clips, work / "b.json", -1)[0])
        t, feats = timed(MFCC(cache_dir=str(work / ("cache" if r == 0 else f"cache{r}"))).extract, source)
        t_m = min(t_m, t)
    reference = np.asarray(data["mfcc"], dtype=np.float32).transpose(0, 2, 1)
    return {
        "clips": len(clips),
        "audio_seconds": round(audio_seconds, 1),
        "baseline_a_s": round(t_a, 3),
        "baseline_b_s": round(t_b, 3),
        "mgc_s": round(t_m, 3),
        "audio_s_per_s": {
            "a": round(audio_seconds / t_a, 1),
            "b": round(audio_seconds / t_b, 1),
            "mgc": round(audio_seconds / t_m, 1),
        },
        "speedup_vs_a": round(t_a / t_m, 2),
        "speedup_vs_b": round(t_b / t_m, 2),
        "max_abs_diff": float(np.abs(reference - feats.x[:, 0]).max()),
        "targets": dict(goals),
    }


def logmel_loop(clips: list[Clip]) -> np.ndarray:
    """The per-segment librosa loop for log-mel: ``power_to_db(melspectrogram(y=segment))`` of every kept segment."""
    return np.stack([m for c in clips for m in classic_segments(str(c.path), classic_logmel)])


def bench_logmel(source: GTZAN, work: Path, repeats: int = 2) -> dict:
    """``features=logmel`` extraction vs the per-segment librosa loop, best of ``repeats`` interleaved runs."""
    clips = source.clips()
    audio_seconds = sum(librosa.get_duration(path=str(c.path)) for c in clips)
    t_loop = t_m = float("inf")
    for r in range(repeats):
        t, reference = timed(logmel_loop, clips)
        t_loop = min(t_loop, t)
        t, feats = timed(LogMel(cache_dir=str(work / f"logmel-cache{r}")).extract, source)
        t_m = min(t_m, t)
    return {
        "clips": len(clips),
        "audio_seconds": round(audio_seconds, 1),
        "loop_s": round(t_loop, 3),
        "mgc_s": round(t_m, 3),
        "audio_s_per_s": {"loop": round(audio_seconds / t_loop, 1), "mgc": round(audio_seconds / t_m, 1)},
        "speedup_vs_loop": round(t_loop / t_m, 2),
        "max_abs_diff": float(np.abs(reference - feats.x[:, 0]).max()),
        "targets": dict(targets.LOGMEL),
    }


# -- 1b. extraction on real GTZAN, as .wav and as .au --------------------------------


class ClipSubset(GTZAN):
    """A GTZAN folder read as it is, but with only the given clips (the bench leaves unreadable ones out)."""

    def __init__(self, root: str | os.PathLike, clips: list[Clip]):
        super().__init__(root)
        self._clips = list(clips)

    def clips(self) -> list[Clip]:
        return list(self._clips)


def format_copies(source: GTZAN, root: Path) -> tuple[str, GTZAN, str, GTZAN, list[str]]:
    """The source's format and readable clips, and copies of them in the other of GTZAN's formats.

    Copies keep the 16-bit samples as they are (no float round trip) and the GTZAN layout,
    ``<root>/genres/<genre>/<genre>.NNNNN.<ext>``: Sun AU, 16-bit PCM (the original tarball's
    format) for a folder of ``.wav`` clips, WAV for a folder of ``.au`` clips. Returns
    ``(format, readable source clips, copy format, copies, skipped)``.
    """
    kept: list[Clip] = []
    skipped: list[str] = []
    formats = {c.path.suffix.lower().lstrip(".") for c in source.clips()}
    fmt = formats.pop() if len(formats) == 1 else "mixed"
    copy_fmt = "wav" if fmt == "au" else "au"
    for clip in source.clips():
        try:
            data, sr = sf.read(clip.path, dtype="int16")
        except Exception as err:  # what would stop baseline A's librosa.load
            skipped.append(f"{clip.path}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
            continue
        if len(data) == 0:
            skipped.append(f"{clip.path}: no audio samples")
            continue
        dest = root / "genres" / clip.genre / f"{clip.track_id}.{copy_fmt}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        sf.write(dest, data, sr, format=copy_fmt.upper(), subtype="PCM_16")
        kept.append(clip)
    if not kept:
        raise MgcError(f"--data-root {source.root}: none of its {len(source.clips())} clips could be read")
    return fmt, ClipSubset(source.root, kept), copy_fmt, GTZAN(root), skipped


def bench_real_extraction(source: GTZAN, work: Path, repeats: int = 2) -> tuple[dict, dict]:
    """:func:`bench_extraction` on a real folder's clips and on their copies in the other format."""
    seconds: dict[str, float] = {}
    seconds["copies"], (fmt, clips, copy_fmt, copies, skipped) = timed(format_copies, source, work / "copies")
    result: dict = {"formats": [fmt, copy_fmt]}
    for name, src in ((fmt, clips), (copy_fmt, copies)):
        seconds[f"extraction_{name}"], result[f"extraction_{name}"] = timed(
            bench_extraction, src, work / f"bench-{name}", repeats, targets.REAL_EXTRACTION
        )
    result["skipped"] = skipped
    return result, seconds
