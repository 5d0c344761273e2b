"""Benchmarks with their baselines in the same process: ``make bench`` (``--quick`` for a smoke run).

Absolute times drift on shared machines, so every figure is a ratio against a
baseline measured in the same run, on the same data and cores:

1. MFCC extraction of GTZAN-sized clips: the classic sequential loop
   (``librosa.load``, ``librosa.feature.mfcc`` per segment, ``.T.tolist()``,
   ``json.dump(indent=4)``), the same loop over files with joblib, and mgc's
   extractor with its cache write; numbers compared to 1e-4.
2. Feature loading for 1000 clips (10,000 segments of 130x13): mgc's cache vs
   ``json.load`` of the equivalent ``data_10.json``, each in a fresh process
   so peak RSS is its own.
3. Training throughput (samples/s) of the Lightning pipeline vs a plain
   PyTorch loop over a ``TensorDataset``, same model, optimizer, batch size
   and threads, for the journal's GRU and CNN; then variants of the plain loop
   (batch slicing instead of per-item indexing; channels-last for the CNN;
   ``torch.compile``, with the seconds its first batches took).
4. Peak RSS of extracting 1000 clips (against the size of their raw audio)
   and of a default training run.

Writes ``outputs/bench/bench.json`` and prints a table.
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
import torch
from joblib import Parallel, delayed

from mgc.cli import user_errors_exit
from mgc.data import GTZAN, SyntheticGTZAN
from mgc.data.gtzan import Clip
from mgc.features import MFCC

SR, N_MFCC, N_FFT, HOP, SEG = 22050, 13, 2048, 512, 66150


# -- 1. extraction ------------------------------------------------------------------
def classic_clip(path: str) -> list[list[list[float]]]:
    """The extract_data.py inner loop for one file."""
    signal, sr = librosa.load(path, sr=SR)
    out = []
    for d in range(10):
        start, finish = SEG * d, SEG * (d + 1)
        if finish > len(signal):
            break
        mfcc = librosa.feature.mfcc(y=signal[start:finish], sr=sr, n_mfcc=N_MFCC, n_fft=N_FFT, hop_length=HOP)
        out.append(mfcc.T.tolist())
    return out


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


def bench_extraction(source: GTZAN, work: Path, repeats: int = 2) -> dict:
    """Best of ``repeats`` interleaved runs of each; mgc starts from an empty cache every time."""
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
        "targets": {"speedup_vs_a": 3.0, "speedup_vs_b": 1.3, "max_abs_diff": 1e-4},
    }


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
        "json_s": round(js["seconds"], 3),
        "cache_s": round(cache["seconds"], 4),
        "speedup": round(js["seconds"] / cache["seconds"], 1),
        "json_peak_rss_mb": round(js["peak_rss_mb"]),
        "cache_peak_rss_mb": round(cache["peak_rss_mb"]),
        "targets": {"speedup": 50.0},
    }


# -- 3. training throughput ---------------------------------------------------------
def _models(quick: bool) -> dict:
    from mgc.models import CNN, Recurrent

    shape = (1, 13, 130)
    # The CNN is measured in the default contiguous layout; the channels-last variant is its own row.
    if quick:
        return {
            "gru": lambda: Recurrent(shape, 10, hidden_size=32),
            "cnn": lambda: CNN(shape, 10, channels=(8, 8, 8, 16), channels_last=False),
        }
    return {"gru": lambda: Recurrent(shape, 10), "cnn": lambda: CNN(shape, 10, channels_last=False)}


def plain_loop(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    batches: int,
    per_item: bool = True,
    channels_last: bool = False,
    compile: bool = False,
) -> tuple[float, float]:
    """Samples/s of a textbook PyTorch loop after two warm-up batches, and the warm-up's seconds
    (where ``torch.compile`` does its compiling)."""
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


def bench_training(x: np.ndarray, y: np.ndarray, quick: bool) -> dict:
    # Whole batches of 64 only: every variant then counts the same samples per step, and a last,
    # smaller batch would make torch.compile compile again inside the timed part.
    whole = len(y) // 64 * 64
    x_t, y_t = torch.from_numpy(x[:whole]), torch.from_numpy(y[:whole])
    results = {"threads": torch.get_num_threads()}
    for name, build in _models(quick).items():
        batches = 4 if quick else (10 if name == "gru" else 5)

        def plain(build=build, batches=batches, **options) -> Callable[[], tuple[float, float]]:
            return lambda: plain_loop(build(), x_t, y_t, batches, **options)

        mgc_layout = {"per_item": False, "channels_last": name == "cnn"}  # sliced batches, channels-last CNN
        variants = {
            "plain": plain(),
            "light": lambda build=build, batches=batches: (lightning_loop(build(), x_t, y_t, batches), 0.0),
            "sliced": plain(per_item=False),
            "compiled": plain(**mgc_layout, compile=True),
        }
        if name == "cnn":
            variants["channels_last"] = plain(**mgc_layout)
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
        base, sliced, compiled = rates["plain"], rates["sliced"], rates["compiled"]
        default = rates.get("channels_last", sliced)
        entry = {
            "plain_samples_s": round(base, 1),
            "lightning_samples_s": round(rates["light"], 1),
            "lightning_vs_plain": round(rates["light"] / base, 3),
            "plain_batch_slicing_samples_s": round(sliced, 1),
            "batch_slicing_gain": round(sliced / base, 3),
            "compiled_samples_s": round(compiled, 1),
            "compile_gain": round(compiled / default, 3),
            "compile_warmup_s": round(warmups["compiled"], 1),
            "batches": batches,
        }
        if name == "cnn":
            entry.update(
                {"channels_last_samples_s": round(default, 1), "channels_last_gain": round(default / sliced, 3)}
            )
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
    e, lo, t, m = r["extraction"], r["loading"], r["training"], r["memory"]
    rows = [
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
            "feature loading: cache vs json.load",
            f"{lo['speedup']}x",
            ">= 50x",
            f"{lo['segments']} segments; RSS {lo['cache_peak_rss_mb']} vs {lo['json_peak_rss_mb']} MB",
        ),
    ]
    for name in ("gru", "cnn"):
        rows.append(
            (
                f"{name.upper()} training: Lightning vs plain loop",
                f"{t[name]['lightning_vs_plain']}x",
                ">= 0.95x",
                f"{t[name]['lightning_samples_s']} vs {t[name]['plain_samples_s']} samples/s",
            )
        )
        rows.append(
            (
                f"{name.upper()} plain loop: batch slicing vs per-item",
                f"{t[name]['batch_slicing_gain']}x",
                "",
                f"{t[name]['plain_batch_slicing_samples_s']} samples/s",
            )
        )
    rows.append(
        (
            "CNN plain loop: channels-last vs contiguous",
            f"{t['cnn']['channels_last_gain']}x",
            "",
            f"{t['cnn']['channels_last_samples_s']} samples/s",
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
    rows.append(
        (
            "peak RSS: extraction",
            f"{m['extraction_peak_rss_mb']} MB",
            "< raw audio",
            f"{m['extraction_clips']} clips, raw audio {m['raw_audio_mb']} MB",
        )
    )
    rows.append(("peak RSS: default training run", f"{m['train_peak_rss_mb']} MB", "", f"{m['train_epochs']} epoch"))
    width = max(len(r[0]) for r in rows)
    lines = [f"{'measure'.ljust(width)} | ratio | target | detail", "-" * (width + 40)]
    lines += [f"{a.ljust(width)} | {b} | {c} | {d}" for a, b, c, d in rows]
    return "\n".join(lines)


@user_errors_exit
def main(argv: list[str] | None = None) -> dict:
    """``python -m mgc.bench [--quick] [--data-root DIR] [--out DIR]``; returns what bench.json holds."""
    parser = argparse.ArgumentParser(description="mgc benchmarks (ratios against same-process baselines)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the bench runs, not the speed")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"))
    parser.add_argument("--data-root", type=Path, default=None, help="a GTZAN folder instead of synthetic clips")
    args = parser.parse_args(argv)
    quick = args.quick
    with tempfile.TemporaryDirectory(prefix="mgc-bench-") as tmp:
        work = Path(tmp)
        # torch.compile's first batches are timed cold, as on a fresh machine, not from an earlier run's kernels.
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(work / "inductor")
        source = (
            GTZAN(args.data_root)
            if args.data_root
            else SyntheticGTZAN(work / "data", clips_per_genre=1 if quick else 10, duration=30.0, seed=0)
        )
        seconds = {"data": timed(source.prepare)[0]}
        seconds["extraction"], extraction = timed(bench_extraction, source, work)
        cache = next((work / "cache").glob("mfcc-*/index.json")).parent
        seconds["loading"], loading = timed(bench_loading, cache, work, clips=20 if quick else 1000)
        feats = MFCC().load(cache)
        seconds["training"], training = timed(bench_training, feats.x, feats.labels, quick)
        seconds["memory"], memory = timed(bench_memory, source, work, clips=20 if quick else 1000, quick=quick)
    result = {
        "quick": quick,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "extraction": extraction,
        "loading": loading,
        "training": training,
        "memory": memory,
        "stage_seconds": {k: round(v, 1) for k, v in seconds.items()},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(result, indent=2))
    print(table(result))
    print("\nseconds per stage: " + ", ".join(f"{k} {v}" for k, v in result["stage_seconds"].items()))
    print(f"\nwrote {args.out / 'bench.json'}")
    return result


def cli() -> None:
    """``mgc-bench ...``: :func:`main` without its return value (a console script exits with it)."""
    main()


if __name__ == "__main__":
    cli()
