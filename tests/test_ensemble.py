"""model=ensemble: members from their own initialisations, each trained on its own loss, averaged at evaluation."""

from __future__ import annotations

import functools
import math

import lightning.pytorch as L
import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from mgc.batches import Batch
from mgc.errors import MgcError
from mgc.models import Ensemble, Linear, ShortChunkCNN
from mgc.module import GenreClassifier
from mgc.scheduler import constant
from mgc.train import build_datamodule, train_and_test

pytestmark = pytest.mark.slow  # end-to-end runs: make test runs them, make test-fast leaves them out

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
    module.training_step(Batch(x, torch.full((4,), 2), torch.zeros(4, dtype=torch.long), torch.arange(4)), 0)
    assert module.train_acc.compute() == 1.0  # the mean probability names class 2, as at evaluation


def test_members_must_be_at_least_one():
    with pytest.raises(MgcError, match=r"model.members=0"):
        Ensemble(SHAPE, CLASSES, member=Linear, members=0)


def test_the_config_wraps_any_model_and_trains_end_to_end(make_cfg):
    cfg = make_cfg("model=ensemble", "features=logmel", "model.member.channels=[4,8]", "trainer.max_epochs=1")
    model = instantiate(cfg.model, input_shape=SHAPE, num_classes=CLASSES)
    assert len(model.members) == 2 and all(isinstance(m, ShortChunkCNN) for m in model.members)
    metrics = train_and_test(cfg)
    assert metrics.choices["model"] == "ensemble" and 0 <= metrics.test.track.accuracy <= 1
    gru = make_cfg("model=ensemble", "model@model.member=gru", "model.members=3", "model.member.hidden_size=8")
    model = instantiate(gru.model, input_shape=SHAPE, num_classes=CLASSES)
    assert len(model.members) == 3 and model.members[2].rnn.hidden_size == 8
    assert math.isclose(
        sum(p.numel() for p in model.parameters()), 3 * sum(p.numel() for p in model.members[0].parameters())
    )


def test_bags_deal_each_genres_training_tracks_to_the_members_in_turn(make_cfg):
    def bags(*overrides: str, members: int = 3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        datamodule = build_datamodule(make_cfg("features=logmel", *overrides))
        datamodule.setup()
        labels, tracks = datamodule.parts["train"].y, datamodule.parts["train"].track
        return datamodule.bags(members), labels, tracks

    left_out_by, labels, tracks = bags("split=all_tracks")  # TINY: 4 tracks of each of 10 genres, all training
    assert sorted(left_out_by.tolist()) == sorted([0] * 14 + [1] * 13 + [2] * 13)  # level over all 40 tracks
    for genre in range(10):  # within a genre, the members' shares differ by one track at most
        counts = torch.bincount(left_out_by[torch.unique(tracks[labels == genre])], minlength=3)
        assert counts.max() - counts.min() <= 1 and counts.sum() == 4
    assert torch.equal(bags("split=all_tracks")[0], left_out_by)  # the seed decides
    assert not torch.equal(bags("split=all_tracks", "seed=7")[0], left_out_by)
    kfold, _, train_tracks = bags("split=kfold", "split.folds=4", "split.val_fraction=0")
    assert set(kfold[train_tracks].tolist()) == {0, 1, 2}
    held_out = torch.tensor([t for t in range(len(kfold)) if t not in set(train_tracks.tolist())])
    assert len(held_out) == 10 and (kfold[held_out] == -1).all()  # test tracks: no member's to leave out


def test_a_bagged_member_learns_only_from_the_tracks_it_keeps():
    torch.manual_seed(0)
    ens = Ensemble(SHAPE, CLASSES, member=Linear, members=3, bagging=True)
    module = classifier(ens)
    module.log = lambda *a, **k: None
    module.bags = torch.tensor([0, 1, 2, 0, -1, 1])  # track id -> the member that leaves it out
    x, y = torch.randn(6, *SHAPE), torch.tensor([0, 1, 2, 3, 0, 1])
    track = torch.tensor([0, 0, 1, 3, 5, 2])
    ens.train()
    module.training_step(Batch(x, y, track, torch.arange(6)), 0).backward()
    together = [[p.grad.clone() for p in member.parameters()] for member in ens.members]
    for number, (member, grads) in enumerate(zip(ens.members, together)):
        keep = module.bags[track] != number
        ens.zero_grad()
        (F.cross_entropy(member(x[keep]), y[keep]) / 3).backward()  # by itself, on its own rows
        for a, p in zip(grads, member.parameters()):
            torch.testing.assert_close(a, p.grad)
    ens.zero_grad()  # a batch of member 0's left-out tracks alone: it learns nothing, the others learn
    module.training_step(Batch(x[[0, 3]], y[[0, 3]], track[[0, 3]], torch.arange(2)), 0).backward()
    assert all(p.grad is not None and not p.grad.any() for p in ens.members[0].parameters())
    assert all(p.grad.any() for m in ens.members[1:] for p in m.parameters())


def test_bagging_needs_two_members_and_mgcs_datamodule():
    with pytest.raises(MgcError, match=r"model.bagging=true with model.members=1"):
        Ensemble(SHAPE, CLASSES, member=Linear, members=1, bagging=True)
    ens = Ensemble(SHAPE, CLASSES, member=Linear, members=2, bagging=True)
    module = GenreClassifier(ens, functools.partial(torch.optim.SGD, lr=0.1), constant, list("abcd"))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(4, *SHAPE), torch.zeros(4).long()))
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    with pytest.raises(MgcError, match=r"model.bagging=true deals the training tracks") as err:
        trainer.fit(module, train_dataloaders=loader)
    assert "\n" not in str(err.value)


def test_a_bagged_ensemble_takes_its_deal_from_the_datamodule_and_trains_end_to_end(make_cfg):
    cfg = make_cfg("model=ensemble", "model.bagging=true", "model.members=3", "features=logmel", "split=all_tracks")
    datamodule = build_datamodule(cfg)
    datamodule.setup()
    ens = Ensemble(datamodule.input_shape, 10, member=Linear, members=3, bagging=True)
    module = GenreClassifier(ens, functools.partial(torch.optim.SGD, lr=0.1), constant, datamodule.class_names)
    trainer = L.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(module, datamodule=datamodule)
    assert torch.equal(module.bags, datamodule.bags(3))
    split = make_cfg(
        "model=ensemble",
        "model.bagging=true",
        "model.members=3",
        "features=logmel",
        "model.member.channels=[4,8]",
        "trainer.max_epochs=1",
        "split=kfold",
        "split.folds=4",
        "split.val_fraction=0",
    )
    metrics = train_and_test(split)  # train, checkpoint, test on the held-out fold
    assert metrics.test.tracks == 10 and 0 <= metrics.test.track.accuracy <= 1
