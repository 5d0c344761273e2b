"""One typed row per finished run: what the report's table, cross-validation and plots read.

A row is read from a run's ``metrics.json`` (:class:`~mgc.metrics.RunMetrics`) and its Hydra overrides;
the report never reads a metrics file or a dict key itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from mgc.cli import override_key
from mgc.errors import MgcError
from mgc.metrics import RunMetrics, TrackVerdict

#: The override that tells the folds of one cross-validation apart.
FOLD_KEY = "split.fold"


@dataclass(frozen=True)
class ReportRow:
    """A finished run as the report sees it: its setup, its test scores and its per-track verdicts."""

    run: str  # the run folder's name
    run_dir: str
    experiment: str  # task_name: the experiment's name, or ``train``
    data: str
    features: str
    model: str
    optimizer: str
    lr: float
    seed: int
    scheduler: str
    augment: str
    split: str
    test_part: str | None
    epochs: int
    best_val_acc: float | None
    test_segment_acc: float
    test_track_acc: float
    test_macro_f1: float
    train_time_s: float
    confusion: list[list[int]]
    class_names: list[str]
    overrides: list[str] | None  # None for a run not started by Hydra
    metrics: dict[str, float]  # every val and test score by dotted path
    verdicts: list[TrackVerdict]
    leaky: bool  # one track's segments sat in both train and test

    @classmethod
    def of(cls, path: Path, m: RunMetrics) -> ReportRow:
        """The row of the run whose ``metrics.json`` is at ``path`` (``m``: its content, with test metrics)."""
        choice = m.choices.get
        return cls(
            run=path.parent.name,
            run_dir=str(path.parent),
            experiment=m.task_name,
            data=m.data,
            features=choice("features", ""),
            model=choice("model", ""),
            optimizer=choice("optim", ""),
            lr=m.lr,
            seed=m.seed,
            scheduler=choice("scheduler", ""),
            augment=choice("augment", ""),
            split=m.split,
            test_part=m.test_part,
            epochs=m.epochs,
            best_val_acc=m.val.segment.accuracy if m.val else None,
            test_segment_acc=m.test.segment.accuracy,
            test_track_acc=m.test.track.accuracy,
            test_macro_f1=m.test.segment.macro_f1,
            train_time_s=m.train_time_s,
            confusion=m.test.track.confusion,
            class_names=list(m.test.track.per_class),
            overrides=_overrides(path.parent),
            metrics=m.numbers(),
            verdicts=m.test.verdicts,
            # runs written before metrics.json recorded it: mgc's only leaky splits are the segment_* ones
            leaky=m.split_leaks if m.split_leaks is not None else m.split.startswith("segment"),
        )

    @property
    def label(self) -> str:
        """The run's name in plots: its experiment, or its folder for a plain ``train.py`` run."""
        return self.experiment if self.experiment != "train" else self.run

    @property
    def fold(self) -> str | None:
        """The ``split.fold`` override of a cross-validation job; None for any other run."""
        folds = [o.partition("=")[2] for o in self.overrides or [] if override_key(o) == FOLD_KEY]
        return folds[0] if folds else None


def collect(roots: list[Path]) -> list[ReportRow]:
    """One row per ``metrics.json`` under ``roots`` that has test metrics, oldest run first."""
    rows = []
    for path in sorted({p for root in roots for p in root.glob("**/metrics.json")}, key=lambda p: p.stat().st_mtime):
        m = RunMetrics.read(path)
        if m.test is not None:
            rows.append(ReportRow.of(path, m))
    return rows


def _overrides(run_dir: Path) -> list[str] | None:
    """The run's command-line overrides as Hydra saved them (None for a run not started by Hydra)."""
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return None
    overrides = yaml.safe_load(path.read_text())
    if not isinstance(overrides, list):
        raise MgcError(f"{path} is not a list of overrides as Hydra writes it; remove it or rerun the run")
    return [str(o) for o in overrides]
