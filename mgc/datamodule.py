"""One LightningDataModule for every source, feature and split.

Features are extracted into the feature store once, split, and normalised with per-(channel, bin) mean
and standard deviation of the *training* part only. A data set that fits ``datamodule.memory_gb`` is
held in memory, normalised once, and batches are sliced from it with one index operation per batch (no
per-item Python work, no collate step). A larger one stays on disk (``datamodule.store``: ``auto``
decides by its size; ``memory`` and ``disk`` force either): the statistics come from one streaming pass
over the training rows, and each batch reads its own rows from the store (:mod:`mgc.batches`), so a
process holds a batch, not the data set. Training batches may be augmented (:mod:`mgc.augment`); the other
parts never are.
"""

from __future__ import annotations

import logging

import lightning.pytorch as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from mgc.augment import Augment, ClipCrops
from mgc.batches import AugmentedBatches, EpochBatches, PartBatches, SeededBatches, StoreBatches, TensorBatches
from mgc.data.base import Source
from mgc.errors import MgcError
from mgc.features.base import Extractor, FeatureSet
from mgc.features.store import SegmentStore
from mgc.metrics import unique_first
from mgc.split import Split, deal

STORES = ("auto", "memory", "disk")
#: Rows per read of the streaming statistics pass.
STATISTICS_CHUNK = 4096

log = logging.getLogger(__name__)


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
    store : str
        ``auto``: segments in memory when they fit ``memory_gb``, else read from the store on disk;
        ``memory`` or ``disk`` forces either.
    memory_gb : float
        The size (GiB of segments) up to which ``store=auto`` holds a data set in memory.
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
        store: str = "auto",
        memory_gb: float = 4.0,
    ):
        super().__init__()
        if store not in STORES:
            raise MgcError(f"datamodule.store={store}: one of {', '.join(STORES)}")
        self.store, self.memory_gb = store, float(memory_gb)
        self.source, self.features, self.split = source, features, split
        self.batch_size, self.num_workers, self.normalize = int(batch_size), int(num_workers), normalize
        self.seed = int(seed)
        self.augment = augment if augment is not None and augment.active else None
        self.data: FeatureSet | None = None
        self.parts: dict[str, PartBatches | AugmentedBatches] = {}
        self.mean: torch.Tensor | None = None
        self.std: torch.Tensor | None = None

    def prepare_data(self) -> None:
        """Fill the store once, on one process, without loading it (setup, on every rank, reads it)."""
        if self.features.reads_audio:
            self.features.prepare(self.source)

    def setup(self, stage: str | None = None) -> None:
        if self.data is not None:
            return
        if self.features.reads_audio:  # the clip list can rule the split out before extraction
            self.source.prepare()
            self.split.check(self.source.clips(), self.source.name)
        data = self._features()
        indices = self.split.assign(data)
        labels, tracks = torch.from_numpy(data.labels), torch.from_numpy(data.tracks)
        rows = {p: torch.as_tensor(idx) for p, idx in indices.items()}
        if isinstance(data.x, SegmentStore):
            self.parts = self._store_parts(data.x, labels, tracks, rows)
        else:
            self.parts = self._memory_parts(torch.from_numpy(data.x), labels, tracks, rows)
        if self.augment is not None:
            self.parts["train"] = self._augmented(self.parts["train"], len(data.class_names))
        self.data = data
        sizes = ", ".join(f"{p} {len(d)}" for p, d in self.parts.items())
        log.info("split %s: %s segments (%s)", self.split.name, sizes, data.source)
        if not self.held_out:
            log.info("split %s holds nothing out: training only (`make cv` measures a configuration)", self.split.name)
        elif "test" not in self.parts:
            log.info("split %s has no test part: testing runs on the validation part", self.split.name)

    def _features(self) -> FeatureSet:
        """The feature set, its segments in memory or left in the store (``datamodule.store``)."""
        if self.store == "memory" or not (self.features.reads_audio and self.features.streamable):
            if self.store == "disk":
                raise MgcError(f"datamodule.store=disk: features={self.features.name} cannot stay on disk; use auto")
            return self.features.extract(self.source)
        data = self.features.extract(self.source, in_memory=False)
        size_gb = data.x.nbytes / 2**30
        if self.store == "auto" and size_gb <= self.memory_gb:
            data.x = np.asarray(data.x)  # the same bytes, read once
        else:
            log.info("segments stay on disk: %.2f GiB (datamodule.memory_gb=%g)", size_gb, self.memory_gb)
        return data

    def _standardised(self) -> bool:
        return self.normalize and self.features.standardize

    def _memory_parts(
        self, x: torch.Tensor, labels: torch.Tensor, tracks: torch.Tensor, rows: dict[str, torch.Tensor]
    ) -> dict[str, PartBatches]:
        if self._standardised():
            if self.mean is None:  # restored from a checkpoint otherwise
                train = rows["train"]
                self.mean = x[train].mean(dim=(0, 3), keepdim=True)[0]
                self.std = x[train].std(dim=(0, 3), keepdim=True)[0].clamp_min(1e-6)
            x = (x - self.mean) / self.std
        return {p: TensorBatches(x[i], labels[i], tracks[i], i) for p, i in rows.items()}

    def _store_parts(
        self, store: SegmentStore, labels: torch.Tensor, tracks: torch.Tensor, rows: dict[str, torch.Tensor]
    ) -> dict[str, PartBatches]:
        if self._standardised() and self.mean is None:
            self.mean, self.std = streamed_statistics(store, rows["train"].numpy())
        mean, std = (self.mean, self.std) if self._standardised() else (None, None)
        return {p: StoreBatches(store, labels[i], tracks[i], i, mean, std) for p, i in rows.items()}

    def _augmented(self, part: PartBatches, classes: int) -> AugmentedBatches:
        """The training part through ``self.augment``: crops, gain, masks, mixup."""
        augment, gain = self.augment, self.features.gain_response()
        augment.check(self.features.name, tuple(part.shape[1:]), gain)
        if gain is not None:
            gain = torch.as_tensor(gain, dtype=torch.float32)
            if self.std is not None:
                gain = gain / self.std[..., 0]
        crops = ClipCrops(part.rows, part.shape[-1], part.track, part.index) if augment.random_crop else None
        log.info("training batches augmented: %s", augment)
        return AugmentedBatches(part, augment, crops, gain, classes)

    def bags(self, members: int) -> torch.Tensor:
        """For each track id, the ensemble member (0 .. members-1) that leaves it out of its training; -1 for
        tracks outside the training part.

        Each genre's training tracks are dealt to the members as k-fold
        cross-validation deals tracks to folds (:func:`mgc.split.deal`), with
        a generator of its own seeded by the run's seed: member ``m`` trains
        on the tracks of the other members' shares, like the fold models of
        a cross-validation, trained side by side.
        """
        labels, tracks = self.parts["train"].y, self.parts["train"].track
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


def streamed_statistics(store: SegmentStore, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-(channel, bin) mean and sample standard deviation (over segments and frames) of ``rows`` of the
    store, in one pass of ``STATISTICS_CHUNK`` rows at a time: shaped ``(channels, bins, 1)`` as the in-memory
    path's, summed in float64 so that the order of the chunks does not matter to float32 precision."""
    rows = np.sort(rows)
    total = np.zeros(store.shape[1:3])
    squares = np.zeros(store.shape[1:3])
    for start in range(0, len(rows), STATISTICS_CHUNK):
        x = store[rows[start : start + STATISTICS_CHUNK]].astype(np.float64)
        total += x.sum(axis=(0, 3))
        squares += np.square(x).sum(axis=(0, 3))
    count = len(rows) * store.shape[3]
    mean = total / count
    var = np.maximum(squares - count * np.square(mean), 0.0) / max(count - 1, 1)
    mean, std = (torch.from_numpy(a[..., None].astype(np.float32)) for a in (mean, np.sqrt(var)))
    return mean, std.clamp_min(1e-6)
