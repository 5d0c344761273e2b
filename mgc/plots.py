"""The figures every run writes: confusion matrix and learning curves.

Figures are built with matplotlib's object API (:class:`~matplotlib.figure.Figure`),
not ``pyplot``: nothing here chooses a backend or keeps figures alive in a
global registry, so importing mgc leaves a notebook's or a GUI's matplotlib as it was.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.ticker import MaxNLocator


def draw_confusion(ax: Axes, confusion: list[list[int]], class_names: list[str], fontsize: float = 10) -> AxesImage:
    """Rows = true genre, columns = predicted; counts printed, shading row-normalised (a genre's recall on
    the diagonal). Shared by every run's confusion_matrix.png and the report's grid of runs."""
    cm = np.asarray(confusion)
    shade = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    n = len(class_names)
    im = ax.imshow(shade, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), class_names, rotation=45, ha="right", fontsize=fontsize)
    ax.set_yticks(range(n), class_names, fontsize=fontsize)
    ax.set_xlabel("predicted genre", fontsize=fontsize)
    ax.set_ylabel("true genre", fontsize=fontsize)
    for i, j in zip(*np.nonzero(cm)):
        color = "white" if shade[i, j] > 0.5 else "black"
        ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=0.8 * fontsize, color=color)
    return im


def confusion_figure(confusion: list[list[int]], class_names: list[str], title: str = "") -> Figure:
    """One run's track or segment confusion matrix, titled with its accuracy."""
    cm = np.asarray(confusion)
    n = len(class_names)
    fig = Figure(figsize=(1.2 + 0.6 * n, 1.0 + 0.55 * n))
    ax = fig.subplots()
    im = draw_confusion(ax, confusion, class_names)
    acc = np.trace(cm) / max(cm.sum(), 1)
    ax.set_title(f"{title}  accuracy {acc:.1%}".strip())
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the true genre")
    fig.tight_layout()
    return fig


def save_confusion(confusion: list[list[int]], class_names: list[str], path: Path, title: str = "") -> None:
    confusion_figure(confusion, class_names, title).savefig(path, dpi=120)


def curves_figure(history: list[dict[str, float]]) -> Figure:
    """Train/val loss and accuracy per epoch (epochs counted from 1)."""
    fig = Figure(figsize=(10, 4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    epochs = [h["epoch"] + 1 for h in history]
    for ax, metric in ((ax_loss, "loss"), (ax_acc, "acc")):
        for part, style in (("train", "-o"), ("val", "-s")):
            values = [h.get(f"{part}/{metric}", np.nan) for h in history]
            ax.plot(epochs, values, style, label=f"{part} (segments)", markersize=3)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("accuracy" if metric == "acc" else "cross-entropy loss")
        ax.grid(alpha=0.3)
    ax_acc.plot(epochs, [h.get("val/track_acc", np.nan) for h in history], "-^", label="val (tracks)", markersize=3)
    ax_acc.set_ylim(0, 1)
    ax_acc.legend()
    ax_loss.legend()
    fig.suptitle("learning curves")
    fig.tight_layout()
    return fig


def save_curves(history: list[dict[str, float]], path: Path) -> None:
    curves_figure(history).savefig(path, dpi=120)
