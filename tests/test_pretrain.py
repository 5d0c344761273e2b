"""Pretraining (``pretrain=synthetic``): built once per configuration, cached atomically, resumed when
interrupted, and the start of every run that asks for it, whatever the run's data or seed."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import ClassVar

import lightning.pytorch as L
import pytest
import torch
from helpers import compose_cfg

from mgc import pretrain
from mgc.checkpoint import InferenceSpec
from mgc.errors import MgcError
from mgc.train import train_and_test

pytestmark = pytest.mark.slow  # end-to-end runs: make test runs them, make test-fast leaves them out

#: Two epochs of pretraining on the tiny synthetic set, then one epoch of the run itself.
PRETRAIN = ["pretrain=synthetic", "pretrain.data.clips_per_genre=4", "pretrain.data.duration=12", "pretrain.epochs=2"]


def pretrain_cfg(shared_dir: Path, tmp_path: Path, name: str, *overrides: str, cache: str = "cache"):
    """A quick MLP run in ``tmp_path / name`` whose pretraining is cached under ``tmp_path / cache``."""
    cfg = compose_cfg(
        shared_dir, tmp_path / "outputs", tmp_path / name, "model=mlp", "logger=none", "trainer.max_epochs=1",
        *PRETRAIN, *overrides,
    )  # fmt: skip
    cfg.paths.cache_dir = str(tmp_path / cache)  # the features are re-extracted there too: tiny
    return cfg


def cached(tmp_path: Path, cache: str = "cache") -> tuple[list[Path], list[Path]]:
    """The finished pretrained checkpoints and the work folders of unfinished ones."""
    folder = tmp_path / cache / "pretrain"
    return sorted(folder.glob("*.ckpt")), sorted(folder.glob("*.partial"))


class WeightsAtStart(L.Callback):
    """The model's weights whenever a fit starts (pretraining runs included), in order."""

    seen: ClassVar[list[dict]] = []

    def on_fit_start(self, trainer, pl_module) -> None:
        WeightsAtStart.seen.append({k: v.detach().clone() for k, v in pl_module.model.state_dict().items()})


class EpochAtStart(L.Callback):
    """The epoch each fit starts training at (> 0 for a resumed one), in order."""

    seen: ClassVar[list[int]] = []

    def on_train_start(self, trainer, pl_module) -> None:
        EpochAtStart.seen.append(trainer.current_epoch)


class Interrupted(Exception):
    pass


class StopInSecondEpoch(L.Callback):
    """Interrupts a fit as its second epoch starts: the first epoch's last.ckpt is on disk."""

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == 1:
            raise Interrupted


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_every_run_starts_from_one_pretraining_built_once_whatever_its_data_or_seed(shared_dir, tmp_path):
    cfg = functools.partial(pretrain_cfg, shared_dir, tmp_path)
    record = "+callbacks.weights._target_=test_pretrain.WeightsAtStart"
    WeightsAtStart.seen.clear()
    first = train_and_test(cfg("first", record))
    (checkpoint,), unfinished = cached(tmp_path)
    assert unfinished == []  # the work folder is gone once the checkpoint is in place
    built = checkpoint.stat().st_mtime_ns
    again = train_and_test(cfg("again", record))
    train_and_test(cfg("other_seed", record, "seed=1"))
    train_and_test(cfg("other_data", record, "data.duration=9"))
    assert cached(tmp_path) == ([checkpoint], []) and checkpoint.stat().st_mtime_ns == built
    pretrained = InferenceSpec.load(checkpoint).weights
    pretraining_start, *run_starts = WeightsAtStart.seen
    assert len(run_starts) == 4  # one pretraining fit, then the four runs' own: none pretrained again
    assert all(same(start, pretrained) for start in run_starts)
    assert not same(pretraining_start, pretrained)  # it did train
    # the same config gives the same metrics whether its pretraining was built in the run or found cached
    assert first.test == again.test and first.val == again.val
    for n, other in enumerate(["pretrain.epochs=3", "pretrain.seed=1", "pretrain.data.clips_per_genre=3"], start=2):
        train_and_test(cfg(f"other{n}", other))
        assert len(cached(tmp_path)[0]) == n  # another pretraining, another checkpoint


def test_an_interrupted_pretraining_resumes_and_ends_as_an_uninterrupted_one(shared_dir, tmp_path):
    cfg = functools.partial(pretrain_cfg, shared_dir, tmp_path)
    with pytest.raises(Interrupted):
        train_and_test(cfg("killed", "+callbacks.stop._target_=test_pretrain.StopInSecondEpoch"))
    finished, (work,) = cached(tmp_path)
    assert finished == [] and (work / "checkpoints" / "last.ckpt").is_file()  # nothing half-done is cached
    EpochAtStart.seen.clear()
    train_and_test(cfg("resumed", "+callbacks.epoch._target_=test_pretrain.EpochAtStart"))
    assert EpochAtStart.seen == [1, 0]  # the pretraining went on at its second epoch; then the run began
    (resumed,), unfinished = cached(tmp_path)
    assert unfinished == []
    train_and_test(cfg("straight", cache="straight_cache"))
    (straight,), _ = cached(tmp_path, "straight_cache")
    assert resumed.name == straight.name  # the key holds the settings, not the folders or callbacks
    assert same(InferenceSpec.load(resumed).weights, InferenceSpec.load(straight).weights)


def test_a_pretraining_killed_while_writing_its_checkpoint_starts_again(shared_dir, tmp_path):
    cfg = pretrain_cfg(shared_dir, tmp_path, "run")
    key = pretrain.cache_key(pretrain.pretraining_config(cfg))
    torn = tmp_path / "cache" / "pretrain" / f"{key}.partial" / "checkpoints" / "last.ckpt"
    torn.parent.mkdir(parents=True)
    torn.write_bytes(b"PK\x03\x04 half a checkpoint")
    EpochAtStart.seen.clear()
    cfg = pretrain_cfg(shared_dir, tmp_path, "run", "+callbacks.epoch._target_=test_pretrain.EpochAtStart")
    train_and_test(cfg)
    assert EpochAtStart.seen == [0, 0]  # pretrained from the start, not from the torn file
    assert [p.name for p in cached(tmp_path)[0]] == [f"{key}.ckpt"] and cached(tmp_path)[1] == []


def test_pretrain_with_init_from_is_one_line_and_fast_dev_run_skips_it(shared_dir, tmp_path):
    cfg = pretrain_cfg(shared_dir, tmp_path, "both", f"init_from={tmp_path / 'some.ckpt'}")
    with pytest.raises(MgcError, match=re.escape("pass pretrain=none to start from init_from")) as err:
        train_and_test(cfg)
    assert "\n" not in str(err.value)
    train_and_test(pretrain_cfg(shared_dir, tmp_path, "smoke", "+trainer.fast_dev_run=true"))
    assert cached(tmp_path) == ([], [])  # fast_dev_run writes no checkpoint to start from
