"""Benchmarks with their baselines in the same process: ``make bench`` (``--quick`` for a smoke run).

Absolute times drift on shared machines, so every figure is a ratio against a
baseline measured in the same run, on the same data and cores:

1. MFCC extraction of GTZAN-sized clips: the classic sequential loop
   (``librosa.load``, ``librosa.feature.mfcc`` per segment, ``.T.tolist()``,
   ``json.dump(indent=4)``), the same loop over files with joblib, and mgc's
   extractor with its cache write; numbers compared to 1e-4. Then log-mel
   (``features=logmel``) against the per-segment ``power_to_db(melspectrogram)``
   loop on the same clips, numbers compared to 1e-4 dB.
2. Feature loading for 1000 clips (10,000 segments of 130x13): mgc's cache vs
   ``json.load`` of the equivalent ``data_10.json``, each in a fresh process
   so peak RSS is its own.
3. Training throughput (samples/s) of the Lightning pipeline vs a plain
   PyTorch loop over a ``TensorDataset``, same model, optimizer, batch size
   and threads, for the journal's GRU and CNN on MFCC segments and the
   short-chunk CNN of ``experiment=scratch_cnn`` on 128-band log-mel segments;
   then variants of the plain loop (batch slicing instead of per-item indexing;
   channels-last for the journal's CNN; ``torch.compile`` for the journal's
   models, with the seconds its first batches took).
4. Peak RSS of extracting 1000 clips (against the size of their raw audio)
   and of a default training run.
5. musicnn (:mod:`mgc.bench_musicnn`): embedding extraction beside log-mel's,
   and the encoder as mgc runs it against a plain PyTorch loop.

Writes ``outputs/bench/bench.json`` and prints a table.

``--data-root DIR`` (real GTZAN, e.g. ``make bench ARGS="--data-root ../shared/data/gtzan-dev"``)
runs part 1 only, twice: on DIR's clips, and on copies of them in the other of
GTZAN's two formats (Sun ``.au``, 16-bit PCM, as in the original tarball, for
``.wav`` clips; ``.wav`` for ``.au`` clips), written in the GTZAN layout
(``genres/<genre>/<genre>.NNNNN.au``) into the bench's temporary folder. Each
format gets its own entry in bench.json (``extraction_wav``, ``extraction_au``,
each shaped like ``extraction``) and its own row in the table, with targets of
4x vs baseline A and 1e-4. Clips that soundfile cannot read (GTZAN's
``jazz.00054.wav``) would stop baseline A, so they are left out of both formats
and listed under ``skipped``. Nothing is written under DIR: copies, caches and
baseline JSON files all go into the temporary folder. bench.json also keeps the
1-minute load average before and after (``load_average_1min``): other work on
the cores slows baseline A's multithreaded BLAS far more than the rest, so a busy
machine inflates the ratios vs A. About 20 s for the 50 dev clips on 2 idle cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
import torch
from joblib import Parallel, delayed

from mgc.bench_musicnn import bench_musicnn
from mgc.bench_musicnn import rows as musicnn_rows
from mgc.cli import user_errors_exit
from mgc.data import GTZAN, SyntheticGTZAN
from mgc.data.base import Clip
from mgc.errors import MgcError
from mgc.features import MFCC, LogMel

SR, N_MFCC, N_FFT, HOP, SEG = 22050, 13, 2048, 512, 66150
FRAMES = -(-SEG // HOP)  # extract_data.py's expected_num_mfcc_vectors_per_segment: ceil(66150 / 512) = 130


# -- 1. extraction ------------------------------------------------------------------
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


def bench_extraction(source: GTZAN, work: Path, repeats: int = 2, target_vs_a: float = 3.0) -> dict:
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
        "targets": {"speedup_vs_a": target_vs_a, "speedup_vs_b": 1.3, "max_abs_diff": 1e-4},
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
        "targets": {"max_abs_diff": 1e-4},
    }


# -- 1b. extraction on real GTZAN, as .wav and as .au --------------------------------
REAL_TARGET_VS_A = 4.0  # the issue "Real GTZAN in the loop" asks for 4x on real clips


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
            bench_extraction, src, work / f"bench-{name}", repeats, REAL_TARGET_VS_A
        )
    result["skipped"] = skipped
    return result, seconds


# -- 2. loading ---------------------------------------------------------------------
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
    runs = [(run_child("json", str(work / "data_10.json")), run_child("cache", str(big))) for _ in range(2)]
    js, cache = (min((r[i] for r in runs), key=lambda m: m["seconds"]) for i in (0, 1))  # interleaved, best of two
    return {
        "segments": int(cache["segments"]),
        # to the microsecond: the cache loads so fast that coarser rounding would change the speedup
        # recomputed from these figures
        "json_s": round(js["seconds"], 6),
        "cache_s": round(cache["seconds"], 6),
        "speedup": round(js["seconds"] / cache["seconds"], 1),
        "json_peak_rss_mb": round(js["peak_rss_mb"]),
        "cache_peak_rss_mb": round(cache["peak_rss_mb"]),
        "targets": {"speedup": 50.0},
    }


# -- 3. training throughput ---------------------------------------------------------
#: The models measured, and the feature each trains on (13x130 MFCC or 128x130 log-mel segments).
MODEL_FEATURES = {"gru": "mfcc", "cnn": "mfcc", "spectrogram_cnn": "logmel"}


def _models(quick: bool) -> dict[str, Callable[[], torch.nn.Module]]:
    """The journal's GRU and CNN on MFCC, and the short-chunk CNN of ``experiment=scratch_cnn`` on log-mel."""
    from omegaconf import OmegaConf

    from mgc.cli import CONF_DIR
    from mgc.models import CNN, Recurrent, ShortChunkCNN

    mfcc, logmel = (1, 13, 130), (1, 128, 130)
    scratch_cnn = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "experiment" / "scratch_cnn.yaml").model)
    # The CNNs are measured in the contiguous layout; the channels-last variant is its own row.
    if quick:
        return {
            "gru": lambda: Recurrent(mfcc, 10, hidden_size=32),
            "cnn": lambda: CNN(mfcc, 10, channels=(8, 8, 8, 16), channels_last=False),
            "spectrogram_cnn": lambda: ShortChunkCNN(
                logmel, 10, channels=(4, 8, 8), dense_head=False, channels_last=False
            ),
        }
    return {
        "gru": lambda: Recurrent(mfcc, 10),
        "cnn": lambda: CNN(mfcc, 10, channels_last=False),
        "spectrogram_cnn": lambda: ShortChunkCNN(logmel, 10, **scratch_cnn, channels_last=False),
    }


def plain_loop(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    batches: int,
    per_item: bool = True,
    channels_last: bool = False,
    compile: bool = False,
    bf16: bool = False,
) -> tuple[float, float]:
    """Samples/s of a textbook PyTorch loop after two warm-up batches, and the warm-up's seconds
    (where ``torch.compile`` does its compiling). ``bf16``: forward and loss under bfloat16 autocast,
    what ``trainer.precision=bf16-mixed`` does on CPU."""
    from torch.utils.data import DataLoader, TensorDataset

    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if compile:
        model.compile()
    if per_item:
        loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)
    else:
        loader = [(x[i], y[i]) for i in torch.randperm(len(x)).split(64)]
    model.train()
    done, start, warm_start = 0, None, time.perf_counter()
    while done < batches + 2:
        for batch_x, yb in loader:
            if done == 2:
                start = time.perf_counter()
                warmup = start - warm_start
            xb = batch_x.contiguous(memory_format=torch.channels_last) if channels_last else batch_x
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = torch.nn.functional.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            done += 1
            if done == batches + 2:
                break
    return batches * 64 / (time.perf_counter() - start), warmup


def lightning_loop(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batches: int) -> float:
    """Samples/s of mgc's GenreClassifier + data loading under a Lightning Trainer."""
    import functools

    import lightning.pytorch as L

    from mgc.datamodule import EpochBatches, TensorBatches
    from mgc.module import GenreClassifier
    from mgc.scheduler import constant

    class Timer(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if trainer.global_step == 2:
                self.start = time.perf_counter()

        def on_train_end(self, trainer, module):
            self.rate = batches * 64 / (time.perf_counter() - self.start)

    data = TensorBatches(x, y, torch.zeros_like(y), torch.arange(len(y)))
    loader = torch.utils.data.DataLoader(data, sampler=EpochBatches(len(y), 64, True), batch_size=None)
    module = GenreClassifier(
        model, functools.partial(torch.optim.RMSprop, lr=1e-3), constant, [str(i) for i in range(10)]
    )
    timer = Timer()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=batches + 2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
        limit_val_batches=0,
    )
    trainer.fit(module, train_dataloaders=loader)
    return timer.rate


def bench_training(data: dict[str, tuple[np.ndarray, np.ndarray]], quick: bool) -> dict:
    """Training throughput of each model of :func:`_models` on its feature's ``(x, labels)`` in ``data``."""
    results = {"threads": torch.get_num_threads()}
    for name, build in _models(quick).items():
        x, y = data[MODEL_FEATURES[name]]
        # Whole batches of 64 only: every variant then counts the same samples per step, and a last,
        # smaller batch would make torch.compile compile again inside the timed part.
        whole = len(y) // 64 * 64
        x_t, y_t = torch.from_numpy(x[:whole]), torch.from_numpy(y[:whole])
        batches = 4 if quick else (10 if name == "gru" else 5)

        def plain(build=build, batches=batches, x_t=x_t, y_t=y_t, **options) -> Callable[[], tuple[float, float]]:
            return lambda: plain_loop(build(), x_t, y_t, batches, **options)

        convolutional = name in ("cnn", "spectrogram_cnn")
        mgc_layout = {"per_item": False, "channels_last": convolutional}  # sliced batches, channels-last CNNs
        variants = {
            "plain": plain(),
            "light": lambda build=build, batches=batches, x_t=x_t, y_t=y_t: (
                lightning_loop(build(), x_t, y_t, batches),
                0.0,
            ),
            "sliced": plain(per_item=False),
        }
        if name != "spectrogram_cnn":  # its row is Lightning vs plain; compiling it costs minutes on 2 cores
            variants["compiled"] = plain(**mgc_layout, compile=True)
        if convolutional:
            variants["channels_last"] = plain(**mgc_layout)
        if name == "spectrogram_cnn":  # what trainer.precision=bf16-mixed buys it
            variants["bf16"] = plain(**mgc_layout, bf16=True)
        rates: dict[str, float] = {}
        warmups: dict[str, float] = {}
        # Many short interleaved rounds, best of each: a shared machine drifts within a minute
        # (README, Performance), and the best of short runs is what the code itself can do. Each round starts at
        # another variant, so none always follows the same neighbour. Only the first compile is
        # cold (later models reuse its kernels); its warm-up is the one reported.
        order = list(variants)
        for r in range(1 if quick else 5):
            for variant in order[r % len(order) :] + order[: r % len(order)]:
                torch.manual_seed(0)
                rate, warmup = variants[variant]()
                rates[variant] = max(rates.get(variant, 0.0), rate)
                warmups.setdefault(variant, warmup)
        base, sliced = rates["plain"], rates["sliced"]
        default = rates.get("channels_last", sliced)
        entry = {
            "plain_samples_s": round(base, 1),
            "lightning_samples_s": round(rates["light"], 1),
            "lightning_vs_plain": round(rates["light"] / base, 3),
            "plain_batch_slicing_samples_s": round(sliced, 1),
            "batch_slicing_gain": round(sliced / base, 3),
            "batches": batches,
            "input_shape": list(x.shape[1:]),
        }
        if "compiled" in rates:
            entry |= {
                "compiled_samples_s": round(rates["compiled"], 1),
                "compile_gain": round(rates["compiled"] / default, 3),
                "compile_warmup_s": round(warmups["compiled"], 1),
            }
        if convolutional:
            entry.update(
                {"channels_last_samples_s": round(default, 1), "channels_last_gain": round(default / sliced, 3)}
            )
        if "bf16" in rates:
            entry.update({"bf16_samples_s": round(rates["bf16"], 1), "bf16_gain": round(rates["bf16"] / default, 3)})
        results[name] = entry
    results["targets"] = {"lightning_vs_plain": 0.95}
    return results


# -- 4. memory ----------------------------------------------------------------------
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
    train_py = str(Path(__file__).resolve().parents[1] / "train.py")
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


# -- the table ----------------------------------------------------------------------
def table(r: dict) -> str:
    """The rows of every part ``r`` holds (``--training-only`` runs hold one)."""
    rows = []
    if "extraction" in r:
        rows += extraction_rows(r)
    if "training" in r:
        rows += training_rows(r["training"])
    if "memory" in r:
        m = r["memory"]
        rows.append(
            (
                "peak RSS: extraction",
                f"{m['extraction_peak_rss_mb']} MB",
                "< raw audio",
                f"{m['extraction_clips']} clips, raw audio {m['raw_audio_mb']} MB",
            )
        )
        rows.append(
            ("peak RSS: default training run", f"{m['train_peak_rss_mb']} MB", "", f"{m['train_epochs']} epoch")
        )
    if "musicnn" in r:
        rows += musicnn_rows(r["musicnn"])
    return render_rows(rows)


def extraction_rows(r: dict) -> list[tuple[str, str, str, str]]:
    e, lo = r["extraction"], r["loading"]
    return [
        (
            "MFCC extraction vs classic loop (A)",
            f"{e['speedup_vs_a']}x",
            ">= 3x",
            f"{e['audio_s_per_s']['mgc']} vs {e['audio_s_per_s']['a']} audio-s/s",
        ),
        (
            "MFCC extraction vs joblib loop (B)",
            f"{e['speedup_vs_b']}x",
            ">= 1.3x",
            f"{e['audio_s_per_s']['mgc']} vs {e['audio_s_per_s']['b']} audio-s/s",
        ),
        ("MFCC max abs diff vs librosa loop", f"{e['max_abs_diff']:.1e}", "<= 1e-4", f"{e['clips']} clips"),
        (
            "log-mel extraction vs per-segment librosa loop",
            f"{r['logmel']['speedup_vs_loop']}x",
            "",
            f"{r['logmel']['audio_s_per_s']['mgc']} vs {r['logmel']['audio_s_per_s']['loop']} audio-s/s; "
            f"max abs diff {r['logmel']['max_abs_diff']:.1e} dB",
        ),
        (
            "feature loading: cache vs json.load",
            f"{lo['speedup']}x",
            ">= 50x",
            f"{lo['segments']} segments; RSS {lo['cache_peak_rss_mb']} vs {lo['json_peak_rss_mb']} MB",
        ),
    ]


def training_rows(t: dict) -> list[tuple[str, str, str, str]]:
    rows = []
    for name in ("gru", "cnn", "spectrogram_cnn"):
        label = "short-chunk CNN (log-mel)" if name == "spectrogram_cnn" else name.upper()
        rows.append(
            (
                f"{label} training: Lightning vs plain loop",
                f"{t[name]['lightning_vs_plain']}x",
                ">= 0.95x",
                f"{t[name]['lightning_samples_s']} vs {t[name]['plain_samples_s']} samples/s",
            )
        )
        rows.append(
            (
                f"{label} plain loop: batch slicing vs per-item",
                f"{t[name]['batch_slicing_gain']}x",
                "",
                f"{t[name]['plain_batch_slicing_samples_s']} samples/s",
            )
        )
    for name, label in (("cnn", "CNN"), ("spectrogram_cnn", "short-chunk CNN")):
        rows.append(
            (
                f"{label} plain loop: channels-last vs contiguous",
                f"{t[name]['channels_last_gain']}x",
                "",
                f"{t[name]['channels_last_samples_s']} samples/s",
            )
        )
    rows.append(
        (
            "short-chunk CNN plain loop: bf16-mixed vs 32-bit (channels-last)",
            f"{t['spectrogram_cnn']['bf16_gain']}x",
            "",
            f"{t['spectrogram_cnn']['bf16_samples_s']} samples/s",
        )
    )
    for name in ("gru", "cnn"):
        rows.append(
            (
                f"{name.upper()} plain loop: torch.compile vs eager",
                f"{t[name]['compile_gain']}x",
                "",
                f"{t[name]['compiled_samples_s']} samples/s after {t[name]['compile_warmup_s']} s compiling",
            )
        )
    return rows


def render_rows(rows: list[tuple[str, str, str, str]]) -> str:
    width = max(len(r[0]) for r in rows)
    lines = [f"{'measure'.ljust(width)} | ratio | target | detail", "-" * (width + 40)]
    lines += [f"{a.ljust(width)} | {b} | {c} | {d}" for a, b, c, d in rows]
    return "\n".join(lines)


def met(entry: dict) -> str:
    """``yes``, or ``no:`` and the targets an extraction entry misses."""
    t = entry["targets"]
    missed = [k for k in ("speedup_vs_a", "speedup_vs_b") if entry[k] < t[k]]
    missed += ["max_abs_diff"] if not entry["max_abs_diff"] <= t["max_abs_diff"] else []
    return "yes" if not missed else "no: " + ", ".join(missed)


def real_table(r: dict) -> str:
    """One row per format of a ``--data-root`` run."""
    header = ("format", "clips", "audio s", "mgc vs A", "mgc vs B", "max abs diff", "audio-s/s mgc / A / B", "targets")
    rows = [header]
    for fmt in r["formats"]:
        e = r[f"extraction_{fmt}"]
        t, s = e["targets"], e["audio_s_per_s"]
        rows.append(
            (
                f".{fmt}",
                str(e["clips"]),
                str(e["audio_seconds"]),
                f"{e['speedup_vs_a']}x (>= {t['speedup_vs_a']:g}x)",
                f"{e['speedup_vs_b']}x (>= {t['speedup_vs_b']:g}x)",
                f"{e['max_abs_diff']:.1e} (<= {t['max_abs_diff']:g})",
                f"{s['mgc']} / {s['a']} / {s['b']}",
                met(e),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines.append(
        "A: the classic sequential loop (librosa.load, mfcc per segment, json.dump); "
        "B: the same loop under joblib, one process per core"
    )
    load = r["load_average_1min"]
    lines.append(
        f"load average (1 min) before / after: {load['before']} / {load['after']} on {r['cpu_count']} cores "
        "(other work on the cores slows A's multithreaded BLAS most, which inflates the ratios vs A)"
    )
    return "\n".join(lines)


@user_errors_exit
def main(argv: list[str] | None = None) -> dict:
    """``python -m mgc.bench [--quick] [--data-root DIR | --training-only] [--out DIR]``; returns bench.json."""
    parser = argparse.ArgumentParser(description="mgc benchmarks (ratios against same-process baselines)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes (with --data-root: one round): checks the bench runs, not the speed",
    )
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"), metavar="DIR", help="where bench.json goes")
    parser.add_argument(
        "--data-root",
        type=Path,
        default=None,
        metavar="DIR",
        help="a GTZAN folder (real clips): runs the extraction benchmark only, on its clips and on copies of them "
        "in the other format (.au for .wav, .wav for .au; written to a temporary folder, nothing under DIR)",
    )
    parser.add_argument(
        "--training-only",
        action="store_true",
        help="part 3 alone (training throughput, a few minutes): the features it trains on are extracted untimed",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    with tempfile.TemporaryDirectory(prefix="mgc-bench-") as tmp:
        work = Path(tmp)
        if args.data_root:
            load_before = os.getloadavg()[0]
            real, seconds = bench_real_extraction(GTZAN(args.data_root), work, repeats=1 if quick else 2)
            load = {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)}
            return finish(
                args.out,
                {"quick": quick, "data_root": str(args.data_root), **environment(), "load_average_1min": load, **real},
                seconds,
                real_table,
            )
        # torch.compile's first batches are timed cold, as on a fresh machine, not from an earlier run's kernels.
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(work / "inductor")
        source = SyntheticGTZAN(work / "data", clips_per_genre=1 if quick else 10, duration=30.0, seed=0)
        seconds = {"data": timed(source.prepare)[0]}
        if args.training_only:
            seconds["training"], training = timed(bench_training, training_data(source, work), quick)
            return finish(args.out, {"quick": quick, **environment(), "training": training}, seconds, table)
        parts: dict[str, dict] = {}  # bench.json's entries, in the order the table shows them
        seconds["extraction"], parts["extraction"] = timed(bench_extraction, source, work)
        seconds["logmel"], parts["logmel"] = timed(bench_logmel, source, work)
        cache = next((work / "cache").glob("mfcc-*/index.json")).parent
        seconds["loading"], parts["loading"] = timed(bench_loading, cache, work, clips=20 if quick else 1000)
        seconds["training"], parts["training"] = timed(bench_training, training_data(source, work), quick)
        seconds["memory"], parts["memory"] = timed(bench_memory, source, work, clips=20 if quick else 1000, quick=quick)
        seconds["musicnn"], parts["musicnn"] = timed(bench_musicnn, source, work, quick)
    return finish(args.out, {"quick": quick, **environment(), **parts}, seconds, table)


def training_data(source: GTZAN, work: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{feature: (x, labels)}`` for :func:`bench_training`, from the caches of part 1 (extracted here if absent)."""
    mfcc = MFCC(cache_dir=str(work / "cache")).extract(source)
    spectrograms = LogMel(cache_dir=str(work / "logmel-cache0")).extract(source)
    return {"mfcc": (mfcc.x, mfcc.labels), "logmel": (spectrograms.x, spectrograms.labels)}


def environment() -> dict:
    return {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}


def finish(out: Path, result: dict, seconds: dict, render: Callable[[dict], str]) -> dict:
    """Add the stage times, write ``out/bench.json``, print the table; returns what bench.json holds."""
    result["stage_seconds"] = {k: round(v, 1) for k, v in seconds.items()}
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(result, indent=2))
    print(render(result))
    for line in result.get("skipped", []):
        print(f"left out (unreadable): {line}")
    print("\nseconds per stage: " + ", ".join(f"{k} {v}" for k, v in result["stage_seconds"].items()))
    print(f"\nwrote {out / 'bench.json'}")
    return result


def cli() -> None:
    """``mgc-bench ...``: :func:`main` without its return value (a console script exits with it)."""
    main()


if __name__ == "__main__":
    cli()
