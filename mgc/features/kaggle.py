"""Kaggle's GTZAN feature tables as a feature: ``features=kaggle-csv features.csv_path=features_30_sec.csv``.

Many GTZAN users start from Kaggle's tables of 57 clip statistics (means and
variances of chroma, RMS, spectral centroid, bandwidth and roll-off,
zero-crossing rate, harmonic and percussive parts, 20 MFCCs, and the tempo).
``features_30_sec.csv`` has one row per track (``blues.00000.wav``);
``features_3_sec.csv`` one row per 3-s segment (``blues.00000.3.wav`` is
segment 3 of track ``blues.00000``), so track splits, ``split=filtered`` and
track voting work on both. Each row becomes one segment shaped
``(1, 57, 1)``: the statistics are the bins, one frame, so every model
applies, and the DataModule standardises each statistic with training-part
statistics like any other feature. There is no audio to extract from, so a
model trained on a table cannot classify audio files (predict says so).
"""

from __future__ import annotations

import csv
import os
from itertools import pairwise
from pathlib import Path

import numpy as np

from mgc.data.base import Source
from mgc.errors import MgcError
from mgc.features.base import Extractor, FeatureSet

#: The statistics columns of Kaggle's tables, in their order.
STATISTICS = (
    [
        f"{name}_{moment}"
        for name in (
            "chroma_stft",
            "rms",
            "spectral_centroid",
            "spectral_bandwidth",
            "rolloff",
            "zero_crossing_rate",
            "harmony",
            "perceptr",
        )
        for moment in ("mean", "var")
    ]
    + ["tempo"]
    + [f"mfcc{i}_{moment}" for i in range(1, 21) for moment in ("mean", "var")]
)
COLUMNS = ["filename", "length", *STATISTICS, "label"]


class KaggleTable(Extractor):
    """Rows of a Kaggle GTZAN feature table (``features_30_sec.csv`` or ``features_3_sec.csv``).

    Parameters
    ----------
    csv_path : str
        The table.
    log_variances : bool
        Replace each ``*_var`` statistic by its logarithm. Variances are
        positive and span orders of magnitude across clips (a few loud clips
        dominate a standardised raw variance); their logarithm is what a
        linear layer can use. ``tempo`` and the means are kept as they are.
    """

    name = "kaggle-csv"
    from_audio = False

    def __init__(self, csv_path: str | os.PathLike, log_variances: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.csv_path, self.log_variances = csv_path, bool(log_variances)

    @property
    def reads_audio(self) -> bool:
        return False

    def extract(self, source: Source | None = None) -> FeatureSet:
        table = read_table(self.csv_path)
        if self.log_variances:
            variances = [i for i, c in enumerate(STATISTICS) if c.endswith("_var")]
            table.x[:, :, variances] = np.log(np.maximum(table.x[:, :, variances], 1e-12))
        return table


def read_table(path: str | os.PathLike) -> FeatureSet:
    """A :class:`FeatureSet` of a Kaggle table: tracks sorted by id, a track's segments in order."""
    path = Path(path)
    key = f"features.csv_path={path}"
    try:
        with open(path, newline="") as f:
            reader = csv.reader(f)
            header = next(reader, [])
            rows = list(reader)
    except FileNotFoundError:
        raise MgcError(
            f"{key} does not exist: pass the path of Kaggle's features_30_sec.csv or features_3_sec.csv"
        ) from None
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise MgcError(f"{key} cannot be read as CSV ({type(err).__name__}: {err})") from None
    missing = [c for c in COLUMNS if c not in header]
    extra = [c for c in header if c not in COLUMNS]
    if missing or extra:
        what = f"column '{missing[0]}' is missing" if missing else f"column '{extra[0]}' is unexpected"
        raise MgcError(f"{key}: {what}; expected Kaggle's columns filename,length,{STATISTICS[0]},...,label")
    col = {c: header.index(c) for c in COLUMNS}
    entries = []
    for line, row in enumerate(rows, start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise MgcError(f"{key}, line {line}: {len(row)} cells for {len(header)} columns")
        genre, track_id, segment = _parse_filename(row[col["filename"]], f"{key}, line {line}")
        label = row[col["label"]]
        if label != genre:
            raise MgcError(
                f"{key}, line {line}: label '{label}' disagrees with file name {row[col['filename']]}; "
                f"fix the label or the file name"
            )
        values = []
        for c in STATISTICS:
            try:
                values.append(float(row[col[c]]))
            except ValueError:
                raise MgcError(f"{key}, line {line}: column '{c}' holds '{row[col[c]]}', not a number") from None
        if not np.all(np.isfinite(values)):
            raise MgcError(f"{key}, line {line}: a statistic is NaN or infinite")
        entries.append((track_id, segment, label, values))
    if not entries:
        raise MgcError(f"{key} has no rows")
    entries.sort(key=lambda e: (e[0], e[1]))
    for a, b in pairwise(entries):
        if a[:2] == b[:2]:
            raise MgcError(f"{key}: track {a[0]} segment {a[1]} appears twice; keep one row per track and segment")
    class_names = sorted({e[2] for e in entries})
    track_ids = sorted({e[0] for e in entries})
    track_index = {t: i for i, t in enumerate(track_ids)}
    return FeatureSet(
        x=np.asarray([e[3] for e in entries], dtype=np.float32)[:, None, :, None],
        labels=np.asarray([class_names.index(e[2]) for e in entries], dtype=np.int64),
        tracks=np.asarray([track_index[e[0]] for e in entries], dtype=np.int64),
        track_ids=track_ids,
        class_names=class_names,
        source=f"kaggle:{path.name}",
    )


def _parse_filename(filename: str, where: str) -> tuple[str, str, int]:
    """``blues.00000.wav`` -> (blues, blues.00000, 0); ``blues.00000.3.wav`` -> (blues, blues.00000, 3)."""
    parts = filename.removesuffix(".wav").split(".")
    if len(parts) not in (2, 3) or not all(parts) or (len(parts) == 3 and not parts[2].isdigit()):
        raise MgcError(f"{where}: file name '{filename}' is not <genre>.NNNNN.wav or <genre>.NNNNN.<segment>.wav")
    return parts[0], f"{parts[0]}.{parts[1]}", int(parts[2]) if len(parts) == 3 else 0
