"""The figures a run writes show what README says: confusion rows are the true genre, curves are the history."""

from __future__ import annotations

import numpy as np

from mgc.plots import confusion_figure, curves_figure

NAMES = ["blues", "jazz", "rock"]


def test_confusion_figure_rows_are_the_true_genre_with_counts_where_they_belong():
    confusion = [[5, 0, 1], [2, 3, 0], [0, 0, 4]]  # asymmetric: a transposed picture differs
    ax = confusion_figure(confusion, NAMES, "test").axes[0]
    assert ax.get_ylabel() == "true genre" and ax.get_xlabel() == "predicted genre"
    assert [t.get_text() for t in ax.get_yticklabels()] == NAMES
    counts = {(round(t.get_position()[1]), round(t.get_position()[0])): int(t.get_text()) for t in ax.texts}
    assert counts == {(i, j): c for i, row in enumerate(confusion) for j, c in enumerate(row) if c}
    shade = ax.images[0].get_array()
    np.testing.assert_allclose(shade[1], [2 / 5, 3 / 5, 0])  # each row normalised by its true-genre count
    assert "accuracy 80.0%" in ax.get_title()  # 12 of 15 on the diagonal


def test_curves_figure_plots_the_history_per_epoch():
    history = [
        {"epoch": 0, "train/loss": 2.0, "train/acc": 0.2, "val/loss": 2.1, "val/acc": 0.25, "val/track_acc": 0.3},
        {"epoch": 1, "train/loss": 1.5, "train/acc": 0.4, "val/loss": 1.8, "val/acc": 0.35, "val/track_acc": 0.5},
    ]
    ax_loss, ax_acc = curves_figure(history).axes
    lines = {ax: {line.get_label(): list(line.get_ydata()) for line in ax.lines} for ax in (ax_loss, ax_acc)}
    assert lines[ax_loss] == {"train (segments)": [2.0, 1.5], "val (segments)": [2.1, 1.8]}
    assert lines[ax_acc] == {"train (segments)": [0.2, 0.4], "val (segments)": [0.25, 0.35], "val (tracks)": [0.3, 0.5]}
    assert list(ax_loss.lines[0].get_xdata()) == [1, 2]  # epochs counted from 1
