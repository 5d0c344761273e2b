"""Parts 2 and 4 of the benchmark: loading features, and the peak memory of extraction and of training.

Each measurement runs in a fresh process, so its peak RSS is its own and not the benchmark's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import librosa
import numpy as np

from mgc.bench import targets
from mgc.bench.extraction import SR
from mgc.data import GTZAN
from mgc.data.base import Clip
from mgc.features import MFCC

#: Peak resident memory of the calling process. /proc's VmHWM restarts at exec, unlike
#: ru_maxrss, which a subprocess inherits from the (forked) benchmark process.
PEAK_RSS = "(lambda: int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) / 1024)"

LOAD_CHILD = (
    "PEAK_RSS_MB = "
    + PEAK_RSS
    + """
import json, pathlib, sys, time
import numpy as np
from mgc.features import MFCC  # imported before the clock starts, like json
start = time.perf_counter()
if sys.argv[1] == "json":
    with open(sys.argv[2]) as f:
        data = json.load(f)
    x = np.asarray(data["mfcc"], dtype=np.float32)
else:
    x = MFCC().load(pathlib.Path(sys.argv[2])).x
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "segments": len(x), "peak_rss_mb": PEAK_RSS_MB()}))
"""
)


def run_child(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", LOAD_CHILD, *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_loading(feats_cache: Path, work: Path, clips: int) -> dict:
    """Tile the extracted features up to ``clips`` clips, store both ways, load each in a fresh process."""
    ex = MFCC()
    small = ex.load(feats_cache)
    reps = -(-clips // len(small.track_ids))
    kept = []
    for r in range(reps):
        for t, track_id in enumerate(small.track_ids):
            if len(kept) == clips:
                break
            genre = small.class_names[small.track_labels[t]]
            kept.append((Clip(Path(f"{track_id}.{r}.wav"), genre, f"{track_id}.{r}"), small.x[small.tracks == t]))
    big = work / "big-cache"
    ex.write_cache(big, kept, small.class_names)
    x = np.concatenate([f for _, f in kept])
    with open(work / "data_10.json", "w") as f:
        json.dump(
            {
                "mapping": small.class_names,
                "labels": [small.class_names.index(c.genre) for c, f in kept for _ in range(len(f))],
                "mfcc": x[:, 0].transpose(0, 2, 1).tolist(),
            },
            f,
            indent=4,
        )
    rounds = 1 if clips < 100 else 2  # a smoke run's 20 clips: one round
    runs = [(run_child("json", str(work / "data_10.json")), run_child("cache", str(big))) for _ in range(rounds)]
    js, cache = (min((r[i] for r in runs), key=lambda m: m["seconds"]) for i in (0, 1))  # interleaved, best
    return {
        "segments": int(cache["segments"]),
        # to the microsecond: the cache loads so fast that coarser rounding would change the speedup
        # recomputed from these figures
        "json_s": round(js["seconds"], 6),
        "cache_s": round(cache["seconds"], 6),
        "speedup": round(js["seconds"] / cache["seconds"], 1),
        "json_peak_rss_mb": round(js["peak_rss_mb"]),
        "cache_peak_rss_mb": round(cache["peak_rss_mb"]),
        "targets": dict(targets.LOADING),
    }


def linked_copies(source: GTZAN, root: Path, clips: int) -> GTZAN:
    """A GTZAN folder of ``clips`` files that are hard links to the source's clips, taken in turn.

    Extraction memory depends on how many files are read, not on what they hold, so 1000 links
    to the 100 bench clips measure it without generating 900 more clips (minutes on 2 cores).
    """
    source_clips = source.clips()
    for i in range(clips):
        clip = source_clips[i % len(source_clips)]
        dest = root / clip.genre / f"{clip.genre}.{i:05d}{clip.path.suffix}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(clip.path, dest)
        except OSError:  # another file system: a copy measures the same
            shutil.copyfile(clip.path, dest)
    return GTZAN(root)


def bench_memory(source: GTZAN, work: Path, clips: int, quick: bool) -> dict:
    data = linked_copies(source, work / "mem-data", clips)
    code = (
        "import json; from mgc.data import GTZAN; from mgc.features import MFCC; "
        f"MFCC(cache_dir={str(work / 'mem-cache')!r}).extract(GTZAN({str(data.root)!r})); "
        f"print(json.dumps({{'peak_rss_mb': {PEAK_RSS}()}}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    extraction = json.loads(out.stdout.strip().splitlines()[-1])
    seconds = sum(librosa.get_duration(path=c.path) for c in data.clips())
    result = {
        "extraction_clips": clips,
        "extraction_peak_rss_mb": round(extraction["peak_rss_mb"]),
        "raw_audio_mb": round(seconds * SR * 4 / 2**20),
    }
    epochs = 1
    train_py = str(Path(__file__).resolve().parents[2] / "train.py")
    argv = [
        train_py,
        f"paths.outputs={work / 'mem-run'}",
        f"trainer.max_epochs={epochs}",
        "callbacks.progress_bar.refresh_rate=0",
        *(["data.clips_per_genre=4", "data.duration=12", "model.hidden_size=32"] if quick else []),
    ]
    code = (
        f"import json, runpy, sys; sys.argv = {argv!r}; runpy.run_path({train_py!r}, run_name='__main__'); "
        f"print(json.dumps({{'peak_rss_mb': {PEAK_RSS}()}}))"
    )
    train = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=work, check=False)
    if train.returncode != 0:
        raise RuntimeError(train.stderr[-2000:])
    result["train_peak_rss_mb"] = round(json.loads(train.stdout.strip().splitlines()[-1])["peak_rss_mb"])
    result["train_epochs"] = epochs
    return result
