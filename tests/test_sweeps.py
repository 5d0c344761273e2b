"""Sweeps and scale: multirun, Optuna, joblib, DDP on CPU, submitit; TensorBoard events read back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import joblib
import pytest
import yaml
from helpers import TINY, hparams_of

from mgc.metrics import RunMetrics

pytestmark = pytest.mark.slow  # end-to-end runs: make test runs them, make test-fast leaves them out

ROOT = Path(__file__).resolve().parents[1]


def train_cli(tmp_path: Path, shared_dir: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "train.py"),
            *[a for a in args if a.startswith("-")],
            *TINY,
            *([] if any(a.startswith(("model=", "experiment=")) for a in args) else ["model=linear"]),
            f"paths.outputs={tmp_path}",
            f"paths.data_dir={shared_dir / 'data'}",
            f"paths.cache_dir={shared_dir / 'cache'}",
            *[a for a in args if not a.startswith("-")],
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert out.returncode == 0, (out.stdout[-3000:], out.stderr[-3000:])
    return out


def job_dirs(tmp_path: Path) -> list[Path]:
    return sorted(p.parent for p in tmp_path.glob("multirun/*/*/*/metrics.json"))


def test_lr_multirun_gives_three_named_runs_with_hparams(tmp_path, shared_dir):
    out = train_cli(tmp_path, shared_dir, "-m", "optim.lr=1e-4,1e-3,1e-2", "trainer.max_epochs=2")
    dirs = sorted(job_dirs(tmp_path), key=lambda d: RunMetrics.read(d / "metrics.json").lr)
    # each job is named by its overrides (the paths.* plumbing excluded), so TensorBoard lists it by them
    assert [("optim.lr=" + lr) in d.name.split(",") for d, lr in zip(dirs, ("0.0001", "0.001", "0.01"))] == [True] * 3
    assert not any("paths." in d.name for d in dirs)
    assert (dirs[0].parent / "multirun.yaml").is_file()
    for d, lr in zip(dirs, (1e-4, 1e-3, 1e-2)):
        hparams, tags = hparams_of(d)
        assert hparams["lr"] == pytest.approx(lr) and hparams["model"] == "linear"
        assert {"train/loss", "train/acc", "val/loss", "val/acc", "val/track_acc", "hp/test_track_acc"} <= tags
        assert RunMetrics.read(d / "metrics.json").lr == pytest.approx(lr)
    assert "sweep summary (3 jobs)" in out.stdout
    table = (dirs[0].parent / "report" / "results.md").read_text()
    assert all(f"optim.lr={lr}," in table for lr in ("0.0001", "0.001", "0.01"))


@pytest.mark.parametrize("where", ["default", "joblib", "sweep.dir given"])
def test_a_sweep_over_experiments_keeps_each_job_in_its_own_folder_of_one_sweep(tmp_path, shared_dir, where):
    """Experiments set their own task_name: the jobs still share one sweep folder, one job folder each."""
    extra = {"default": [], "joblib": ["hydra/launcher=joblib"], "sweep.dir given": [f"hydra.sweep.dir={tmp_path}/cmp"]}
    out = train_cli(
        tmp_path, shared_dir, "-m", *extra[where], "experiment=feb27_mlp,mar01_lstm", "trainer.max_epochs=1"
    )
    (sweep,) = {p.parent for p in tmp_path.glob("**/multirun.yaml")}
    assert sweep.name == "cmp" if where == "sweep.dir given" else sweep.name.endswith("_train")  # the sweep's own task
    dirs = sorted(p.parent for p in sweep.glob("*/metrics.json"))
    assert len(dirs) == 2 and dirs[0].name.startswith("feb27_mlp_") and dirs[1].name.startswith("mar01_lstm_")
    assert dirs[0].name.removeprefix("feb27_mlp_") == dirs[1].name.removeprefix("mar01_lstm_")  # the same overrides
    assert [RunMetrics.read(d / "metrics.json").choices["model"] for d in dirs] == ["mlp", "lstm"]
    assert all(len(list((d / "checkpoints").glob("*.ckpt"))) == 2 for d in dirs)  # best and last, nobody else's
    assert "sweep summary (2 jobs)" in out.stdout
    table = (sweep / "report" / "results.md").read_text()
    assert f"| {dirs[0].name} | feb27_mlp |" in table and f"| {dirs[1].name} | mar01_lstm |" in table


def test_optuna_search_saves_its_best_params(tmp_path, shared_dir):
    out = train_cli(
        tmp_path,
        shared_dir,
        "-m",
        "hparams_search=optuna",
        "model=gru",
        "model.num_layers=1",
        "hydra.sweeper.n_trials=3",
        "trainer.max_epochs=1",
    )
    results = yaml.safe_load(next(tmp_path.glob("multirun/*/*/optimization_results.yaml")).read_text())
    assert set(results["best_params"]) == {"optim.lr", "optim.weight_decay", "model.hidden_size", "model.dropout"}
    assert 0 <= results["best_value"] <= 1
    assert len(job_dirs(tmp_path)) == 3
    assert "Best parameters" in out.stdout + out.stderr


def test_joblib_launcher_runs_two_jobs_with_a_share_of_the_threads(tmp_path, shared_dir):
    train_cli(
        tmp_path,
        shared_dir,
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "optim.lr=1e-3,1e-2",
        "trainer.max_epochs=1",
    )
    dirs = job_dirs(tmp_path)
    assert len(dirs) == 2
    share = max(1, joblib.cpu_count() // 2)  # the cores this process may use, halved
    assert [RunMetrics.read(d / "metrics.json").threads for d in dirs] == [share, share]


def test_submitit_local_runs_one_job(tmp_path, shared_dir):
    train_cli(
        tmp_path,
        shared_dir,
        "-m",
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=10",
        "trainer.max_epochs=1",
    )
    assert len(job_dirs(tmp_path)) == 1
    assert list(tmp_path.glob("multirun/*/*/.submitit/*/*_log.out"))


def test_the_sweep_objective_is_a_config_key(tmp_path, shared_dir):
    """Optuna maximises `optimized_metric`: here validation track macro-F1, read back from the jobs' metrics.json."""
    train_cli(
        tmp_path,
        shared_dir,
        "-m",
        "hparams_search=optuna",
        "model=gru",
        "model.num_layers=1",
        "model.hidden_size=16",
        "hydra.sweeper.n_trials=2",
        "trainer.max_epochs=1",
        "optimized_metric=val.track.macro_f1",
    )
    results = yaml.safe_load(next(tmp_path.glob("multirun/*/*/optimization_results.yaml")).read_text())
    jobs = [json.loads((d / "metrics.json").read_text())["val"] for d in job_dirs(tmp_path)]
    assert results["best_value"] == max(v["track"]["macro_f1"] for v in jobs)
