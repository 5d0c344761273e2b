"""The scheduler configs step as declared: check the learning rate after N steps."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from mgc.train import CONF_DIR


def build(name: str, steps_per_epoch: int = 10, lr: float = 0.1):
    cfg = OmegaConf.load(CONF_DIR / "scheduler" / f"{name}.yaml")
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    return opt, instantiate(cfg)(opt, steps_per_epoch)


def lrs(opt, sched, steps):
    out = []
    for _ in range(steps):
        opt.step()
        sched.step()
        out.append(opt.param_groups[0]["lr"])
    return out


def test_cosine_restarts_falls_to_a_hundredth_over_two_epochs_then_restarts():
    opt, s = build("cosine_restarts")
    assert s["interval"] == "step"
    seq = lrs(opt, s["scheduler"], 21)
    assert seq[18] == pytest.approx(
        0.1 * 0.01 + (0.1 - 0.001) * (1 + torch.cos(torch.tensor(torch.pi * 19 / 20)).item()) / 2
    )
    assert min(seq[:19]) > 0.001 and seq[19] == pytest.approx(0.1)  # restart after 20 steps = 2 epochs
    assert seq[:19] == sorted(seq[:19], reverse=True)


def test_cyclic_rises_to_lr_in_two_epochs_and_back():
    opt, s = build("cyclic")
    assert s["interval"] == "step" and opt.param_groups[0]["lr"] == pytest.approx(0.01)
    seq = lrs(opt, s["scheduler"], 40)
    assert seq[19] == pytest.approx(0.1)  # peak after step_size_up = 20 steps
    assert seq[39] == pytest.approx(0.01)


def test_plateau_halves_on_a_flat_validation_loss():
    opt, s = build("plateau")
    assert s["interval"] == "epoch" and s["monitor"] == "val/loss"
    for _ in range(5):
        s["scheduler"].step(1.0)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05)


def test_plateau_keeps_the_rate_while_the_validation_loss_falls_and_halves_when_it_rises():
    opt, s = build("plateau")
    for loss in (5.0, 4.0, 3.0, 2.0, 1.0, 0.5):  # improving every epoch: nothing to reduce
        s["scheduler"].step(loss)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)
    for loss in (0.6, 0.7, 0.8, 0.9):  # worse for more than `patience` (3) epochs
        s["scheduler"].step(loss)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05)


def test_none_keeps_the_learning_rate():
    opt, s = build("none")
    assert lrs(opt, s["scheduler"], 5) == [pytest.approx(0.1)] * 5


@pytest.mark.parametrize("trainer", [{"max_epochs": 5}, {"max_epochs": 99, "max_steps": 50}])
def test_one_cycle_warms_up_to_lr_then_anneals_over_the_whole_run(trainer):
    """50 steps (5 epochs of 10, or max_steps=50): up to lr at 30%, down to lr/25e4 at the end."""
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    cfg = OmegaConf.merge({"trainer": trainer}, {"s": OmegaConf.load(CONF_DIR / "scheduler" / "one_cycle.yaml")}).s
    s = instantiate(cfg)(opt, 10)
    assert s["interval"] == "step" and opt.param_groups[0]["lr"] == pytest.approx(0.1 / 25)
    seq = lrs(opt, s["scheduler"], 49)
    # torch's warm-up ends after pct_start * total - 1 = 14 steps; then 35 steps down to the floor
    assert max(seq) == pytest.approx(0.1) and seq.index(max(seq)) == 13
    assert seq[-1] == pytest.approx(0.1 / 25 / 1e4)
    assert seq[:14] == sorted(seq[:14]) and seq[13:] == sorted(seq[13:], reverse=True)
    assert opt.param_groups[0]["betas"][0] == pytest.approx(0.95, abs=1e-3)  # momentum cycles back
