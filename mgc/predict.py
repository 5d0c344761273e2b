"""Name the genre of any audio file with a trained checkpoint.

    mgc-predict ckpt=outputs/runs/.../checkpoints/last.ckpt files=[song.wav,other.mp3]
    python -m mgc.predict ckpt=... files=[song.wav] json=true     # or --json: one JSON document
    mgc-predict ckpt=[fold0.ckpt,fold1.ckpt,...] files=[song.wav]  # an ensemble, e.g. the folds of `make cv`
    mgc-predict ckpt=outputs/multirun/2026-11-27/10-00-00_train files=[song.wav]  # every run of a sweep folder
    mgc-predict ckpt=... files=/data/gtzan/genres                   # every audio file under a folder

The checkpoint's inference contract (:mod:`mgc.checkpoint`) says which
features to extract, with which parameters: they are extracted from each file
over its whole length in consecutive segments, normalised with the training
statistics, and the genres are ranked by the mean of the segments'
log-probabilities. Several checkpoints (trained on the same features and
genres, e.g. the fold models of a cross-validation) form an ensemble: the
genres are ranked by the mean over the models of each one's mean segment
log-probability. A folder in ``ckpt`` stands for the checkpoint that each
finished run under it tested, so the fold models of a ``make cv`` sweep are
one argument. A folder in ``files`` stands for every audio file under
it. Where files sit in folders named after the checkpoint's genres (GTZAN's
``<genre>/<genre>.NNNNN.wav``), a last line, on stderr, says how many were
named the genre of their folder: a model's accuracy on real clips it was not
trained on, in one command. A file that cannot be read gets a one-line
error; the other files are still classified. Exit status: 0, 1 when some
file could not be classified, 2 on a user error (a bad checkpoint or
arguments).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from mgc.checkpoint import InferenceSpec
from mgc.cli import user_errors_exit
from mgc.data.gtzan import AUDIO_EXTENSIONS, audio_files_under
from mgc.errors import MgcError
from mgc.features.base import Extractor, decoder_warnings_silenced
from mgc.metrics import RunMetrics


@dataclass
class Prediction:
    """The genre ranking of one file, or why there is none."""

    file: str
    ranking: list[tuple[str, float]] = field(default_factory=list)
    segments: int = 0
    error: str = ""

    def as_dict(self) -> dict:
        if self.error:
            return {"file": self.file, "error": self.error}
        return {
            "file": self.file,
            "genre": self.ranking[0][0],
            "segments": self.segments,
            "ranking": [{"genre": g, "probability": round(p, 6)} for g, p in self.ranking],
        }

    def as_text(self, top: int = 3) -> str:
        if self.error:
            return f"{self.file}: error: {self.error}"
        best = ", ".join(f"{g} {p:.1%}" for g, p in self.ranking[:top])
        return f"{self.file}: {self.ranking[0][0]}  ({best}; {self.segments} segments)"


class Predictor:
    """The models, features and normalisation of one or more checkpoints, ready to classify files."""

    def __init__(self, ckpt: str | Path | list[str | Path]):
        paths = list(ckpt) if isinstance(ckpt, list | tuple) else [ckpt]
        specs = [InferenceSpec.load(p) for p in paths]
        # every full segment of the file, however long, with the training parameters
        extractors = [instantiate(OmegaConf.merge(s.features, {"segments_per_clip": None})) for s in specs]
        for path, spec, extractor in zip(paths[1:], specs[1:], extractors[1:]):
            if extractor.params() != extractors[0].params() or spec.class_names != specs[0].class_names:
                raise MgcError(
                    f"ckpt={path} was trained on other features or genres than ckpt={paths[0]}; an ensemble "
                    f"needs checkpoints of one feature config and one genre list (e.g. the folds of make cv)"
                )
        self.class_names = specs[0].class_names
        self.features: Extractor = extractors[0]
        if not self.features.from_audio:
            raise MgcError(
                f"ckpt={paths[0]}: its features ({self.features.name}) were read from a table, not computed "
                f"from audio, so it cannot classify audio files; train on an audio feature (mfcc-json, ...)"
            )
        self.members = [(spec.build_model(), spec.mean, spec.std) for spec in specs]

    @torch.no_grad()
    def predict(self, path: str | Path) -> Prediction:
        """Rank the genres for one file (never raises for a bad file)."""
        with decoder_warnings_silenced():
            feats, reason = self.features.clip(path)
        if feats is None:
            return Prediction(str(path), error=reason)
        x = torch.from_numpy(feats)
        logp = torch.stack([self._track_log_probs(x, *member) for member in self.members]).mean(0)
        probs = torch.softmax(logp, dim=0)  # renormalised mean log-probability, as for track accuracy
        order = torch.argsort(probs, descending=True)
        return Prediction(str(path), [(self.class_names[i], float(probs[i])) for i in order], len(x))

    @staticmethod
    def _track_log_probs(
        x: torch.Tensor, model: torch.nn.Module, mean: torch.Tensor | None, std: torch.Tensor | None
    ) -> torch.Tensor:
        """One model's mean log-probability over the segments ``x`` (normalised with its own statistics)."""
        if mean is not None:
            x = (x - mean) / std
        return torch.log_softmax(model(x), dim=1).mean(0)


def tested_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint a finished run tested (its ``metrics.json`` names it), looked up in the run's own
    ``checkpoints/`` so that a moved or copied run folder still works; None for a run without one."""
    best = RunMetrics.read(run_dir / "metrics.json").best_checkpoint
    for name in (Path(best).name if best else None, "last.ckpt"):
        if name and (run_dir / "checkpoints" / name).is_file():
            return run_dir / "checkpoints" / name
    return None


def _expand(entries: list[str], under: Callable[[Path], list[str]], nothing_under: str) -> list[str]:
    """``entries`` as given, each folder replaced by ``under(folder)``; a folder where that finds nothing is
    one line, ``nothing_under`` with ``{entry}`` filled in."""
    expanded = []
    for entry in entries:
        if not Path(entry).is_dir():
            expanded.append(entry)
            continue
        found = under(Path(entry))
        if not found:
            raise MgcError(nothing_under.format(entry=entry))
        expanded += found
    return expanded


def _checkpoints_under(folder: Path) -> list[str]:
    """The tested checkpoint of every finished run under ``folder``, counted on stderr."""
    runs = [tested_checkpoint(m.parent) for m in sorted(folder.rglob("metrics.json"))]
    found = [str(c) for c in runs if c is not None]
    if found:
        print(f"ckpt={folder}: {len(found)} checkpoint(s) of the runs under it", file=sys.stderr)
    return found


def expand_checkpoints(entries: list[str]) -> list[str]:
    """``ckpt=`` as given, each folder replaced by the tested checkpoint of every finished run under it."""
    return _expand(
        entries,
        _checkpoints_under,
        "ckpt={entry} is a folder with no finished run (a metrics.json beside its checkpoints/) in it or below; "
        "pass a .ckpt file, or a run or sweep folder of python train.py",
    )


def expand_folders(entries: list[str]) -> list[str]:
    """``files=`` as given, each folder replaced by the audio files under it (sorted)."""
    return _expand(
        entries,
        lambda folder: [str(f) for f in audio_files_under(folder)],
        f"files={{entry}} is a folder with no audio files ({', '.join(AUDIO_EXTENSIONS)}) in it or below; "
        "pass audio files or a folder that holds some",
    )


def folder_genre_summary(results: list[Prediction], class_names: list[str]) -> str | None:
    """How many files in a folder named after a genre were named that genre, and which label folders beside
    them the checkpoint has no genre for; None when the files do not sit in label folders at all."""
    labelled = [(r, genre) for r in results if (genre := Path(r.file).parent.name) in class_names]
    if not labelled:
        return _unknown_labels_only(results, class_names)
    classified = [(r, genre) for r, genre in labelled if not r.error]
    right = sum(r.ranking[0][0] == genre for r, genre in classified)
    share = f" ({right / len(classified):.1%})" if classified else ""
    unread = len(labelled) - len(classified)
    line = f"named the genre of their folder: {right} of {len(classified)} files{share}"
    line += f"; {unread} more could not be read" if unread else ""
    label_roots = {Path(r.file).parent.parent for r, _ in labelled}
    beside = [Path(r.file).parent for r in results if Path(r.file).parent.name not in class_names]
    unknown = sorted({folder.name for folder in beside if folder.parent in label_roots})
    if unknown:
        count = sum(folder.parent in label_roots for folder in beside)
        files = "1 file" if count == 1 else f"{count} files"
        line += f"; not counted: {files} in {', '.join(unknown)}, not a genre of the checkpoint"
    return line


def _unknown_labels_only(results: list[Prediction], class_names: list[str]) -> str | None:
    """A line for files in sibling label folders none of which the checkpoint knows (e.g. ``Rock/`` for
    ``rock``): no accuracy can be told; None for files that do not sit in sibling folders."""
    folders = {Path(r.file).parent for r in results}
    if len(folders) < 2 or len({f.parent for f in folders}) != 1:
        return None
    names = ", ".join(sorted(f.name for f in folders))
    return f"no accuracy: the files' folders ({names}) are none of the checkpoint's genres ({', '.join(class_names)})"


def _entries(value: object) -> list[str]:
    """A command-line value given as one path or as a list ``[a,b]``, as a list of strings."""
    return [str(v) for v in value] if OmegaConf.is_list(value) else [str(value)]


@user_errors_exit
def main(argv: list[str] | None = None) -> int:
    """``mgc-predict ckpt=PATH|[PATH,...] files=[a.wav,b.mp3] [json=true | --json]``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = OmegaConf.from_cli([a for a in argv if a != "--json"])
    as_json = "--json" in argv or bool(args.get("json", False))
    if not args.get("ckpt") or not args.get("files"):
        raise MgcError("ckpt= and files= are required: mgc-predict ckpt=PATH files=[a.wav,b.mp3] [json=true]")
    files = expand_folders(_entries(args.files))
    predictor = Predictor(expand_checkpoints(_entries(args.ckpt)))
    results = [predictor.predict(f) for f in files]
    if as_json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        for r in results:
            print(r.as_text(), file=sys.stderr if r.error else sys.stdout)
    summary = folder_genre_summary(results, predictor.class_names)
    if summary:
        print(summary, file=sys.stderr)
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
