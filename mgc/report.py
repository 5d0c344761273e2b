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
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import yaml
from hydra.experimental.callback import Callback
from matplotlib.figure import Figure
from omegaconf import DictConfig

from mgc.cli import override_key, user_errors_exit
from mgc.errors import MgcError
from mgc.metrics import RunMetrics

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
#: The override that tells the folds of one cross-validation apart.
FOLD_KEY = "split.fold"
#: The override that tells the repeats of a repeated cross-validation apart.
REPEAT_KEY = "seed"
#: The override that, set to a number, gives every repeat the same deal of the folds.
DEAL_KEY = "split.seed"
#: results.md columns of the cross-validation table: column -> metric (dotted path in metrics.json).
CV_COLUMNS = {
    "test_segment_acc": "test.segment.accuracy",
    "test_track_acc": "test.track.accuracy",
    "test_macro_f1": "test.segment.macro_f1",
    "test_track_macro_f1": "test.track.macro_f1",
    "best_val_acc": "val.segment.accuracy",
    "val_track_acc": "val.track.accuracy",
}
#: How many of a group's most-missed tracks results.md lists (missed_tracks.csv has them all).
MISSED_SHOWN = 20
LEAK_NOTE = (
    "segment split: segments of one song sit in both train and test parts, so these numbers are "
    "optimistic; compare a track_* or filtered split for an honest estimate."
)


def collect(roots: list[Path]) -> list[dict]:
    """One row per ``metrics.json`` under ``roots`` that has test metrics, oldest run first."""
    rows = []
    for path in sorted({p for root in roots for p in root.glob("**/metrics.json")}, key=lambda p: p.stat().st_mtime):
        m = RunMetrics.read(path)
        if m.test is None:
            continue
        rows.append(
            {
                "run": path.parent.name,
                "run_dir": str(path.parent),
                "experiment": m.task_name,
                "data": m.data,
                "features": m.choices.get("features", ""),
                "model": m.choices.get("model", ""),
                "optimizer": m.choices.get("optim", ""),
                "lr": m.lr,
                "seed": m.seed,
                "scheduler": m.choices.get("scheduler", ""),
                "augment": m.choices.get("augment", ""),
                "split": m.split,
                "test_part": m.test_part,
                "epochs": m.epochs,
                "best_val_acc": m.val.segment.accuracy if m.val else None,
                "test_segment_acc": m.test.segment.accuracy,
                "test_track_acc": m.test.track.accuracy,
                "test_macro_f1": m.test.segment.macro_f1,
                "train_time_s": m.train_time_s,
                "confusion": m.test.track.confusion,
                "class_names": list(m.test.track.per_class),
                "overrides": _overrides(path.parent),
                "metrics": m.numbers(),
                "verdicts": m.test.verdicts,
            }
        )
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


def _fmt(column: str, value) -> str:
    if value is None:
        return ""
    if column.endswith(("_acc", "_f1")):
        return f"{value:.3f}"
    if column == "train_time_s":
        return f"{value:.1f}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def write_table(rows: list[dict], out: Path) -> None:
    """results.csv (every column, full precision) and results.md (readable, with footnotes)."""
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*COLUMNS, "test_part", "run_dir"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    leaky = no_test = False
    for r in rows:
        cells = {c: _fmt(c, r[c]) for c in COLUMNS}
        if r["split"].startswith("segment"):
            cells["split"] += "¹"
            leaky = True
        if r["test_part"] == "val":
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


def cv_groups(rows: list[dict]) -> dict[str, list[dict]]:
    """Runs that differ only by ``split.fold`` and ``seed``, by group name (their other overrides).

    The runs come in order of seed, then fold. Runs of different folders
    (sweeps) are never grouped together; the name starts with the folder when
    the runs come from more than one.
    """
    groups: dict[tuple[str, tuple[str, ...]], list[dict]] = {}
    for r in rows:
        overrides = r["overrides"] or []
        folds = [o.partition("=")[2] for o in overrides if override_key(o) == FOLD_KEY]
        if not folds:
            continue
        shared = tuple(
            sorted(
                o
                for o in overrides
                if override_key(o) not in (FOLD_KEY, REPEAT_KEY) and not override_key(o).startswith("paths.")
            )
        )
        groups.setdefault((str(Path(r["run_dir"]).parent), shared), []).append({**r, "fold": folds[0]})
    several = len({folder for folder, _ in groups}) > 1
    return {
        (f"{Path(folder).name}/" if several else "") + (",".join(shared) or "(no other overrides)"): sorted(
            runs, key=lambda r: (r["seed"], int(r["fold"]) if r["fold"].isdigit() else math.inf, r["fold"])
        )
        for (folder, shared), runs in groups.items()
    }


def _deals(runs: list[dict]) -> str:
    """How a group's seeds dealt the folds, for the results.md tables: ``one, split.seed=N`` when a numeric
    ``split.seed`` gives every seed the same deal, else ``one per seed``.

    A group's runs share every override but the fold and the seed, so the
    first run's overrides speak for all; ``split.seed=${seed}`` deals per seed.
    """
    for o in runs[0]["overrides"] or []:
        if override_key(o) == DEAL_KEY and "${" not in o:
            return f"one, {o}"
    return "one per seed"


def mean_std(values: list[float]) -> dict[str, float | int | None]:
    """Mean, sample standard deviation (ddof=1; None for one value) and count."""
    return {
        "mean": float(np.mean(values)),
        "std": float(np.std(values, ddof=1)) if len(values) > 1 else None,
        "n": len(values),
    }


def summarise(runs: list[dict]) -> dict[str, dict]:
    """``{metric: mean_std(...)}`` over ``runs`` for every metric any of them has."""
    names = dict.fromkeys(name for r in runs for name in r["metrics"])
    return {name: mean_std([r["metrics"][name] for r in runs if name in r["metrics"]]) for name in names}


def write_cross_validation(rows: list[dict], out: Path) -> dict[str, dict]:
    """summary.json and a mean ± std table appended to results.md, for the groups of :func:`cv_groups`."""
    groups = cv_groups(rows)
    summary_path = out / "summary.json"
    if not groups:  # no stale summary or track list from an earlier report into this folder
        summary_path.unlink(missing_ok=True)
        (out / "missed_tracks.csv").unlink(missing_ok=True)
        return {}
    summary = {name: summarise(runs) for name, runs in groups.items()}
    summary_path.write_text(json.dumps(summary, indent=2))
    header = ["group", "split", "folds", "seeds", "deals", "n", *CV_COLUMNS]
    lines = [
        "## Cross-validation: mean ± std over folds (and seeds)",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for name, runs in groups.items():
        stats = summary[name]
        cells = [
            name,
            ", ".join(dict.fromkeys(r["split"].rsplit(".fold", 1)[0] for r in runs)),
            ",".join(dict.fromkeys(r["fold"] for r in runs)),
            ",".join(dict.fromkeys(str(r["seed"]) for r in runs)),
            _deals(runs),
            str(len(runs)),
            *(_fmt_mean_std(stats.get(metric)) for metric in CV_COLUMNS.values()),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Each row: the runs that differ only by split.fold and seed (named by their other overrides); several "
        "seeds make a repeated cross-validation, each seed dealing its own folds unless split.seed fixes one "
        "deal for all (deals). std is the sample standard "
        "deviation over the runs (ddof=1). summary.json holds the mean, std and n of every val and test "
        "metric, per-class scores included.",
    ]
    lines += ensemble_of_seeds_section(groups)
    lines += missed_tracks_section(groups, out / "missed_tracks.csv")
    with open(out / "results.md", "a") as f:
        f.write("\n" + "\n".join(lines) + "\n")
    return summary


def ensemble_of_seeds(runs: list[dict]) -> dict | None:
    """Track accuracy of a repeated cross-validation's seeds taken together, out of fold.

    Each seed's cross-validation tests every track once, with a model that
    never trained on it; averaging those models' mean log-probabilities per
    genre (as ``mgc-predict`` does for several checkpoints) names each track
    by an ensemble of one model per seed, none of which saw it. That measures
    what ensembling buys without one more training run. None for a group of
    one seed, or runs that predate per-genre scores in their verdicts.
    """
    scored = [r for r in runs if any(v.log_probs for v in r["verdicts"])]
    seeds = {r["seed"] for r in scored}
    if len(seeds) < 2:
        return None
    tracks: dict[str, tuple[str, list[dict[str, float]]]] = {}
    alone = []
    for r in scored:
        for v in r["verdicts"]:
            tracks.setdefault(v.track, (v.genre, []))[1].append(v.log_probs)
            alone.append(not v.missed)
    right = [
        genre == max(scores[0], key=lambda g: np.mean([s[g] for s in scores])) for genre, scores in tracks.values()
    ]
    members = [len(scores) for _, scores in tracks.values()]
    return {
        "seeds": len(seeds),
        "tracks": len(tracks),
        "members": (min(members), max(members)),
        "accuracy": float(np.mean(right)),
        "alone": float(np.mean(alone)),
    }


def ensemble_of_seeds_section(groups: dict[str, list[dict]]) -> list[str]:
    """results.md lines: per repeated cross-validation, its seeds' models together against one at a time."""
    ensembles = {name: e for name, runs in groups.items() if (e := ensemble_of_seeds(runs))}
    if not ensembles:
        return []
    lines = [
        "",
        "## The seeds together: an out-of-fold ensemble",
        "",
        "| group | seeds | deals | tracks | models per track | track acc, one model | track acc, the models together |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, e in ensembles.items():
        low, high = e["members"]
        members = low if low == high else f"{low}-{high}"
        lines.append(
            f"| {name} | {e['seeds']} | {_deals(groups[name])} | {e['tracks']} | {members} "
            f"| {e['alone']:.3f} | {e['accuracy']:.3f} |"
        )
    lines += [
        "",
        "Each track is named by the mean, over the runs that tested it (one per seed, none trained on it), of "
        "its mean segment log-probabilities, as mgc-predict names a file with several checkpoints: the accuracy "
        "of an ensemble of one model per seed, each trained on the other folds' tracks. With one deal per seed "
        "the models trained on different tracks, like the fold checkpoints of one cross-validation; with one "
        "deal for all (split.seed fixed) they trained on the same tracks and differ only in their weights' "
        "start and augmentation draws: a deep ensemble. One model: the same verdicts counted one run at a time.",
    ]
    return lines


def missed_tracks(runs: list[dict]) -> list[dict]:
    """Every track the runs missed at least once: how many runs tested it, how many missed it, and
    what it was taken for; most often missed first (a share, then a count), then by name."""
    tracks: dict[str, dict] = {}
    for r in runs:
        for v in r["verdicts"]:
            t = tracks.setdefault(
                v.track, {"track": v.track, "genre": v.genre, "tested": 0, "missed": 0, "taken_for": Counter()}
            )
            t["tested"] += 1
            if v.missed:
                t["missed"] += 1
                t["taken_for"][v.predicted] += 1
    missed = [t for t in tracks.values() if t["missed"]]
    return sorted(missed, key=lambda t: (-t["missed"] / t["tested"], -t["missed"], t["track"]))


def missed_tracks_section(groups: dict[str, list[dict]], csv_path: Path) -> list[str]:
    """results.md lines naming each group's most-missed tracks; every missed track into ``csv_path``."""
    missed = {name: missed_tracks(runs) for name, runs in groups.items()}
    if not any(missed.values()):  # runs written before mgc recorded verdicts, or nothing missed
        csv_path.unlink(missing_ok=True)
        return []
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["group", "track", "genre", "tested", "missed", "taken_for"])
        writer.writeheader()
        writer.writerows(
            {"group": name, **t, "taken_for": _taken_for(t["taken_for"])} for name, ts in missed.items() for t in ts
        )
    lines = ["", "## Tracks missed most often"]
    for name, runs in groups.items():
        if missed[name]:
            older = sum(not r["verdicts"] for r in runs)
            note = f" ({older} of its {len(runs)} runs predate per-track verdicts: not counted)" if older else ""
            lines += ["", f"{name}:{note}", "", "| track | genre | missed / tested | taken for |", "|---|---|---|---|"]
            lines += [
                f"| {t['track']} | {t['genre']} | {t['missed']}/{t['tested']} | {_taken_for(t['taken_for'])} |"
                for t in missed[name][:MISSED_SHOWN]
            ]
    lines += [
        "",
        f"Per group, up to {MISSED_SHOWN} of the tracks its runs missed, most often missed first; a track missed "
        "by every fold and seed that tested it is hard for the configuration, not for one deal. "
        "missed_tracks.csv lists them all.",
    ]
    return lines


def _taken_for(counts: Counter) -> str:
    return ", ".join(f"{genre} ×{n}" for genre, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _fmt_mean_std(stats: dict | None) -> str:
    if stats is None:
        return ""
    return f"{stats['mean']:.3f}" + ("" if stats["std"] is None else f" ± {stats['std']:.3f}")


def bar_labels(rows: list[dict]) -> list[str]:
    """One label per run: its experiment, with split and seed where several runs share it (a cross-validation)."""
    names = [r["experiment"] if r["experiment"] != "train" else r["run"] for r in rows]
    shared = {n for n in names if names.count(n) > 1}
    return [f"{n} {r['split']} seed {r['seed']}" if n in shared else n for n, r in zip(names, rows)]


def plot_accuracy(rows: list[dict], path: Path) -> None:
    """Grouped bars: test segment vs track accuracy per run."""
    fig = accuracy_figure(rows)
    fig.savefig(path, dpi=120)


def accuracy_figure(rows: list[dict]) -> Figure:
    """The figure of :func:`plot_accuracy`; its title warns of leaky splits only when a run used one."""
    labels = bar_labels(rows)
    x = np.arange(len(rows))
    fig = Figure(figsize=(max(6.0, 0.9 * len(rows) + 2), 4.5))
    ax = fig.subplots()
    ax.bar(x - 0.2, [r["test_segment_acc"] for r in rows], 0.4, label="test segment accuracy")
    ax.bar(x + 0.2, [r["test_track_acc"] for r in rows], 0.4, label="test track accuracy")
    ax.set_xticks(x, labels, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.15)  # room for the legend above the bars
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.axhline(1 / max(len(rows[0]["class_names"]), 1), color="grey", linestyle=":", label="chance")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper center", ncol=3, fontsize=8)
    leaky = any(r["split"].startswith("segment") for r in rows)
    ax.set_title("test accuracy per run" + (" (segment splits leak: see results.md)" if leaky else ""))
    fig.tight_layout()
    return fig


def plot_confusion_grid(rows: list[dict], path: Path) -> None:
    """Small multiples of the track-level test confusion matrices (row-normalised)."""
    cols = min(4, len(rows))
    n_rows = math.ceil(len(rows) / cols)
    fig = Figure(figsize=(4.2 * cols, 4.2 * n_rows))
    axes = fig.subplots(n_rows, cols, squeeze=False)
    for ax in axes.flat[len(rows) :]:
        ax.axis("off")
    for ax, r in zip(axes.flat, rows):
        cm = np.asarray(r["confusion"], dtype=float)
        ax.imshow(cm / np.maximum(cm.sum(1, keepdims=True), 1), cmap="Blues", vmin=0, vmax=1)
        names = r["class_names"]
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("true", fontsize=8)
        label = r["experiment"] if r["experiment"] != "train" else r["run"]
        ax.set_title(f"{label}\n{r['split']}: track acc {r['test_track_acc']:.2f}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def write_report(roots: list[Path], out: Path) -> list[dict]:
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


if __name__ == "__main__":
    main()
