"""The metrics record of a run, defined once, and the functions that score predictions.

``metrics.json`` is :class:`RunMetrics` written as JSON. The LightningModule
builds one :class:`StageMetrics` per evaluated part (``val``, ``test``) with
:func:`stage_metrics`; the training entry point wraps them into a
:class:`RunMetrics`; the report reads them back with :meth:`RunMetrics.read`.
A metric is renamed here, and every reader that goes through these classes
follows.

Two levels are scored. *Segment* metrics score every segment on its own.
*Track* metrics score whole clips: a track's prediction is the mean of its
segments' log-probabilities (as CLMR and sota-music-tagging-models report it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_confusion_matrix,
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
)

from mgc.errors import MgcError


@dataclass
class Scores:
    """Scores of one level (segments or tracks) of one part."""

    accuracy: float
    macro_f1: float
    per_class: dict[str, dict[str, float]]  # genre -> precision, recall, f1
    confusion: list[list[int]]  # rows = true genre, columns = predicted


@dataclass
class TrackVerdict:
    """What one held-out track was taken for: the genre ranked first, its probability, and every genre's score.

    Kept per track so that a report can say which tracks a model misses,
    whether every fold and seed of a cross-validation misses the same ones,
    and what the models of several seeds would name together.
    """

    track: str
    genre: str
    predicted: str
    probability: float  # of ``predicted``: the renormalised mean log-probability, as predict reports it
    # genre -> the mean of the track's segment log-probabilities, whose argmax is ``predicted``
    # (what mgc-predict averages over the models of an ensemble); empty in older runs
    log_probs: dict[str, float] = field(default_factory=dict)

    @property
    def missed(self) -> bool:
        return self.predicted != self.genre


@dataclass
class StageMetrics:
    """Everything measured on one part (``val`` or ``test``)."""

    loss: float
    segments: int
    tracks: int
    segment: Scores
    track: Scores
    verdicts: list[TrackVerdict] = field(default_factory=list)  # per track; empty for bare segments or older runs

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StageMetrics:
        return cls(
            **{
                **d,
                "segment": Scores(**d["segment"]),
                "track": Scores(**d["track"]),
                "verdicts": [TrackVerdict(**v) for v in d.get("verdicts", [])],
            }
        )


@dataclass
class RunMetrics:
    """What one run measured and how it was set up: the content of ``metrics.json``.

    ``val`` and ``test`` are None when the part was not evaluated (``{}`` in
    the JSON file, as older runs wrote it).
    """

    task_name: str
    choices: dict[str, str]
    data: str
    split: str
    test_part: str | None  # "test", "val" for splits without a test part, None when nothing is held out
    lr: float
    seed: int
    epochs: int
    train_time_s: float
    threads: int
    world_size: int
    best_checkpoint: str | None
    run_dir: str
    val: StageMetrics | None = None
    test: StageMetrics | None = None
    split_leaks: bool | None = None  # one track's segments in several parts; None in runs written before mgc kept it

    def as_dict(self) -> dict[str, Any]:
        """The JSON document (parts without metrics as ``{}``)."""
        d = asdict(self)
        return {**d, "val": d["val"] or {}, "test": d["test"] or {}}

    def write(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps(self.as_dict(), indent=2))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunMetrics:
        values = {f.name: d[f.name] for f in fields(cls) if f.name in d}
        for part in ("val", "test"):
            values[part] = StageMetrics.from_dict(d[part]) if d.get(part) else None
        return cls(**values)

    @classmethod
    def read(cls, path: str | os.PathLike) -> RunMetrics:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (json.JSONDecodeError, TypeError, KeyError) as err:
            raise MgcError(
                f"{path} is not an mgc metrics.json ({type(err).__name__}: {err}); "
                f"remove it or rerun the run that wrote it"
            ) from None

    def numbers(self) -> dict[str, float]:
        """Every score of the evaluated parts by dotted path (``test.track.accuracy``, per-class ones too;
        not confusion matrices or counts): what a cross-validation summary averages."""
        d = self.as_dict()
        return dict(_leaves({part: d[part] for part in ("test", "val")}))

    def select(self, key: str) -> float:
        """A number of the record by dotted path, e.g. ``val.segment.accuracy`` (the sweep objective)."""
        value: Any = self.as_dict()
        for part in key.split("."):
            if not isinstance(value, dict) or part not in value:
                raise MgcError(
                    f"optimized_metric={key}: metrics.json has no such number; "
                    f"use a dotted path such as val.segment.accuracy or val.track.macro_f1"
                )
            value = value[part]
        if not isinstance(value, int | float):
            raise MgcError(
                f"optimized_metric={key} is not a number in metrics.json; name a leaf such as val.segment.accuracy"
            )
        return float(value)


def _leaves(d: dict, prefix: str = ""):
    """``(dotted path, number)`` for every score in ``d`` (confusion matrices and counts left out)."""
    for key, value in d.items():
        if key in ("confusion", "segments", "tracks"):
            continue
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{key}.")
        elif isinstance(value, int | float):
            yield f"{prefix}{key}", float(value)


def stage_metrics(
    logp: torch.Tensor,
    y: torch.Tensor,
    track: torch.Tensor,
    class_names: list[str],
    track_names: Sequence[str] | None = None,
) -> StageMetrics:
    """Score one part from every segment's log-probabilities, label and track id.

    ``track_names[i]`` names track id ``i``; with them the part records every
    track's verdict (None: bare segments, which are no tracks, record none).
    """
    track_logp, track_y, ids = track_means(logp, y, track)
    track_pred = track_logp.argmax(1)
    verdicts = []
    if track_names is not None:
        probs = track_logp.softmax(1)
        verdicts = [
            TrackVerdict(
                track_names[i],
                class_names[t],
                class_names[p],
                round(float(probs[k, p]), 6),
                {c: round(float(v), 6) for c, v in zip(class_names, track_logp[k].tolist())},
            )
            for k, (i, t, p) in enumerate(zip(ids.tolist(), track_y.tolist(), track_pred.tolist()))
        ]
    return StageMetrics(
        loss=float(F.nll_loss(logp, y)),
        segments=len(y),
        tracks=len(track_y),
        segment=scores(logp.argmax(1), y, class_names),
        track=scores(track_pred, track_y, class_names),
        verdicts=verdicts,
    )


def unique_first(index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unique values of ``index`` and the position of each one's first occurrence.

    A distributed sampler pads ranks with repeated batches; scoring each
    segment once keeps the metrics those of the real split.
    """
    values, inverse = torch.unique(index, return_inverse=True)
    positions = torch.arange(len(index), device=index.device)
    first = torch.full((len(values),), len(index), device=index.device).scatter_reduce(0, inverse, positions, "amin")
    return values, first


def track_means(
    logp: torch.Tensor, y: torch.Tensor, track: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean log-probability per track (tracks in ascending id order), each track's label, and the track ids."""
    ids, inverse = torch.unique(track, return_inverse=True)
    sums = torch.zeros(len(ids), logp.shape[1], dtype=logp.dtype, device=logp.device).index_add_(0, inverse, logp)
    counts = torch.bincount(inverse, minlength=len(ids)).unsqueeze(1)
    labels = torch.zeros(len(ids), dtype=y.dtype, device=y.device).scatter_(0, inverse, y)
    return sums / counts, labels, ids


def scores(pred: torch.Tensor, target: torch.Tensor, class_names: list[str]) -> Scores:
    """Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix (rows = true)."""
    kw = {"num_classes": len(class_names)}
    per_class = [
        fn(pred, target, average=None, **kw) for fn in (multiclass_precision, multiclass_recall, multiclass_f1_score)
    ]
    return Scores(
        accuracy=float(multiclass_accuracy(pred, target, average="micro", **kw)),
        macro_f1=float(multiclass_f1_score(pred, target, average="macro", **kw)),
        per_class={
            c: {"precision": float(p), "recall": float(r), "f1": float(f)}
            for c, p, r, f in zip(class_names, *per_class)
        },
        confusion=multiclass_confusion_matrix(pred, target, **kw).tolist(),
    )
