"""musicnn's input spectrogram, and the frozen musicnn encoder's embeddings, per 3-s segment.

:class:`MusicnnMel` computes what the musicnn models read (Pons & Serra 2019):
16 kHz audio, a 512-point STFT with hop 256, 96 mel bands and
``log10(10000 * power + 1)``, kept in float32 (the ``musicnn`` package casts
the mel power to float16 first, which overflows to inf on loud clips), cut to
187 frames (3 s) per segment: ``(1, 96, 187)``, the input of ``model=musicnn``.
The first segment of a clip is the package's first patch.

:class:`MusicnnEmbedding` runs the pretrained encoder on those patches and
keeps one or more of its layers per segment: ``(1, dims, 1)``, so the track
splits, k-fold, track voting and predict work as for every feature, and
``model=linear``, ``mlp`` or ``stats_linear`` train a probe on it (the
protocol of MARBLE and HEAR: freeze, cache the embeddings once, train small
models on them). The cache key holds the weights' name and the layers.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import librosa
import numpy as np
import torch

from mgc.errors import MgcError
from mgc.features.base import Extractor
from mgc.features.mel import mel_basis
from mgc.models.musicnn_weights import check_name, pretrained


class MusicnnMel(Extractor):
    """The musicnn input patch of each segment: ``(1, n_mels, frames)``, not standardised.

    Parameters
    ----------
    n_mels, n_fft, hop_length : int
        96, 512 and 256, as the shipped weights were trained.
    frames : int
        Frames per patch (187: 3 s at 16 kHz).
    **kwargs
        Segmenting, cache and worker options of :class:`Extractor` (sample rate 16 kHz).
    """

    name = "musicnn_mel"
    #: The encoder's own input batch-norm expects these values as they are: the data module leaves them alone.
    standardize = False

    def __init__(self, n_mels: int = 96, n_fft: int = 512, hop_length: int = 256, frames: int = 187, **kwargs):
        kwargs.setdefault("sample_rate", 16000)
        super().__init__(**kwargs)
        self.n_mels, self.n_fft, self.hop_length, self.frames = int(n_mels), int(n_fft), int(hop_length), int(frames)
        if 1 + self.segment_samples // self.hop_length < self.frames:
            raise MgcError(
                f"features.frames={self.frames} is longer than a {self.segment_seconds:g}-s segment at "
                f"{self.sample_rate} Hz; lower features.frames or raise features.segment_seconds"
            )

    def params(self) -> dict:
        return {
            **super().params(),
            "n_mels": self.n_mels,
            "n_fft": self.n_fft,
            "hop_length": self.hop_length,
            "frames": self.frames,
        }

    def compute(self, segments: np.ndarray) -> np.ndarray:
        power = np.abs(librosa.stft(segments, n_fft=self.n_fft, hop_length=self.hop_length)) ** 2
        basis = mel_basis(self.sample_rate, self.n_fft, self.n_mels)
        mel = np.stack([basis @ p[:, : self.frames] for p in power]).astype(np.float32)
        return np.log10(np.float32(10000) * mel + np.float32(1))[:, None]


class MusicnnEmbedding(MusicnnMel):
    """Pretrained musicnn activations of each segment's patch: ``(1, dims, 1)``.

    Parameters
    ----------
    weights : str
        A checkpoint of the ``musicnn`` package: ``MSD_musicnn`` (default), ``MTT_musicnn``, ``MSD_vgg``, ``MTT_vgg``.
    layer : str or list of str
        The layer, or layers concatenated in the order given: ``penultimate``
        (200), ``max_pool`` and ``mean_pool`` (753 each), ``taggram`` (50);
        ``pool5`` (256) and ``taggram`` for the VGG weights.
    accelerator : str
        ``gpu`` (or ``cuda``) runs the encoder on CUDA when there is one; the
        configs pass ``trainer.accelerator``, so ``trainer=gpu`` extracts there.
    **kwargs
        As for :class:`MusicnnMel`.
    """

    name = "musicnn"
    standardize = True
    projectable = True

    def __init__(
        self,
        weights: str = "MSD_musicnn",
        layer: str | Sequence[str] = "penultimate",
        accelerator: str = "cpu",
        **kwargs,
    ):
        super().__init__(**kwargs)
        architecture = check_name(weights, key="features.weights")
        self.weights = weights
        self.layers = [layer] if isinstance(layer, str) else list(layer)
        unknown = [name for name in self.layers if name not in architecture.vector_layers]
        if unknown or not self.layers:
            raise MgcError(
                f"features.layer={unknown[0] if unknown else '[]'} is not a layer of {weights}; "
                f"choose one or more of {', '.join(architecture.vector_layers)}"
            )
        self.device = torch.device("cuda" if accelerator in ("gpu", "cuda") and torch.cuda.is_available() else "cpu")
        self._encoder: torch.nn.Module | None = None
        self._lock = threading.Lock()

    def params(self) -> dict:
        return {**super().params(), "weights": self.weights, "layers": self.layers}

    def encoder(self) -> torch.nn.Module:
        """The frozen encoder, loaded once (extraction threads share it)."""
        with self._lock:
            if self._encoder is None:
                self._encoder = pretrained(self.weights, self.cache_dir).to(self.device)
        return self._encoder

    def compute(self, segments: np.ndarray) -> np.ndarray:
        return self.embed(super().compute(segments))

    def embed(self, patches: np.ndarray) -> np.ndarray:
        """The chosen layers of the encoder for musicnn input patches ``(n, 1, bands, frames)``: ``(n, 1, dims, 1)``.

        A clip's patches go through the encoder as one batch; the extractor's
        threads run clips side by side (each with one BLAS thread).
        """
        with torch.inference_mode():
            out = self.encoder().activations(torch.from_numpy(patches).to(self.device))
            embedding = torch.cat([out[name] for name in self.layers], dim=1)
        return embedding.cpu().numpy()[:, None, :, None]
