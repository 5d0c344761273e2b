"""The journal: every experiment config runs, the report reads real runs, predict names genres."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mgc.predict import Predictor, main as predict_main
from mgc.report import write_report
from mgc.train import CONF_DIR, run

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))


def test_the_journal_has_every_entry():
    assert EXPERIMENTS == [
        "feb16_linear", "feb20_resnet18", "feb21_resnet18_shuffled", "feb24_chroma_resnet18", "feb27_mlp",
        "feb28_cnn", "mar01_lstm", "mar03_bilstm", "mar05_gru", "mar06_test_bilstm", "mar06_test_cnn",
        "mar06_test_gru", "mar06_test_lstm", "mar06_test_mlp",
    ]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_runs(make_cfg, experiment):
    cfg = make_cfg(f"experiment={experiment}", "+trainer.fast_dev_run=true")
    if cfg.features._target_.endswith("MFCCImage"):
        cfg.features.segment_seconds = 10.0  # the tiny test clips are 12 s long
    assert cfg.task_name == experiment
    metrics = run(cfg)
    assert metrics["task_name"] == experiment and metrics["test"]["segments"] > 0


def test_journal_settings_follow_the_journal(make_cfg):
    cfg = make_cfg("experiment=feb20_resnet18")
    assert (cfg.optim.lr, cfg.trainer.max_epochs, list(cfg.features.size)) == (1e-5, 30, [70, 70])
    cfg = make_cfg("experiment=mar03_bilstm")
    assert cfg.model.bidirectional and cfg.split.name == "segment_70_30" and cfg.optim._target_.endswith("RMSprop")
    assert make_cfg("experiment=mar06_test_cnn").split.name == "segment_80_10_10"


def test_report_from_two_real_runs(make_cfg, tmp_path):
    runs = []
    for i, extra in enumerate([["model=linear", "split=segment_90_10"], ["model=mlp", "optim=adam"]]):
        cfg = make_cfg(*extra, "trainer.max_epochs=2", f"task_name=run{i}")
        cfg.paths.run_dir = str(tmp_path / "runs" / f"run{i}")
        runs.append(run(cfg))
    rows = write_report([tmp_path / "runs"], tmp_path / "report")
    assert [r["experiment"] for r in rows] == ["run0", "run1"]
    with open(tmp_path / "report" / "results.csv") as f:
        table = list(csv.DictReader(f))
    for row, metrics in zip(table, runs):
        saved = json.loads((Path(metrics["run_dir"]) / "metrics.json").read_text())
        assert float(row["test_segment_acc"]) == saved["test"]["segment"]["accuracy"]
        assert float(row["test_track_acc"]) == saved["test"]["track"]["accuracy"]
        assert float(row["test_macro_f1"]) == saved["test"]["segment"]["macro_f1"]
        assert float(row["best_val_acc"]) == saved["val"]["segment"]["accuracy"]
        assert int(row["epochs"]) == 2 and row["split"] == saved["split"]
    assert (table[0]["model"], table[1]["model"], table[1]["optimizer"]) == ("linear", "mlp", "adam")
    md = (tmp_path / "report" / "results.md").read_text()
    assert "segment_90_10¹²" in md and "segments of one song sit in both train and test" in md
    assert "| run1 | synthetic | mfcc-json | mlp | adam | 0.001 |" in md
    assert "track_80_10_10 |" in md  # no footnote on the honest split
    for png in ("accuracy.png", "confusion_matrices.png"):
        assert (tmp_path / "report" / png).stat().st_size > 10_000


@pytest.fixture(scope="module")
def overfit_checkpoint(tmp_path_factory, shared_dir):
    """An MLP trained until it knows the tiny training clips."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from conftest import TINY

    out = tmp_path_factory.mktemp("overfit")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[*TINY, "model=mlp", "optim=adam", "scheduler=none",
                                          "trainer.max_epochs=25", "datamodule.batch_size=16",
                                          f"paths.outputs={out}", f"paths.data_dir={shared_dir / 'data'}",
                                          f"paths.cache_dir={shared_dir / 'cache'}"], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.run_dir = str(out / "run")
    metrics = run(cfg)
    GlobalHydra.instance().clear()
    return Path(metrics["run_dir"]) / "checkpoints" / "last.ckpt"


def test_predict_names_the_genre_it_was_trained_on(overfit_checkpoint, tiny_source):
    predictor = Predictor(overfit_checkpoint)
    clips = {c.track_id: c for c in tiny_source.clips()}
    hits = 0
    for genre in ("classical", "metal", "disco", "reggae"):
        result = predictor.predict(clips[f"{genre}.00000"].path)
        assert result.segments == 4 and abs(sum(p for _, p in result.ranking) - 1) < 1e-5
        hits += result.ranking[0][0] == genre
    assert hits >= 3


def test_predict_survives_bad_files_and_prints_json(overfit_checkpoint, tiny_source, tmp_path, capsys):
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")
    good = tiny_source.clips()[-1].path
    rc = predict_main([f"ckpt={overfit_checkpoint}", f"files=[{tmp_path / 'missing.wav'},{corrupt},{good}]", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 1  # some files failed
    assert [("error" in r) for r in out] == [True, True, False]
    assert out[2]["genre"] == out[2]["ranking"][0]["genre"] and len(out[2]["ranking"]) == 10


def test_predict_refuses_a_file_that_is_not_a_checkpoint(tmp_path):
    fake = tmp_path / "model.ckpt"
    fake.write_text("not a checkpoint")
    out = subprocess.run([sys.executable, "-m", "mgc.predict", f"ckpt={fake}", "files=[a.wav]"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"error: ckpt={fake} is not an mgc checkpoint (UnpicklingError); pass a .ckpt written by python train.py"
    ]
