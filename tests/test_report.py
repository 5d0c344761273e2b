"""The report (mgc.report): the per-run table, cross-validation groups, the seeds' ensemble, missed tracks.

Runs are written as train.py leaves them (metrics.json and .hydra/overrides.yaml) without training, so
every figure the report prints is known in advance.
"""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

import pytest
import yaml

from mgc.metrics import RunMetrics, Scores, StageMetrics, TrackVerdict
from mgc.report import write_report
from mgc.report.rows import collect


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


def test_a_run_is_flagged_leaky_by_its_split_record_and_older_runs_by_the_split_name(tmp_path):
    old = fake_run(tmp_path / "old", ["split=segment_90_10"], 0.5)
    record = json.loads((old / "metrics.json").read_text())
    del record["split_leaks"]  # as runs wrote metrics.json before it recorded the split's leakage
    record["split"] = "segment_90_10"
    (old / "metrics.json").write_text(json.dumps(record))
    own = fake_run(tmp_path / "own", ["split=mine"], 0.5)  # a split named like none of mgc's, recorded as leaky
    record = json.loads((own / "metrics.json").read_text())
    record["split_leaks"], record["split"] = True, "by_segment_mine"
    (own / "metrics.json").write_text(json.dumps(record))
    assert [(r.run, r.leaky) for r in collect([tmp_path])] == [("old", True), ("own", True)]
    write_report([tmp_path], tmp_path / "report")
    md = (tmp_path / "report" / "results.md").read_text()
    assert "| segment_90_10¹ |" in md and "| by_segment_mine¹ |" in md
    assert "fold" not in md.split("\n")[2] and collect([tmp_path / "old"])[0].fold is None
