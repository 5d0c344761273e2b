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
5. musicnn (:mod:`mgc.bench.musicnn`): embedding extraction beside log-mel's,
   and the encoder as mgc runs it against a plain PyTorch loop.
6. The feature store (:mod:`mgc.bench.store`): training from batches read from disk against
   batches sliced from memory, and peak RSS of an epoch as the store grows fourfold.

Writes ``outputs/bench/bench.json`` and prints a table. Each part is its own module of this package;
every target lives in :mod:`mgc.bench.targets`.

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
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from mgc.bench.extraction import bench_extraction, bench_logmel, bench_real_extraction, timed
from mgc.bench.loading import bench_loading, bench_memory
from mgc.bench.musicnn import bench_musicnn
from mgc.bench.store import bench_store
from mgc.bench.table import real_table, table
from mgc.bench.training import bench_training, training_data
from mgc.cli import user_errors_exit
from mgc.data import GTZAN, SyntheticGTZAN


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
        seconds["store"], parts["store"] = timed(bench_store, work, work / "big-cache", quick)
    return finish(args.out, {"quick": quick, **environment(), **parts}, seconds, table)


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
