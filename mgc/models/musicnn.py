"""musicnn (Pons & Serra 2019) in PyTorch: the encoders, their pretrained weights and a fine-tunable classifier.

Both architectures of the ``musicnn`` package read a patch of the musicnn
spectrogram, ``(batch, 1, 96 mel bands, frames)`` (187 frames = 3 s at 16 kHz,
:mod:`mgc.features.musicnn` computes it), and are ported layer by layer from
the package's TensorFlow graph, so the package's trained weights give the
package's outputs (``tests/test_musicnn.py`` checks them against reference
arrays made by ``scripts/musicnn_reference.py``). What a port must get right:

- TensorFlow lays the patch out as (time, frequency); here it is (frequency,
  time), so every kernel ``(time, freq, in, out)`` becomes ``(out, in, freq, time)``;
- ``padding="same"`` with an even kernel (the 128, 64 and 32-frame temporal
  filters) pads one frame more at the end than at the start: explicit here;
- its batch normalisation has epsilon 1e-3 and momentum 0.99 (PyTorch: 1e-5, 0.1);
- each convolution is followed by ReLU and *then* batch normalisation;
- the back-end flattens ``[max, mean]`` pairs, so the dense layer reads them interleaved.

:meth:`Musicnn.activations` returns every layer a probe may read: ``front_end``
and ``mid_end`` (per frame), ``max_pool`` and ``mean_pool`` (over time),
``penultimate`` (the 200-unit dense layer) and ``taggram`` (the 50 tag
probabilities).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

TF_BN = {"eps": 1e-3, "momentum": 0.01}  # tf.compat.v1.layers.batch_normalization's defaults, in PyTorch's terms


def _pad_same(kernel: int) -> tuple[int, int]:
    """TensorFlow's ``padding="same"`` for stride 1: ``(before, after)``, the odd frame after."""
    return (kernel - 1) // 2, kernel // 2


class FrontEnd(nn.Module):
    """Musically motivated filters: timbral (7 frames by 40% and 70% of the bands) and temporal (128/64/32 by 1).

    Each filter bank is max-pooled over frequency, so the output is
    ``(batch, 2 * timbral + 3 * temporal, frames)``.
    """

    def __init__(self, bins: int = 96, timbral: int = 204, temporal: int = 51):
        super().__init__()
        self.input_bn = nn.BatchNorm2d(1, **TF_BN)
        self.timbral = nn.ModuleList(nn.Conv2d(1, timbral, (int(share * bins), 7)) for share in (0.4, 0.7))
        self.timbral_bn = nn.ModuleList(nn.BatchNorm2d(timbral, **TF_BN) for _ in range(2))
        self.temporal = nn.ModuleList(nn.Conv2d(1, temporal, (1, k)) for k in (128, 64, 32))
        self.temporal_bn = nn.ModuleList(nn.BatchNorm2d(temporal, **TF_BN) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_bn(x)
        timbral_input = F.pad(x, (3, 3))  # 7-frame "same" in time; valid in frequency
        maps = [bn(F.relu(conv(timbral_input))) for conv, bn in zip(self.timbral, self.timbral_bn)]
        for conv, bn in zip(self.temporal, self.temporal_bn):
            maps.append(bn(F.relu(conv(F.pad(x, _pad_same(conv.kernel_size[1]))))))
        return torch.cat([m.amax(dim=2) for m in maps], dim=1)


class MidEnd(nn.Module):
    """Three 7-frame convolutions, the last two residual; the front-end and all three, densely concatenated."""

    def __init__(self, in_channels: int = 561, filters: int = 64):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv1d(c, filters, 7, padding=3) for c in (in_channels, filters, filters))
        self.bns = nn.ModuleList(nn.BatchNorm1d(filters, **TF_BN) for _ in range(3))

    def forward(self, front: torch.Tensor) -> torch.Tensor:
        outputs, h = [front], None
        for conv, bn in zip(self.convs, self.bns):
            y = bn(F.relu(conv(outputs[-1])))
            h = y if h is None else y + h
            outputs.append(h)
        return torch.cat(outputs, dim=1)


class Musicnn(nn.Module):
    """The musicnn encoder and its tag layer: ``(batch, 1, bins, frames)`` to tag logits.

    Parameters
    ----------
    num_tags : int
        Outputs of the tag layer (50 for the shipped weights).
    bins : int
        Mel bands of the input (96 for the shipped weights).
    midend_filters, backend_units : int
        Mid-end width (64) and penultimate units (200).
    """

    #: Activations that :meth:`activations` returns, and the vector ones a probe can read per patch.
    layers = ("front_end", "mid_end", "max_pool", "mean_pool", "penultimate", "taggram")
    vector_layers = ("max_pool", "mean_pool", "penultimate", "taggram")

    def __init__(self, num_tags: int = 50, bins: int = 96, midend_filters: int = 64, backend_units: int = 200):
        super().__init__()
        self.front_end = FrontEnd(bins)
        front = 2 * 204 + 3 * 51
        self.mid_end = MidEnd(front, midend_filters)
        width = front + 3 * midend_filters
        self.pool_bn = nn.BatchNorm1d(2 * width, **TF_BN)
        self.dense = nn.Linear(2 * width, backend_units)
        self.dense_bn = nn.BatchNorm1d(backend_units, **TF_BN)
        self.dropout = nn.Dropout(0.5)
        self.tags = nn.Linear(backend_units, num_tags)

    def activations(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every named layer's output for the patches ``x``."""
        front = self.front_end(x)
        mid = self.mid_end(front)
        max_pool, mean_pool = mid.amax(dim=2), mid.mean(dim=2)
        pooled = torch.stack([max_pool, mean_pool], dim=2).flatten(1)  # TensorFlow's [max, mean] pairs
        penultimate = self.dense_bn(F.relu(self.dense(self.dropout(self.pool_bn(pooled)))))
        logits = self.tags(self.dropout(penultimate))
        return {
            "front_end": front,
            "mid_end": mid,
            "max_pool": max_pool,
            "mean_pool": mean_pool,
            "penultimate": penultimate,
            "taggram": torch.sigmoid(logits),
            "logits": logits,
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activations(x)["logits"]

    def trunk(self) -> list[nn.Module]:
        """The encoder's stages in order, each of which fine-tuning may freeze: front, mid and back end."""
        return [self.front_end, self.mid_end, nn.ModuleList([self.pool_bn, self.dense, self.dense_bn])]

    @staticmethod
    def from_tensorflow(tensors: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """A :class:`Musicnn` state_dict from the package checkpoint's variables (TensorFlow's names)."""
        out: dict[str, torch.Tensor] = {}
        bns = [
            "front_end.input_bn",
            "front_end.timbral_bn.0",
            "front_end.timbral_bn.1",
            *(f"front_end.temporal_bn.{i}" for i in range(3)),
            *(f"mid_end.bns.{i}" for i in range(3)),
            "pool_bn",
            "dense_bn",
        ]
        for number, name in enumerate(bns):
            _bn(out, name, tensors, "batch_normalization" + (f"_{number}" if number else ""))
        convs = ["front_end.timbral.0", "front_end.timbral.1", *(f"front_end.temporal.{i}" for i in range(3))]
        for number, name in enumerate(convs):
            _conv2d(out, name, tensors, "conv2d" + (f"_{number}" if number else ""))
        for i in range(3):
            kernel = tensors[f"conv2d_{5 + i}/kernel"]  # (time, channels, 1, out)
            out[f"mid_end.convs.{i}.weight"] = torch.from_numpy(kernel[:, :, 0, :].transpose(2, 1, 0).copy())
            out[f"mid_end.convs.{i}.bias"] = torch.from_numpy(tensors[f"conv2d_{5 + i}/bias"])
        _dense(out, "dense", tensors, "dense")
        _dense(out, "tags", tensors, "dense_1")
        return out


class VGG(nn.Module):
    """musicnn's VGG baseline: five 3x3 conv (ReLU, then BN) and max-pool blocks on the same patch, then the tags.

    Layers a probe can read: ``pool5`` (flattened, 2 frames x 128) and ``taggram``.
    """

    layers = ("pool5", "taggram")
    vector_layers = ("pool5", "taggram")
    pools = (((1, 4), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4)))  # (freq, time)

    def __init__(self, num_tags: int = 50, bins: int = 96, frames: int = 187, filters: int = 128):
        super().__init__()
        self.input_bn = nn.BatchNorm2d(1, **TF_BN)
        self.convs = nn.ModuleList(nn.Conv2d(1 if i == 0 else filters, filters, 3, padding=1) for i in range(5))
        self.bns = nn.ModuleList(nn.BatchNorm2d(filters, **TF_BN) for _ in range(5))
        self.dropout = nn.Dropout(0.5)
        with torch.no_grad():
            flat = self._pool5(torch.zeros(1, 1, bins, frames)).shape[1]
        self.tags = nn.Linear(flat, num_tags)

    def _pool5(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_bn(x)
        for conv, bn, (kernel, stride) in zip(self.convs, self.bns, self.pools):
            x = F.max_pool2d(bn(F.relu(conv(x))), kernel, stride)  # dropout 0.25 between blocks: off in eval
        return x.permute(0, 3, 2, 1).flatten(1)  # TensorFlow flattens (time, freq, channels)

    def activations(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        pool5 = self._pool5(x)
        logits = self.tags(self.dropout(pool5))
        return {"pool5": pool5, "taggram": torch.sigmoid(logits), "logits": logits}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activations(x)["logits"]

    def trunk(self) -> list[nn.Module]:
        return [
            nn.ModuleList([self.input_bn, *self.convs[:4], *self.bns[:4]]),
            nn.ModuleList([self.convs[4], self.bns[4]]),
        ]

    @staticmethod
    def from_tensorflow(tensors: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        _bn(out, "input_bn", tensors, "batch_normalization")
        for i in range(5):
            _conv2d(out, f"convs.{i}", tensors, f"{i + 1}CNN")
            _bn(out, f"bns.{i}", tensors, f"batch_normalization_{i + 1}")
        _dense(out, "tags", tensors, "dense")
        return out


def _bn(out: dict, name: str, tensors: dict[str, np.ndarray], tf_name: str) -> None:
    for ours, theirs in (("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean")):
        out[f"{name}.{ours}"] = torch.from_numpy(tensors[f"{tf_name}/{theirs}"])
    out[f"{name}.running_var"] = torch.from_numpy(tensors[f"{tf_name}/moving_variance"])
    out[f"{name}.num_batches_tracked"] = torch.tensor(0)


def _conv2d(out: dict, name: str, tensors: dict[str, np.ndarray], tf_name: str) -> None:
    """A (time, freq, in, out) kernel as PyTorch's (out, in, freq, time)."""
    out[f"{name}.weight"] = torch.from_numpy(tensors[f"{tf_name}/kernel"].transpose(3, 2, 1, 0).copy())
    out[f"{name}.bias"] = torch.from_numpy(tensors[f"{tf_name}/bias"])


def _dense(out: dict, name: str, tensors: dict[str, np.ndarray], tf_name: str) -> None:
    out[f"{name}.weight"] = torch.from_numpy(tensors[f"{tf_name}/kernel"].T.copy())
    out[f"{name}.bias"] = torch.from_numpy(tensors[f"{tf_name}/bias"])


class MusicnnClassifier(nn.Module):
    """A pretrained musicnn (or its VGG) with a genre head in place of the tag layer, to fine-tune end to end.

    Reads ``features=musicnn_mel`` patches ``(batch, 1, 96, frames)``.

    Parameters
    ----------
    input_shape : (channels, bins, frames)
        One segment; must be one channel of 96 bands.
    num_classes : int
        Number of genres.
    weights : str
        The ``musicnn`` package checkpoint to start from (:data:`mgc.models.musicnn_weights.ARCHITECTURES`).
    freeze : str
        ``encoder``: only the head trains (a probe that sees augmented input);
        ``front_mid``: the back-end and head train; ``none``: everything trains.
        Frozen stages keep their weights and their batch-norm statistics.
    encoder_lr_scale : float
        The trained encoder stages learn at ``optim.lr`` times this; the head at ``optim.lr``.
    cache_dir : str
        Where the converted weights are cached.
    """

    #: How many of the encoder's last stages each ``freeze`` setting trains (all: ``None``).
    TRAINED_STAGES: ClassVar[dict[str, int | None]] = {"encoder": 0, "front_mid": 1, "none": None}

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        num_classes: int,
        weights: str = "MSD_musicnn",
        freeze: str = "none",
        encoder_lr_scale: float = 0.1,
        cache_dir: str = "outputs/cache",
    ):
        super().__init__()
        from mgc.errors import MgcError
        from mgc.models.musicnn_weights import pretrained

        if freeze not in self.TRAINED_STAGES:
            raise MgcError(f"model.freeze={freeze} is not a choice; choose one of {', '.join(self.TRAINED_STAGES)}")
        if tuple(input_shape[:2]) != (1, 96):
            raise MgcError(
                f"model=musicnn reads 96-band musicnn patches (1, 96, frames), not {tuple(input_shape)}: "
                f"train it with features=musicnn_mel"
            )
        self.encoder = pretrained(weights, cache_dir)
        self.encoder.tags = nn.Linear(self.encoder.tags.in_features, num_classes)  # the genre head
        stages = self.encoder.trunk()
        trained = self.TRAINED_STAGES[freeze]
        # a tuple, not a ModuleList: the stages stay registered once, under encoder, whatever is frozen
        self.frozen: tuple[nn.Module, ...] = tuple(stages if trained == 0 else stages[:-trained] if trained else [])
        for stage in self.frozen:
            stage.requires_grad_(False)
        self.encoder_lr_scale = float(encoder_lr_scale)
        self.train()

    def train(self, mode: bool = True) -> MusicnnClassifier:
        """Train mode everywhere but the frozen stages, whose batch norm keeps its pretrained statistics."""
        super().train(mode)
        for stage in self.frozen:
            stage.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def parameter_groups(self) -> list[dict]:
        """The trained encoder weights at ``encoder_lr_scale`` times the learning rate, the head at 1."""
        head = set(self.encoder.tags.parameters())
        encoder = [p for p in self.encoder.parameters() if p.requires_grad and p not in head]
        groups = [{"params": list(head), "lr_scale": 1.0}]
        return groups + ([{"params": encoder, "lr_scale": self.encoder_lr_scale}] if encoder else [])
