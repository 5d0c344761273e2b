"""The log-mel spectrogram of stacked segments, shared by the MFCC and log-mel features.

``librosa.feature.melspectrogram`` rebuilds its mel filter bank on every call,
that is once per clip; here it is built once per ``(sr, n_fft, n_mels)`` and
kept. The STFT and the mel projection run batched over a clip's segments (the
same operations as librosa's, so the same numbers to the bit); the dB step runs
per segment, because ``power_to_db`` floors at ``max - top_db`` over its whole
input and the classic per-segment loop floors each segment at its own maximum.
"""

from __future__ import annotations

from functools import lru_cache

import librosa
import numpy as np


@lru_cache(maxsize=16)
def mel_basis(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    """librosa's mel filter bank ``(n_mels, 1 + n_fft // 2)``, read-only (threads share it)."""
    basis = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)
    basis.setflags(write=False)
    return basis


def log_mel(
    segments: np.ndarray, sr: int, n_fft: int, hop_length: int, n_mels: int = 128, top_db: float | None = 80.0
) -> np.ndarray:
    """``power_to_db(melspectrogram(y=segment, ...))`` of each of the stacked ``segments``: ``(n, n_mels, frames)``."""
    power = np.abs(librosa.stft(segments, n_fft=n_fft, hop_length=hop_length)) ** 2
    mel = np.einsum("...ft,mf->...mt", power, mel_basis(sr, n_fft, n_mels), optimize=True)
    return np.stack([librosa.power_to_db(m, top_db=top_db) for m in mel])
