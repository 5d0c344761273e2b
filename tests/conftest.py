"""Fixtures: a tiny synthetic GTZAN (generated once per session) and config composition."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import compose_cfg
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig


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
    """Compose conf/train.yaml with tiny data under a temporary outputs tree (run dir: ``tmp_path/run``)."""

    def _make(*overrides: str, tiny: bool = True) -> DictConfig:
        return compose_cfg(shared_dir, tmp_path / "outputs", tmp_path / "run", *overrides, tiny=tiny)

    yield _make
    GlobalHydra.instance().clear()
