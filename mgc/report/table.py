"""The report's per-run table: ``results.csv`` (every column, full precision) and ``results.md``."""

from __future__ import annotations

import csv
from pathlib import Path

from mgc.report.rows import ReportRow

#: results.md and results.csv columns, each a field of :class:`~mgc.report.rows.ReportRow`.
COLUMNS = [
    "run",
    "experiment",
    "data",
    "features",
    "model",
    "optimizer",
    "lr",
    "scheduler",
    "augment",
    "split",
    "epochs",
    "best_val_acc",
    "test_segment_acc",
    "test_track_acc",
    "test_macro_f1",
    "train_time_s",
]
LEAK_NOTE = (
    "segment split: segments of one song sit in both train and test parts, so these numbers are "
    "optimistic; compare a track_* or filtered split for an honest estimate."
)


def _fmt(column: str, value) -> str:
    if value is None:
        return ""
    if column.endswith(("_acc", "_f1")):
        return f"{value:.3f}"
    if column == "train_time_s":
        return f"{value:.1f}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def write_table(rows: list[ReportRow], out: Path) -> None:
    """results.csv (every column, full precision) and results.md (readable, with footnotes)."""
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*COLUMNS, "test_part", "run_dir"])
        writer.writeheader()
        writer.writerows({c: getattr(r, c) for c in [*COLUMNS, "test_part", "run_dir"]} for r in rows)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    leaky = no_test = False
    for r in rows:
        cells = {c: _fmt(c, getattr(r, c)) for c in COLUMNS}
        if r.leaky:
            cells["split"] += "¹"
            leaky = True
        if r.test_part == "val":
            cells["split"] += "²"
            no_test = True
        lines.append("| " + " | ".join(cells.values()) + " |")
    lines.append("")
    if leaky:
        lines += [f"¹ {LEAK_NOTE}", ""]
    if no_test:
        lines += ["² this split has no test part: the test columns are measured on the validation part.", ""]
    lines.append(
        "Segment accuracy scores each segment alone; track accuracy averages a track's segment "
        "log-probabilities. best_val_acc is the segment accuracy of the checkpoint that was tested."
    )
    (out / "results.md").write_text("\n".join(lines) + "\n")
