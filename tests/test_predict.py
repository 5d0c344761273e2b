"""Predict: a checkpoint of every feature names genres, as the trained module would, and bad input gets one line."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest
import torch
from helpers import cli, compose_cfg, write_tone
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import get_object, instantiate
from omegaconf import OmegaConf

from mgc.checkpoint import KEY
from mgc.cli import CONF_DIR, USER_ERROR
from mgc.errors import MgcError
from mgc.features import MFCC, export_json
from mgc.metrics import RunMetrics
from mgc.predict import Predictor, expand_checkpoints
from mgc.predict import main as predict_main
from mgc.train import build_datamodule, train_and_test

pytestmark = pytest.mark.slow  # end-to-end runs: make test runs them, make test-fast leaves them out


def computed_from_audio(feature: str) -> bool:
    """Whether a features option computes from audio (a table such as kaggle-csv does not: predict refuses it)."""
    target = get_object(OmegaConf.load(CONF_DIR / "features" / f"{feature}.yaml")._target_)
    return getattr(target, "from_audio", True)


#: Every audio option of conf/features (a feature added later is tested here too); the tiny clips are 12 s long.
FEATURES = sorted(p.stem for p in (CONF_DIR / "features").glob("*.yaml") if computed_from_audio(p.stem))
SHORT_CLIPS = {"mfcc-png": ["features.segment_seconds=10"]}
#: (feature, overrides): every audio feature with a linear model, a model trained on augmented batches
#: (predict never augments), and an ensemble (its checkpoint holds every member).
CASES = [(f, [*SHORT_CLIPS.get(f, []), "model=linear"]) for f in FEATURES] + [
    ("logmel", ["augment=specaug", "model=linear"]),
    ("logmel", ["model=ensemble", "model@model.member=linear", "model.members=3"]),
]


@pytest.fixture(scope="module")
def overfit_checkpoint(tmp_path_factory, shared_dir):
    """An MLP trained until it knows the tiny training clips."""
    out = tmp_path_factory.mktemp("overfit")
    cfg = compose_cfg(
        shared_dir,
        out,
        out / "run",
        "model=mlp",
        "optim=adam",
        "scheduler=none",
        "trainer.max_epochs=25",
        "datamodule.batch_size=16",
    )
    metrics = train_and_test(cfg)
    GlobalHydra.instance().clear()
    return Path(metrics.run_dir) / "checkpoints" / "last.ckpt"


@pytest.mark.parametrize(("feature", "overrides"), CASES)
def test_predict_from_a_checkpoint_of_every_feature_equals_the_trained_model(make_cfg, feature, overrides, capsys):
    """Probabilities equal the trained backbone on the training cache's normalised grid segments of the clip."""
    cfg = make_cfg(f"features={feature}", *overrides, "trainer.max_epochs=1")
    metrics = train_and_test(cfg)
    datamodule = build_datamodule(cfg)
    datamodule.setup()
    data = datamodule.data
    backbone = instantiate(cfg.model, input_shape=datamodule.input_shape, num_classes=datamodule.num_classes)
    state = torch.load(metrics.best_checkpoint, weights_only=True)["state_dict"]
    backbone.load_state_dict({k.removeprefix("model."): v for k, v in state.items()})
    backbone.eval()

    predictor = Predictor(metrics.best_checkpoint)
    for clip in datamodule.source.clips()[::13]:  # a few clips of different genres
        track = data.track_ids.index(clip.track_id)
        x = torch.from_numpy(data.x[data.tracks == track])
        if datamodule.mean is not None:  # not for a pretrained encoder's own input (musicnn_mel)
            x = (x - datamodule.mean) / datamodule.std
        with torch.no_grad():
            expected = torch.softmax(torch.log_softmax(backbone(x), dim=1).mean(0), dim=0)
        result = predictor.predict(clip.path)
        assert result.segments == len(x)
        got = dict(result.ranking)
        assert [got[g] for g in data.class_names] == pytest.approx(expected.tolist(), abs=1e-5)

    capsys.readouterr()  # the run's summary line
    rc = predict_main([f"ckpt={metrics.best_checkpoint}", f"files=[{clip.path}]", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out[0]["genre"] == result.ranking[0][0]


def test_predict_from_a_model_trained_on_a_data_10_json(make_cfg, tiny_source, tmp_path):
    path = export_json(MFCC(cache_dir=tmp_path / "c").extract(tiny_source), tmp_path / "data_10.json")
    metrics = train_and_test(
        make_cfg(f"features.json_path={path}", "split=segment_90_10", "model=linear", "trainer.max_epochs=1")
    )
    result = Predictor(metrics.best_checkpoint).predict(tiny_source.clips()[0].path)
    assert not result.error and result.segments == 4  # MFCCs of the audio, as the JSON file holds them
    assert sum(p for _, p in result.ranking) == pytest.approx(1, abs=1e-5)


def test_the_checkpoint_contract_holds_what_inference_needs_once(overfit_checkpoint, tmp_path):
    ckpt = torch.load(overfit_checkpoint, weights_only=True)
    entry = ckpt[KEY]
    assert set(entry) == {"features", "model", "class_names", "input_shape", "weights", "mean", "std", "mgc_version"}
    assert entry["input_shape"] == [1, 13, 130] and len(entry["class_names"]) == 10
    assert entry["mean"].shape == (1, 13, 1) and (entry["std"] > 0).all()
    model_weights = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()}
    assert entry["weights"].keys() == model_weights.keys()
    assert all(torch.equal(v, model_weights[k]) for k, v in entry["weights"].items())
    # The contract's weights share storage with the state_dict: the file does not hold them twice.
    torch.save({k: v for k, v in ckpt.items() if k != KEY}, tmp_path / "without.ckpt")
    extra = overfit_checkpoint.stat().st_size - (tmp_path / "without.ckpt").stat().st_size
    assert extra < 0.1 * sum(v.numel() * v.element_size() for v in model_weights.values())


def test_predict_names_the_genre_it_was_trained_on(overfit_checkpoint, tiny_source):
    predictor = Predictor(overfit_checkpoint)
    clips = {c.track_id: c for c in tiny_source.clips()}
    hits = 0
    for genre in ("classical", "metal", "disco", "reggae"):
        result = predictor.predict(clips[f"{genre}.00000"].path)
        assert result.segments == 4 and abs(sum(p for _, p in result.ranking) - 1) < 1e-5
        hits += result.ranking[0][0] == genre
    assert hits >= 3


def test_predict_survives_bad_files_and_prints_json(overfit_checkpoint, tiny_source, tmp_path, capsys):
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")
    good = tiny_source.clips()[-1].path
    rc = predict_main([f"ckpt={overfit_checkpoint}", f"files=[{tmp_path / 'missing.wav'},{corrupt},{good}]", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 1  # some files failed
    assert [("error" in r) for r in out] == [True, True, False]
    assert out[2]["genre"] == out[2]["ranking"][0]["genre"] and len(out[2]["ranking"]) == 10


def test_a_folder_stands_for_its_audio_files_and_the_last_line_scores_them_by_folder_genre(
    overfit_checkpoint, tiny_source, tmp_path, capsys
):
    """Files under genre-named folders are scored against the folder; hidden files, non-audio and
    unreadable files are handled as for single files, and files outside genre folders are not scored."""
    clips = {c.track_id: c.path for c in tiny_source.clips()}
    layout = {  # destination under tmp_path: source clip (two of them in a folder of another genre)
        "genres/classical/classical.00000.wav": "classical.00000",
        "genres/classical/metal.00000.wav": "metal.00000",
        "genres/metal/metal.00001.wav": "metal.00001",
        "genres/reggae/deep/reggae.00000.wav": "reggae.00000",  # its folder 'deep' is no genre: not scored
        "genres/disco/disco.00000.au": "disco.00000",  # .au is audio; the decoder reads it by content
        "genres/pop/disco.00001.wav": "disco.00001",
        "mixed/song.wav": "blues.00000",
        "genres/.hidden/jazz.00000.wav": "jazz.00000",
    }
    for dest, track in layout.items():
        (tmp_path / dest).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / dest).write_bytes(Path(clips[track]).read_bytes())
    (tmp_path / "genres/metal/notes.txt").write_text("not audio")
    (tmp_path / "genres/rock").mkdir()
    (tmp_path / "genres/rock/rock.00000.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")

    rc = predict_main([f"ckpt={overfit_checkpoint}", f"files=[{tmp_path / 'genres'},{tmp_path / 'mixed'}]", "--json"])
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    in_genres = [d for d in layout if d.startswith("genres/") and ".hidden" not in d] + ["genres/rock/rock.00000.wav"]
    assert [r["file"] for r in out] == [str(tmp_path / d) for d in [*sorted(in_genres), "mixed/song.wav"]]
    assert rc == 1  # the unreadable rock clip
    # the score, recomputed from the JSON: files directly in a folder named after a genre, read
    genres = Predictor(overfit_checkpoint).class_names
    scored = [r for r in out if "error" not in r and Path(r["file"]).parent.name in genres]
    assert len(scored) == 5  # not deep/reggae.00000 nor mixed/song.wav
    right = sum(r["genre"] == Path(r["file"]).parent.name for r in scored)
    assert 0 < right < 5  # metal.00000 in classical/ and disco.00001 in pop/ are not what their folder says
    last = captured.err.strip().splitlines()[-1]
    assert last == f"named the genre of their folder: {right} of 5 files ({right / 5:.1%}); 1 more could not be read"


def test_label_folders_the_checkpoint_has_no_genre_for_are_named_not_scored(overfit_checkpoint, tmp_path, capsys):
    clip = write_tone(tmp_path / "tone.wav", 6.0)
    for name in ("ok/blues/a", "ok/Rock/b", "ok/Rock/c", "ok/soul/d", "bad/Blues/a", "bad/Rock/b"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f"{name}.wav").write_bytes(clip.read_bytes())
    predict_main([f"ckpt={overfit_checkpoint}", f"files={tmp_path / 'ok'}"])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("named the genre of their folder: ") and " of 1 files (" in last
    assert last.endswith("; not counted: 3 files in Rock, soul, not a genre of the checkpoint")
    predict_main([f"ckpt={overfit_checkpoint}", f"files={tmp_path / 'bad'}"])
    genres = ", ".join(Predictor(overfit_checkpoint).class_names)
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == f"no accuracy: the files' folders (Blues, Rock) are none of the checkpoint's genres ({genres})"


def test_a_folder_without_audio_files_is_one_line(overfit_checkpoint, tmp_path, capsys):
    (tmp_path / "empty" / ".hidden").mkdir(parents=True)
    (tmp_path / "empty" / ".hidden" / "a.wav").write_bytes(b"")
    (tmp_path / "empty" / "readme.txt").write_text("no audio")
    with pytest.raises(SystemExit) as exit_:
        predict_main([f"ckpt={overfit_checkpoint}", f"files={tmp_path / 'empty'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == USER_ERROR and len(err) == 1
    assert f"files={tmp_path / 'empty'} is a folder with no audio files" in err[0]


def test_predict_refuses_a_file_that_is_not_a_checkpoint(tmp_path):
    fake = tmp_path / "model.ckpt"
    fake.write_text("not a checkpoint")
    out = cli("mgc.predict", f"ckpt={fake}", "files=[a.wav]", cwd=tmp_path, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"error: ckpt={fake} is not an mgc checkpoint (UnpicklingError); pass a .ckpt written by python train.py"
    ]


class Payload:
    """Unpickling this runs a shell command: what ``weights_only=True`` must refuse."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_predict_refuses_a_pickled_object_without_running_it(tmp_path, capsys):
    marker = tmp_path / "ran"
    ckpt = tmp_path / "evil.ckpt"
    torch.save({KEY: Payload(marker)}, ckpt)
    assert predict_main_exit(f"ckpt={ckpt}", "files=[a.wav]") == USER_ERROR
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"error: ckpt={ckpt} is not an mgc checkpoint (UnpicklingError); pass a .ckpt written by python train.py"
    ]
    assert not marker.exists()


def test_a_checkpoint_without_the_contract_gets_one_line(overfit_checkpoint, tmp_path, capsys):
    ckpt = torch.load(overfit_checkpoint, weights_only=True)
    del ckpt[KEY]
    old = tmp_path / "old.ckpt"
    torch.save(ckpt, old)
    with pytest.raises(MgcError, match=f"ckpt={old} has no '{KEY}' entry"):
        Predictor(old)
    assert predict_main_exit(f"ckpt={old}", "files=[a.wav]") == USER_ERROR
    assert len(capsys.readouterr().err.splitlines()) == 1


def predict_main_exit(*argv: str) -> int:
    """The exit status ``mgc-predict argv...`` ends with."""
    with pytest.raises(SystemExit) as stop:
        predict_main(list(argv))
    return stop.value.code


def test_an_ensemble_of_checkpoints_averages_their_track_log_probabilities(
    make_cfg, overfit_checkpoint, tiny_source, capsys
):
    """ckpt=[a,b]: the mean over models of each one's mean segment log-probability (the folds of make cv)."""
    other = train_and_test(make_cfg("model=linear", "optim=adam", "trainer.max_epochs=3")).best_checkpoint
    clip = tiny_source.clips()[5].path
    ensemble = Predictor([overfit_checkpoint, other]).predict(clip)
    single = [dict(Predictor(c).predict(clip).ranking) for c in (overfit_checkpoint, other)]
    genres = list(single[0])
    # a single model's probabilities are softmax(mean log p): their logs are its log-probabilities up to a constant
    mixed = torch.softmax(torch.tensor([[math.log(s[g]) for g in genres] for s in single]).mean(0), dim=0)
    assert [dict(ensemble.ranking)[g] for g in genres] == pytest.approx(mixed.tolist(), abs=1e-5)
    assert ensemble.ranking != Predictor(other).predict(clip).ranking  # both models count
    capsys.readouterr()
    assert predict_main([f"ckpt=[{overfit_checkpoint},{other}]", f"files=[{clip}]", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["ranking"][0]["genre"] == ensemble.ranking[0][0]

    chroma = train_and_test(make_cfg("features=chroma", "model=linear", "trainer.max_epochs=1")).best_checkpoint
    with pytest.raises(MgcError, match=r"was trained on other features or genres than ckpt=") as err:
        Predictor([overfit_checkpoint, chroma])
    assert "\n" not in str(err.value)


def test_a_sweep_folder_as_ckpt_is_the_ensemble_of_the_checkpoints_its_runs_tested(
    make_cfg, overfit_checkpoint, tiny_source, tmp_path, capsys
):
    """ckpt=<sweep folder>: each finished run's tested checkpoint (found in its own folder, so a copied sweep
    works), unfinished runs and report folders left out: the fold models of make cv in one argument."""
    sweep = tmp_path / "sweep"
    other = Path(train_and_test(make_cfg("model=linear", "optim=adam", "trainer.max_epochs=3")).best_checkpoint)
    runs = [overfit_checkpoint.parent.parent, other.parent.parent]
    for name, run_dir in zip(("fold0", "fold1"), runs):
        shutil.copytree(run_dir, sweep / name)  # metrics.json still names the original folder's checkpoint
    (sweep / "fold2" / "checkpoints").mkdir(parents=True)  # a run that never finished: no metrics.json
    shutil.copy(overfit_checkpoint, sweep / "fold2" / "checkpoints" / "last.ckpt")
    (sweep / "report").mkdir()
    tested = [Path(RunMetrics.read(r / "metrics.json").best_checkpoint).name for r in runs]
    assert tested[0] != "last.ckpt"  # the overfit run selected a checkpoint by validation: that one, not the last
    expected = [str(sweep / name / "checkpoints" / t) for name, t in zip(("fold0", "fold1"), tested)]
    assert expand_checkpoints([str(sweep)]) == expected
    assert expand_checkpoints([str(overfit_checkpoint)]) == [str(overfit_checkpoint)]  # a file stays as it is

    clip = tiny_source.clips()[5].path
    capsys.readouterr()
    assert predict_main([f"ckpt={sweep}", f"files=[{clip}]", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)[0]["ranking"] == [
        {"genre": g, "probability": pytest.approx(p, abs=1e-6)} for g, p in Predictor(expected).predict(clip).ranking
    ]
    assert f"ckpt={sweep}: 2 checkpoint(s)" in err

    assert predict_main_exit(f"ckpt={sweep / 'report'}", f"files=[{clip}]") == USER_ERROR
    err = capsys.readouterr().err.strip()
    assert "report is a folder with no finished run" in err and "\n" not in err
