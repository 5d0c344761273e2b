"""One LightningDataModule for every source, feature and split.

Features are extracted (or read from the cache) once, split, normalised with
per-(channel, bin) mean and standard deviation of the *training* part only,
and kept as in-memory tensors. Batches are sliced from those tensors with one
index operation per batch (a ``BatchSampler`` feeding a dataset that takes a
list of indices), so there is no per-item Python work and no collate step.
Training batches may be augmented (:mod:`mgc.augment`); the other parts never are.
"""

from __future__ import annotations

import logging
import math
from typing import NamedTuple

import lightning.pytorch as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from mgc.augment import Augment, ClipCrops
from mgc.data.base import Source
from mgc.features.base import Extractor, FeatureSet
from mgc.metrics import unique_first
from mgc.split import Split, deal

log = logging.getLogger(__name__)


class Batch(NamedTuple):
    """What every training, validation and test step receives (Lightning moves a named tuple to the device)."""

    x: torch.Tensor  # normalised features (batch, channels, bins, frames)
    y: torch.Tensor  # class indices, or mixed one-hot rows (batch, classes) under mixup
    track: torch.Tensor  # each segment's track, an index into the feature set's track ids
    index: torch.Tensor  # each segment's row in the feature set (random crops read its neighbours)


class TensorBatches(Dataset):
    """A part's tensors, indexed by a whole batch of indices at once."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, track: torch.Tensor, index: torch.Tensor):
        self.tensors = Batch(x, y, track, index)

    def __len__(self) -> int:
        return len(self.tensors.x)

    def __getitem__(self, indices: list[int]) -> Batch:
        rows = torch.as_tensor(indices)
        return Batch(*(t[rows] for t in self.tensors))


class EpochBatches(Sampler[list[int]]):
    """Batches of indices, shuffled by ``(seed, epoch)`` alone when ``shuffle``.

    Lightning calls :meth:`set_epoch` before every epoch, so the batch order
    of epoch ``e`` never depends on how much randomness earlier epochs used:
    a run resumed from a checkpoint sees the same batches as one that was
    never interrupted.
    """

    def __init__(self, size: int, batch_size: int, shuffle: bool, seed: int = 0):
        self.size, self.batch_size, self.shuffle, self.seed = size, batch_size, shuffle, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(self.size / self.batch_size)

    def __iter__(self):
        if self.shuffle:
            order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed * 100_003 + self.epoch))
        else:
            order = torch.arange(self.size)
        yield from (order[i : i + self.batch_size].tolist() for i in range(0, self.size, self.batch_size))


class SeededBatches(EpochBatches):
    """:class:`EpochBatches` that hand each batch its own seed, ``(seed, epoch, batch number)``.

    The seed travels with the indices (not in the dataset), so augmentation
    draws the same numbers in a DataLoader worker process, and after a resume.
    """

    def __iter__(self):
        for number, indices in enumerate(super().__iter__()):
            yield indices, (self.seed, self.epoch, number)


class AugmentedBatches(TensorBatches):
    """Training batches through :class:`~mgc.augment.Augment` (and :class:`~mgc.augment.ClipCrops`)."""

    def __init__(
        self,
        tensors: tuple[torch.Tensor, ...],
        augment: Augment,
        crops: ClipCrops | None,
        gain: torch.Tensor | None,
        num_classes: int,
    ):
        super().__init__(*tensors)
        self.augment, self.crops, self.gain, self.num_classes = augment, crops, gain, num_classes

    def __getitem__(self, key: tuple[list[int], tuple[int, int, int]]) -> Batch:
        indices, seed = key
        rng = np.random.default_rng(seed)
        batch = super().__getitem__(indices)
        x = self.crops(batch.index, rng) if self.crops is not None else batch.x
        x, y = self.augment(x, batch.y, self.num_classes, rng, self.gain)
        return batch._replace(x=x, y=y)


class GenreDataModule(L.LightningDataModule):
    """Serve ``(x, label, track, segment index)`` batches of one split of one feature set.

    Parameters
    ----------
    source : Source
        Where the clips come from (``data`` config group).
    features : Extractor
        How clips become segments (``features`` config group).
    split : Split
        Which segment goes where (``split`` config group).
    batch_size : int
        Segments per batch.
    num_workers : int
        DataLoader worker processes; 0 is fastest for in-memory tensors.
    normalize : bool
        Standardise each (channel, bin) with training-part statistics.
    seed : int
        Seeds the batch order of every epoch (see :class:`EpochBatches`) and the augmentation.
    augment : Augment, optional
        Training-batch augmentation (``augment`` config group); None or all
        steps off serves the training part exactly as the other parts.
    """

    def __init__(
        self,
        source: Source,
        features: Extractor,
        split: Split,
        batch_size: int = 64,
        num_workers: int = 0,
        normalize: bool = True,
        seed: int = 0,
        augment: Augment | None = None,
    ):
        super().__init__()
        self.source, self.features, self.split = source, features, split
        self.batch_size, self.num_workers, self.normalize = int(batch_size), int(num_workers), normalize
        self.seed = int(seed)
        self.augment = augment if augment is not None and augment.active else None
        self.data: FeatureSet | None = None
        self.parts: dict[str, TensorBatches] = {}
        self.mean: torch.Tensor | None = None
        self.std: torch.Tensor | None = None

    def prepare_data(self) -> None:
        self.features.extract(self.source)  # fills the cache once, on one process

    def setup(self, stage: str | None = None) -> None:
        if self.data is not None:
            return
        if self.features.reads_audio:  # the clip list can rule the split out before extraction
            self.source.prepare()
            self.split.check(self.source.clips(), self.source.name)
        data = self.features.extract(self.source)
        indices = self.split.assign(data)
        x = torch.from_numpy(data.x)
        train = torch.as_tensor(indices["train"])
        if self.normalize and self.features.standardize:
            if self.mean is None:  # restored from a checkpoint otherwise
                self.mean = x[train].mean(dim=(0, 3), keepdim=True)[0]
                self.std = x[train].std(dim=(0, 3), keepdim=True)[0].clamp_min(1e-6)
            x = (x - self.mean) / self.std
        labels, tracks = torch.from_numpy(data.labels), torch.from_numpy(data.tracks)
        self.parts = {
            p: TensorBatches(x[i], labels[i], tracks[i], i)
            for p, i in ((p, torch.as_tensor(idx)) for p, idx in indices.items())
        }
        if self.augment is not None:
            self.parts["train"] = self._augmented(self.parts["train"].tensors, len(data.class_names))
        self.data = data
        sizes = ", ".join(f"{p} {len(d)}" for p, d in self.parts.items())
        log.info("split %s: %s segments (%s)", self.split.name, sizes, data.source)
        if not self.held_out:
            log.info("split %s holds nothing out: training only (`make cv` measures a configuration)", self.split.name)
        elif "test" not in self.parts:
            log.info("split %s has no test part: testing runs on the validation part", self.split.name)

    def _augmented(self, tensors: tuple[torch.Tensor, ...], classes: int) -> AugmentedBatches:
        """The training part ``(x, labels, tracks, index)`` through ``self.augment``: crops, gain, masks, mixup."""
        augment, gain = self.augment, self.features.gain_response()
        x, _, tracks, index = tensors
        augment.check(self.features.name, tuple(x.shape[1:]), gain)
        if gain is not None:
            gain = torch.as_tensor(gain, dtype=torch.float32)
            if self.std is not None:
                gain = gain / self.std[..., 0]
        crops = ClipCrops(x, tracks, index) if augment.random_crop else None
        log.info("training batches augmented: %s", augment)
        return AugmentedBatches(tensors, augment, crops, gain, classes)

    def bags(self, members: int) -> torch.Tensor:
        """For each track id, the ensemble member (0 .. members-1) that leaves it out of its training; -1 for
        tracks outside the training part.

        Each genre's training tracks are dealt to the members as k-fold
        cross-validation deals tracks to folds (:func:`mgc.split.deal`), with
        a generator of its own seeded by the run's seed: member ``m`` trains
        on the tracks of the other members' shares, like the fold models of
        a cross-validation, trained side by side.
        """
        _, labels, tracks, _ = self.parts["train"].tensors
        ids, first = unique_first(tracks)
        track_labels = labels[first]
        left_out_by = torch.full((int(tracks.max()) + 1,), -1, dtype=torch.long)
        rng, dealt = np.random.default_rng([self.seed, members]), 0
        for label in torch.unique(track_labels).tolist():
            genre = ids[track_labels == label]
            left_out_by[genre] = torch.from_numpy(deal(len(genre), members, dealt, rng))
            dealt += len(genre)
        return left_out_by

    # -- what the model needs to know ---------------------------------------
    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self._data().x.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self._data().class_names)

    @property
    def class_names(self) -> list[str]:
        return list(self._data().class_names)

    @property
    def track_ids(self) -> list[str] | None:
        """The name of each track id the batches carry; None for bare segments (a plain data_10.json)."""
        data = self._data()
        return data.track_ids if data.has_tracks else None

    @property
    def held_out(self) -> list[str]:
        """The evaluated parts of the split (``val``, ``test``); empty when every track trains."""
        return [p for p in ("val", "test") if p in self.parts]

    @property
    def test_part(self) -> str | None:
        """``test``, or ``val`` for splits without a test part; None when nothing is held out."""
        return "test" if "test" in self.parts else "val" if "val" in self.parts else None

    def _data(self) -> FeatureSet:
        if self.data is None:
            self.setup()
        return self.data

    # -- loaders -------------------------------------------------------------
    def _loader(self, part: str, shuffle: bool) -> DataLoader:
        dataset = self.parts[part]
        batches = (SeededBatches if isinstance(dataset, AugmentedBatches) else EpochBatches)(
            len(dataset), self.batch_size, shuffle, self.seed
        )
        return DataLoader(
            dataset,
            sampler=batches,
            batch_size=None,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        return self._loader("val", shuffle=False) if "val" in self.parts else []

    def test_dataloader(self) -> DataLoader | list:
        return self._loader(self.test_part, shuffle=False) if self.test_part else []

    # -- the normalisation travels with the checkpoint ------------------------
    def state_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std}

    def load_state_dict(self, state: dict) -> None:
        self.mean, self.std = state["mean"], state["std"]
