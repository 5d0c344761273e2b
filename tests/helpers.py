"""What several test files use: the tiny data overrides, config composition, audio files, a faulty model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import lightning.pytorch as L
import numpy as np
import pytest
import soundfile as sf
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from mgc.cli import CONF_DIR
from mgc.journal import entries as journal_entries
from mgc.models import Linear

ROOT = Path(__file__).resolve().parents[1]
SR = 22050
#: 4 clips of 12 s per genre: 4 MFCC segments and 1 chroma segment per clip.
TINY = ["data.clips_per_genre=4", "data.duration=12", "callbacks.progress_bar.refresh_rate=0"]
#: Narrower layers for runs that check the plumbing, not accuracy.
NARROW = {
    "lstm": ["model.hidden_size=32"],
    "bilstm": ["model.hidden_size=32"],
    "gru": ["model.hidden_size=32"],
    "cnn": ["model.channels=[16,16,16,32]"],
    "short_chunk_cnn": ["model.channels=[8,8,16,16,16,16,32]"],
    "ensemble": ["model.member.channels=[8,8,16,16,16,16,32]"],
}


def options(group: str) -> list[str]:
    """Every option of a config group, read from ``conf/<group>/``: an option added later is tested too."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


#: Options the generic model x feature tests leave to a test file of their own, and why.
TESTED_APART = {
    "model": {"musicnn": "reads features=musicnn_mel alone (tests/test_transfer.py)"},
    "features": {
        "musicnn": "a pretrained encoder's embeddings (tests/test_transfer.py)",
        "musicnn_mel": "the encoder's own mel patches (tests/test_transfer.py)",
        "kaggle-csv": "a table of precomputed features, not audio (tests/test_kaggle.py)",
    },
}


def generic_options(group: str) -> list[str]:
    """:func:`options` less those in :data:`TESTED_APART`."""
    return [o for o in options(group) if o not in TESTED_APART.get(group, {})]


#: conf/experiment/ holds the journal's entries (named by their date, e.g. mar05_gru) and mgc's own experiments
#: (recommended, the CNN it replaced, fine-tuning musicnn).
EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
JOURNAL = journal_entries()
OWN = [e for e in EXPERIMENTS if e not in JOURNAL]


def compose_cfg(shared: Path, outputs: Path, run_dir: Path, *overrides: str, tiny: bool = True) -> DictConfig:
    """conf/train.yaml composed as ``python train.py`` would, data and cache under ``shared``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                f"paths.outputs={outputs}",
                f"paths.data_dir={shared / 'data'}",
                f"paths.cache_dir={shared / 'cache'}",
                *(TINY if tiny else []),
                *overrides,
            ],
            return_hydra_config=True,
        )
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.run_dir = str(run_dir)
    return cfg


def option_config(group: str, option: str, *overrides: str) -> DictConfig:
    """The ``group`` node of ``conf/train.yaml`` composed with ``group=option`` (its base configs included) and
    ``overrides``: what train.py instantiates."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=[f"{group}={option}", *overrides])[group]


def cli(*args: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """``python -m <module or script> args...`` in a fresh process (``train.py`` for a path ending in .py)."""
    command = [sys.executable, *args] if args[0].endswith(".py") else [sys.executable, "-m", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def hparams_of(run_dir: Path) -> tuple[dict, set]:
    """The HPARAMS entry and the scalar tags of a run's TensorBoard events."""
    hparams, tags = {}, set()
    for events in (run_dir / "tb").glob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events))
        acc.Reload()
        tags |= set(acc.Tags()["scalars"])
        try:
            contents = acc.PluginTagToContent("hparams").values()
        except KeyError:  # this event file holds scalars only
            contents = []
        for content in contents:
            data = plugin_data_pb2.HParamsPluginData.FromString(content)
            if data.HasField("session_start_info"):
                hparams = {k: v.string_value or v.number_value for k, v in data.session_start_info.hparams.items()}
    return hparams, tags


def write_tone(
    path: Path,
    seconds: float,
    sr: int = SR,
    channels: int = 1,
    fmt: str | None = None,
    subtype: str = "PCM_16",
    freq: float = 440.0,
) -> Path:
    """A short sine tone as an audio file (format from the suffix unless ``fmt``)."""
    t = np.arange(int(seconds * sr)) / sr
    y = 0.3 * np.sin(2 * np.pi * freq * t)
    data = np.stack([y] * channels, axis=1) if channels > 1 else y
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, sr, format=fmt, subtype=subtype)
    return path


class NaNAfter(Linear):
    """A linear model whose logits turn NaN from its ``train_steps``-th training forward on.

    Built from a config (``model._target_=helpers.NaNAfter``) like any model, so
    a test injects the fault through the same seam a user's model goes through.
    """

    def __init__(self, input_shape: Sequence[int], num_classes: int, train_steps: int = 2):
        super().__init__(input_shape, num_classes)
        self.train_steps, self.seen = train_steps, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = super().forward(x)
        if self.training:
            self.seen += 1
            if self.seen > self.train_steps:
                return logits * float("nan")
        return logits


def shared_data(relative: str) -> Path:
    """``../shared/data/<relative>`` beside the checkout, for a test module that needs it.

    Where it is absent the calling module is skipped with a reason naming it,
    except under ``CI=true``: CI always has ``../shared``, so there a broken
    path fails instead of silently skipping.
    """
    path = ROOT.parent / "shared" / "data" / relative
    if not path.exists():
        why = f"{path} is absent (real GTZAN data beside the checkout, as ../shared/data/{relative})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{why}; CI=true and CI always has it, so a broken path must not skip", pytrace=False)
        pytest.skip(why, allow_module_level=True)
    return path


class RecordRows(L.Callback):
    """Writes which data set rows each rank trained on, and how it held the segments, to ``out/rank<r>.json``
    (``+callbacks.rows._target_=helpers.RecordRows +callbacks.rows.out=DIR``, with tests/ on the path)."""

    def __init__(self, out: str):
        self.out, self.rows = Path(out), []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.rows += batch.index.tolist()

    def on_train_end(self, trainer, pl_module) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        held = type(trainer.datamodule.data.x).__name__
        record = {"rows": self.rows, "held": held, "world_size": trainer.world_size}
        (self.out / f"rank{trainer.global_rank}.json").write_text(json.dumps(record))
