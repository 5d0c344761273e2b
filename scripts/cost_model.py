"""How extraction time, store size and training memory grow from GTZAN to FMA: measured here, extrapolated.

    python scripts/cost_model.py                 # 40 synthetic FMA clips of 30 s (mp3), 96-band log-mel and MFCC
    python scripts/cost_model.py --clips 80 --features logmel

Measures, on synthetic clips in FMA's layout and format (30-s mp3, decoded by libsndfile), for each
feature: extraction seconds per clip of audio on this machine's cores, and store bytes per clip. Then
extrapolates linearly in audio hours to GTZAN (1,000 clips of 30 s), fma_small (8,000), fma_medium
(25,000), fma_large (106,574) and fma_full (106,574 untrimmed tracks, 278 s on average: FMA's paper counts 343
days of audio).
Memory is not extrapolated: training from the store holds a batch, and extraction holds a shard (see
``tests/test_store.py`` and ``make bench``). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate

from mgc.cli import CONF_DIR

#: Data set -> (clips, mean seconds per clip).
DATA_SETS = {
    "GTZAN": (1_000, 30.0),
    "fma_small": (8_000, 30.0),
    "fma_medium": (25_000, 30.0),
    "fma_large": (106_574, 30.0),
    "fma_full": (106_574, 278.0),  # 343 days of audio, by FMA's paper
}
FEATURES = {"logmel": ["features=logmel", "features.n_mels=96"], "mfcc-json": ["features=mfcc-json"]}


def measure(feature: list[str], root: Path, artists: int) -> tuple[float, float, int]:
    """(extraction seconds per audio second, store bytes per audio second, clips) of ``features=...`` as
    train.py composes it, on a synthetic FMA of 30-s mp3 clips under ``root``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        data = ["data=synthetic_fma", f"data.root={root / 'fma'}", "data.duration=30"]
        data.append(f"data.artists_per_genre={artists}")
        cfg = compose("train", overrides=[*data, f"paths.cache_dir={root / 'cache'}", *feature])
    source, extractor = instantiate(cfg.data), instantiate(cfg.features)
    source.prepare()  # generating the clips is not part of the measurement
    start = time.perf_counter()
    extractor.extract(source)
    seconds = time.perf_counter() - start
    size = sum(p.stat().st_size for p in extractor.store_path(source).rglob("*") if p.is_file())
    audio = len(source.clips()) * source.duration
    return seconds / audio, size / audio, len(source.clips())


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def table(rates: dict[str, tuple[float, float]]) -> str:
    lines = ["| data set | clips | audio (h) | " + " | ".join(f"{f}: extraction, store" for f in rates) + " |"]
    lines.append("|---|---|---|" + "---|" * len(rates))
    for name, (clips, seconds) in DATA_SETS.items():
        audio = clips * seconds
        cells = [f"{duration(audio * t)}, {audio * b / 2**30:.1f} GiB" for t, b in rates.values()]
        lines.append(f"| {name} | {clips:,} | {audio / 3600:,.0f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=40, help="synthetic clips to measure on (8 genres)")
    parser.add_argument("--features", nargs="+", default=list(FEATURES), choices=list(FEATURES))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mgc-cost-") as tmp:
        artists = max(1, args.clips // 16)  # 8 genres, 2 clips of each artist in the small subset
        measured = {f: measure(FEATURES[f], Path(tmp), artists) for f in args.features}
    clips = next(iter(measured.values()))[2]
    print(f"measured on {clips} synthetic 30-s mp3 clips, {os.cpu_count()} cores\n")
    print(table({f: (t, b) for f, (t, b, _) in measured.items()}))


if __name__ == "__main__":
    main()
