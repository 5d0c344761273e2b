"""Training: every model on every feature, learning for real, resuming, outputs, bad overrides."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as L
import pytest
import torch
import torch.nn.functional as F
from helpers import NARROW, TINY, generic_options, hparams_of

from mgc.batches import EpochBatches, TensorBatches
from mgc.errors import MgcError
from mgc.models import Linear
from mgc.module import GenreClassifier
from mgc.scheduler import constant
from mgc.train import train_and_test

pytestmark = pytest.mark.slow  # end-to-end runs: make test runs them, make test-fast leaves them out

ROOT = Path(__file__).resolve().parents[1]
MODELS = generic_options("model")
#: Every feature of conf/features, with what it needs on the 12-s tiny clips.
FEATURES = {f: {"mfcc-png": ["features.segment_seconds=10"]}.get(f, []) for f in generic_options("features")}


@pytest.mark.parametrize("feature", FEATURES)
@pytest.mark.parametrize("model", MODELS)
def test_fast_dev_run_every_model_on_every_feature(make_cfg, model, feature):
    cfg = make_cfg(
        f"model={model}",
        f"features={feature}",
        *FEATURES[feature],
        "+trainer.fast_dev_run=true",
        *NARROW.get(model, []),
    )
    metrics = train_and_test(cfg)
    assert metrics.test.segments > 0 and 0 <= metrics.test.track.accuracy <= 1
    assert metrics.choices["model"] == model and metrics.choices["features"] == feature


@pytest.mark.parametrize(
    "split", ["segment_90_10", "segment_70_30", "segment_80_20", "segment_80_10_10", "track_80_10_10", "track_70_15_15"]
)
@pytest.mark.parametrize("optim", ["adam", "rmsprop", "sgd", "adamw"])
def test_every_split_and_optimizer_composes_and_runs(make_cfg, split, optim):
    metrics = train_and_test(make_cfg(f"split={split}", f"optim={optim}", "model=linear", "+trainer.fast_dev_run=true"))
    assert metrics.split == split
    assert metrics.test_part == ("test" if split.count("_") == 3 else "val")


def test_a_short_real_run_beats_chance_and_writes_every_output(make_cfg, tmp_path):
    cfg = make_cfg("model=mlp", "optim=adam", "scheduler=none", "trainer.max_epochs=12", "datamodule.batch_size=16")
    metrics = train_and_test(cfg)
    assert metrics.test.track.accuracy >= 0.4  # 10 genres: chance is 0.1
    assert metrics.val.segment.accuracy >= 0.4
    run_dir = Path(cfg.paths.run_dir)
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["test"]["segment"]["accuracy"] == metrics.test.segment.accuracy
    assert set(saved["test"]["track"]["per_class"]["rock"]) == {"precision", "recall", "f1"}
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert Path(saved["best_checkpoint"]).is_file()
    assert (run_dir / "confusion_matrix.png").stat().st_size > 10_000
    assert (run_dir / "curves.png").stat().st_size > 10_000
    assert list((run_dir / "tb").glob("events.out.tfevents.*"))


def test_resume_from_last_checkpoint_continues_the_epoch_count(make_cfg, tmp_path):
    first = train_and_test(make_cfg("model=linear", "trainer.max_epochs=2"))
    last = Path(first.run_dir) / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["epoch"] == 1
    second_cfg = make_cfg("model=linear", "trainer.max_epochs=4", f"ckpt_path={last}")
    second_cfg.paths.run_dir = str(tmp_path / "resumed")
    second = train_and_test(second_cfg)
    assert second.epochs == 4
    ckpt = torch.load(Path(second.run_dir) / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["epoch"] == 3
    assert [h["epoch"] for h in ckpt["mgc_history"]] == [0, 1, 2, 3]  # the curves survive the resume


def test_test_only_from_a_checkpoint(make_cfg, tmp_path):
    first = train_and_test(make_cfg("model=linear", "trainer.max_epochs=1"))
    cfg = make_cfg("model=linear", "train=false", f"ckpt_path={first.best_checkpoint}")
    cfg.paths.run_dir = str(tmp_path / "test_only")
    again = train_and_test(cfg)
    assert again.test.segment.accuracy == first.test.segment.accuracy


def test_same_seed_same_metrics(make_cfg, tmp_path):
    a = train_and_test(make_cfg("model=mlp", "trainer.max_epochs=2"))
    cfg = make_cfg("model=mlp", "trainer.max_epochs=2")
    cfg.paths.run_dir = str(tmp_path / "again")
    b = train_and_test(cfg)
    assert a.test.segment == b.test.segment and a.val.track == b.val.track


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.lr=-1", "optim.lr=-1"),
        ("datamodule.batch_size=0", "datamodule.batch_size=0"),
        ("data=gtzan", "data.root is not set"),
        ("split=filtered", "split=filtered needs the real GTZAN"),
        ("data.clips_per_genre=2", "genre 'blues' has 2 tracks, too few for a non-empty train/val/test part each"),
    ],
)
def test_bad_values_fail_with_one_line(make_cfg, override, message, monkeypatch):
    from mgc.features import Extractor

    def no_extraction(*args, **kwargs):
        raise AssertionError("the error must come before any feature extraction")

    monkeypatch.setattr(Extractor, "extract", no_extraction)  # the one entry to features, cached or not
    with pytest.raises(MgcError, match=message) as err:
        train_and_test(make_cfg(override, "+trainer.fast_dev_run=true", tiny=not override.startswith("data=")))
    assert "\n" not in str(err.value)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


@pytest.mark.parametrize(
    "args, expected",
    [
        (["model=nope"], "error: model=nope: no such option in conf/model/; choose one of bilstm, cnn, ensemble, gru,"),
        (["-m", "optim=adam,nope"], "error: optim=nope: no such option"),
        (["optim.lr=-1"], "error: optim.lr=-1: the learning rate must be > 0"),
        (["data=gtzan"], "error: data.root is not set: pass data.root=..."),
        # a constructor's own check, raised inside hydra.utils.instantiate
        (["split=kfold", "split.folds=1"], "error: split.folds=1: cross-validation needs at least 2 folds"),
        (["features=musicnn", "features.layer=cnn9"], "error: features.layer=cnn9 is not a layer of MSD_musicnn"),
    ],
)
def test_cli_bad_override_is_a_short_error_without_traceback(tmp_path, args, expected):
    out = _cli(*args, "paths.outputs=" + str(tmp_path), cwd=tmp_path)
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), out.stderr  # exactly one line, no warnings
    assert "Traceback" not in out.stderr + out.stdout


def test_cli_end_to_end(tmp_path, shared_dir):
    out = _cli(
        *TINY,
        "trainer.max_epochs=1",
        "model=bilstm",
        "optim=rmsprop",
        f"paths.outputs={tmp_path}",
        f"paths.data_dir={shared_dir / 'data'}",
        f"paths.cache_dir={shared_dir / 'cache'}",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    summary = [line for line in out.stdout.splitlines() if line.startswith("split ")]
    assert len(summary) == 1 and "segment acc" in summary[0] and "track acc" in summary[0]
    run_dir = Path(summary[0].rsplit("run ", 1)[1])
    assert run_dir.parent.parent == tmp_path / "runs"
    names = {p.name for p in run_dir.iterdir()}
    assert {".hydra", "tb", "checkpoints", "metrics.json", "confusion_matrix.png", "curves.png"} <= names
    assert (run_dir / ".hydra" / "config.yaml").read_text().count("Recurrent") == 1
    # named by what differs, so TensorBoard lists it by its overrides; HPARAMS tell experiments and data apart
    assert "model=bilstm" in run_dir.name and "optim=rmsprop" in run_dir.name and "paths." not in run_dir.name
    hparams, tags = hparams_of(run_dir)
    assert (hparams["experiment"], hparams["data_root"], hparams["model"]) == (
        "train",
        "synthetic-4x12s-seed0",
        "bilstm",
    )
    assert {"hp/val_segment_acc", "hp/test_track_acc", "hp/test_f1"} <= tags


def test_compiled_model_trains_like_the_eager_one_and_keeps_checkpoint_keys(make_cfg, tmp_path, monkeypatch):
    from mgc.predict import Predictor

    eager = train_and_test(make_cfg("model=mlp", "trainer.max_epochs=1"))
    compiled_models = []
    real_compile = torch.nn.Module.compile

    def spy(module, *args, **kwargs):
        compiled_models.append(type(module).__name__)
        return real_compile(module, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "compile", spy)
    cfg = make_cfg("model=mlp", "trainer.max_epochs=1", "module.compile=true")
    cfg.paths.run_dir = str(tmp_path / "compiled")
    compiled = train_and_test(cfg)
    assert compiled_models == ["MLP"]
    # Fused kernels round differently, so the numbers agree closely, not to the bit.
    assert compiled.test.loss == pytest.approx(eager.test.loss, rel=1e-3)
    state = torch.load(compiled.best_checkpoint, weights_only=True)["state_dict"]
    assert not [k for k in state if "_orig_mod" in k]  # compiled in place: checkpoints stay portable
    ((model, _, _),) = Predictor(compiled.best_checkpoint).members
    weights = model.state_dict()  # an eager model loads them strictly
    assert all(torch.equal(v, state[f"model.{k}"]) for k, v in weights.items())


@pytest.mark.parametrize(
    "option",
    [
        "scheduler=none",
        "scheduler=cyclic",
        "scheduler=plateau",
        "scheduler=cosine_restarts",
        "scheduler=one_cycle",
        "logger=csv",
        "logger=none",
        "callbacks=early_stopping",
        "datamodule.normalize=false",
    ],
)
def test_scheduler_logger_and_callback_options_run(make_cfg, option):
    cfg = make_cfg(option, "model=linear", "trainer.max_epochs=2")
    metrics = train_and_test(cfg)
    assert metrics.epochs == 2 and metrics.test
    run_dir = Path(cfg.paths.run_dir)
    assert (run_dir / "csv" / "metrics.csv").is_file() == (option == "logger=csv")
    assert bool(list(run_dir.glob("tb/events.*"))) == (option not in ("logger=csv", "logger=none"))


def test_a_split_without_validation_trains_on_a_fixed_schedule_and_tests_the_last_epoch(make_cfg, tmp_path):
    cfg = make_cfg(
        "split=kfold", "split.folds=4", "split.val_fraction=0", "callbacks=early_stopping", "trainer.max_epochs=3"
    )
    metrics = train_and_test(cfg)
    assert metrics.epochs == 3  # early stopping watches val/loss: left out, not stopping on nothing
    assert metrics.val is None and metrics.test.segments == 40  # one of 4 tracks per genre, 4 segments
    assert Path(metrics.best_checkpoint) == Path(cfg.paths.run_dir) / "checkpoints" / "last.ckpt"
    assert [p.name for p in (Path(cfg.paths.run_dir) / "checkpoints").iterdir()] == ["last.ckpt"]


def test_all_tracks_trains_a_final_model_on_everything_and_tests_nothing(make_cfg, capsys):
    from mgc.predict import Predictor

    cfg = make_cfg("split=all_tracks", "model=linear", "trainer.max_epochs=2")
    metrics = train_and_test(cfg)
    assert metrics.split == "all_tracks" and metrics.val is None and metrics.test is None
    assert metrics.test_part is None and "nothing held out" in capsys.readouterr().out
    ckpt = torch.load(metrics.best_checkpoint, weights_only=True)
    assert ckpt["epoch"] == 1 and Path(metrics.best_checkpoint).name == "last.ckpt"
    assert not Predictor(metrics.best_checkpoint).predict(next(iter(Path(cfg.data.root).rglob("*.wav")))).error
    with pytest.raises(MgcError, match=r"^scheduler=plateau watches val/loss, but split all_tracks has no valid"):
        train_and_test(make_cfg("split=all_tracks", "scheduler=plateau", "model=linear", "trainer.max_epochs=1"))


def test_training_from_a_data_10_json(make_cfg, tiny_source, tmp_path):
    from mgc.features import MFCC, export_json

    path = export_json(MFCC(cache_dir=tmp_path / "c").extract(tiny_source), tmp_path / "data_10.json")
    metrics = train_and_test(
        make_cfg(f"features.json_path={path}", "split=segment_90_10", "model=linear", "+trainer.fast_dev_run=true")
    )
    assert metrics.data == "json:data_10.json" and metrics.test_part == "val"
    with pytest.raises(MgcError, match="needs track ids"):
        train_and_test(make_cfg(f"features.json_path={path}", "model=linear", "+trainer.fast_dev_run=true"))


def test_extract_script_on_a_gtzan_layout_folder(tiny_source, tmp_path):
    """scripts/extract.py reads any GTZAN-layout folder (here the synthetic one) for all three features."""
    for feature in ("mfcc-json", "mfcc-png", "chroma"):
        args = [
            sys.executable,
            str(ROOT / "scripts" / "extract.py"),
            "data=gtzan",
            f"data.root={tiny_source.root}",
            f"features={feature}",
            f"paths.outputs={tmp_path}",
        ]
        if feature == "mfcc-png":
            args.append("features.segment_seconds=10")
        if feature == "mfcc-json":
            args.append(f"export_json={tmp_path / 'data_10.json'}")
        out = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        assert "40 clips" in out.stdout and "clips/s" in out.stdout
    assert json.loads((tmp_path / "data_10.json").read_text())["mapping"][0] == "blues"
    assert len(list((tmp_path / "cache").glob("*/index.json"))) == 3


def test_evaluation_runs_in_32_bit_under_a_bf16_mixed_trainer():
    """trainer.precision=bf16-mixed speeds training; test metrics still come from 32-bit outputs, as mgc-predict's."""
    torch.manual_seed(0)
    model = Linear((1, 13, 130), 4)
    module = GenreClassifier(model, functools.partial(torch.optim.SGD, lr=0.1), constant, list("abcd"))
    x, y = torch.randn(8, 1, 13, 130), torch.tensor([0, 1, 2, 3] * 2)
    part = TensorBatches(x, y, torch.arange(8), torch.arange(8))  # batches as the data module serves them
    batches = torch.utils.data.DataLoader(part, sampler=EpochBatches(8, 4, shuffle=False), batch_size=None)
    trainer = L.Trainer(precision="bf16-mixed", logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.test(module, dataloaders=batches, verbose=False)
    with torch.no_grad():
        in_32_bit = float(F.nll_loss(F.log_softmax(model(x), dim=1), y))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            in_bf16 = float(F.nll_loss(F.log_softmax(model(x).float(), dim=1), y))
    assert abs(in_bf16 - in_32_bit) > 1e-4  # the two differ enough to tell apart
    assert module.results["test"].loss == pytest.approx(in_32_bit, abs=1e-6)
