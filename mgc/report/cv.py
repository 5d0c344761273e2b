"""Cross-validation in the report: grouping fold jobs, mean ± std, the seeds' out-of-fold ensemble, missed tracks.

Runs whose Hydra overrides set ``split.fold`` and are otherwise the same (``paths.*`` and ``seed``
aside) form a group; a sweep over ``seed`` as well is a repeated cross-validation, pooled in one group.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from pathlib import Path

import numpy as np

from mgc.cli import override_key
from mgc.report.rows import FOLD_KEY, ReportRow

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


def cv_groups(rows: list[ReportRow]) -> dict[str, list[ReportRow]]:
    """Runs that differ only by ``split.fold`` and ``seed``, by group name (their other overrides).

    The runs come in order of seed, then fold. Runs of different folders
    (sweeps) are never grouped together; the name starts with the folder when
    the runs come from more than one.
    """
    groups: dict[tuple[str, tuple[str, ...]], list[ReportRow]] = {}
    for r in rows:
        if r.fold is None:
            continue
        shared = tuple(
            sorted(
                o
                for o in r.overrides or []
                if override_key(o) not in (FOLD_KEY, REPEAT_KEY) and not override_key(o).startswith("paths.")
            )
        )
        groups.setdefault((str(Path(r.run_dir).parent), shared), []).append(r)
    several = len({folder for folder, _ in groups}) > 1
    return {
        (f"{Path(folder).name}/" if several else "") + (",".join(shared) or "(no other overrides)"): sorted(
            runs, key=lambda r: (r.seed, int(r.fold) if r.fold.isdigit() else math.inf, r.fold)
        )
        for (folder, shared), runs in groups.items()
    }


def _deals(runs: list[ReportRow]) -> str:
    """How a group's seeds dealt the folds, for the results.md tables: ``one, split.seed=N`` when a numeric
    ``split.seed`` gives every seed the same deal, else ``one per seed``.

    A group's runs share every override but the fold and the seed, so the
    first run's overrides speak for all; ``split.seed=${seed}`` deals per seed.
    """
    for o in runs[0].overrides or []:
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


def summarise(runs: list[ReportRow]) -> dict[str, dict]:
    """``{metric: mean_std(...)}`` over ``runs`` for every metric any of them has."""
    names = dict.fromkeys(name for r in runs for name in r.metrics)
    return {name: mean_std([r.metrics[name] for r in runs if name in r.metrics]) for name in names}


def write_cross_validation(rows: list[ReportRow], out: Path) -> dict[str, dict]:
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
            ", ".join(dict.fromkeys(r.split.rsplit(".fold", 1)[0] for r in runs)),
            ",".join(dict.fromkeys(str(r.fold) for r in runs)),
            ",".join(dict.fromkeys(str(r.seed) for r in runs)),
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


def ensemble_of_seeds(runs: list[ReportRow]) -> dict | None:
    """Track accuracy of a repeated cross-validation's seeds taken together, out of fold.

    Each seed's cross-validation tests every track once, with a model that
    never trained on it; averaging those models' mean log-probabilities per
    genre (as ``mgc-predict`` does for several checkpoints) names each track
    by an ensemble of one model per seed, none of which saw it. That measures
    what ensembling buys without one more training run. None for a group of
    one seed, or runs that predate per-genre scores in their verdicts.
    """
    scored = [r for r in runs if any(v.log_probs for v in r.verdicts)]
    seeds = {r.seed for r in scored}
    if len(seeds) < 2:
        return None
    tracks: dict[str, tuple[str, list[dict[str, float]]]] = {}
    alone = []
    for r in scored:
        for v in r.verdicts:
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


def ensemble_of_seeds_section(groups: dict[str, list[ReportRow]]) -> list[str]:
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


def missed_tracks(runs: list[ReportRow]) -> list[dict]:
    """Every track the runs missed at least once: how many runs tested it, how many missed it, and
    what it was taken for; most often missed first (a share, then a count), then by name."""
    tracks: dict[str, dict] = {}
    for r in runs:
        for v in r.verdicts:
            t = tracks.setdefault(
                v.track, {"track": v.track, "genre": v.genre, "tested": 0, "missed": 0, "taken_for": Counter()}
            )
            t["tested"] += 1
            if v.missed:
                t["missed"] += 1
                t["taken_for"][v.predicted] += 1
    missed = [t for t in tracks.values() if t["missed"]]
    return sorted(missed, key=lambda t: (-t["missed"] / t["tested"], -t["missed"], t["track"]))


def missed_tracks_section(groups: dict[str, list[ReportRow]], csv_path: Path) -> list[str]:
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
            older = sum(not r.verdicts for r in runs)
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
