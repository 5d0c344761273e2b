"""The report's figures: test accuracy per run, and a grid of the runs' track confusion matrices."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from mgc.plots import draw_confusion
from mgc.report.rows import ReportRow


def bar_labels(rows: list[ReportRow]) -> list[str]:
    """One label per run: its experiment, with split and seed where several runs share it (a cross-validation)."""
    names = [r.label for r in rows]
    shared = {n for n in names if names.count(n) > 1}
    return [f"{n} {r.split} seed {r.seed}" if n in shared else n for n, r in zip(names, rows)]


def plot_accuracy(rows: list[ReportRow], path: Path) -> None:
    """Grouped bars: test segment vs track accuracy per run."""
    fig = accuracy_figure(rows)
    fig.savefig(path, dpi=120)


def accuracy_figure(rows: list[ReportRow]) -> Figure:
    """The figure of :func:`plot_accuracy`; its title warns of leaky splits only when a run used one."""
    labels = bar_labels(rows)
    x = np.arange(len(rows))
    fig = Figure(figsize=(max(6.0, 0.9 * len(rows) + 2), 4.5))
    ax = fig.subplots()
    ax.bar(x - 0.2, [r.test_segment_acc for r in rows], 0.4, label="test segment accuracy")
    ax.bar(x + 0.2, [r.test_track_acc for r in rows], 0.4, label="test track accuracy")
    ax.set_xticks(x, labels, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.15)  # room for the legend above the bars
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.axhline(1 / max(len(rows[0].class_names), 1), color="grey", linestyle=":", label="chance")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper center", ncol=3, fontsize=8)
    leaky = any(r.leaky for r in rows)
    ax.set_title("test accuracy per run" + (" (segment splits leak: see results.md)" if leaky else ""))
    fig.tight_layout()
    return fig


def plot_confusion_grid(rows: list[ReportRow], path: Path) -> None:
    """Small multiples of the track-level test confusion matrices (row-normalised)."""
    cols = min(4, len(rows))
    n_rows = math.ceil(len(rows) / cols)
    fig = Figure(figsize=(4.2 * cols, 4.2 * n_rows))
    axes = fig.subplots(n_rows, cols, squeeze=False)
    for ax in axes.flat[len(rows) :]:
        ax.axis("off")
    for ax, r in zip(axes.flat, rows):
        draw_confusion(ax, r.confusion, r.class_names, fontsize=7)
        ax.set_title(f"{r.label}\n{r.split}: track acc {r.test_track_acc:.2f}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
