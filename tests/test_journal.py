"""The journal: every experiment config runs, and the report reads real runs."""

from __future__ import annotations

import csv
import json
from dataclasses import astuple, replace
from pathlib import Path

import pytest
from helpers import EXPERIMENTS, JOURNAL, OWN

from mgc import journal
from mgc.errors import MgcError
from mgc.report import write_report
from mgc.report.plots import accuracy_figure
from mgc.train import train_and_test

pytestmark = pytest.mark.slow  # end-to-end runs: make test runs them, make test-fast leaves them out


def test_the_journal_has_every_entry():
    assert EXPERIMENTS == sorted([*JOURNAL, *OWN])
    assert OWN == ["musicnn_finetune", "recommended", "scratch_cnn"]
    assert JOURNAL == [
        "feb16_linear",
        "feb20_resnet18",
        "feb21_resnet18_shuffled",
        "feb24_chroma_resnet18",
        "feb27_mlp",
        "feb28_cnn",
        "mar01_lstm",
        "mar03_bilstm",
        "mar05_gru",
        "mar06_test_bilstm",
        "mar06_test_cnn",
        "mar06_test_gru",
        "mar06_test_lstm",
        "mar06_test_mlp",
    ]


@pytest.mark.parametrize("experiment", JOURNAL)
def test_every_experiment_composes_and_runs(make_cfg, experiment):
    cfg = make_cfg(f"experiment={experiment}", "+trainer.fast_dev_run=true")
    if cfg.features._target_.endswith("MFCCImage"):
        cfg.features.segment_seconds = 10.0  # the tiny test clips are 12 s long
    assert cfg.task_name == experiment
    metrics = train_and_test(cfg)
    assert metrics.task_name == experiment and metrics.test.segments > 0


def test_journal_settings_follow_the_journal(make_cfg):
    cfg = make_cfg("experiment=feb20_resnet18")
    assert (cfg.optim.lr, cfg.trainer.max_epochs, list(cfg.features.size)) == (1e-5, 30, [70, 70])
    cfg = make_cfg("experiment=mar03_bilstm")
    assert cfg.model.bidirectional and cfg.split.name == "segment_70_30" and cfg.optim._target_.endswith("RMSprop")
    assert make_cfg("experiment=mar06_test_cnn").split.name == "segment_80_10_10"


def test_report_from_two_real_runs(make_cfg, tmp_path):
    runs = []
    for i, extra in enumerate([["model=linear", "split=segment_90_10", "augment=crop"], ["model=mlp", "optim=adam"]]):
        cfg = make_cfg(*extra, "trainer.max_epochs=2", f"task_name=run{i}")
        cfg.paths.run_dir = str(tmp_path / "runs" / f"run{i}")
        runs.append(train_and_test(cfg))
    rows = write_report([tmp_path / "runs"], tmp_path / "report")
    assert [r.experiment for r in rows] == ["run0", "run1"]
    assert [r.leaky for r in rows] == [True, False]  # from metrics.json's split_leaks, not the split's name
    with open(tmp_path / "report" / "results.csv") as f:
        table = list(csv.DictReader(f))
    for row, metrics in zip(table, runs):
        saved = json.loads((Path(metrics.run_dir) / "metrics.json").read_text())
        assert float(row["test_segment_acc"]) == saved["test"]["segment"]["accuracy"]
        assert float(row["test_track_acc"]) == saved["test"]["track"]["accuracy"]
        assert float(row["test_macro_f1"]) == saved["test"]["segment"]["macro_f1"]
        assert float(row["best_val_acc"]) == saved["val"]["segment"]["accuracy"]
        assert int(row["epochs"]) == 2 and row["split"] == saved["split"]
    assert (table[0]["model"], table[1]["model"], table[1]["optimizer"]) == ("linear", "mlp", "adam")
    assert (table[0]["augment"], table[1]["augment"]) == ("crop", "none")
    md = (tmp_path / "report" / "results.md").read_text()
    assert "segment_90_10¹²" in md and "segments of one song sit in both train and test" in md
    assert "| run1 | synthetic | mfcc-json | mlp | adam | 0.001 | cosine_restarts | none | track_80_10_10 |" in md
    assert "track_80_10_10 |" in md  # no footnote on the honest split
    for png in ("accuracy.png", "confusion_matrices.png"):
        assert (tmp_path / "report" / png).stat().st_size > 10_000
    fig = accuracy_figure(
        [*rows, replace(rows[0], split="kfold5.fold1", seed=1, leaky=False)]
    )  # a run0 of another fold
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["run0 segment_90_10 seed 42", "run1", "run0 kfold5.fold1 seed 1"]
    assert "segment splits leak" in fig.axes[0].get_title()
    honest = accuracy_figure([r for r in rows if not r.leaky]).axes[0].get_title()
    assert honest == "test accuracy per run"


def test_scratch_cnn_is_the_former_recommendation_and_cross_validates(make_cfg):
    cfg = make_cfg("experiment=scratch_cnn", "+trainer.fast_dev_run=true")
    choices = cfg.hydra.runtime.choices
    assert (
        choices.features,
        choices.model,
        choices.optim,
        choices.scheduler,
        choices.augment,
        choices.split,
        choices.pretrain,
    ) == (
        "logmel",
        "short_chunk_cnn",
        "adamw",
        "one_cycle",
        "specaug",
        "all_tracks",
        "synthetic",
    )
    final = train_and_test(cfg)
    assert final.task_name == "scratch_cnn" and final.test is None and final.val is None
    # what `make cv ARGS="experiment=scratch_cnn split.val_fraction=0 ..."` runs, fold by fold
    fold = train_and_test(
        make_cfg(
            "experiment=scratch_cnn",
            "split=kfold",
            "split.folds=4",
            "split.val_fraction=0",
            "trainer.max_epochs=1",
            "+trainer.limit_train_batches=1",
            "pretrain.data.clips_per_genre=4",  # its pretraining on the tiny synthetic set, one batch
            "pretrain.data.duration=12",
            "pretrain.epochs=1",
        )
    )
    assert fold.split == "kfold4.fold0" and fold.test.tracks == 10 and fold.val is None


def test_recommended_is_a_bagged_probe_on_musicnn_embeddings_that_cross_validates(make_cfg):
    cfg = make_cfg("experiment=recommended", "+trainer.fast_dev_run=true")
    choices = cfg.hydra.runtime.choices
    assert (choices.features, choices.model, choices["model@model.member"], choices.split, choices.pretrain) == (
        "musicnn",
        "ensemble",
        "mlp",
        "all_tracks",
        "none",
    )
    assert (cfg.features.weights, cfg.features.layer, cfg.model.members, cfg.model.bagging) == (
        "MSD_musicnn",
        "penultimate",
        5,
        True,
    )
    final = train_and_test(cfg)
    assert final.task_name == "recommended" and final.test is None and final.val is None
    fold = train_and_test(
        make_cfg(
            "experiment=recommended", "split=kfold", "split.folds=4", "split.val_fraction=0", "trainer.max_epochs=2"
        )
    )
    assert fold.split == "kfold4.fold0" and fold.test.tracks == 10 and fold.val is None


def test_the_journal_table_in_the_docs_is_generated_from_the_configs(tmp_path, capsys, monkeypatch):
    generated = journal.table()  # composed once: 14 experiments
    original = journal.DOC.read_text()
    assert journal.with_table(original, generated) == original, "stale: run python -m mgc.journal --write"
    assert journal.entries()[:2] == ["feb16_linear", "feb20_resnet18"] and journal.entries()[-1] == "mar06_test_mlp"
    row = journal.row("mar05_gru")
    assert (row.model, row.optim, row.scheduler, row.epochs, row.batch_size) == ("gru", "rmsprop", "cyclic", 30, 64)
    assert row.journal_entry == "GRU, otherwise as mar01_lstm"
    assert f"| {' | '.join(map(str, astuple(row)))} |" in generated
    doc = tmp_path / "journal.md"  # a hand edit of one cell: --check fails, --write restores the configs' table
    doc.write_text(original.replace("| mar05_gru | GRU", "| mar05_gru | a GRU"))
    monkeypatch.setattr(journal, "DOC", doc)
    monkeypatch.setattr(journal, "table", lambda: generated)
    assert journal.main(["--check"]) == 1
    assert journal.main(["--write"]) == 0 and journal.main(["--check"]) == 0
    assert doc.read_text() == original
    doc.write_text("no markers")
    with pytest.raises(SystemExit) as exit_:
        journal.main(["--write"])
    assert exit_.value.code == 2 and "needs the two marker lines" in capsys.readouterr().err


def test_a_journal_config_without_its_description_line_is_one_line(tmp_path):
    path = tmp_path / "apr01_x.yaml"
    path.write_text("# @package _global_\ntask_name: apr01_x\n")
    with pytest.raises(MgcError, match=r"apr01_x.yaml has no '# Journal, <date>: <what it is>' line"):
        journal.description(path)
