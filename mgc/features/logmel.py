"""Log-mel spectrogram segments: ``(1, n_mels, frames)``, the input of spectrogram CNNs.

The numbers are those of ``librosa.power_to_db(librosa.feature.melspectrogram(
y=segment, sr=22050, n_fft=2048, hop_length=512, n_mels=128))`` per 3-s segment:
128 mel bands by 130 frames, as the short-chunk CNN of Won et al. (2020) reads
them. The STFT and the mel projection run batched over all segments of a clip;
the dB step runs per segment, since its ``top_db`` floor (``max - top_db``)
depends on each segment's own maximum. Segments are cut and counted exactly as
for the MFCC (:meth:`Extractor.segments_of` uses ``hop_length``).
"""

from __future__ import annotations

import numpy as np

from mgc.features.base import Extractor
from mgc.features.mel import log_mel


class LogMel(Extractor):
    """Log-power mel spectrogram of each segment, in dB: ``(1, n_mels, frames)``.

    Parameters
    ----------
    n_mels, n_fft, hop_length : int
        As in ``librosa.feature.melspectrogram`` (128 bands, 2048, 512).
    top_db : float or None
        As in ``librosa.power_to_db``: each segment is floored at its own
        maximum minus ``top_db`` (None: no floor).
    **kwargs
        Segmenting, cache and worker options of :class:`Extractor`
        (default: 10 segments of 3 s per clip).

    Examples
    --------
    >>> LogMel().compute(np.zeros((2, 66150), dtype=np.float32)).shape
    (2, 1, 128, 130)
    """

    name = "logmel"

    def __init__(
        self, n_mels: int = 128, n_fft: int = 2048, hop_length: int = 512, top_db: float | None = 80.0, **kwargs
    ):
        super().__init__(**kwargs)
        self.n_mels, self.n_fft, self.hop_length = int(n_mels), int(n_fft), int(hop_length)
        self.top_db = None if top_db is None else float(top_db)

    def params(self) -> dict:
        return {
            **super().params(),
            "n_mels": self.n_mels,
            "n_fft": self.n_fft,
            "hop_length": self.hop_length,
            "top_db": self.top_db,
        }

    def gain_response(self) -> np.ndarray:
        """Every band moves by the dB (the ``top_db`` floor follows each segment's maximum)."""
        return np.ones((1, self.n_mels), dtype=np.float32)

    def compute(self, segments: np.ndarray) -> np.ndarray:
        return log_mel(segments, self.sample_rate, self.n_fft, self.hop_length, self.n_mels, self.top_db)[:, None]
