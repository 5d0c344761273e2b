"""The musicnn benchmark, part 5 of ``make bench``: ratios against baselines in the same process.

1. Extraction throughput (clips/s) of ``features=musicnn`` beside ``features=logmel`` (96 bands) on the
   same clips, each into a fresh cache: what a frozen encoder costs over its spectrogram.
2. The encoder forward as mgc runs it (each clip's 10 patches one batch, clips on the extractor's threads
   with one BLAS thread each) against a plain PyTorch loop over the same patches (batches of 64, torch's
   own threads): target >= 0.95x the plain loop's throughput.
3. Where TensorFlow and the musicnn package's code import (opt-in: mgc's install has no TensorFlow), the
   same patches through the package's own TensorFlow graph, against mgc's encoder.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from joblib import Parallel, delayed
from threadpoolctl import threadpool_limits

from mgc.bench import targets
from mgc.data.gtzan import GTZAN
from mgc.features import LogMel, MusicnnEmbedding, MusicnnMel

PLAIN_BATCH = 64


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def extraction(source: GTZAN, work: Path) -> dict:
    """Clips per second of log-mel and of musicnn embeddings, each into its own fresh cache."""
    clips = len(source.clips())
    MusicnnEmbedding(cache_dir=str(work / "weights")).encoder()  # converting the weights is not extraction
    logmel = _seconds(lambda: LogMel(n_mels=96, cache_dir=str(work / "bench-logmel")).extract(source))
    musicnn = _seconds(lambda: MusicnnEmbedding(cache_dir=str(work / "weights")).extract(source))
    return {
        "clips": clips,
        "logmel_clips_per_s": round(clips / logmel, 2),
        "musicnn_clips_per_s": round(clips / musicnn, 2),
        "musicnn_vs_logmel": round(logmel / musicnn, 3),
    }


def encoder_forward(patches: np.ndarray, work: Path, repeats: int) -> dict:
    """Patches per second through mgc's extraction path and through a plain loop, best of ``repeats``."""
    feature = MusicnnEmbedding(cache_dir=str(work / "weights"), segments_per_clip=10)
    model = feature.encoder()
    clips = [patches[i : i + 10] for i in range(0, len(patches), 10)]

    def mgc_path() -> None:
        with threadpool_limits(1):
            Parallel(n_jobs=feature.num_workers, prefer="threads")(delayed(feature.embed)(c) for c in clips)

    def plain() -> None:
        with torch.inference_mode():
            for i in range(0, len(patches), PLAIN_BATCH):
                model.activations(torch.from_numpy(patches[i : i + PLAIN_BATCH]))["penultimate"]

    mgc_s = min(_seconds(mgc_path) for _ in range(repeats))
    plain_s = min(_seconds(plain) for _ in range(repeats))
    ratio = plain_s / mgc_s
    return {
        "patches": len(patches),
        "mgc_patches_per_s": round(len(patches) / mgc_s, 1),
        "plain_patches_per_s": round(len(patches) / plain_s, 1),
        "mgc_vs_plain": round(ratio, 3),
        "target_vs_plain": targets.MUSICNN["encoder_vs_plain"],
        "met": ratio >= targets.MUSICNN["encoder_vs_plain"],
    }


def tensorflow_graph(patches: np.ndarray, work: Path) -> dict:
    """mgc's encoder against the package's TensorFlow graph on the same patches; skipped without TensorFlow."""
    try:
        import tensorflow as tf
        from musicnn import models
    except ImportError as err:
        return {"measured": False, "why": f"TensorFlow or the musicnn code does not import ({err.name})"}
    import musicnn

    tf.compat.v1.disable_eager_execution()
    tf.compat.v1.reset_default_graph()
    x = tf.compat.v1.placeholder(tf.float32, [None, patches.shape[3], patches.shape[2]])
    training = tf.compat.v1.placeholder(tf.bool)
    penultimate = models.define_model(x, training, "MSD_musicnn", 50)[-1]
    feed = patches[:, 0].transpose(0, 2, 1)
    with tf.compat.v1.Session() as sess:
        tf.compat.v1.train.Saver().restore(sess, str(Path(musicnn.__file__).parent / "MSD_musicnn") + "/")
        tf_s = _seconds(lambda: sess.run(penultimate, {x: feed, training: False}))
    ours = MusicnnEmbedding(cache_dir=str(work / "weights"))
    mgc_s = _seconds(lambda: ours.embed(patches))
    return {
        "measured": True,
        "tensorflow_s": round(tf_s, 2),
        "mgc_s": round(mgc_s, 2),
        "mgc_vs_tf": round(tf_s / mgc_s, 3),
    }


def bench_musicnn(source: GTZAN, work: Path, quick: bool) -> dict:
    """Parts 1-3 on ``source``'s clips."""
    patches = MusicnnMel(cache_dir=str(work / "musicnn-mel")).extract(source).x
    patches = patches[: 40 if quick else 200]
    return {
        "extraction": extraction(source, work),
        "encoder": encoder_forward(patches, work, repeats=1 if quick else 2),
        "tensorflow": tensorflow_graph(patches, work),
    }


def rows(r: dict) -> list[tuple[str, str, str, str]]:
    """Table rows ``(what, figure, target, met)`` of :func:`bench_musicnn`'s result."""
    ext, enc, tf = r["extraction"], r["encoder"], r["tensorflow"]
    out = [
        (
            f"musicnn extraction vs log-mel, {ext['clips']} clips",
            f"{ext['musicnn_clips_per_s']} vs {ext['logmel_clips_per_s']} clips/s ({ext['musicnn_vs_logmel']}x)",
            "reported",
            "-",
        ),
        (
            f"musicnn encoder forward, mgc vs plain loop ({enc['patches']} patches)",
            f"{enc['mgc_patches_per_s']} vs {enc['plain_patches_per_s']} patches/s ({enc['mgc_vs_plain']}x)",
            f">= {enc['target_vs_plain']}x",
            "yes" if enc["met"] else "NO",
        ),
    ]
    if tf["measured"]:
        out.append(("musicnn encoder, mgc vs the package's TensorFlow graph", f"{tf['mgc_vs_tf']}x", "reported", "-"))
    else:
        out.append(("musicnn encoder, mgc vs the package's TensorFlow graph", "not measured: " + tf["why"], "-", "-"))
    return out


def main(argv: list[str] | None = None) -> dict:
    """``python -m mgc.bench.musicnn [--data-root DIR] [--quick]``: part 5 alone, printed as a table."""
    import argparse
    import json
    import tempfile

    from mgc.bench.table import render_rows
    from mgc.data import SyntheticGTZAN

    parser = argparse.ArgumentParser(description="mgc's musicnn benchmark (make bench, part 5, alone)")
    parser.add_argument("--data-root", type=Path, help="a GTZAN folder of real clips (default: 100 synthetic clips)")
    parser.add_argument("--quick", action="store_true", help="10 synthetic clips, one round")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mgc-bench-musicnn-") as tmp:
        work = Path(tmp)
        if args.data_root:
            source = GTZAN(args.data_root)
        else:
            source = SyntheticGTZAN(work / "data", clips_per_genre=1 if args.quick else 10, duration=30.0, seed=0)
            source.prepare()
        result = bench_musicnn(source, work, args.quick)
    print(render_rows(rows(result)))
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
