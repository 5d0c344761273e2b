"""Collect finished runs into one results table and plots.

    python -m mgc.report                       # every run under outputs/
    python -m mgc.report outputs/journal/X     # only the runs under X
    python -m mgc.report DIR --out DIR/report  # somewhere else

Scans for ``metrics.json`` files (one per finished run) and writes
``results.md``, ``results.csv``, ``accuracy.png`` (segment vs track test
accuracy per run) and ``confusion_matrices.png`` (a grid of the runs'
track-level confusion matrices). Runs on a ``segment_*`` split get a footnote:
segments of one song sit in both train and test there.

Cross-validation: runs whose Hydra overrides (``<run>/.hydra/overrides.yaml``)
set ``split.fold`` and are otherwise the same (``paths.*`` and ``seed`` aside)
form a group, e.g. the jobs of ``python train.py -m split=kfold split.fold=0,1,2,3,4``.
A sweep over ``seed`` as well is repeated cross-validation: each seed deals
its own folds and starts its own weights, and the group pools every fold of
every seed, a steadier estimate than one k-fold on a data set as small as the
dev clips. With ``split.seed`` fixed, every seed shares one deal and only the
weights and augmentation draws differ; the report says which. Each group
gets a row of mean ± std over its runs in ``results.md`` and every val and
test metric's mean, std and n in ``summary.json``:
``{group: {"test.track.accuracy": {"mean": .., "std": .., "n": ..}, ...}}``,
the group named by its shared overrides. ``std`` is the sample standard
deviation over the runs (ddof=1; null for a single run). Each group's most
often missed test tracks follow the table (how many of the runs that tested a
track missed it, and what it was taken for; all of them in
``missed_tracks.csv``), from the per-track verdicts in ``metrics.json``.

The package: :mod:`~mgc.report.rows` (a typed row per run), :mod:`~mgc.report.table`,
:mod:`~mgc.report.cv` (cross-validation) and :mod:`~mgc.report.plots`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from mgc.cli import user_errors_exit
from mgc.errors import MgcError
from mgc.report.cv import write_cross_validation
from mgc.report.plots import plot_accuracy, plot_confusion_grid
from mgc.report.rows import ReportRow, collect
from mgc.report.table import write_table


def write_report(roots: list[Path], out: Path) -> list[ReportRow]:
    """Everything above, for the runs under ``roots``, into ``out``."""
    rows = collect(roots)
    if not rows:
        raise MgcError(f"no finished runs (metrics.json with test metrics) under {', '.join(map(str, roots))}")
    out.mkdir(parents=True, exist_ok=True)
    write_table(rows, out)
    write_cross_validation(rows, out)
    plot_accuracy(rows, out / "accuracy.png")
    plot_confusion_grid(rows, out / "confusion_matrices.png")
    return rows


@user_errors_exit
def main(argv: list[str] | None = None) -> None:
    """``mgc-report [ROOTS...] [--out DIR]`` (also ``python -m mgc.report``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("roots", nargs="*", type=Path, default=[Path("outputs")], help="folders to scan (outputs/)")
    parser.add_argument("--out", type=Path, default=None, help="report folder (default: outputs/report)")
    args = parser.parse_args(argv)
    out = args.out or Path("outputs/report")
    rows = write_report(args.roots, out)
    print((out / "results.md").read_text())
    files = "results.md, results.csv, accuracy.png, confusion_matrices.png"
    if (out / "summary.json").is_file():
        files += ", summary.json (cross-validation: mean, std, n over folds)"
    print(f"{len(rows)} runs -> {out}/{files}", file=sys.stderr)


class SweepReport(Callback):
    """Hydra callback: when a multirun ends, write and print the report of its jobs."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            rows = write_report([sweep_dir], sweep_dir / "report")
        except MgcError as err:  # no job finished: say so, do not fail the sweep
            print(f"sweep summary: {err}")
            return
        print(f"\nsweep summary ({len(rows)} jobs): {sweep_dir / 'report' / 'results.md'}\n")
        print((sweep_dir / "report" / "results.md").read_text())
