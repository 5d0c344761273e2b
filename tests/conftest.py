"""Shared fixtures: a tiny synthetic GTZAN (generated once per session) and config composition."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from mgc.train import CONF_DIR

SR = 22050
#: 4 clips of 12 s per genre: 4 MFCC segments and 1 chroma segment per clip.
TINY = ["data.clips_per_genre=4", "data.duration=12", "callbacks.progress_bar.refresh_rate=0"]


@pytest.fixture(scope="session")
def shared_dir(tmp_path_factory) -> Path:
    """Data and feature cache shared by every test of the session."""
    return tmp_path_factory.mktemp("shared")


@pytest.fixture(scope="session")
def tiny_source(shared_dir):
    from mgc.data import SyntheticGTZAN

    source = SyntheticGTZAN(shared_dir / "data" / "tiny", clips_per_genre=4, duration=12.0, seed=0)
    source.prepare()
    return source


@pytest.fixture
def make_cfg(shared_dir, tmp_path):
    """Compose conf/train.yaml with tiny data under a temporary outputs tree."""

    def _make(*overrides: str, tiny: bool = True) -> DictConfig:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(
                "train",
                overrides=[
                    f"paths.outputs={tmp_path / 'outputs'}",
                    f"paths.data_dir={shared_dir / 'data'}",
                    f"paths.cache_dir={shared_dir / 'cache'}",
                    *(TINY if tiny else []),
                    *overrides,
                ],
                return_hydra_config=True,
            )
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            cfg.paths.run_dir = str(tmp_path / "run")
        return cfg

    yield _make
    GlobalHydra.instance().clear()


def write_tone(path: Path, seconds: float, sr: int = SR, channels: int = 1, fmt: str | None = None,
               subtype: str = "PCM_16", freq: float = 440.0) -> Path:
    """A short sine tone as an audio file (format from the suffix unless ``fmt``)."""
    t = np.arange(int(seconds * sr)) / sr
    y = 0.3 * np.sin(2 * np.pi * freq * t)
    data = np.stack([y] * channels, axis=1) if channels > 1 else y
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, sr, format=fmt, subtype=subtype)
    return path
