"""Real GTZAN clips (``../shared/data/gtzan-dev``): the tarball layout with its clutter, ``.au`` equal to
``.wav``, MFCC equal to the classic extract_data.py loop, every feature, a short training run above
chance on a track split, and ``mgc.predict`` with its checkpoint.

The folder sits beside the checkout. Where it is absent the module is skipped, except under
``CI=true``: CI always has it, so there an absent folder fails instead of silently skipping.
Everything is written under pytest's temporary folders; the last test checks ``../shared`` is untouched.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
from helpers import ROOT, SR, cli, compose_cfg, shared_data
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import DictConfig
from PIL import Image

from mgc.data import GTZAN
from mgc.features import MFCC
from mgc.metrics import RunMetrics
from mgc.predict import Predictor
from mgc.train import train_and_test

pytestmark = pytest.mark.slow  # end-to-end runs: make test runs them, make test-fast leaves them out

DEV = shared_data("gtzan-dev")
SHARED = DEV.parents[1]

GENRES = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]
TRACK_IDS = [f"{g}.{i:05d}" for g in GENRES for i in ((0, 1, 2, 4, 5) if g == "jazz" else range(5))]

# The classic extract_data.py loop (musikalkemist): 10 segments of int(22050 * 30 / 10) samples, a
# segment kept only when its MFCC has ceil(66150 / 512) = 130 frames.
SEGMENT = int(SR * 30 / 10)
NUM_SEGMENTS = 10
HOP = 512
FRAMES = math.ceil(SEGMENT / HOP)

#: The short training run (seconds on 2 cores once the MFCCs are cached).
TRAIN = ("split=track_70_15_15", "model=mlp", "optim=adam", "scheduler=none", "trainer.max_epochs=10", "logger=none")


def _snapshot(folder: Path) -> dict[str, tuple[bool, int, int]]:
    """Every entry under ``folder`` (itself included): is-dir, size and mtime."""
    entries = {}
    for p in [folder, *folder.rglob("*")]:
        st = p.lstat()
        entries[str(p.relative_to(folder))] = (p.is_dir(), st.st_size, st.st_mtime_ns)
    return entries


BEFORE = _snapshot(SHARED)


def _wav(track_id: str) -> Path:
    """The real clip ``genres/<genre>/<track_id>.wav``."""
    return DEV / "genres" / track_id.partition(".")[0] / f"{track_id}.wav"


def _reference_mfcc(y: np.ndarray) -> list[np.ndarray]:
    """extract_data.py's kept segments of one clip, each ``(frames, 13)``."""
    kept = []
    for d in range(NUM_SEGMENTS):
        start = SEGMENT * d
        finish = start + SEGMENT
        mfcc = librosa.feature.mfcc(y=y[start:finish], sr=SR, n_mfcc=13, n_fft=2048, hop_length=HOP).T
        if len(mfcc) == FRAMES:
            kept.append(mfcc)
    return kept


def _reference_count(n_samples: int) -> int:
    """How many segments extract_data.py keeps for a clip of ``n_samples``, without computing them.

    librosa's centred STFT of ``n`` samples has ``1 + n // hop`` frames; the test of
    :func:`_reference_mfcc` checks this count against the real loop.
    """
    kept = 0
    for d in range(NUM_SEGMENTS):
        samples = max(0, min(SEGMENT * (d + 1), n_samples) - SEGMENT * d)  # len(signal[start:finish])
        kept += 1 + samples // HOP == FRAMES
    return kept


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """Feature cache (``workdir/cache``) and run outputs of this module."""
    return tmp_path_factory.mktemp("real-gtzan")


@pytest.fixture(scope="module")
def real_cfg(workdir):
    """``conf/train.yaml`` composed for the real clips, the feature cache under ``workdir``."""

    def _make(*overrides: str, run: str = "run") -> DictConfig:
        cfg = compose_cfg(
            workdir,
            workdir / "outputs",
            workdir / run,
            "data=gtzan",
            f"data.root={DEV}",
            "callbacks.progress_bar.refresh_rate=0",
            *overrides,
            tiny=False,
        )
        GlobalHydra.instance().clear()
        return cfg

    return _make


@pytest.fixture(scope="module")
def lengths() -> dict[str, int]:
    """Samples of every clip, by track id (22050 Hz mono: librosa.load returns the file's samples)."""
    out = {}
    for clip in GTZAN(DEV).clips():
        info = sf.info(clip.path)
        assert (info.samplerate, info.channels, info.subtype) == (SR, 1, "PCM_16"), clip.path
        out[clip.track_id] = info.frames
    return out


@pytest.fixture(scope="module")
def mfcc(real_cfg):
    """``features=mfcc-json`` of every real clip, extracted once (the training run reads the same cache)."""
    cfg = real_cfg()
    return instantiate(cfg.features).extract(instantiate(cfg.data))


@pytest.fixture(scope="module")
def trained(real_cfg, mfcc):
    """A short MLP run on a track split: 1 validation and 1 test track per genre (10 test tracks)."""
    cfg = real_cfg(*TRAIN)
    return cfg, train_and_test(cfg)


def test_discovery_of_the_tarball_layout_ignores_its_clutter_without_warnings(caplog):
    caplog.set_level(logging.WARNING, logger="mgc")
    genres_dir = DEV / "genres"
    # the clutter really is there: Marsyas lists, README.md, .DS_Store beside and inside the genre folders
    assert {".DS_Store", "README.md"} <= {p.name for p in genres_dir.iterdir()}
    assert len(list(genres_dir.glob("*.mf"))) >= 10
    assert all((genres_dir / g / ".DS_Store").is_file() for g in GENRES)

    source = GTZAN(DEV)
    clips = source.clips()
    assert source.genres == GENRES
    assert source.genre_dir() == genres_dir.resolve()
    assert len(clips) == 50
    assert [c.track_id for c in clips] == TRACK_IDS  # sorted by genre, then number; jazz.00003 is absent
    assert "jazz.00003" not in {c.track_id for c in clips}
    assert all(c.path.parent.name == c.genre and c.path.name == f"{c.track_id}.wav" for c in clips)
    assert {c.path.resolve() for c in clips} == {p.resolve() for p in genres_dir.glob("*/*.wav")}
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_au_copy_of_the_layout_gives_the_same_features(tmp_path, mfcc):
    """Every clip written as Sun .au (the original tarball's format), clutter copied: identical MFCCs."""
    src, dst = DEV / "genres", tmp_path / "gtzan" / "genres"
    for path in src.rglob("*"):
        target = dst / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif path.suffix == ".wav":
            data, sr = sf.read(path, dtype="int16")  # the 16-bit samples themselves, no float round trip
            sf.write(target.with_suffix(".au"), data, sr, format="AU", subtype="PCM_16")
        else:
            shutil.copy(path, target)
    for genre in GENRES:  # a tarball packed on macOS adds an AppleDouble file beside each clip: hidden, skipped
        (dst / genre / f"._{genre}.00000.au").write_bytes(b"\x00\x05\x16\x07" + bytes(78))

    source = GTZAN(tmp_path / "gtzan")
    clips = source.clips()
    assert [c.track_id for c in clips] == TRACK_IDS
    assert all(sf.info(c.path).format == "AU" and sf.info(c.path).subtype == "PCM_16" for c in clips)
    au = MFCC(cache_dir=tmp_path / "cache").extract(source)
    assert au.track_ids == mfcc.track_ids and au.class_names == mfcc.class_names
    np.testing.assert_array_equal(au.tracks, mfcc.tracks)
    np.testing.assert_array_equal(au.labels, mfcc.labels)
    np.testing.assert_array_equal(au.x, mfcc.x)


def test_mfcc_equals_the_extract_data_loop_on_real_music(mfcc, lengths):
    """A clip of each genre, and the clips shorter than 30 s: every segment within 1e-4 of extract_data.py.

    The tolerance adds 1e-6 relative: coefficient 0 of real music reaches -640, where float32's step is 6e-5
    (the batched STFT differs from per-segment calls by one such step).
    """
    short = {t for t, n in lengths.items() if n < 30 * SR}
    chosen = sorted({f"{g}.00000" for g in GENRES} | short)
    for track_id in chosen:
        y, sr = librosa.load(_wav(track_id), sr=SR)
        assert sr == SR and len(y) == lengths[track_id]
        reference = _reference_mfcc(y)
        assert len(reference) == _reference_count(len(y)), track_id  # the count formula is the loop's
        got = mfcc.x[mfcc.tracks == mfcc.track_ids.index(track_id)][:, 0].transpose(0, 2, 1)
        assert got.shape[1:] == (FRAMES, 13)
        assert len(got) == len(reference), track_id  # the short clips too: their 10th segment is kept
        np.testing.assert_allclose(got, np.stack(reference), rtol=1e-6, atol=1e-4, err_msg=track_id)


def test_mfcc_segment_counts_of_every_clip(mfcc, lengths, real_cfg):
    """10 segments for every clip, as extract_data.py keeps them: also for a clip 92 samples short of 30 s,
    whose last segment still has all 130 MFCC frames (DESIGN.md and the issue said 9: the loop says 10)."""
    assert mfcc.track_ids == TRACK_IDS
    counts = {t: int((mfcc.tracks == i).sum()) for i, t in enumerate(mfcc.track_ids)}
    short = sorted(t for t, n in lengths.items() if n < 30 * SR)
    assert short == ["country.00003", "country.00004"]  # 661408 samples: 92 short of 30 s
    for track_id, n in lengths.items():
        assert counts[track_id] == _reference_count(n) == NUM_SEGMENTS, (track_id, n)
    assert [lengths[t] // SEGMENT for t in short] == [9, 9]  # only 9 full 66150-sample segments: the 10th is kept
    assert len(mfcc) == 10 * 50
    (cache,) = Path(real_cfg().paths.cache_dir).glob("mfcc-" + "?" * 16)  # not mfcc-png-*
    assert (cache / "skipped.txt").read_text() == ""  # no clip skipped, so no warning either


def test_mfcc_png_one_image_per_clip(real_cfg):
    cfg = real_cfg("features=mfcc-png")
    feats = instantiate(cfg.features).extract(instantiate(cfg.data))
    frames = 1 + int(29 * SR) // HOP  # one 29-s segment per clip
    assert feats.x.shape == (50, 3, 13, frames) and feats.x.dtype == np.float32
    assert feats.track_ids == TRACK_IDS and np.array_equal(feats.tracks, np.arange(50))
    assert np.isfinite(feats.x).all() and feats.x.min() >= 0 and feats.x.max() <= 1
    assert all(img.max() > img.min() for img in feats.x)  # real music: no blank image
    (store,) = Path(cfg.paths.cache_dir).glob("mfcc-png-*/")
    cache = store / "shards" / "00000"  # the 50 clips fill one shard
    assert sorted(p.relative_to(cache).as_posix() for p in cache.glob("*/*.png")) == sorted(
        f"{t.partition('.')[0]}/{t}.png" for t in TRACK_IDS
    )
    for track_id in ("blues.00000", "country.00003", "rock.00004"):
        with Image.open(cache / track_id.partition(".")[0] / f"{track_id}.png") as img:
            assert img.format == "PNG" and img.mode == "RGB" and img.size == (frames, 13)
            pixels = np.asarray(img).transpose(2, 0, 1).astype(np.float32) / 255
        np.testing.assert_array_equal(pixels, feats.x[TRACK_IDS.index(track_id)])


def test_chroma_three_ten_second_segments(real_cfg, lengths):
    cfg = real_cfg("features=chroma")
    feats = instantiate(cfg.features).extract(instantiate(cfg.data))
    counts = {t: int((feats.tracks == i).sum()) for i, t in enumerate(feats.track_ids)}
    assert counts == {t: 3 for t in lengths}  # the short clips too: their last 10-s segment has every frame
    assert feats.x.shape == (150, 1, 12, 1 + 10 * SR // HOP) and feats.x.dtype == np.float32
    assert np.isfinite(feats.x).all() and feats.x.min() >= 0
    np.testing.assert_allclose(feats.x.max(axis=(1, 2, 3)), 1.0, atol=1e-6)  # each frame scaled to its max


def test_short_training_run_beats_chance_on_a_track_split(trained, mfcc, real_cfg):
    cfg, metrics = trained
    assert metrics.split == "track_70_15_15" and metrics.test_part == "test"
    parts = instantiate(cfg.split).assign(mfcc)
    tracks = {p: set(mfcc.tracks[idx].tolist()) for p, idx in parts.items()}
    assert len(tracks["test"]) == len(tracks["val"]) == 10 and not tracks["test"] & tracks["train"]
    # Reached 0.5 track accuracy (5 of 10 test tracks; segment accuracy 0.46) with seed 42 on 2 CPU cores,
    # and 0.5 with seeds 1 and 2 too; chance is 0.1.
    assert metrics.test.track.accuracy >= 0.3
    assert metrics.test.segment.accuracy >= 0.25
    # deterministic: the same seed on CPU gives the same metrics, so the threshold above is not luck
    again = train_and_test(real_cfg(*TRAIN, run="run-again"))
    assert (again.val, again.test) == (metrics.val, metrics.test)


def test_predict_names_genres_of_real_clips(trained, mfcc):
    cfg, metrics = trained
    ckpt = metrics.best_checkpoint
    test_tracks = sorted(set(mfcc.tracks[instantiate(cfg.split).assign(mfcc)["test"]].tolist()))
    paths = {t: _wav(mfcc.track_ids[t]) for t in test_tracks}
    predictor = Predictor(ckpt)
    predicted = {t: predictor.predict(p) for t, p in paths.items()}
    assert all(p.segments == int((mfcc.tracks == t).sum()) for t, p in predicted.items())
    # the test tracks classified from their files score the run's test track accuracy
    right = [p.ranking[0][0] == mfcc.class_names[mfcc.track_labels[t]] for t, p in predicted.items()]
    assert np.mean(right) == pytest.approx(metrics.test.track.accuracy, abs=1e-6)

    chosen = test_tracks[:3]
    proc = cli("mgc.predict", f"ckpt={ckpt}", f"files=[{','.join(str(paths[t]) for t in chosen)}]", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == len(chosen), proc.stdout
    for line, t in zip(lines, chosen):
        name, _, rest = line.partition(": ")
        genre = rest.split()[0]
        assert name == str(paths[t]) and genre in GENRES
        assert genre == predicted[t].ranking[0][0]


def test_five_fold_cross_validation_on_real_clips_beats_chance(workdir):
    """`make cv` of the clip-statistics baseline on the 50 real clips: every track tested once, mean above chance."""
    overrides = ["data=gtzan", f"data.root={DEV}", "split=kfold", "split.fold=range(5)", "model=stats_linear"]
    overrides += ["features=logmel", "optim=adam", "scheduler=none", "logger=none", f"paths.outputs={workdir / 'cv'}"]
    overrides += [f"paths.cache_dir={workdir / 'cache'}", "callbacks.progress_bar.refresh_rate=0"]
    proc = cli(str(ROOT / "train.py"), "-m", *overrides, cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = [RunMetrics.read(p) for p in (workdir / "cv").glob("multirun/*/*/*/metrics.json")]
    assert sorted(r.split for r in runs) == [f"kfold5.fold{i}" for i in range(5)]
    assert sum(r.test.tracks for r in runs) == 50  # each real track tested exactly once
    (summary,) = json.loads(next((workdir / "cv").glob("multirun/*/*/report/summary.json")).read_text()).values()
    # 0.60 +- 0.24 track accuracy on 2 CPU cores (README, Accuracy on real music); chance is 0.1
    assert summary["test.track.accuracy"]["mean"] >= 0.35 and summary["test.track.accuracy"]["n"] == 5


def test_nothing_written_under_shared():
    """Runs last: ``../shared`` (read-only in CI) has the same entries, sizes and mtimes as at import."""
    assert _snapshot(SHARED) == BEFORE


# -- Kaggle's table of the 1000 GTZAN tracks (../shared/data/gtzan-kaggle) ---------------------------------
KAGGLE = SHARED / "data" / "gtzan-kaggle" / "features_30_sec.csv"


def test_kaggle_table_holds_every_gtzan_track_and_the_filtered_split(tmp_path):
    from mgc.features.kaggle import read_table
    from mgc.split import FilteredSplit

    table = read_table(KAGGLE)
    assert table.x.shape == (1000, 1, 57, 1) and table.class_names == GENRES
    assert table.track_ids[:2] == ["blues.00000", "blues.00001"] and len(set(table.track_ids)) == 1000
    parts = FilteredSplit().assign(table)
    assert [len(parts[p]) for p in ("train", "val", "test")] == [443, 197, 290]  # every listed track is there


def test_kaggle_table_mlp_on_the_filtered_split_reaches_the_target(tmp_path):
    """The issue's target: >= 0.45 test accuracy on the 290 filtered test tracks with the default MLP.

    Measured 0.503 here (0.431 with raw variances, features.log_variances=false); a random track split of
    the same table reaches 0.73, because the filtered split keeps each artist in one part.
    """
    cfg = compose_cfg(
        tmp_path,
        tmp_path / "outputs",
        tmp_path / "run",
        "features=kaggle-csv",
        f"features.csv_path={KAGGLE}",
        "split=filtered",
        "model=mlp",
        "logger=none",
        tiny=False,
    )
    metrics = train_and_test(cfg)
    GlobalHydra.instance().clear()
    assert metrics.test.tracks == 290 and metrics.test_part == "test"
    assert metrics.test.track.accuracy >= 0.45
