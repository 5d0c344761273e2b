"""model=ensemble: members from their own initialisations, each trained on its own loss, averaged at evaluation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from mgc.errors import MgcError
from mgc.models import Ensemble, Linear, ShortChunkCNN
from mgc.module import GenreClassifier
from mgc.train import run

SHAPE, CLASSES = (1, 16, 20), 4


def linear_ensemble(members: int = 3) -> Ensemble:
    torch.manual_seed(0)
    return Ensemble(SHAPE, CLASSES, member=Linear, members=members)


def classifier(model: torch.nn.Module) -> GenreClassifier:
    return GenreClassifier(model, optimizer=None, scheduler=None, class_names=list("abcd"))


def test_members_start_apart_and_evaluation_averages_their_probabilities():
    ens = linear_ensemble()
    weights = [m[-1].weight for m in ens.members]
    assert not torch.equal(weights[0], weights[1]) and not torch.equal(weights[1], weights[2])
    x = torch.randn(5, *SHAPE)
    ens.train()
    assert ens(x).shape == (3, 5, CLASSES)
    ens.eval()
    logp = ens(x)
    mean_prob = torch.stack([torch.softmax(m(x), dim=1) for m in ens.members]).mean(0)
    torch.testing.assert_close(logp.exp(), mean_prob)
    torch.testing.assert_close(torch.log_softmax(logp, dim=1), logp)  # already log-probabilities


@pytest.mark.parametrize("soft", [False, True], ids=["labels", "mixup"])
def test_each_member_learns_from_its_own_loss_alone(soft):
    ens = linear_ensemble()
    module = classifier(ens)
    x = torch.randn(6, *SHAPE)
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    if soft:
        y = 0.7 * F.one_hot(y, CLASSES).float() + 0.3 * F.one_hot(y.roll(1), CLASSES).float()
    ens.train()
    module._loss(ens(x), y).backward()
    together = [[p.grad.clone() for p in m.parameters()] for m in ens.members]
    for member, grads in zip(ens.members, together):
        ens.zero_grad()
        F.cross_entropy(member(x), y).backward()  # the member trained by itself
        for a, b in zip(grads, member.parameters()):
            torch.testing.assert_close(a * len(ens.members), b.grad)  # the loss is the members' mean


def test_train_accuracy_reads_the_ensemble_prediction():
    ens = linear_ensemble(members=2)
    with torch.no_grad():  # member 0 says class 1 weakly, member 1 says class 2 strongly
        for m, bias in zip(ens.members, ([0, 1, 0, 0], [0, 0, 9, 0])):
            m[-1].weight.zero_()
            m[-1].bias.copy_(torch.tensor(bias, dtype=torch.float))
    module = classifier(ens)
    module.log = lambda *a, **k: None
    x = torch.randn(4, *SHAPE)
    module.training_step((x, torch.full((4,), 2)), 0)
    assert module.train_acc.compute() == 1.0  # the mean probability names class 2, as at evaluation


def test_members_must_be_at_least_one():
    with pytest.raises(MgcError, match=r"model.members=0"):
        Ensemble(SHAPE, CLASSES, member=Linear, members=0)


def test_the_config_wraps_any_model_and_trains_end_to_end(make_cfg):
    cfg = make_cfg("model=ensemble", "features=logmel", "model.member.channels=[4,8]", "trainer.max_epochs=1")
    model = instantiate(cfg.model, input_shape=SHAPE, num_classes=CLASSES)
    assert len(model.members) == 2 and all(isinstance(m, ShortChunkCNN) for m in model.members)
    metrics = run(cfg)
    assert metrics["choices"]["model"] == "ensemble" and 0 <= metrics["test"]["track"]["accuracy"] <= 1
    gru = make_cfg("model=ensemble", "model@model.member=gru", "model.members=3", "model.member.hidden_size=8")
    model = instantiate(gru.model, input_shape=SHAPE, num_classes=CLASSES)
    assert len(model.members) == 3 and model.members[2].rnn.hidden_size == 8
    assert math.isclose(
        sum(p.numel() for p in model.parameters()), 3 * sum(p.numel() for p in model.members[0].parameters())
    )
