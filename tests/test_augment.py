"""The augment group: crops, gain, masks and mixup change training batches only, reproducibly under the seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import compose_cfg

from mgc.augment import Augment, ClipCrops
from mgc.errors import MgcError
from mgc.features import MFCC, Chroma, KaggleTable, LogMel, MFCCImage
from mgc.train import build_datamodule, train_and_test

pytestmark = pytest.mark.slow  # end-to-end runs: make test runs them, make test-fast leaves them out


def numbered_frames(tracks: list[int], frames: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """Segments whose every value is ``1000 * segment + frame``: a crop shows where each of its frames came from."""
    n = len(tracks)
    x = (1000 * torch.arange(n)[:, None] + torch.arange(frames)).float()[:, None, None, :].repeat(1, 1, 2, 1)
    return x, torch.as_tensor(tracks)


def test_crops_are_contiguous_runs_of_a_clip_starting_off_the_grid():
    x, tracks = numbered_frames([0, 0, 0, 1, 1, 1])
    crops = ClipCrops(x.__getitem__, x.shape[-1], tracks, index=torch.arange(6))
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(200):
        out = crops(torch.tensor([1, 4]), rng)
        assert out.shape == (2, 1, 2, 5)
        for crop, track in zip(out[:, 0, 0], (0, 1)):
            segment, frame = crop // 1000, crop % 1000
            # each frame is the next one of the clip laid end to end (segments 3*track .. 3*track+2)
            position = (segment - 3 * track) * 5 + frame
            assert torch.equal(position, position[0] + torch.arange(5))
            assert segment.min() >= 3 * track and segment.max() <= 3 * track + 2
            starts.add(int(position[0]))
    assert starts == set(range(11))  # every frame of a 15-frame clip where 5 frames fit, not only 0, 5, 10


def test_crops_never_reach_into_segments_of_other_parts():
    """Under a segment split a crop stays inside its run of consecutive training segments."""
    x, tracks = numbered_frames([0, 0, 0, 0, 1, 1])
    train = torch.tensor([4, 0, 3, 1, 5])  # segment 2 (of track 0) is held out; rows in any order
    crops = ClipCrops(x[train].__getitem__, x.shape[-1], tracks[train], train)
    rng = np.random.default_rng(1)
    seen = set()
    for _ in range(300):
        out = crops(torch.tensor([0, 1, 3, 4]), rng)[:, 0, 0] // 1000
        for segs, allowed in zip(out, ({0, 1}, {0, 1}, {3}, {4, 5})):
            assert set(segs.tolist()) <= allowed
            seen |= set(segs.tolist())
    assert 2 not in seen and seen == {0, 1, 3, 4, 5}
    for outside in (2, 6):
        with pytest.raises(ValueError, match="outside the training part"):
            crops(torch.tensor([outside]), rng)


def test_masks_zero_bands_no_wider_than_asked():
    aug = Augment(time_masks=2, time_mask_frames=7, freq_masks=1, freq_mask_bins=3)
    x = torch.ones(64, 1, 20, 50)
    out, y = aug(x, torch.zeros(64, dtype=torch.long), 10, np.random.default_rng(0), None)
    assert torch.equal(y, torch.zeros(64, dtype=torch.long)) and torch.equal(x, torch.ones(64, 1, 20, 50))
    time_zeroed = (out == 0).all(dim=2)[:, 0]  # (batch, frames): whole frames masked
    freq_zeroed = (out == 0).all(dim=3)[:, 0]
    assert 0 < time_zeroed.sum(1).max() <= 14 and 0 < freq_zeroed.sum(1).max() <= 3
    assert (time_zeroed.sum(1) > 0).float().mean() > 0.5  # most segments lose some frames
    kept = out[~time_zeroed[:, None, None, :].expand_as(out) & ~freq_zeroed[:, None, :, None].expand_as(out)]
    assert torch.all(kept == 1)  # outside the bands nothing changes


def test_mixup_mixes_inputs_and_labels_with_the_same_weight_and_partner():
    x = torch.randn(8, 1, 2, 3)
    y = torch.arange(8) % 4
    out, soft = Augment(mixup_alpha=0.4)(x, y, 4, np.random.default_rng(3), None)
    replay = np.random.default_rng(3)  # mixup draws the weights, then the partners
    lam = torch.from_numpy(replay.beta(0.4, 0.4, 8).astype(np.float32))
    partner = torch.from_numpy(replay.permutation(8))
    assert torch.allclose(out, lam[:, None, None, None] * x + (1 - lam[:, None, None, None]) * x[partner])
    onehot = torch.nn.functional.one_hot(y, 4).float()
    assert torch.allclose(soft, lam[:, None] * onehot + (1 - lam[:, None]) * onehot[partner])
    assert torch.allclose(soft.sum(1), torch.ones(8)) and not torch.equal(partner, torch.arange(8))
    assert ((lam > 0.05) & (lam < 0.95)).any()  # some segments really are mixes


@pytest.mark.parametrize(
    ("feature", "louder"),
    [
        (LogMel(n_mels=32), lambda a, b: np.testing.assert_allclose(b - a, 20 * np.log10(2), atol=1e-3)),
        (MFCC(), None),
    ],
)
def test_gain_response_is_what_a_louder_clip_gives(feature, louder):
    """Twice the amplitude (+6.02 dB) moves each (channel, bin) by gain_response * 6.02."""
    t = np.arange(66150) / 22050
    y = (0.1 * np.sin(2 * np.pi * 220 * t) + 0.05 * np.sin(2 * np.pi * 1375 * t)).astype(np.float32)
    quiet, loud = feature.compute(y[None]), feature.compute(2 * y[None])
    shift = (loud - quiet)[0].mean(axis=-1)  # per (channel, bin)
    np.testing.assert_allclose(shift, feature.gain_response() * 20 * np.log10(2), atol=2e-3)
    if louder:
        louder(quiet, loud)


def test_features_without_a_known_level_response_refuse_gain_and_tables_refuse_time_steps():
    assert Chroma().gain_response() is None and MFCCImage().gain_response() is None
    assert KaggleTable.gain_response(KaggleTable.__new__(KaggleTable)) is None
    with pytest.raises(MgcError, match=r"augment.gain_db=3.0: features=chroma") as err:
        Augment(gain_db=3).check("chroma", (1, 12, 431), None)
    assert "\n" not in str(err.value)
    with pytest.raises(MgcError, match=r"augment.random_crop: features=kaggle-csv have one frame"):
        Augment(random_crop=True).check("kaggle-csv", (1, 57, 1), None)
    with pytest.raises(MgcError, match=r"augment.time_masks"):
        Augment(time_masks=1, time_mask_frames=3).check("kaggle-csv", (1, 57, 1), None)
    Augment(mixup_alpha=0.2, freq_masks=1, freq_mask_bins=4).check("kaggle-csv", (1, 57, 1), None)  # documented
    with pytest.raises(MgcError, match=r"augment.mixup_alpha=-0.1: must be >= 0"):
        Augment(mixup_alpha=-0.1)


def batches(dm, epoch: int) -> list[tuple[torch.Tensor, ...]]:
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(epoch)
    return list(loader)


def test_augmented_training_batches_are_seeded_and_evaluation_is_untouched(make_cfg):
    """Same seed: same batches; another epoch or seed: others; val and test equal augment=none's."""

    def datamodule(*overrides):
        dm = build_datamodule(make_cfg("features=logmel", *overrides))
        dm.setup()
        return dm

    plain, aug, again, other_seed = (
        datamodule(),
        datamodule("augment=specaug"),
        datamodule("augment=specaug"),
        datamodule("augment=specaug", "seed=7"),
    )
    first = batches(aug, 0)
    assert all(torch.equal(a, b) for x, y in zip(first, batches(again, 0)) for a, b in zip(x, y))
    assert not torch.equal(first[0][0], batches(aug, 1)[0][0])
    assert not torch.equal(first[0][0], batches(other_seed, 0)[0][0])
    plain_first = batches(plain, 0)
    assert torch.equal(first[0][3], plain_first[0][3])  # the same segments in the same order ...
    assert not torch.allclose(first[0][0], plain_first[0][0])  # ... augmented
    assert first[0][1].shape == (len(first[0][3]), 10)  # mixup: soft labels
    for part in ("val_dataloader", "test_dataloader"):
        for a, b in zip(getattr(aug, part)(), getattr(plain, part)()):
            assert all(torch.equal(u, v) for u, v in zip(a, b))
    none = datamodule("augment=none")
    assert none.augment is None and all(
        torch.equal(u, v) for a, b in zip(batches(none, 0), plain_first) for u, v in zip(a, b)
    )


def test_a_run_with_every_augmentation_trains_and_is_reproducible(make_cfg):
    overrides = ("features=logmel", "model=short_chunk_cnn", "model.channels=[8,8,16]", "augment=specaug")
    first = train_and_test(make_cfg(*overrides, "trainer.max_epochs=2"))
    second = train_and_test(make_cfg(*overrides, "trainer.max_epochs=2"))
    assert first.test.segment.accuracy == second.test.segment.accuracy
    assert first.val.loss == second.val.loss
    plain = train_and_test(make_cfg(*overrides[:-1], "trainer.max_epochs=2"))
    assert plain.val.loss != first.val.loss


def test_gain_in_the_datamodule_moves_only_c0_of_the_mfcc_by_the_normalised_response(make_cfg):
    cfg = make_cfg("augment=none", "augment.gain_db=6")
    plain_cfg = make_cfg()
    built = []
    for c in (cfg, plain_cfg):
        dm = build_datamodule(c)
        dm.setup()
        built.append(dm)
    (x, *_), (plain, *_) = batches(built[0], 0)[0], batches(built[1], 0)[0]
    diff = x - plain
    assert torch.all(diff[:, :, 1:] == 0)  # c1..c12 do not follow the level
    c0 = diff[:, 0, 0, :]
    assert torch.allclose(c0, c0[:, :1].expand_as(c0), atol=1e-5)  # the same shift in every frame
    db = c0[:, 0] * built[0].std[0, 0, 0] / np.sqrt(128)  # back to dB through the normalisation
    assert db.abs().max() <= 6 + 1e-4 and db.abs().max() > 3 and db.std() > 1


def test_a_resumed_augmented_run_ends_with_the_weights_of_an_uninterrupted_one(shared_dir, tmp_path):
    """The augmentation's draws depend on (seed, epoch, batch) only: resuming at epoch 2 replays epoch 2 exactly."""

    def cfg(name: str, epochs: int, *extra: str):
        return compose_cfg(
            shared_dir, tmp_path / "outputs", tmp_path / name, "augment=specaug", "augment.gain_db=3", "model=mlp",
            f"trainer.max_epochs={epochs}", *extra,
        )  # fmt: skip

    first = train_and_test(cfg("first", 2))
    resumed = train_and_test(cfg("resumed", 3, f"ckpt_path={Path(first.run_dir) / 'checkpoints' / 'last.ckpt'}"))
    straight = train_and_test(cfg("straight", 3))
    a, b = (torch.load(Path(r.run_dir) / "checkpoints" / "last.ckpt", weights_only=True) for r in (resumed, straight))
    assert a["epoch"] == b["epoch"] == 2
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in b["state_dict"])
    two = torch.load(Path(first.run_dir) / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert not all(torch.equal(two[k], b["state_dict"][k]) for k in b["state_dict"])  # epoch 3 did train


def test_under_ddp_each_rank_draws_its_own_batches_and_new_seeds_every_epoch():
    """Lightning shards the training sampler with DistributedSamplerWrapper and must forward set_epoch to it."""
    from lightning.fabric.utilities.distributed import DistributedSamplerWrapper

    from mgc.datamodule import SeededBatches

    def epoch(rank: int, number: int) -> list[tuple[tuple[int, ...], tuple[int, int, int]]]:
        sampler = DistributedSamplerWrapper(SeededBatches(32, 8, shuffle=True, seed=3), num_replicas=2, rank=rank)
        sampler.set_epoch(number)
        return [(tuple(indices), seed) for indices, seed in sampler]

    for number in (0, 1):
        ranks = [epoch(0, number), epoch(1, number)]
        batches = [b for rank in ranks for b in rank]
        assert sorted(i for indices, _ in batches for i in indices) == list(range(32))  # each segment on one rank
        assert {seed[1] for _, seed in batches} == {number}  # the batch seeds know the epoch
    assert set(epoch(0, 0)).isdisjoint(epoch(0, 1))  # new batches and new draws every epoch
