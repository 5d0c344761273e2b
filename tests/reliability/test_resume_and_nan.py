"""Interrupted training resumes exactly; a NaN loss stops with one line and keeps the last good checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import TINY

from mgc.module import NonFiniteLossError
from mgc.train import train_and_test

pytestmark = pytest.mark.slow  # end-to-end runs: make test runs them, make test-fast leaves them out

ROOT = Path(__file__).resolve().parents[2]


def test_resumed_run_matches_an_uninterrupted_one_exactly(make_cfg, tmp_path):
    common = ("model=mlp", "optim=adam", "scheduler=cosine_restarts", "datamodule.batch_size=16")
    full_cfg = make_cfg(*common, "trainer.max_epochs=4")
    full_cfg.paths.run_dir = str(tmp_path / "full")
    full = train_and_test(full_cfg)
    half_cfg = make_cfg(*common, "trainer.max_epochs=2")
    half_cfg.paths.run_dir = str(tmp_path / "half")
    train_and_test(half_cfg)
    resumed_cfg = make_cfg(*common, "trainer.max_epochs=4", f"ckpt_path={tmp_path / 'half/checkpoints/last.ckpt'}")
    resumed_cfg.paths.run_dir = str(tmp_path / "resumed")
    resumed = train_and_test(resumed_cfg)
    a = torch.load(tmp_path / "full/checkpoints/last.ckpt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "resumed/checkpoints/last.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)  # bit-identical weights on CPU
    assert full.test.segment == resumed.test.segment


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(make_cfg):
    # 80 training segments in batches of 64: the third training step is the first of epoch 1.
    cfg = make_cfg("model=linear", "model._target_=helpers.NaNAfter", "+model.train_steps=2", "trainer.max_epochs=3")
    with pytest.raises(NonFiniteLossError, match=r"training loss became nan at epoch 1.*lower optim.lr") as err:
        train_and_test(cfg)
    assert "\n" not in str(err.value)
    last = Path(cfg.paths.run_dir) / "checkpoints" / "last.ckpt"
    state = torch.load(last, weights_only=True)
    assert state["epoch"] == 0 and all(torch.isfinite(v).all() for v in state["state_dict"].values())


def test_training_killed_mid_run_resumes_from_last(tmp_path, shared_dir, make_cfg):
    """A real process killed with SIGKILL; `ckpt_path=last` finds its last.ckpt and finishes the run,
    with the weights of a run that was never interrupted (CPU)."""
    args = [
        sys.executable,
        str(ROOT / "train.py"),
        *TINY,
        "model=gru",
        "model.hidden_size=32",
        f"paths.outputs={tmp_path}",
        f"paths.data_dir={shared_dir / 'data'}",
        f"paths.cache_dir={shared_dir / 'cache'}",
    ]
    proc = subprocess.Popen(
        [*args, "trainer.max_epochs=200"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 240
    while not list(tmp_path.glob("runs/*/*/checkpoints/last.ckpt")) and time.time() < deadline:
        time.sleep(0.5)
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    last = next(tmp_path.glob("runs/*/*/checkpoints/last.ckpt"))
    done_epochs = torch.load(last, weights_only=True)["epoch"] + 1
    out = subprocess.run(
        [*args, f"trainer.max_epochs={done_epochs + 1}", "ckpt_path=last"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"Restoring states from the checkpoint path at {last}" in out.stdout + out.stderr
    newest = max(tmp_path.glob("runs/*/*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    assert torch.load(newest, weights_only=True)["epoch"] == done_epochs
    assert proc.returncode == -signal.SIGKILL  # it was killed, it did not finish
    uninterrupted = train_and_test(
        make_cfg("model=gru", "model.hidden_size=32", f"trainer.max_epochs={done_epochs + 1}")
    )
    a = torch.load(newest, weights_only=True)["state_dict"]
    b = torch.load(Path(uninterrupted.run_dir) / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
