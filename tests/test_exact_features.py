"""Exact numbers against independent references: MFCC images, chroma, training-only normalisation,
and one extraction when two processes race for the same cache."""

from __future__ import annotations

import ast
import subprocess
import sys
import time

import librosa
import matplotlib
import numpy as np
import torch
from helpers import write_tone
from hydra.utils import instantiate
from PIL import Image

from mgc.features import Chroma, MFCCImage

SR = 22050


def _reference_render(mfcc: np.ndarray, colormap: str = "magma") -> np.ndarray:
    """``(3, H, W)`` uint8, built pixel by pixel: coefficient ``i`` on image row ``H - 1 - i``."""
    cmap = matplotlib.colormaps[colormap]
    lo, hi = mfcc.min(), mfcc.max()
    n, frames = mfcc.shape
    out = np.zeros((3, n, frames), dtype=np.uint8)
    for i in range(n):
        for j in range(frames):
            rgb = cmap((mfcc[i, j] - lo) / (hi - lo))[:3]
            out[:, n - 1 - i, j] = [round(c * 255) for c in rgb]
    return out


def test_render_orientation_scaling_and_layout():
    mfcc = np.array([[-5.0, 0.0, 1.0, 2.0], [3.0, 4.0, 5.0, 15.0], [7.0, 8.0, 9.0, 10.0]])  # min at (0,0), max at (1,3)
    img = MFCCImage().render(mfcc)
    assert img.shape == (3, 3, 4) and img.dtype == np.uint8
    np.testing.assert_array_equal(img, _reference_render(mfcc))
    cmap = matplotlib.colormaps["magma"]
    lowest = np.round(np.asarray(cmap(0.0)[:3]) * 255).astype(np.uint8)
    highest = np.round(np.asarray(cmap(1.0)[:3]) * 255).astype(np.uint8)
    # coefficient 0 is the last image row; the minimum is colormap(0), the maximum colormap(1)
    np.testing.assert_array_equal(img[:, 2, 0], lowest)
    np.testing.assert_array_equal(img[:, 1, 3], highest)
    assert not np.array_equal(img[:, 0, 0], lowest)  # the top row is the last coefficient, not the first
    # another colour map gives other pixels: the name is used
    np.testing.assert_array_equal(MFCCImage(colormap="viridis").render(mfcc), _reference_render(mfcc, "viridis"))
    resized = MFCCImage(size=[70, 70]).render(np.random.default_rng(0).normal(size=(13, 130)))
    assert resized.shape == (3, 70, 70) and resized.dtype == np.uint8
    assert MFCCImage(size=[20, 50]).render(mfcc).shape == (3, 20, 50)  # [height, width]


def test_mfcc_images_equal_render_of_an_independent_mfcc(tiny_source, tmp_path):
    # 12-s clips, 5-s segments: two images per clip, so segment order and per-segment PNG names count
    feats = MFCCImage(cache_dir=tmp_path, segment_seconds=5.0, segments_per_clip=None).extract(tiny_source)
    assert feats.x.shape[1:] == (3, 13, 216) and feats.x.dtype == np.float32
    render = MFCCImage().render
    (cache,) = tmp_path.glob("mfcc-png-*/")
    clips = tiny_source.clips()
    for clip_index in (0, 21, 39):
        y, _ = librosa.load(clips[clip_index].path, sr=SR, mono=True)
        rows = np.flatnonzero(feats.tracks == clip_index)
        assert len(rows) == 2
        for s, row in enumerate(rows):
            segment = y[s * 5 * SR : (s + 1) * 5 * SR]
            mfcc = librosa.feature.mfcc(y=segment, sr=SR, n_mfcc=13, n_fft=2048, hop_length=512)
            expected = render(mfcc).astype(np.float32) / 255
            np.testing.assert_allclose(feats.x[row], expected, rtol=0, atol=1 / 255 + 1e-6)
            assert (np.abs(feats.x[row] - expected) > 1e-6).mean() < 0.01  # off by one grey level here and there
            # and the PNG a person opens for segment s is that image
            png = cache / "shards" / "00000" / clips[clip_index].genre / f"{clips[clip_index].track_id}.s{s:02d}.png"
            with Image.open(png) as opened:
                np.testing.assert_allclose(np.asarray(opened).transpose(2, 0, 1) / 255, expected, atol=1 / 255 + 1e-6)
    grey = feats.x * 255  # the /255 scaling of 8-bit pixels: whole grey levels, 0 to 255
    np.testing.assert_allclose(grey, np.round(grey), rtol=0, atol=1e-3)


def test_chroma_equals_per_segment_chroma_stft(tiny_source, tmp_path):
    feats = Chroma(cache_dir=tmp_path).extract(tiny_source)
    clips = tiny_source.clips()
    for clip_index in (0, 13, 38):
        y, _ = librosa.load(clips[clip_index].path, sr=SR, mono=True)
        rows = np.flatnonzero(feats.tracks == clip_index)
        assert len(rows) == 1  # 12-s clip: one full 10-s segment
        ref = librosa.feature.chroma_stft(y=y[: 10 * SR], sr=SR, n_chroma=12, n_fft=2048, hop_length=512)
        assert feats.x[rows[0], 0].shape == ref.shape == (12, 431)
        np.testing.assert_allclose(feats.x[rows[0], 0], ref, rtol=0, atol=1e-5)
    # three 4-s segments per clip: each segment gets its own tuning estimate, as a per-segment call does
    feats = Chroma(cache_dir=tmp_path, segment_seconds=4.0).extract(tiny_source)
    for clip_index in (5, 30):
        y, _ = librosa.load(clips[clip_index].path, sr=SR, mono=True)
        rows = np.flatnonzero(feats.tracks == clip_index)
        assert len(rows) == 3
        for s, row in enumerate(rows):
            segment = y[s * 4 * SR : (s + 1) * 4 * SR]
            ref = librosa.feature.chroma_stft(y=segment, sr=SR, n_chroma=12, n_fft=2048, hop_length=512)
            np.testing.assert_allclose(feats.x[row, 0], ref, rtol=0, atol=1e-5)


def test_normalisation_uses_training_statistics_only(make_cfg, tiny_source):
    cfg = make_cfg("model=linear", f"data.root={tiny_source.root}")  # the same tiny data, already generated
    source = instantiate(cfg.data)
    assert source.params == tiny_source.params  # so prepare() finds the set complete and rewrites nothing
    dm = instantiate(cfg.datamodule, source=source, features=instantiate(cfg.features), split=instantiate(cfg.split))
    dm.setup()
    raw = dm.data.x.astype(np.float64)  # (segments, channels, bins, frames)
    train = dm.parts["train"].index.numpy()
    assert 0 < len(train) < len(raw) and len(np.unique(train)) == len(train)
    mean = raw[train].mean(axis=(0, 3))[..., None]  # (channels, bins, 1)
    std = raw[train].std(axis=(0, 3), ddof=1)[..., None]
    assert tuple(dm.mean.shape) == mean.shape == (1, 13, 1)
    np.testing.assert_allclose(dm.mean.numpy(), mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dm.std.numpy(), std, rtol=1e-5, atol=1e-5)
    # the statistics of all segments are far from those: a fault using them would fail above
    assert np.abs(raw.mean(axis=(0, 3))[..., None] - mean).max() > 1e-2
    assert np.abs(raw.std(axis=(0, 3), ddof=1)[..., None] - std).max() > 1e-2
    served = dm.parts["train"].x.numpy()
    np.testing.assert_allclose(served, (raw[train] - mean) / std, rtol=0, atol=1e-4)
    for part in ("val", "test"):  # the other parts are scaled with the same training statistics
        idx = dm.parts[part].index.numpy()
        np.testing.assert_allclose(dm.parts[part].x.numpy(), (raw[idx] - mean) / std, rtol=0, atol=1e-4)


RACER = """
import logging, sys, time
from pathlib import Path
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s|%(message)s")
from mgc.data import GTZAN
from mgc.features import MFCC
ready, go = Path({ready!r}), Path({go!r})
ready.touch()
while not go.exists():  # both processes are imported and waiting: start them at the same moment
    time.sleep(0.001)
start = time.time()
features = MFCC(cache_dir={cache!r}, num_workers=1).extract(GTZAN({root!r}))
print(repr((start, time.time(), float(features.x.astype("float64").sum()), features.x.shape)))
"""


def test_two_processes_started_together_extract_once(tmp_path):
    root = tmp_path / "genres"
    for g in ("blues", "rock"):
        for i in range(15):
            write_tone(root / g / f"{g}.{i:05d}.wav", 30.0, freq=200 + 10 * i)  # 30 clips: 1-2 s on one thread
    cache, go = tmp_path / "cache", tmp_path / "go"
    ready = [tmp_path / f"ready{i}" for i in range(2)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER.format(ready=str(r), go=str(go), cache=str(cache), root=str(tmp_path))],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in ready
    ]
    try:
        deadline = time.time() + 120
        while not all(r.exists() for r in ready) and all(p.poll() is None for p in procs):
            assert time.time() < deadline, "the processes never got ready"
            time.sleep(0.01)
        go.touch()
        outputs = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-2000:]
    results = [ast.literal_eval(out.strip().splitlines()[-1]) for out, _ in outputs]  # (start, end, checksum, shape)
    # a real race: each process entered extract() before the other one had finished
    assert max(r[0] for r in results) < min(r[1] for r in results)
    marker = "mgc.features.base|extracted mfcc from 30 clips"  # logged only by the process that built the cache
    extracted = [[line for line in err.splitlines() if line.startswith(marker)] for _, err in outputs]
    assert sorted(len(e) for e in extracted) == [0, 1], extracted
    assert results[0][2:] == results[1][2:]
    assert results[0][3] == (300, 1, 13, 130) and np.isfinite(results[0][2])
    assert len(list(cache.glob("mfcc-*/index.json"))) == 1


def test_a_constant_feature_bin_normalises_to_finite_values(tmp_path):
    """A bin with zero spread in the training part (silence, a constant coefficient) must not divide by zero."""
    from mgc.datamodule import GenreDataModule
    from mgc.features import FeatureSet, MFCCFromJSON, export_json
    from mgc.split import SegmentSplit

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 1, 13, 130)).astype(np.float32)
    x[:, :, 3] = 5.0  # coefficient 3 never moves
    labels = np.arange(40) % 4
    data = FeatureSet(
        x=x,
        labels=labels,
        tracks=np.arange(40),
        track_ids=[str(i) for i in range(40)],
        class_names=["a", "b", "c", "d"],
        has_tracks=False,
    )
    path = export_json(data, tmp_path / "data_10.json")
    split = SegmentSplit("segment_90_10", {"train": 0.9, "val": 0.1}, seed=0)
    dm = GenreDataModule(source=None, features=MFCCFromJSON(path), split=split)
    dm.setup()
    served = dm.parts["train"].x
    assert torch.isfinite(served).all() and torch.equal(served[:, :, 3], torch.zeros_like(served[:, :, 3]))


def test_batch_order_changes_every_epoch_and_depends_on_seed_and_epoch_only():
    from mgc.datamodule import EpochBatches

    def order(seed: int, epoch: int) -> list[int]:
        batches = EpochBatches(100, 16, shuffle=True, seed=seed)
        batches.set_epoch(epoch)
        return [i for batch in batches for i in batch]

    assert sorted(order(0, 0)) == list(range(100)) and len(list(EpochBatches(100, 16, True))) == 7
    assert order(0, 1) != order(0, 0) and order(1, 0) != order(0, 0)  # reshuffled each epoch, seeded by the run
    walked = EpochBatches(100, 16, shuffle=True, seed=0)
    for epoch in range(4):  # a run that went through epochs 0-3, drawing torch randomness meanwhile
        walked.set_epoch(epoch)
        seen = [i for batch in walked for i in batch]
        torch.rand(10)
    assert seen == order(0, 3)  # a run resumed at epoch 3 sees the same batches
    assert [i for b in EpochBatches(10, 4, shuffle=False) for i in b] == list(range(10))


def test_segments_per_clip_caps_the_segments_of_each_clip(tiny_source, tmp_path):
    from mgc.features import MFCC

    feats = MFCC(cache_dir=tmp_path, segments_per_clip=2).extract(tiny_source)  # 12-s clips hold 4
    assert np.bincount(feats.tracks).tolist() == [2] * len(feats.track_ids)
