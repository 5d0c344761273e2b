"""Train on one folder of real clips, name the genres of another: the generalisation figure of a configuration.

    python scripts/generalisation.py features=musicnn model=linear
    python scripts/generalisation.py --seeds 42,0,1 experiment=recommended
    python scripts/generalisation.py --a ../shared/data/gtzan-dev --b ../shared/data/gtzan-artists experiment=...

For each direction (A -> B and B -> A; by default ``gtzan-dev`` and
``gtzan-artists``, mostly other artists) it trains the configuration given by
the overrides on every track of one folder (``split=all_tracks``), one run per
seed in one multirun, then names each clip of the other folder from the
checkpoints as ``mgc-predict`` does (the mean log-probability of the clip's
segments; several seeds: the mean over the models, an ensemble). It prints
each seed's track accuracy, their mean, and the ensemble's, per direction, as
a markdown row. Clips are read through the feature cache, so a second
configuration on the same features extracts nothing.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mgc.checkpoint import InferenceSpec  # noqa: E402
from mgc.data.gtzan import GTZAN  # noqa: E402
from mgc.predict import expand_checkpoints  # noqa: E402


def train(overrides: list[str], root: Path, seeds: str, out: Path) -> list[str]:
    """Train the configuration on every track of ``root``, once per seed; the checkpoints."""
    command = [
        sys.executable,
        str(ROOT / "train.py"),
        "-m",
        *overrides,
        "data=gtzan",
        f"data.root={root}",
        "split=all_tracks",
        f"seed={seeds}",
        "logger=none",
        "callbacks.progress_bar.refresh_rate=0",
        f"hydra.sweep.dir={out}",
    ]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return expand_checkpoints([str(out)])


@torch.no_grad()
def track_log_probs(checkpoint: str, root: Path, cache_dir: str) -> tuple[np.ndarray, np.ndarray]:
    """Each clip's mean segment log-probability under one checkpoint, ``(clips, genres)``, and the true labels."""
    spec = InferenceSpec.load(checkpoint)
    features = instantiate({**spec.features, "cache_dir": cache_dir})
    data = features.extract(GTZAN(root))
    if data.class_names != spec.class_names:
        raise SystemExit(f"{root}: genres {data.class_names} differ from the checkpoint's {spec.class_names}")
    x = torch.from_numpy(data.x)
    if spec.mean is not None:
        x = (x - spec.mean) / spec.std
    logp = torch.log_softmax(spec.build_model()(x), dim=1).numpy()
    per_track = np.stack([logp[data.tracks == t].mean(0) for t in range(len(data.track_ids))])
    return per_track, data.track_labels


def direction(overrides: list[str], train_root: Path, test_root: Path, seeds: str, out: Path, cache: str) -> str:
    """``seed accuracies | mean | ensemble`` for training on ``train_root`` and naming ``test_root``."""
    checkpoints = train(overrides, train_root, seeds, out)
    scores = [track_log_probs(c, test_root, cache) for c in checkpoints]
    labels = scores[0][1]
    single = [float((s.argmax(1) == labels).mean()) for s, _ in scores]
    ensemble = float((np.mean([s for s, _ in scores], axis=0).argmax(1) == labels).mean())
    print(f"{train_root.name} -> {test_root.name}: seeds {single}, ensemble {ensemble:.3f}", file=sys.stderr)
    return f"{np.mean(single):.3f} ± {np.std(single):.3f} | {ensemble:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", type=Path, default=ROOT.parent / "shared/data/gtzan-dev")
    parser.add_argument("--b", type=Path, default=ROOT.parent / "shared/data/gtzan-artists")
    parser.add_argument("--seeds", default="42,0,1", help="one run per seed, comma-separated")
    parser.add_argument("--out", type=Path, default=Path("outputs/generalisation"))
    parser.add_argument("--cache-dir", default="outputs/cache")
    parser.add_argument("overrides", nargs="*", help="train.py overrides of the configuration")
    args = parser.parse_args()
    name = re.sub(r"[^\w.-]+", "-", "_".join(args.overrides)) or "default"  # no "," or "=": hydra.sweep.dir takes it
    rows = [
        direction(args.overrides, src, dst, args.seeds, args.out / name / f"{src.name}_to_{dst.name}", args.cache_dir)
        for src, dst in ((args.a, args.b), (args.b, args.a))
    ]
    print(f"| {' '.join(args.overrides)} | {rows[0]} | {rows[1]} |")


if __name__ == "__main__":
    main()
