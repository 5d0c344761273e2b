"""k-fold cross-validation: split=kfold (folds partition the tracks, stratified, val from training) and its report."""

from __future__ import annotations

import csv
import json
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY
from hydra.utils import instantiate

from mgc.data.base import Clip
from mgc.errors import MgcError
from mgc.features import FeatureSet
from mgc.metrics import RunMetrics
from mgc.split import KFoldSplit

pytestmark = pytest.mark.slow  # end-to-end runs: make test runs them, make test-fast leaves them out

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"blues": 10, "jazz": 7, "rock": 5}  # tracks per genre, uneven on purpose


def features(sizes: dict[str, int] = SIZES, seed: int = 0) -> FeatureSet:
    """Tracks of uneven genres in shuffled order, 1 to 4 segments each, segments shuffled too."""
    rng = np.random.default_rng(seed)
    genres = list(sizes)
    track_genre = rng.permutation(np.repeat(np.arange(len(genres)), list(sizes.values())))
    track_ids = [f"{genres[g]}.{i:05d}" for i, g in enumerate(track_genre)]
    tracks = rng.permutation(np.repeat(np.arange(len(track_ids)), rng.integers(1, 5, len(track_ids))))
    return FeatureSet(
        x=np.zeros((len(tracks), 1, 2, 2), np.float32),
        labels=track_genre[tracks],
        tracks=tracks,
        track_ids=track_ids,
        class_names=genres,
        source="synthetic",
    )


def track_parts(fs: FeatureSet, **kw) -> list[dict[str, set[int]]]:
    """For every fold: {part: set of track indices}, after checking that each part holds whole tracks."""
    out = []
    for fold in range(kw.get("folds", 5)):
        parts = KFoldSplit(fold=fold, **kw).assign(fs)
        assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(len(fs)))  # every segment once
        for idx in parts.values():  # whole tracks: a part holds every segment of each of its tracks
            assert np.array_equal(np.sort(idx), np.flatnonzero(np.isin(fs.tracks, fs.tracks[idx])))
        out.append({p: set(fs.tracks[idx].tolist()) for p, idx in parts.items()})
    return out


def per_genre(fs: FeatureSet, tracks: set[int]) -> list[int]:
    return np.bincount(fs.track_labels[sorted(tracks)], minlength=len(fs.class_names)).tolist()


def test_folds_partition_the_tracks_and_each_track_is_tested_exactly_once():
    fs = features()
    folds = track_parts(fs, folds=3, seed=7)
    tested = Counter(t for f in folds for t in f["test"])
    assert sorted(tested) == list(range(len(fs.track_ids))) and set(tested.values()) == {1}
    for f in folds:  # no track in two parts, every track in one
        assert not (f["train"] & f["val"]) and not (f["train"] & f["test"]) and not (f["val"] & f["test"])
        assert f["train"] | f["val"] | f["test"] == set(range(len(fs.track_ids)))


def test_each_genre_is_dealt_evenly_over_the_folds():
    fs = features()
    folds = track_parts(fs, folds=3, seed=7)
    for g, n in enumerate(SIZES.values()):  # 10, 7, 5 tracks over 3 folds: sizes floor(n/3) or ceil(n/3)
        counts = sorted(per_genre(fs, f["test"])[g] for f in folds)
        assert counts == sorted([n // 3 + (i < n % 3) for i in range(3)])
    sizes = [len(f["test"]) for f in folds]  # 22 tracks: the folds also hold 8, 7, 7 overall
    assert sorted(sizes) == [7, 7, 8]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_five_folds_of_twenty_tracks_per_genre_test_four_of_each(seed):
    fs = features({"blues": 20, "jazz": 20, "rock": 20}, seed=seed)
    for f in track_parts(fs, folds=5, seed=seed):
        assert per_genre(fs, f["test"]) == [4, 4, 4]
        assert per_genre(fs, f["val"]) == [2, 2, 2]  # 10% of 16 training tracks per genre
        assert per_genre(fs, f["train"]) == [14, 14, 14]


def test_validation_tracks_come_from_the_folds_training_tracks():
    fs = features()
    all_tracks = set(range(len(fs.track_ids)))
    for kw, expected in (({"val_fraction": 0.25}, None), ({"val_tracks_per_genre": 2}, [2, 2, 2])):
        for f in track_parts(fs, folds=3, seed=3, **kw):
            assert f["val"] and f["val"] <= all_tracks - f["test"] and not f["val"] & f["test"]
            if expected:
                assert per_genre(fs, f["val"]) == expected
            else:  # a quarter of each genre's training tracks, at least one
                train_total = np.array(per_genre(fs, f["train"])) + per_genre(fs, f["val"])
                assert per_genre(fs, f["val"]) == [max(1, round(0.25 * n)) for n in train_total]


@pytest.mark.parametrize("no_val", [{"val_fraction": 0}, {"val_tracks_per_genre": 0}])
def test_folds_without_validation_train_on_every_track_outside_the_test_fold(no_val):
    fs = features()
    with_val = track_parts(fs, folds=3, seed=5)
    for f, g in zip(track_parts(fs, folds=3, seed=5, **no_val), with_val):
        assert set(f) == {"train", "test"}  # no empty val part for the datamodule to serve
        assert f["test"] == g["test"] and f["train"] == g["train"] | g["val"]


def test_the_seed_decides_the_folds():
    fs = features()
    a, b, c = (track_parts(fs, folds=3, seed=s) for s in (11, 11, 12))
    assert a == b
    assert [f["test"] for f in a] != [f["test"] for f in c]
    assert [f["val"] for f in a] != [f["val"] for f in c]


def test_name_says_which_fold_and_the_config_group_builds_it(make_cfg):
    cfg = make_cfg("split=kfold", "split.fold=3", "seed=9")
    split = instantiate(cfg.split)
    assert (split.name, split.folds, split.fold, split.seed, split.val_fraction) == ("kfold5.fold3", 5, 3, 9, 0.1)
    assert split.val_tracks_per_genre is None


def one_line_error(fn, message: str) -> None:
    with pytest.raises(MgcError) as err:
        fn()
    assert str(err.value) == message


def test_config_errors_are_one_line():
    one_line_error(
        lambda: KFoldSplit(folds=1),
        "split.folds=1: cross-validation needs at least 2 folds; use split.folds=5 "
        "(or a single track split such as split=track_80_10_10)",
    )
    for fold in (5, -1):
        one_line_error(
            lambda fold=fold: KFoldSplit(folds=5, fold=fold),
            f"split.fold={fold} is out of range for split.folds=5; use 0 to 4 (make cv runs them all)",
        )
    one_line_error(
        lambda: KFoldSplit(val_fraction=1.0),
        "split.val_fraction=1.0: must be >= 0 and < 1 "
        "(the share of each genre's training tracks kept for validation; 0: none)",
    )
    one_line_error(
        lambda: KFoldSplit(val_tracks_per_genre=-1),
        "split.val_tracks_per_genre=-1: must be at least 0 (or null to keep split.val_fraction of the training tracks)",
    )
    KFoldSplit(val_fraction=1.0, val_tracks_per_genre=1)  # a count replaces the fraction


def test_a_genre_with_fewer_tracks_than_folds_is_refused_before_extraction():
    message = (
        "split=kfold6.fold0: genre 'rock' has 5 tracks, fewer than split.folds=6 (every fold tests at least one "
        "track of each genre); use split.folds=5 or fewer, or add clips (data.clips_per_genre)"
    )
    one_line_error(lambda: KFoldSplit(folds=6).assign(features()), message)
    clips = [Clip(Path(f"{g}.{i}.wav"), g, f"{g}.{i:05d}") for g, n in SIZES.items() for i in range(n)]
    one_line_error(lambda: KFoldSplit(folds=6).check(clips, "synthetic"), message)
    KFoldSplit(folds=5).check(clips, "synthetic")


def test_a_genre_too_small_for_its_validation_tracks_is_refused():
    one_line_error(  # rock: 5 tracks in 3 folds, so a fold trains on as few as 3: 3 val tracks leave none
        lambda: KFoldSplit(folds=3, val_tracks_per_genre=3).assign(features()),
        "split=kfold3.fold0: genre 'rock' has 5 tracks, so a fold trains on as few as 3: too few for "
        "split.val_tracks_per_genre=3 and at least one training track; hold out fewer validation tracks, "
        "use fewer folds, or add clips (data.clips_per_genre)",
    )
    one_line_error(
        lambda: KFoldSplit(folds=2).assign(features({"blues": 4, "jazz": 3})),
        "split=kfold2.fold0: genre 'jazz' has 3 tracks, so a fold trains on as few as 1: too few for "
        "split.val_fraction=0.1 and at least one training track; hold out fewer validation tracks, "
        "use fewer folds, or add clips (data.clips_per_genre)",
    )
    KFoldSplit(folds=3, val_tracks_per_genre=2).assign(features())
    fs = features()
    fs.has_tracks = False
    with pytest.raises(MgcError, match=r"^split=kfold5.fold0 needs track ids, .*use a segment split"):
        KFoldSplit().assign(fs)


def test_cross_validation_multirun_reports_mean_and_std_over_folds(tmp_path, shared_dir):
    """A real `train.py -m` over 2 folds x 2 learning rates: two groups, each the folds of one lr."""
    overrides = ["split=kfold", "split.folds=2", "split.fold=0,1", "optim.lr=1e-3,1e-2", "model=linear"]
    overrides += ["trainer.max_epochs=1", "logger=none", f"paths.outputs={tmp_path}"]
    overrides += [f"paths.data_dir={shared_dir / 'data'}", f"paths.cache_dir={shared_dir / 'cache'}"]
    out = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "-m", *TINY, *overrides],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, (out.stdout[-3000:], out.stderr[-3000:])
    runs = [RunMetrics.read(p) for p in sorted(tmp_path.glob("multirun/*/*/*/metrics.json"))]
    assert sorted(r.split for r in runs) == ["kfold2.fold0", "kfold2.fold0", "kfold2.fold1", "kfold2.fold1"]
    report = next(tmp_path.glob("multirun/*/*/report"))
    summary = json.loads((report / "summary.json").read_text())
    md = (report / "results.md").read_text()
    assert len(summary) == 2
    for lr in (0.001, 0.01):
        folds = [r for r in runs if r.lr == lr]
        (name,) = [g for g in summary if f"optim.lr={lr}" in g.split(",")]
        assert not [o for o in name.split(",") if o.startswith(("split.fold=", "paths."))]
        for metric in ("test.segment.accuracy", "test.track.accuracy", "test.segment.macro_f1", "val.track.accuracy"):
            values = [r.select(metric) for r in folds]
            expected = {"mean": pytest.approx(statistics.mean(values)), "std": pytest.approx(statistics.stdev(values))}
            assert summary[name][metric] == {**expected, "n": 2}, metric
        cells = []
        for metric in ("test.segment.accuracy", "test.track.accuracy", "test.segment.macro_f1"):
            values = [r.select(metric) for r in folds]
            cells.append(f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}")
        assert f"| {name} | kfold2 | 0,1 | 42 | one per seed | 2 | {' | '.join(cells)} |" in md, md
    assert "sweep summary (4 jobs)" in out.stdout and "Cross-validation" in out.stdout
    for lr in (0.001, 0.01):  # each run names its test tracks' verdicts; the folds test every track once
        folds = [r for r in runs if r.lr == lr]
        verdicts = [v for r in folds for v in r.test.verdicts]
        tracks = [v.track for v in verdicts]
        assert len(set(tracks)) == len(tracks) == 40, tracks  # TINY: 4 clips of each of 10 genres, each tested once
        assert Counter(t.split(".")[0] for t in tracks) == Counter({g: 4 for g in runs[0].test.track.per_class})
        for r in folds:
            right = sum(not v.missed for v in r.test.verdicts)
            assert right == pytest.approx(r.test.track.accuracy * r.test.tracks)
            assert all(v.track.startswith(v.genre) for v in r.test.verdicts)
            genres = list(r.test.track.per_class)  # every genre scored, the predicted one highest
            assert all(list(v.log_probs) == genres for v in r.test.verdicts)
            assert all(max(v.log_probs, key=v.log_probs.get) == v.predicted for v in r.test.verdicts)
        missed = {v.track for v in verdicts if v.genre != v.predicted}
        with open(report / "missed_tracks.csv") as f:
            listed = {r["track"] for r in csv.DictReader(f) if f"optim.lr={lr}" in r["group"].split(",")}
        assert listed == missed
