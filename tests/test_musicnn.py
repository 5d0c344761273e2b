"""musicnn in PyTorch: parity with the package's TensorFlow graph, the weights' reader and cache, the embedding
feature and fine-tuning's freezing. The reference arrays come from ``scripts/musicnn_reference.py``."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import ROOT

from mgc.errors import MgcError
from mgc.features import MusicnnEmbedding, MusicnnMel
from mgc.models import MusicnnClassifier
from mgc.models import musicnn_weights as mw
from mgc.models.musicnn import Musicnn
from mgc.models.tf_checkpoint import CheckpointError, read_checkpoint

REFERENCE = ROOT / "tests" / "data" / "musicnn_reference.npz"
WEIGHTS = ["MSD_musicnn", "MTT_musicnn", "MSD_vgg", "MTT_vgg"]
#: Width of each layer a probe can read, per architecture.
WIDTHS = {"penultimate": 200, "max_pool": 753, "mean_pool": 753, "taggram": 50, "pool5": 256}


@pytest.fixture(scope="session")
def weights_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("musicnn-weights")


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE) as arrays:
        return dict(arrays)


@pytest.mark.parametrize("weights", WEIGHTS)
def test_the_encoder_gives_the_tensorflow_graphs_outputs_on_real_patches(weights, reference, weights_cache):
    """Taggram and penultimate (pool5 for VGG) within 1e-4; the pools, which reach about 90, within 1e-3: float32
    sums of thousands of terms in another order."""
    model = mw.pretrained(weights, weights_cache)
    patches = torch.from_numpy(reference["inputs"]).transpose(1, 2)[:, None]  # TF's (time, bands) to (1, bands, time)
    with torch.no_grad():
        ours = model.activations(patches)
    layers = [k.split("/")[1] for k in reference if k.startswith(f"{weights}/")]
    assert {"taggram"} < set(layers)
    for layer in layers:
        expected = reference[f"{weights}/{layer}"]
        assert ours[layer].shape == expected.shape
        if layer.endswith("_pool"):
            np.testing.assert_allclose(ours[layer].numpy(), expected, rtol=0, atol=1e-3)
        else:
            np.testing.assert_allclose(ours[layer].numpy(), expected, rtol=0, atol=1e-4)


def test_the_reference_patches_are_float32_from_three_real_clips(reference):
    assert reference["inputs"].dtype == np.float32 and reference["inputs"].shape == (6, 187, 96)
    assert np.isfinite(reference["inputs"]).all() and len(set(reference["clips"])) == 3


def _package_copy(tmp_path: Path, weights: str = "MSD_musicnn") -> Path:
    folder = tmp_path / weights
    shutil.copytree(mw.package_folder(weights), folder)
    return folder


def test_a_torn_or_damaged_checkpoint_is_refused_in_one_line(tmp_path):
    folder = _package_copy(tmp_path)
    data = folder / ".data-00000-of-00001"
    whole = data.read_bytes()
    data.write_bytes(whole[: len(whole) // 2])  # torn
    with pytest.raises(CheckpointError, match="fails its checksum") as err:
        read_checkpoint(f"{folder}/")
    assert "\n" not in str(err.value)
    damaged = bytearray(whole)
    damaged[len(whole) // 3] ^= 0xFF  # one flipped byte in the middle
    data.write_bytes(bytes(damaged))
    with pytest.raises(CheckpointError, match="fails its checksum"):
        read_checkpoint(f"{folder}/")
    data.unlink()
    with pytest.raises(CheckpointError, match="missing checkpoint data file"):
        read_checkpoint(f"{folder}/")
    (folder / ".index").write_bytes(b"not a table" * 10)
    with pytest.raises(CheckpointError, match="not a TensorFlow checkpoint index"):
        read_checkpoint(f"{folder}/")


def test_the_reader_reads_every_tensor_of_the_bundle_with_its_shape(weights_cache):
    tensors = read_checkpoint(f"{mw.package_folder('MSD_musicnn')}/")
    assert tensors["conv2d/kernel"].shape == (7, 38, 1, 204)  # (time, bands, in, out): 40% of 96 bands
    assert tensors["dense/kernel"].shape == (1506, 200) and tensors["dense_1/kernel"].shape == (200, 50)
    assert len(tensors) == 150 and all(t.dtype == np.float32 for t in tensors.values())


def test_the_weights_cache_refuses_and_rebuilds_a_torn_file(tmp_path, caplog):
    first = mw.converted("MSD_musicnn", tmp_path)
    (cached,) = (tmp_path / "musicnn").glob("MSD_musicnn-*.pt")
    cached.write_bytes(cached.read_bytes()[:1000])  # torn
    again = mw.converted("MSD_musicnn", tmp_path)
    assert "unreadable" in caplog.text and "converting again" in caplog.text
    assert first.keys() == again.keys() and all(torch.equal(first[k], again[k]) for k in first)
    assert cached.stat().st_size > 1_000_000 and not list((tmp_path / "musicnn").glob("*.tmp-*"))


def test_a_missing_package_is_one_line_saying_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(mw.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MgcError, match=r"not installed: pip install --no-deps musicnn==0\.1\.0") as err:
        mw.pretrained("MSD_musicnn", tmp_path)
    assert "\n" not in str(err.value)


def test_a_tensor_of_the_wrong_shape_is_one_line_naming_it(monkeypatch, tmp_path):
    real = mw.read_checkpoint

    def transposed_dense(prefix):
        tensors = real(prefix)
        tensors["dense/kernel"] = tensors["dense/kernel"].T
        return tensors

    monkeypatch.setattr(mw, "read_checkpoint", transposed_dense)
    with pytest.raises(MgcError, match=r"dense\.weight has shape \(1506, 200\), the architecture wants \(200, 1506\)"):
        mw.converted("MSD_musicnn", tmp_path)
    assert not list((tmp_path / "musicnn").glob("*.pt"))  # nothing cached


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: MusicnnEmbedding(weights="GTZAN_musicnn"), "features.weights=GTZAN_musicnn is not a musicnn"),
        (lambda: MusicnnEmbedding(layer="cnn4"), "features.layer=cnn4 is not a layer of MSD_musicnn; choose one or"),
        (lambda: MusicnnEmbedding(weights="MSD_vgg", layer="penultimate"), "choose one or more of pool5, taggram"),
        (lambda: MusicnnClassifier((1, 96, 187), 10, freeze="half"), "model.freeze=half is not a choice"),
        (lambda: MusicnnClassifier((1, 13, 130), 10), "train it with features=musicnn_mel"),
    ],
)
def test_bad_names_are_one_line_listing_the_choices(make, message):
    with pytest.raises(MgcError, match=message) as err:
        make()
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("weights", "layer"),
    [
        ("MSD_musicnn", "penultimate"),
        ("MSD_musicnn", "max_pool"),
        ("MTT_musicnn", "mean_pool"),
        ("MSD_musicnn", "taggram"),
        ("MSD_vgg", "pool5"),
        ("MSD_musicnn", ["taggram", "penultimate"]),
    ],
)
def test_every_layer_option_has_the_shape_it_reports(weights, layer, weights_cache):
    """``(segments, 1, width, 1)``; layers concatenate in the order given."""
    rng = np.random.default_rng(0)
    segments = rng.normal(scale=0.1, size=(2, 48000)).astype(np.float32)
    feature = MusicnnEmbedding(weights=weights, layer=layer, cache_dir=weights_cache)
    out = feature.compute(segments)
    layers = [layer] if isinstance(layer, str) else layer
    assert out.shape == (2, 1, sum(WIDTHS[name] for name in layers), 1) and out.dtype == np.float32
    if len(layers) > 1:
        alone = MusicnnEmbedding(weights=weights, layer=layers[0], cache_dir=weights_cache).compute(segments)
        np.testing.assert_array_equal(out[:, :, : WIDTHS[layers[0]]], alone)


def test_the_input_patch_is_musicnns_float32_log_mel():
    """log10(10000 * mel power + 1) of librosa's mel spectrogram, 187 frames; finite where float16 overflows."""
    import librosa

    t = np.arange(48000) / 16000
    loud = (0.99 * np.sign(np.sin(2 * np.pi * 110 * t))).astype(np.float32)[None]  # a full-scale square wave
    patch = MusicnnMel().compute(loud)
    mel = librosa.feature.melspectrogram(y=loud[0], sr=16000, n_fft=512, hop_length=256, n_mels=96)[:, :187]
    np.testing.assert_allclose(patch[0, 0], np.log10(10000 * mel + 1), rtol=1e-5, atol=1e-5)
    assert patch.shape == (1, 1, 96, 187) and np.isfinite(patch).all()
    assert not np.isfinite(np.log10(10000 * mel.astype(np.float16) + 1)).all()  # the package's cast overflows


def _train_steps(model: MusicnnClassifier, steps: int = 3) -> None:
    groups = model.parameter_groups()
    optimizer = torch.optim.SGD([{"params": g["params"], "lr": 0.1 * g["lr_scale"]} for g in groups], lr=0.1)
    model.train()
    rng = torch.Generator().manual_seed(0)
    for _ in range(steps):
        x = torch.randn(4, 1, 96, 187, generator=rng) + 2
        loss = torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 0]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize(
    ("freeze", "unchanged", "changed"),
    [
        ("encoder", ["front_end", "mid_end", "pool_bn", "dense", "dense_bn"], ["tags"]),
        ("front_mid", ["front_end", "mid_end"], ["pool_bn", "dense", "dense_bn", "tags"]),
        ("none", [], ["front_end", "mid_end", "pool_bn", "dense", "tags"]),
    ],
)
def test_frozen_stages_keep_weights_and_batch_norm_statistics_while_the_rest_learns(
    freeze, unchanged, changed, weights_cache
):
    model = MusicnnClassifier((1, 96, 187), 3, freeze=freeze, cache_dir=weights_cache)
    before = _snapshot(model.encoder)
    _train_steps(model)
    after = model.encoder.state_dict()
    for name in before:
        stage = name.split(".")[0]
        if stage in unchanged:
            assert torch.equal(before[name], after[name]), f"{name} changed under freeze={freeze}"
    for stage in changed:
        keys = [k for k in before if k.split(".")[0] == stage and not k.endswith("num_batches_tracked")]
        assert any(not torch.equal(before[k], after[k]) for k in keys), f"{stage} did not learn under freeze={freeze}"
    if freeze == "none":  # running statistics move too when nothing is frozen
        assert not torch.equal(before["front_end.input_bn.running_mean"], after["front_end.input_bn.running_mean"])


def test_the_encoder_learns_at_its_scale_of_the_learning_rate(weights_cache):
    """GenreClassifier turns the model's parameter groups into learning rates lr x scale."""
    from mgc.module import GenreClassifier

    model = MusicnnClassifier((1, 96, 187), 3, freeze="none", encoder_lr_scale=0.05, cache_dir=weights_cache)
    module = GenreClassifier(
        model,
        optimizer=lambda params: torch.optim.AdamW(params, lr=0.002),
        scheduler=lambda opt, steps: {"scheduler": torch.optim.lr_scheduler.ConstantLR(opt, 1.0, 0)},
        class_names=["a", "b", "c"],
    )
    module.steps_per_epoch = lambda: 1
    optimizer = module.configure_optimizers()["optimizer"]
    lrs = sorted(g["lr"] for g in optimizer.param_groups)
    assert lrs == pytest.approx([0.002 * 0.05, 0.002])
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(list(model.parameters()))


def test_the_encoder_state_dict_round_trips_through_a_fresh_classifier(weights_cache):
    """What predict does: build the model from its config, then load the trained weights; the keys are the
    encoder's alone, whatever is frozen."""
    trained = MusicnnClassifier((1, 96, 187), 4, freeze="front_mid", cache_dir=weights_cache)
    _train_steps(trained, steps=1)
    fresh = MusicnnClassifier((1, 96, 187), 4, freeze="encoder", cache_dir=weights_cache)
    assert all(k.startswith("encoder.") for k in trained.state_dict())
    fresh.load_state_dict(trained.state_dict())
    x = torch.randn(2, 1, 96, 187)
    assert torch.equal(fresh.eval()(x), trained.eval()(x))
    assert isinstance(fresh.encoder, Musicnn)
