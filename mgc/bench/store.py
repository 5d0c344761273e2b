"""Part 6 of the benchmark: training from the feature store on disk against training from memory.

1. Throughput: the journal's GRU (and a linear model, whose steps cost little, so the data path shows)
   trained on the 1000 GTZAN-sized clips of part 2's store, batches read from disk
   (:class:`~mgc.batches.StoreBatches`) against batches sliced from memory
   (:class:`~mgc.batches.TensorBatches`), in interleaved rounds; target: disk >= 0.9x memory for the GRU.
2. Memory: one epoch over a store, in a fresh process, for a store and one four times larger; target:
   peak RSS grows by less than 10%.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from mgc.batches import EpochBatches, PartBatches, StoreBatches, TensorBatches
from mgc.bench import targets
from mgc.data.base import Clip
from mgc.datamodule import streamed_statistics
from mgc.features import MFCC
from mgc.models import Linear, Recurrent

#: One epoch over a store in a fresh process (``python -c EPOCH_CHILD <store>``): a linear model trained on
#: batches of 16 read from disk; prints peak RSS before and after, the rows seen and the store's size.
EPOCH_CHILD = """
import json, pathlib, sys, numpy as np, torch
from mgc.batches import EpochBatches, StoreBatches
from mgc.features.store import SegmentStore
def peak_mb():
    return int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) / 1024
path = pathlib.Path(sys.argv[1])
store = SegmentStore.open(path, json.loads((path / 'index.json').read_text()))
n = len(store)
part = StoreBatches(store, torch.zeros(n, dtype=torch.long), torch.arange(n), torch.arange(n), None, None)
model = torch.nn.Linear(int(np.prod(store.shape[1:])), 10)
opt = torch.optim.SGD(model.parameters(), lr=1e-3)
before, seen = peak_mb(), 0
for rows in EpochBatches(n, 16, shuffle=True, seed=0):
    batch = part[rows]
    loss = torch.nn.functional.cross_entropy(model(batch.x.flatten(1)), batch.y)
    opt.zero_grad(); loss.backward(); opt.step()
    seen += len(rows)
print(json.dumps({"before_mb": before, "peak_mb": peak_mb(), "seen": seen, "store_mb": store.nbytes / 2**20}))
"""


def bench_store(work: Path, cache: Path, quick: bool) -> dict:
    """Both measurements; ``cache``: part 2's store of 1000 clips (20 with ``quick``)."""
    return {
        "throughput": throughput(cache, batches=3 if quick else 8, rounds=1 if quick else 5),
        "memory": memory(work, clips=10 if quick else 50),
        "targets": dict(targets.STORE),
    }


def throughput(cache: Path, batches: int, rounds: int) -> dict:
    """Samples/s of each model's training steps on batches from disk and from memory, best of ``rounds``."""
    data = MFCC().open_store(cache)
    n = len(data.x)
    mean, std = streamed_statistics(data.x, np.arange(n))
    y, tracks, index = torch.from_numpy(data.labels), torch.from_numpy(data.tracks), torch.arange(n)
    parts = {
        "disk": StoreBatches(data.x, y, tracks, index, mean, std),
        "memory": TensorBatches((torch.from_numpy(np.asarray(data.x)) - mean) / std, y, tracks, index),
    }
    shape = tuple(data.x.shape[1:])
    models = {"gru": lambda: Recurrent(shape, 10), "linear": lambda: Linear(shape, 10)}
    result: dict = {"segments": n, "batches": batches}
    for name, build in models.items():
        rates = {k: 0.0 for k in parts}
        for r in range(rounds):
            for k in list(parts) if r % 2 == 0 else list(parts)[::-1]:  # interleaved, each first in turn
                torch.manual_seed(0)
                rates[k] = max(rates[k], steps_per_second(build(), parts[k], batches) * 64)
        result[name] = {f"{k}_samples_s": round(v, 1) for k, v in rates.items()}
        result[name]["disk_vs_memory"] = round(rates["disk"] / rates["memory"], 3)
    return result


def steps_per_second(model: torch.nn.Module, part: PartBatches, batches: int) -> float:
    """Training steps per second over ``batches`` shuffled batches of 64, after one warm-up step."""
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3)
    order = iter(EpochBatches(len(part), 64, shuffle=True, seed=1))
    start = 0.0
    for step in range(batches + 1):
        if step == 1:
            start = time.perf_counter()
        batch = part[next(order)]
        loss = torch.nn.functional.cross_entropy(model(batch.x), batch.y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return batches / (time.perf_counter() - start)


def memory(work: Path, clips: int) -> dict:
    """Peak RSS of one epoch over a store of ``clips`` clips of log-mel-sized segments, and of one 4x larger."""
    rng = np.random.default_rng(0)
    out = {}
    for scale in (1, 4):
        kept = [
            (Clip(Path(f"c{i}.wav"), "ab"[i % 2], f"c{i}"), rng.standard_normal((4, 1, 128, 512), dtype=np.float32))
            for i in range(clips * scale)
        ]
        path = work / f"store-{scale}x"
        MFCC().write_cache(path, kept, ["a", "b"])
        del kept
        run = subprocess.run([sys.executable, "-c", EPOCH_CHILD, str(path)], capture_output=True, text=True, check=True)
        out[f"{scale}x"] = json.loads(run.stdout.strip().splitlines()[-1])
    out["peak_rss_4x_vs_1x"] = round(out["4x"]["peak_mb"] / out["1x"]["peak_mb"], 3)
    return out


def rows(r: dict) -> list[tuple[str, str, str, str]]:
    """Table rows of :func:`bench_store`'s result."""
    t, m, goal = r["throughput"], r["memory"], r["targets"]
    out = [
        (
            f"{name.upper()} training: batches from disk vs memory",
            f"{t[name]['disk_vs_memory']}x",
            f">= {goal['disk_vs_memory']:g}x" if name == "gru" else "",
            f"{t[name]['disk_samples_s']} vs {t[name]['memory_samples_s']} samples/s, {t['segments']} segments",
        )
        for name in ("gru", "linear")
    ]
    out.append(
        (
            "peak RSS of an epoch from disk: store 4x larger",
            f"{m['peak_rss_4x_vs_1x']}x",
            f"< {goal['peak_rss_4x_vs_1x']:g}x",
            f"{m['4x']['peak_mb']:.0f} vs {m['1x']['peak_mb']:.0f} MB; stores {m['4x']['store_mb']:.0f} and "
            f"{m['1x']['store_mb']:.0f} MB",
        )
    )
    return out


def main(argv: list[str] | None = None) -> dict:
    """``python -m mgc.bench.store [--quick]``: part 6 alone, on part 2's store of 1000 GTZAN-sized clips."""
    import argparse
    import tempfile

    from mgc.bench.loading import bench_loading
    from mgc.bench.table import render_rows
    from mgc.data import SyntheticGTZAN

    parser = argparse.ArgumentParser(description="mgc's feature-store benchmark (make bench, part 6, alone)")
    parser.add_argument("--quick", action="store_true", help="10 synthetic clips, one round")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mgc-bench-store-") as tmp:
        work = Path(tmp)
        source = SyntheticGTZAN(work / "data", clips_per_genre=1 if args.quick else 10, duration=30.0, seed=0)
        MFCC(cache_dir=str(work / "cache")).extract(source)
        cache = next((work / "cache").glob("mfcc-*/index.json")).parent
        bench_loading(cache, work, clips=20 if args.quick else 1000)  # writes the 1000-clip store, work/big-cache
        result = bench_store(work, work / "big-cache", args.quick)
    print(render_rows(rows(result)))
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
