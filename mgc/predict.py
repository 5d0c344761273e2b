"""Name the genre of any audio file with a trained checkpoint.

    python -m mgc.predict ckpt=outputs/runs/.../checkpoints/last.ckpt files=[song.wav,other.mp3]
    python -m mgc.predict ckpt=... files=[song.wav] json=true     # or --json: one JSON document

The checkpoint carries the run's config, so the same features are extracted
(with the same parameters) from each file, over its whole length in
consecutive segments, normalised with the training statistics, and the
genres are ranked by the mean of the segments' log-probabilities. A file that
cannot be read gets a one-line error; the other files are still classified.
"""

from __future__ import annotations

import json
import pickle
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from mgc.errors import MgcError
from mgc.features.base import Extractor, decoder_warnings_silenced


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
        return {"file": self.file, "genre": self.ranking[0][0], "segments": self.segments,
                "ranking": [{"genre": g, "probability": round(p, 6)} for g, p in self.ranking]}

    def as_text(self, top: int = 3) -> str:
        if self.error:
            return f"{self.file}: error: {self.error}"
        best = ", ".join(f"{g} {p:.1%}" for g, p in self.ranking[:top])
        return f"{self.file}: {self.ranking[0][0]}  ({best}; {self.segments} segments)"


class Predictor:
    """A checkpoint's model, features and normalisation, ready to classify files."""

    def __init__(self, ckpt: str | Path):
        ckpt = Path(ckpt)
        try:
            state = torch.load(ckpt, map_location="cpu", weights_only=True)
            hp = state["hyper_parameters"]
            config, self.class_names, input_shape = hp["run_config"], hp["class_names"], hp["input_shape"]
        except FileNotFoundError:
            raise MgcError(f"ckpt={ckpt} does not exist: pass the path of an mgc .ckpt file") from None
        except (pickle.UnpicklingError, RuntimeError, EOFError, KeyError, TypeError, AttributeError) as err:
            raise MgcError(f"ckpt={ckpt} is not an mgc checkpoint ({type(err).__name__}); "
                           f"pass a .ckpt written by python train.py") from None
        features_cfg = OmegaConf.create(config["features"])
        features_cfg.json_path = None  # always from audio here
        features_cfg.segments_per_clip = None  # every full segment of the file
        self.features: Extractor = instantiate(features_cfg)
        self.model = instantiate(OmegaConf.create(config["model"]), input_shape=input_shape,
                                 num_classes=len(self.class_names))
        weights = {k.removeprefix("model."): v for k, v in state["state_dict"].items() if k.startswith("model.")}
        self.model.load_state_dict(weights)
        self.model.eval()
        norm = state.get("GenreDataModule", {})
        self.mean, self.std = norm.get("mean"), norm.get("std")

    @torch.no_grad()
    def predict(self, path: str | Path) -> Prediction:
        """Rank the genres for one file (never raises for a bad file)."""
        with decoder_warnings_silenced():
            feats, reason = self.features.clip(path)
        if feats is None:
            return Prediction(str(path), error=reason)
        x = torch.from_numpy(feats)
        if self.mean is not None:
            x = (x - self.mean) / self.std
        logp = torch.log_softmax(self.model(x), dim=1).mean(0)
        probs = torch.softmax(logp, dim=0)  # renormalised mean log-probability, as for track accuracy
        order = torch.argsort(probs, descending=True)
        return Prediction(str(path), [(self.class_names[i], float(probs[i])) for i in order], len(x))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in argv
    args = OmegaConf.from_cli([a for a in argv if a != "--json"])
    as_json = as_json or bool(args.get("json", False))
    if not args.get("ckpt") or not args.get("files"):
        print("usage: python -m mgc.predict ckpt=PATH files=[a.wav,b.mp3] [json=true]", file=sys.stderr)
        return 2
    files = list(args.files) if OmegaConf.is_list(args.files) else [str(args.files)]
    try:
        predictor = Predictor(args.ckpt)
    except MgcError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    results = [predictor.predict(f) for f in files]
    if as_json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        for r in results:
            print(r.as_text(), file=sys.stderr if r.error else sys.stdout)
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
