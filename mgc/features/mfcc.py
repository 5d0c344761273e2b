"""13-MFCC segments, compatible with the well-known ``data_10.json`` format.

The numbers are exactly those of the classic extract_data.py loop,
``librosa.feature.mfcc(y=signal[start:finish], sr=22050, n_mfcc=13,
n_fft=2048, hop_length=512)`` per 3-s segment. The STFT, mel filter bank and
DCT run batched over all segments of a clip; only the dB step runs per
segment, since its ``top_db`` floor depends on each segment's own maximum.
Each segment is ``(1, n_mfcc, frames)``: 130 frames for 3 s at hop 512.

:func:`export_json` writes ``{"mapping", "labels", "mfcc"}`` with ``mfcc`` as
``segments x frames x n_mfcc`` lists; :class:`MFCCFromJSON` trains from such
a file. Such a file has no track ids, so every segment stands alone.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import librosa
import numpy as np

from mgc.data.base import Source
from mgc.errors import MgcError
from mgc.features.base import Extractor, FeatureSet
from mgc.features.mel import log_mel

MEL_BANDS = 128  # librosa.feature.mfcc's default, as extract_data.py used it


class MFCC(Extractor):
    """Mel-frequency cepstral coefficients per segment: ``(1, n_mfcc, frames)``.

    Parameters
    ----------
    n_mfcc, n_fft, hop_length : int
        As in ``librosa.feature.mfcc``.
    **kwargs
        Segmenting, cache and worker options of :class:`Extractor`.
    """

    name = "mfcc"

    def __init__(self, n_mfcc: int = 13, n_fft: int = 2048, hop_length: int = 512, **kwargs):
        super().__init__(**kwargs)
        self.n_mfcc, self.n_fft, self.hop_length = int(n_mfcc), int(n_fft), int(hop_length)

    def params(self) -> dict:
        return {**super().params(), "n_mfcc": self.n_mfcc, "n_fft": self.n_fft, "hop_length": self.hop_length}

    def gain_response(self) -> np.ndarray:
        """Only c0 moves: the orthonormal DCT of ``d`` dB added to every mel band is ``d * sqrt(n_mels)`` in c0."""
        response = np.zeros((1, self.n_mfcc), dtype=np.float32)
        response[0, 0] = np.sqrt(MEL_BANDS)
        return response

    def compute(self, segments: np.ndarray) -> np.ndarray:
        mel_db = log_mel(segments, self.sample_rate, self.n_fft, self.hop_length, MEL_BANDS)  # dB per segment
        return librosa.feature.mfcc(S=mel_db, n_mfcc=self.n_mfcc)[:, None]


class MFCCFromJSON(MFCC):
    """MFCC segments read from an existing ``data_10.json``-style file instead of extracted.

    Training reads the file; :meth:`clip` still computes the same MFCCs from
    audio, so a model trained on the file classifies audio files
    (``mgc-predict``) with the features it was trained on.

    Parameters
    ----------
    json_path : str
        The ``{"mapping", "labels", "mfcc"}`` file.
    **kwargs
        The MFCC parameters the file was made with (as for :class:`MFCC`).
    """

    def __init__(self, json_path: str | os.PathLike, **kwargs):
        super().__init__(**kwargs)
        self.json_path = json_path

    @property
    def reads_audio(self) -> bool:
        return False

    def extract(self, source: Source) -> FeatureSet:
        return load_json(self.json_path)


def mfcc_or_json(json_path: str | None = None, **kwargs) -> MFCC:
    """The ``features=mfcc-json`` option: MFCCs of the audio, or of ``json_path`` when it is set.

    So ``python train.py features.json_path=data_10.json`` trains on a classic
    file with the same option that extracts those features from GTZAN.
    """
    return MFCCFromJSON(json_path, **kwargs) if json_path else MFCC(**kwargs)


def export_json(features: FeatureSet, path: str | os.PathLike) -> Path:
    """Write MFCC features in the ``{"mapping", "labels", "mfcc"}`` JSON format."""
    if features.x.shape[1] != 1:
        raise MgcError(f"export_json needs 1-channel MFCC features, got shape {features.x.shape[1:]}")
    path = Path(path)
    data = {
        "mapping": list(features.class_names),
        "labels": features.labels.tolist(),
        "mfcc": features.x[:, 0].transpose(0, 2, 1).tolist(),
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)
    return path


def load_json(path: str | os.PathLike) -> FeatureSet:
    """Read a ``data_10.json``-style file; each segment becomes its own track."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        mapping, labels, mfcc = data["mapping"], data["labels"], data["mfcc"]
    except FileNotFoundError:
        raise MgcError(f"features.json_path={path} does not exist: pass the path of a data_10.json file") from None
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as err:
        raise MgcError(
            f"features.json_path={path} is not an MFCC JSON file ({type(err).__name__}: {err}); "
            f'expected {{"mapping": [...], "labels": [...], "mfcc": [segments x frames x coefficients]}}'
        ) from None
    try:
        x = np.asarray(mfcc, dtype=np.float32)
    except ValueError:
        raise MgcError(
            f"features.json_path={path}: 'mfcc' segments have different shapes; all must be frames x coefficients"
        ) from None
    if x.ndim != 3 or len(x) == 0:
        raise MgcError(
            f"features.json_path={path}: 'mfcc' has shape {x.shape}, expected (segments, frames, coefficients)"
        )
    y = np.asarray(labels, dtype=np.int64)
    if y.shape != (len(x),):
        raise MgcError(
            f"features.json_path={path}: {len(y)} labels for {len(x)} mfcc segments; they must match one to one"
        )
    if y.min() < 0 or y.max() >= len(mapping):
        raise MgcError(
            f"features.json_path={path}: labels run {y.min()}..{y.max()} but 'mapping' has {len(mapping)} genres"
        )
    names = [str(m).replace("\\", "/").rsplit("/", 1)[-1] for m in mapping]  # old files store genre paths
    return FeatureSet(
        x=np.ascontiguousarray(x.transpose(0, 2, 1)[:, None]),
        labels=y,
        tracks=np.arange(len(y)),
        track_ids=[f"segment.{i:06d}" for i in range(len(y))],
        class_names=names,
        has_tracks=False,
        source=f"json:{path.name}",
    )
