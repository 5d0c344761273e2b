"""Reference outputs of the musicnn package's own TensorFlow graph, for mgc's parity test.

mgc ports musicnn to PyTorch (mgc/models/musicnn.py). This script runs the
package's original graph (musicnn/models.py, built as its extractor builds it,
with the shipped checkpoints restored) on a few patches of real GTZAN clips
and writes the inputs and outputs to tests/data/musicnn_reference.npz. The
test feeds the same float32 patches to mgc's encoder and compares, so CI needs
no TensorFlow.

It needs TensorFlow, which mgc's install leaves out. In a separate environment:

    python3.11 -m venv /tmp/tfenv
    /tmp/tfenv/bin/pip install tensorflow-cpu tf-keras librosa
    /tmp/tfenv/bin/pip install --no-deps musicnn==0.1.0
    TF_USE_LEGACY_KERAS=1 /tmp/tfenv/bin/python scripts/musicnn_reference.py \
        --clips ../shared/data/gtzan-dev/genres --out tests/data/musicnn_reference.npz

The patches are computed here in float32 as musicnn computes them (16 kHz,
n_fft 512, hop 256, 96 mel bands, log10(10000 * power + 1), 187-frame patches
from the clip's start) but without the package's float16 cast, which turns the
loudest bins of some clips into inf. A checkpoint that does not restore is an
error here (the package's extractor swallows it and runs random weights).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

CLIPS = ["blues/blues.00000.wav", "rock/rock.00000.wav", "classical/classical.00001.wav"]
PATCHES_PER_CLIP = 2
FRAMES, SR, N_FFT, HOP, N_MELS = 187, 16000, 512, 256, 96
LAYERS = {
    "musicnn": ["taggram", "penultimate", "max_pool", "mean_pool"],
    "vgg": ["taggram", "pool5"],
}


def patches(path: Path) -> np.ndarray:
    """The first ``PATCHES_PER_CLIP`` musicnn input patches of a clip, ``(n, frames, bands)`` float32."""
    import librosa

    audio, _ = librosa.load(path, sr=SR)
    mel = librosa.feature.melspectrogram(y=audio, sr=SR, hop_length=HOP, n_fft=N_FFT, n_mels=N_MELS).T
    logmel = np.log10(10000 * mel.astype(np.float32) + 1)
    return np.stack([logmel[i * FRAMES : (i + 1) * FRAMES] for i in range(PATCHES_PER_CLIP)])


def run_graph(weights: str, batch: np.ndarray) -> dict[str, np.ndarray]:
    """The named layers of the package's graph for ``weights`` on ``batch``."""
    import tensorflow as tf

    tf.compat.v1.disable_eager_execution()
    from musicnn import models

    tf.compat.v1.reset_default_graph()
    x = tf.compat.v1.placeholder(tf.float32, [None, FRAMES, N_MELS])
    is_training = tf.compat.v1.placeholder(tf.bool)
    outputs = models.define_model(x, is_training, weights, 50)
    if "vgg" in weights:
        named = {"taggram": tf.nn.sigmoid(outputs[0]), "pool5": tf.compat.v1.layers.flatten(outputs[5])}
    else:
        logits, *_, mean_pool, max_pool, penultimate = outputs
        named = {
            "taggram": tf.nn.sigmoid(logits),
            "penultimate": penultimate,
            "max_pool": max_pool,
            "mean_pool": mean_pool,
        }
    import musicnn

    with tf.compat.v1.Session() as sess:
        tf.compat.v1.train.Saver().restore(sess, os.path.dirname(musicnn.__file__) + f"/{weights}/")
        values = sess.run(list(named.values()), feed_dict={x: batch, is_training: False})
    return dict(zip(named, values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=Path, required=True, help="a GTZAN genres/ folder (gtzan-dev)")
    parser.add_argument("--out", type=Path, default=Path("tests/data/musicnn_reference.npz"))
    args = parser.parse_args()
    batch = np.concatenate([patches(args.clips / c) for c in CLIPS]).astype(np.float32)
    arrays = {"inputs": batch, "clips": np.array(CLIPS)}
    for weights in ("MSD_musicnn", "MTT_musicnn", "MSD_vgg", "MTT_vgg"):
        for layer, value in run_graph(weights, batch).items():
            arrays[f"{weights}/{layer}"] = value.astype(np.float32)
            print(weights, layer, value.shape, "finite" if np.isfinite(value).all() else "NOT FINITE")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
