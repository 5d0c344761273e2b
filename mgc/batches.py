"""What the data module's DataLoaders serve: a part's segments, batched by whole index lists, and their order.

A part is served from memory (:class:`TensorBatches`: one index operation per batch) or from the feature
store on disk (:class:`StoreBatches`: the batch's rows read, then normalised), behind one interface:
``rows(r)`` gives the normalised features of part rows ``r``. :class:`AugmentedBatches` wraps either.
The samplers decide the order: one permutation per ``(seed, epoch)``, so a resumed run sees the batches
an uninterrupted one would, and under DDP Lightning deals the batches to the ranks, each reading only its own.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from mgc.augment import Augment, ClipCrops
from mgc.features.store import SegmentStore


class Batch(NamedTuple):
    """What every training, validation and test step receives (Lightning moves a named tuple to the device)."""

    x: torch.Tensor  # normalised features (batch, channels, bins, frames)
    y: torch.Tensor  # class indices, or mixed one-hot rows (batch, classes) under mixup
    track: torch.Tensor  # each segment's track, an index into the feature set's track ids
    index: torch.Tensor  # each segment's row in the feature set (random crops read its neighbours)


class PartBatches(Dataset):
    """One part of the split, indexed by a whole batch of part rows at once."""

    def __init__(self, y: torch.Tensor, track: torch.Tensor, index: torch.Tensor, shape: tuple[int, ...]):
        self.y, self.track, self.index = y, track, index
        self.shape = (len(y), *shape)  # (segments, channels, bins, frames)

    def __len__(self) -> int:
        return len(self.y)

    def rows(self, rows: torch.Tensor) -> torch.Tensor:
        """The normalised features of part rows ``rows``."""
        raise NotImplementedError

    def __getitem__(self, indices: list[int]) -> Batch:
        rows = torch.as_tensor(indices)
        return Batch(self.rows(rows), self.y[rows], self.track[rows], self.index[rows])


class TensorBatches(PartBatches):
    """A part held in memory, normalised once."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, track: torch.Tensor, index: torch.Tensor):
        super().__init__(y, track, index, tuple(x.shape[1:]))
        self.x = x

    def rows(self, rows: torch.Tensor) -> torch.Tensor:
        return self.x[rows]


class StoreBatches(PartBatches):
    """A part left in the feature store on disk: each batch reads its rows, then normalises them."""

    def __init__(
        self,
        store: SegmentStore,
        y: torch.Tensor,
        track: torch.Tensor,
        index: torch.Tensor,
        mean: torch.Tensor | None,
        std: torch.Tensor | None,
    ):
        super().__init__(y, track, index, tuple(store.shape[1:]))
        self.store, self.mean, self.std = store, mean, std

    def rows(self, rows: torch.Tensor) -> torch.Tensor:
        x = torch.from_numpy(self.store[self.index[rows].numpy()])
        return x if self.mean is None else (x - self.mean) / self.std


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


class AugmentedBatches(Dataset):
    """Training batches of a part through :class:`~mgc.augment.Augment` (and :class:`~mgc.augment.ClipCrops`)."""

    def __init__(
        self, part: PartBatches, augment: Augment, crops: ClipCrops | None, gain: torch.Tensor | None, num_classes: int
    ):
        self.part, self.augment, self.crops, self.gain, self.num_classes = part, augment, crops, gain, num_classes
        self.y, self.track, self.index, self.shape = part.y, part.track, part.index, part.shape

    def __len__(self) -> int:
        return len(self.part)

    def __getitem__(self, key: tuple[list[int], tuple[int, int, int]]) -> Batch:
        indices, seed = key
        rng = np.random.default_rng(seed)
        batch = self.part[indices]
        x = self.crops(batch.index, rng) if self.crops is not None else batch.x
        x, y = self.augment(x, batch.y, self.num_classes, rng, self.gain)
        return batch._replace(x=x, y=y)
