"""Training-batch augmentation (the ``augment`` config group): random crops, gain, SpecAugment masks, mixup.

Augmentation touches training batches only: validation, test and predict read
the fixed 3-s grid of the feature cache, unchanged. Every random draw of a
batch comes from a generator seeded by ``(run seed, epoch, batch number)``,
so the same config gives the same augmented batches, and a run resumed from
a checkpoint sees the batches an uninterrupted one would have seen.

The steps, in order, on normalised features ``(batch, channels, bins, frames)``:

1. **Random crop** (:class:`ClipCrops`): a training segment may start at any
   frame of its clip, not only on the 3-s grid. The cache holds each clip as
   its consecutive grid segments; laid end to end along the frame axis they
   are the clip's whole feature matrix (each segment's STFT pads its own two
   edges, so the frame at a segment boundary is the one thing a whole-clip
   STFT would compute differently). A crop never crosses into a segment of
   another part, so segment splits do not leak held-out audio into training.
2. **Random gain**: the clip played up to ``gain_db`` louder or softer. Where
   a feature knows its level response (:meth:`mgc.features.Extractor.gain_response`:
   every log-mel bin moves by the dB, only the MFCC's c0 moves), that shift,
   divided by the normalisation's std, is added.
3. **SpecAugment masks** (Park et al. 2019): ``time_masks`` bands of up to
   ``time_mask_frames`` frames and ``freq_masks`` bands of up to
   ``freq_mask_bins`` bins set to 0, the training mean after normalisation.
4. **Mixup** (Zhang et al. 2018): each segment mixed with another of the batch,
   ``lam ~ Beta(alpha, alpha)``; its label becomes the same mix of the two
   one-hot labels (the loss reads soft targets).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from mgc.errors import MgcError


class Augment:
    """What the ``augment`` group configures; every step is off at its zero value (``augment=none``).

    A plain class, not a dataclass: Hydra would turn a dataclass passed to
    ``instantiate`` into a config node.

    Parameters
    ----------
    random_crop : bool
        Cut training segments at any frame of their clip (:class:`ClipCrops`).
    gain_db : float
        Random level change, uniform in ``[-gain_db, gain_db]`` dB per segment.
    time_masks, time_mask_frames : int
        How many time bands to mask per segment, and the widest band in frames.
    freq_masks, freq_mask_bins : int
        The same for frequency (bin) bands.
    mixup_alpha : float
        Beta parameter of mixup (0: no mixup; 0.2-0.4 is usual).
    """

    def __init__(
        self,
        random_crop: bool = False,
        gain_db: float = 0.0,
        time_masks: int = 0,
        time_mask_frames: int = 0,
        freq_masks: int = 0,
        freq_mask_bins: int = 0,
        mixup_alpha: float = 0.0,
    ):
        self.random_crop, self.gain_db, self.mixup_alpha = bool(random_crop), float(gain_db), float(mixup_alpha)
        self.time_masks, self.time_mask_frames = int(time_masks), int(time_mask_frames)
        self.freq_masks, self.freq_mask_bins = int(freq_masks), int(freq_mask_bins)
        for key, value in vars(self).items():
            if value < 0:
                raise MgcError(f"augment.{key}={value}: must be >= 0 (0 turns the step off)")

    def __repr__(self) -> str:
        return "Augment(" + ", ".join(f"{k}={v}" for k, v in vars(self).items()) + ")"

    @property
    def active(self) -> bool:
        """Whether any step changes a batch."""
        return bool(self.random_crop or self.gain_db or self._masks("time") or self._masks("freq") or self.mixup_alpha)

    def _masks(self, axis: str) -> bool:
        widest = self.time_mask_frames if axis == "time" else self.freq_mask_bins
        return bool(getattr(self, f"{axis}_masks") and widest)

    def check(self, feature: str, input_shape: tuple[int, ...], gain_response: np.ndarray | None) -> None:
        """One line for a step that has no meaning on this feature (e.g. time steps on a table row)."""
        if input_shape[-1] == 1:
            for key, on in (("random_crop", self.random_crop), ("time_masks", self._masks("time"))):
                if on:
                    raise MgcError(
                        f"augment.{key}: features={feature} have one frame per segment (no time axis to crop or "
                        f"mask); use augment=none, or augment.random_crop=false augment.time_masks=0"
                    )
        if self.gain_db and gain_response is None:
            raise MgcError(
                f"augment.gain_db={self.gain_db}: features={feature} do not follow the audio's level in a known "
                f"way (normalised or colour-mapped); set augment.gain_db=0 or use features=logmel / mfcc-json"
            )

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, num_classes: int, rng: np.random.Generator, gain: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Gain, masks and mixup of one batch; ``gain`` is the per-(channel, bin) shift of 1 dB, normalised.

        Returns the augmented ``x`` and the labels: class indices, or mixed
        one-hot rows ``(batch, num_classes)`` when mixup is on.
        """
        x = x.clone()
        n, _, bins, frames = x.shape
        if self.gain_db and gain is not None:
            db = torch.from_numpy(rng.uniform(-self.gain_db, self.gain_db, n).astype(np.float32))
            x += db[:, None, None, None] * gain[None, :, :, None]
        if self._masks("time"):
            x *= _band_mask(n, frames, self.time_masks, self.time_mask_frames, rng)[:, None, None, :]
        if self._masks("freq"):
            x *= _band_mask(n, bins, self.freq_masks, self.freq_mask_bins, rng)[:, None, :, None]
        if self.mixup_alpha:
            lam = torch.from_numpy(rng.beta(self.mixup_alpha, self.mixup_alpha, n).astype(np.float32))
            partner = torch.from_numpy(rng.permutation(n))
            x = lam[:, None, None, None] * x + (1 - lam[:, None, None, None]) * x[partner]
            onehot = torch.nn.functional.one_hot(y, num_classes).float()
            y = lam[:, None] * onehot + (1 - lam[:, None]) * onehot[partner]
        return x, y


def _band_mask(n: int, size: int, count: int, widest: int, rng: np.random.Generator) -> torch.Tensor:
    """``(n, size)`` of ones with ``count`` bands of 0 per row, each 0..``widest`` long at a random place."""
    widths = rng.integers(0, min(widest, size) + 1, (n, count))
    starts = (rng.random((n, count)) * (size - widths + 1)).astype(np.int64)
    pos = np.arange(size)
    masked = ((pos >= starts[..., None]) & (pos < (starts + widths)[..., None])).any(axis=1)
    return torch.from_numpy(~masked).float()


class ClipCrops:
    """Cut training segments at any frame of their clip, from the grid segments laid end to end.

    Parameters
    ----------
    rows : callable
        The training part's normalised segments by part row: ``rows(r) -> (len(r), channels, bins, frames)``
        (from memory, or read from the feature store).
    frames : int
        Frames per segment.
    tracks, index : Tensor
        The track of each part row and its index in the data set (store order: a clip's segments have
        consecutive indices).

    A crop for training segment ``i`` starts at a uniformly drawn frame of the
    run of consecutive training segments of its clip that holds ``i`` (the
    whole clip under a track split) and is ``frames`` long. It is gathered
    from the (at most two) part rows it spans: no second copy of the features.
    """

    def __init__(
        self, rows: Callable[[torch.Tensor], torch.Tensor], frames: int, tracks: torch.Tensor, index: torch.Tensor
    ):
        self.rows, self.frames = rows, int(frames)
        self.order = torch.argsort(index)  # part row at each place of the clips laid end to end
        index, tracks = index[self.order], tracks[self.order]
        same_run = (tracks[1:] == tracks[:-1]) & (index[1:] == index[:-1] + 1)
        run = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(~same_run, 0)])
        first = torch.zeros(int(run[-1]) + 1, dtype=torch.long).scatter_reduce(
            0, run, torch.arange(len(run)), "amin", include_self=False
        )
        self.run_start = first[run] * self.frames  # per place: the first frame of its run
        self.run_span = (torch.bincount(run)[run] - 1) * self.frames  # per place: the latest start in its run
        self.place = torch.full((int(index[-1]) + 1,), -1, dtype=torch.long)
        self.place[index] = torch.arange(len(index))  # data set index -> place

    def __call__(self, index: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """Crops for the training segments ``index``: ``(len(index), channels, bins, frames)``."""
        place = self.place[index.clamp_max(len(self.place) - 1)]
        if (place < 0).any() or (index >= len(self.place)).any():
            raise ValueError("ClipCrops: asked for a segment outside the training part")
        offset = torch.from_numpy((rng.random(len(index)) * (self.run_span[place] + 1).numpy()).astype(np.int64))
        frame = (self.run_start[place] + offset)[:, None] + torch.arange(self.frames)  # (batch, frames), end to end
        rows, columns = self.order[frame // self.frames], frame % self.frames
        needed, local = torch.unique(rows, return_inverse=True)
        block = self.rows(needed)  # the part rows the crops span, each read once
        return block[local, :, :, columns].permute(0, 2, 3, 1)  # (batch, frames, ch, bins) -> (batch, ch, bins, frames)
