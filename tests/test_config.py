"""The composed run config (mgc.config and conf/train.yaml): the optional machine-local config, and the
checks that fail fast with one line before any data is touched."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from helpers import ROOT
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from mgc.cli import CONF_DIR
from mgc.config import check_config
from mgc.errors import MgcError


def composed(conf_dir, *overrides: str):
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            return compose("train", overrides=list(overrides))
    finally:
        GlobalHydra.instance().clear()


def test_a_local_config_sets_the_data_once_and_the_command_line_still_wins(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(CONF_DIR, conf)
    assert not (conf / "local" / "default.yaml").exists()
    assert composed(conf).data._target_ == "mgc.data.SyntheticGTZAN"  # without one: the defaults
    shutil.copy(conf / "local" / "example.yaml", conf / "local" / "default.yaml")
    cfg = composed(conf)
    assert (cfg.data._target_, cfg.data.root) == ("mgc.data.GTZAN", "~/data/gtzan/genres_original")
    assert composed(conf, "experiment=recommended").data.root == "~/data/gtzan/genres_original"
    assert composed(conf, "data.root=/elsewhere").data.root == "/elsewhere"


def test_the_local_config_is_ignored_by_git():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: nothing to ignore")
    out = subprocess.run(["git", "check-ignore", "conf/local/default.yaml"], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == "conf/local/default.yaml"
    out = subprocess.run(["git", "check-ignore", "conf/local/example.yaml"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 1  # the example is committed


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.lr=0", "optim.lr=0: the learning rate must be > 0 (e.g. optim.lr=1e-3)"),
        ("optim=adamw optim.weight_decay=-1", "optim.weight_decay=-1: must be >= 0"),
        ("datamodule.batch_size=0", "datamodule.batch_size=0: must be a positive integer"),
        ("train=false", "train=false needs ckpt_path=PATH: the checkpoint to test"),
        ("data=folder", "data.root is not set: pass data.root=... (the folder holding your GTZAN genres)"),
    ],
)
def test_a_value_that_cannot_work_is_one_line_naming_its_key(make_cfg, override, message):
    cfg = make_cfg(*override.split(), tiny=False)
    with pytest.raises(MgcError) as err:
        check_config(cfg)
    assert str(err.value) == message
