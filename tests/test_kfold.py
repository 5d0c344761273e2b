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
import yaml
from helpers import TINY
from hydra.utils import instantiate

from mgc.data.base import Clip
from mgc.errors import MgcError
from mgc.features import FeatureSet
from mgc.metrics import RunMetrics, Scores, StageMetrics, TrackVerdict
from mgc.report import write_report
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


# -- the cross-validation report ---------------------------------------------------------------------
def fake_run(
    folder: Path,
    overrides: list[str],
    accuracy: float,
    fold: int = 0,
    seed: int = 0,
    taken_for: dict | None = None,
    log_probs: dict | None = None,
) -> Path:
    """A finished run as train.py leaves it: metrics.json and .hydra/overrides.yaml.

    ``taken_for`` maps the run's test tracks (``genre.NNNNN``) to the genre predicted for each;
    ``log_probs`` maps them to every genre's score instead (the prediction is the best one).
    """
    scores = Scores(accuracy, accuracy / 2, {"blues": {"precision": 1.0, "recall": accuracy, "f1": 0.5}}, [[1]])
    verdicts = [TrackVerdict(t, t.split(".")[0], g, 0.9) for t, g in (taken_for or {}).items()]
    verdicts += [TrackVerdict(t, t.split(".")[0], max(lp, key=lp.get), 0.9, lp) for t, lp in (log_probs or {}).items()]
    stage = StageMetrics(loss=1 - accuracy, segments=8, tracks=2, segment=scores, track=scores, verdicts=verdicts)
    run = RunMetrics("train", {}, "synthetic", f"kfold3.fold{fold}", "test", 1e-3, seed, 1, 1.0, 1, 1, None, "")
    run.val = run.test = stage
    folder.mkdir(parents=True)
    run.write(folder / "metrics.json")
    (folder / ".hydra").mkdir()
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    return folder


def test_report_groups_runs_that_differ_only_by_fold(tmp_path):
    sweep = tmp_path / "sweep"
    for fold, acc in enumerate((0.5, 0.6, 0.9)):
        fake_run(sweep / f"a{fold}", ["split=kfold", f"split.fold={fold}", "model=mlp", f"paths.outputs=/x{fold}"], acc)
    fake_run(sweep / "b0", ["split=kfold", "split.fold=0", "model=cnn"], 0.4)
    fake_run(sweep / "c", ["model=cnn"], 0.3)  # no fold: not cross-validation
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "summary.json").write_text("stale")
    write_report([sweep], tmp_path / "report")
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert sorted(summary) == ["model=cnn,split=kfold", "model=mlp,split=kfold"]
    mlp = summary["model=mlp,split=kfold"]
    assert mlp["test.track.accuracy"] == {"mean": pytest.approx(2 / 3), "std": pytest.approx(0.2081666), "n": 3}
    assert mlp["val.segment.macro_f1"]["mean"] == pytest.approx(1 / 3)
    assert mlp["test.loss"]["mean"] == pytest.approx(1 / 3)
    assert mlp["test.segment.per_class.blues.recall"]["std"] == pytest.approx(0.2081666)
    assert summary["model=cnn,split=kfold"]["test.segment.accuracy"] == {"mean": 0.4, "std": None, "n": 1}
    assert not any("confusion" in k or k.endswith((".segments", ".tracks")) for k in mlp)
    md = (tmp_path / "report" / "results.md").read_text()
    mlp_row = "| model=mlp,split=kfold | kfold3 | 0,1,2 | 0 | one per seed | 3 | 0.667 ± 0.208 | 0.667 ± 0.208 |"
    assert mlp_row + " 0.333 ± 0.104 |" in md
    assert "| model=cnn,split=kfold | kfold3 | 0 | 0 | one per seed | 1 | 0.400 | 0.400 | 0.200 |" in md
    assert not (tmp_path / "report" / "missed_tracks.csv").exists()  # these runs recorded no verdicts
    (tmp_path / "report" / "missed_tracks.csv").write_text("stale")
    fake_run(tmp_path / "plain", ["model=cnn"], 0.3)
    write_report([tmp_path / "plain"], tmp_path / "report")
    assert not (tmp_path / "report" / "summary.json").exists()  # no folds: no summary, not a stale one
    assert not (tmp_path / "report" / "missed_tracks.csv").exists()
    assert "Cross-validation" not in (tmp_path / "report" / "results.md").read_text()


def test_runs_that_differ_by_fold_and_seed_pool_into_one_repeated_cross_validation(tmp_path):
    sweep = tmp_path / "sweep"
    accuracies = {(1, 0): 0.5, (1, 1): 0.6, (1, 2): 0.7, (2, 0): 0.8, (2, 1): 0.9, (2, 2): 1.0}
    for (seed, fold), acc in accuracies.items():
        overrides = ["split=kfold", f"split.fold={fold}", f"seed={seed}", "model=mlp"]
        fake_run(sweep / f"s{seed}f{fold}", overrides, acc, fold=fold, seed=seed)
    fake_run(sweep / "other", ["split=kfold", "split.fold=0", "seed=1", "model=cnn"], 0.1, seed=1)
    fake_run(tmp_path / "elsewhere" / "r", ["split=kfold", "split.fold=1", "seed=3", "model=mlp"], 0.2, 1, 3)
    for seed in (1, 2):  # split.seed fixed: both seeds test the same deal of the folds
        overrides = ["split=kfold", "split.fold=0", f"seed={seed}", "model=gru", "split.seed=7"]
        fake_run(sweep / f"gru{seed}", overrides, 0.5, seed=seed)
        overrides = ["split=kfold", "split.fold=0", f"seed={seed}", "model=lstm", "split.seed=${seed}"]
        fake_run(sweep / f"lstm{seed}", overrides, 0.5, seed=seed)
    write_report([sweep, tmp_path / "elsewhere"], tmp_path / "report")
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    pooled = summary["sweep/model=mlp,split=kfold"]["test.track.accuracy"]
    assert pooled["n"] == 6 and pooled["mean"] == pytest.approx(0.75)
    assert pooled["std"] == pytest.approx(statistics.stdev(accuracies.values()))
    assert summary["sweep/model=cnn,split=kfold"]["test.track.accuracy"]["n"] == 1  # another model: its own row
    assert summary["elsewhere/model=mlp,split=kfold"]["test.track.accuracy"]["n"] == 1  # another sweep: never pooled
    md = (tmp_path / "report" / "results.md").read_text()
    assert "| sweep/model=mlp,split=kfold | kfold3 | 0,1,2 | 1,2 | one per seed | 6 | 0.750 ± 0.187 |" in md, md
    assert "| sweep/model=gru,split.seed=7,split=kfold | kfold3 | 0 | 1,2 | one, split.seed=7 | 2 |" in md, md
    assert "| sweep/model=lstm,split.seed=${seed},split=kfold | kfold3 | 0 | 1,2 | one per seed | 2 |" in md, md


def test_report_names_the_tracks_each_cross_validation_misses_most_often(tmp_path):
    sweep = tmp_path / "sweep"
    deals = {  # (seed, fold) -> {test track: taken for}; seed 3's fold 1 never finished
        (1, 0): {"blues.1": "reggae", "jazz.1": "jazz", "rock.1": "metal"},
        (1, 1): {"blues.2": "blues", "jazz.2": "blues"},
        (2, 0): {"blues.1": "rock", "jazz.2": "jazz"},
        (2, 1): {"blues.2": "blues", "jazz.1": "jazz"},
        (3, 0): {"blues.1": "blues"},
    }
    for (seed, fold), taken_for in deals.items():
        overrides = ["split=kfold", f"split.fold={fold}", f"seed={seed}", "model=mlp"]
        fake_run(sweep / f"s{seed}f{fold}", overrides, 0.5, fold=fold, seed=seed, taken_for=taken_for)
    fake_run(sweep / "cnn", ["split=kfold", "split.fold=0", "model=cnn"], 0.5, taken_for={"rock.1": "metal"})
    fake_run(sweep / "cnn-older", ["split=kfold", "split.fold=1", "model=cnn"], 0.5)  # no verdicts recorded
    write_report([sweep], tmp_path / "report")
    section = (tmp_path / "report" / "results.md").read_text().split("## Tracks missed most often")[1]
    mlp, cnn = section.split("model=mlp,split=kfold:\n")[1].split("model=cnn,split=kfold:")
    assert cnn.startswith(" (1 of its 2 runs predate per-track verdicts: not counted)\n")
    assert [line for line in mlp.splitlines() if line.startswith("| ") and "| track |" not in line] == [
        "| rock.1 | rock | 1/1 | metal ×1 |",  # by the share of the runs that missed it (all), then by count
        "| blues.1 | blues | 2/3 | reggae ×1, rock ×1 |",
        "| jazz.2 | jazz | 1/2 | blues ×1 |",
    ]  # blues.2 and jazz.1 were never missed
    assert "| rock.1 | rock | 1/1 | metal ×1 |" in cnn and "blues" not in cnn
    with open(tmp_path / "report" / "missed_tracks.csv") as f:
        listed = [(r["group"], r["track"], r["tested"], r["missed"], r["taken_for"]) for r in csv.DictReader(f)]
    assert listed[1] == ("model=mlp,split=kfold", "blues.1", "3", "2", "reggae ×1, rock ×1") and len(listed) == 4


def test_report_names_each_track_by_the_mean_log_probability_of_the_seeds_models_together(tmp_path):
    sweep = tmp_path / "sweep"
    scores = {  # seed -> fold -> {test track: {genre: mean log-probability}}
        1: {
            0: {
                "blues.1": {"blues": -0.5, "jazz": -1.2, "rock": -3},
                "jazz.1": {"blues": -0.3, "jazz": -0.4, "rock": -5},
            },
            1: {"rock.1": {"blues": -3, "jazz": -0.5, "rock": -0.7}},
        },
        2: {
            0: {
                "blues.1": {"blues": -2.0, "jazz": -0.1, "rock": -3},
                "jazz.1": {"blues": -2, "jazz": -0.2, "rock": -3},
            },
            1: {"rock.1": {"blues": -3, "jazz": -2.5, "rock": -0.05}},
        },
        3: {
            0: {
                "blues.1": {"blues": -0.6, "jazz": -0.9, "rock": -3},
                "jazz.1": {"blues": -0.5, "jazz": -0.6, "rock": -4},
            },
            1: {"rock.1": {"blues": -3, "jazz": -0.6, "rock": -0.8}},
        },
    }
    for seed, folds in scores.items():
        for fold, log_probs in folds.items():
            overrides = ["split=kfold", f"split.fold={fold}", f"seed={seed}", "model=mlp"]
            fake_run(sweep / f"s{seed}f{fold}", overrides, 0.5, fold=fold, seed=seed, log_probs=log_probs)
    # a seed whose runs predate per-genre scores: counted neither alone nor together
    fake_run(
        sweep / "s4f0",
        ["split=kfold", "split.fold=0", "seed=4", "model=mlp"],
        0.5,
        seed=4,
        taken_for={"blues.1": "rock"},
    )
    for seed in (1, 2):  # a single-seed group (one seed with scores) has no ensemble to report
        fake_run(
            sweep / f"cnn{seed}",
            ["split=kfold", "split.fold=0", f"seed={seed}", "model=cnn"],
            0.5,
            seed=seed,
            **({"log_probs": scores[1][0]} if seed == 1 else {"taken_for": {"blues.1": "blues"}}),
        )
    for seed in (1, 2):  # split.seed fixed: the two seeds' models trained on the same tracks (a deep ensemble)
        overrides = ["split=kfold", "split.fold=0", f"seed={seed}", "model=gru", "split.seed=7"]
        fake_run(sweep / f"gru{seed}", overrides, 0.5, seed=seed, log_probs=scores[seed][0])
    write_report([sweep], tmp_path / "report")
    section = (tmp_path / "report" / "results.md").read_text().split("## The seeds together")[1].split("##")[0]
    rows = [line for line in section.splitlines() if line.startswith("| model=") and "model=gru" not in line]
    assert "| model=gru,split.seed=7,split=kfold | 2 | one, split.seed=7 | 2 | 2 | 0.500 | 0.500 |" in section
    # alone 4 of 9 verdicts right; together blues.1 is lost (jazz's one confident score outweighs two mild
    # blues ones) while jazz.1 and rock.1, missed by two of three models each, are named: 2 of 3 (a vote: 1 of 3)
    assert rows == ["| model=mlp,split=kfold | 3 | one per seed | 3 | 3 | 0.444 | 0.667 |"]


def dotted(d: dict, path: str) -> float:
    for key in path.split("."):
        d = d[key]
    return d


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
    runs = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("multirun/*/*/*/metrics.json"))]
    assert sorted(r["split"] for r in runs) == ["kfold2.fold0", "kfold2.fold0", "kfold2.fold1", "kfold2.fold1"]
    report = next(tmp_path.glob("multirun/*/*/report"))
    summary = json.loads((report / "summary.json").read_text())
    md = (report / "results.md").read_text()
    assert len(summary) == 2
    for lr in (0.001, 0.01):
        folds = [r for r in runs if r["lr"] == lr]
        (name,) = [g for g in summary if f"optim.lr={lr}" in g.split(",")]
        assert not [o for o in name.split(",") if o.startswith(("split.fold=", "paths."))]
        for metric in ("test.segment.accuracy", "test.track.accuracy", "test.segment.macro_f1", "val.track.accuracy"):
            values = [dotted(r, metric) for r in folds]
            expected = {"mean": pytest.approx(statistics.mean(values)), "std": pytest.approx(statistics.stdev(values))}
            assert summary[name][metric] == {**expected, "n": 2}, metric
        cells = []
        for metric in ("test.segment.accuracy", "test.track.accuracy", "test.segment.macro_f1"):
            values = [dotted(r, metric) for r in folds]
            cells.append(f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}")
        assert f"| {name} | kfold2 | 0,1 | 42 | one per seed | 2 | {' | '.join(cells)} |" in md, md
    assert "sweep summary (4 jobs)" in out.stdout and "Cross-validation" in out.stdout
    for lr in (0.001, 0.01):  # each run names its test tracks' verdicts; the folds test every track once
        folds = [r for r in runs if r["lr"] == lr]
        verdicts = [v for r in folds for v in r["test"]["verdicts"]]
        tracks = [v["track"] for v in verdicts]
        assert len(set(tracks)) == len(tracks) == 40, tracks  # TINY: 4 clips of each of 10 genres, each tested once
        assert Counter(t.split(".")[0] for t in tracks) == Counter(
            {g: 4 for g in runs[0]["test"]["track"]["per_class"]}
        )
        for r in folds:
            right = sum(v["genre"] == v["predicted"] for v in r["test"]["verdicts"])
            assert right == pytest.approx(r["test"]["track"]["accuracy"] * r["test"]["tracks"])
            assert all(v["track"].startswith(v["genre"]) for v in r["test"]["verdicts"])
            genres = list(r["test"]["track"]["per_class"])  # every genre scored, the predicted one highest
            assert all(list(v["log_probs"]) == genres for v in r["test"]["verdicts"])
            assert all(max(v["log_probs"], key=v["log_probs"].get) == v["predicted"] for v in r["test"]["verdicts"])
        missed = {v["track"] for v in verdicts if v["genre"] != v["predicted"]}
        with open(report / "missed_tracks.csv") as f:
            listed = {r["track"] for r in csv.DictReader(f) if f"optim.lr={lr}" in r["group"].split(",")}
        assert listed == missed
