"""Chroma (pitch-class energy) segments: ``(1, 12, frames)``.

``librosa.feature.chroma_stft`` estimates the tuning of its input, so a
batched call over all segments would estimate one tuning for the whole clip
and give different numbers; this feature therefore calls it per segment.
"""

from __future__ import annotations

import librosa
import numpy as np

from mgc.features.base import Extractor


class Chroma(Extractor):
    """``chroma_stft`` of each segment (default: 3 segments of 10 s per clip)."""

    name = "chroma"

    def __init__(self, n_chroma: int = 12, n_fft: int = 2048, hop_length: int = 512, **kwargs):
        kwargs.setdefault("segment_seconds", 10.0)
        kwargs.setdefault("segments_per_clip", 3)
        super().__init__(**kwargs)
        self.n_chroma, self.n_fft, self.hop_length = int(n_chroma), int(n_fft), int(hop_length)

    def params(self) -> dict:
        return {**super().params(), "n_chroma": self.n_chroma, "n_fft": self.n_fft, "hop_length": self.hop_length}

    def compute(self, segments: np.ndarray) -> np.ndarray:
        return np.stack(
            [
                librosa.feature.chroma_stft(
                    y=s, sr=self.sample_rate, n_chroma=self.n_chroma, n_fft=self.n_fft, hop_length=self.hop_length
                )[None]
                for s in segments
            ]
        )
