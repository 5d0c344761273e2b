"""Transfer learning end to end: probes on frozen musicnn embeddings and fine-tuning, through train.py, on the tiny
synthetic set and on real dev clips (``../shared/data/gtzan-dev``)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import ROOT, shared_data

from mgc.features import MusicnnMel
from mgc.metrics import RunMetrics
from mgc.models import MusicnnClassifier
from mgc.predict import Predictor
from mgc.train import train_and_test

pytestmark = pytest.mark.slow


def _metadata(run_dir: Path) -> list[dict[str, str]]:
    (path,) = (run_dir / "tb").glob("*/musicnn/metadata.tsv")
    with path.open() as f:
        return list(csv.DictReader(f, delimiter="\t"))


def test_a_probe_run_shows_each_tracks_mean_embedding_in_the_projector(make_cfg, tmp_path):
    cfg = make_cfg("features=musicnn", "model=linear", "split=track_70_15_15", "trainer.max_epochs=1")
    train_and_test(cfg)
    rows = _metadata(tmp_path / "run")
    assert len(rows) == 40 and {r["split"] for r in rows} == {"train", "val", "test"}
    assert sum(r["split"] == "train" for r in rows) == 20  # 2 of each genre's 4 tracks, stratified
    assert len({r["genre"] for r in rows}) == 10
    assert all(r["track"].startswith(r["genre"] + ".") for r in rows)
    (tensors,) = (tmp_path / "run" / "tb").glob("*/musicnn/tensors.tsv")
    assert np.loadtxt(tensors, delimiter="\t").shape == (40, 200)  # penultimate: 200 numbers a track


def test_features_that_are_not_embeddings_write_no_projector(make_cfg, tmp_path):
    train_and_test(make_cfg("model=linear", "trainer.max_epochs=1"))
    assert list((tmp_path / "run" / "tb").glob("events.*"))
    assert not (tmp_path / "run" / "tb" / "projector_config.pbtxt").exists()


def test_fine_tuning_trains_the_pretrained_encoder_through_train_py(make_cfg, tmp_path):
    cfg = make_cfg(
        "features=musicnn_mel",
        "model=musicnn",
        "model.freeze=front_mid",
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=2",
        "datamodule.batch_size=8",
        "logger=none",
    )
    metrics = train_and_test(cfg)
    ckpt = torch.load(metrics.best_checkpoint, weights_only=True)
    state = ckpt["state_dict"]
    assert state["model.encoder.tags.weight"].shape == (10, 200)  # the genre head in place of the 50 tags
    assert ckpt["mgc_inference"]["mean"] is None  # musicnn's input is not standardised
    optimizer = ckpt["optimizer_states"][0]["param_groups"]
    assert sorted(g["initial_lr"] for g in optimizer) == pytest.approx([0.1 * cfg.optim.lr, cfg.optim.lr])

    clip = next(Path(cfg.data.root).rglob("*.wav"))  # predict builds the classifier from its config, then loads
    model = MusicnnClassifier((1, 96, 187), 10, cache_dir=cfg.paths.cache_dir)
    model.load_state_dict({k.removeprefix("model."): v for k, v in state.items()})
    patches, _ = MusicnnMel(segments_per_clip=None).clip(clip)
    with torch.no_grad():
        expected = torch.softmax(torch.log_softmax(model.eval()(torch.from_numpy(patches)), 1).mean(0), 0)
    got = dict(Predictor(metrics.best_checkpoint).predict(clip).ranking)
    assert [got[g] for g in ckpt["mgc_inference"]["class_names"]] == pytest.approx(expected.tolist(), abs=1e-5)


class TestOnRealClips:
    """The 50 real dev clips: the feature's first patch is the reference's, and a probe beats chance in a fold."""

    @pytest.fixture(scope="class")
    def dev(self) -> Path:
        return shared_data("gtzan-dev")

    def test_the_first_patch_of_a_clip_is_the_packages_first_patch(self, dev):
        with np.load(ROOT / "tests" / "data" / "musicnn_reference.npz") as ref:
            inputs, clips = ref["inputs"], ref["clips"]
        feature = MusicnnMel(segments_per_clip=1)
        for number, clip in enumerate(clips):
            patch, reason = feature.clip(dev / "genres" / clip)
            assert not reason
            np.testing.assert_allclose(patch[0, 0].T, inputs[2 * number], rtol=1e-4, atol=1e-4)

    def test_a_linear_probe_on_musicnn_embeddings_beats_chance_in_a_fold(self, dev, make_cfg):
        cfg = make_cfg(
            "data=gtzan",
            f"data.root={dev}",
            "features=musicnn",
            "features.segments_per_clip=3",  # three patches a clip: a third of the extraction
            "model=linear",
            "split=kfold",
            "split.fold=1",
            "split.val_fraction=0",
            "optim=adamw",
            "scheduler=none",
            "trainer.max_epochs=20",
            "logger=none",
            tiny=False,
        )
        metrics = RunMetrics.read(Path(train_and_test(cfg).run_dir) / "metrics.json")
        assert metrics.test.track.accuracy >= 0.5  # chance is 0.1: ten tracks, ten genres
