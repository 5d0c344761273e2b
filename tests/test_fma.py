"""data=fma: FMA's tracks.csv and layout, its subsets, untagged tracks, the official split, artist groups, mp3."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mgc.data import FMA, SyntheticFMA
from mgc.errors import MgcError
from mgc.features import MFCC
from mgc.split import KFoldSplit, ManifestSplit, TrackSplit

GENRES = ["Blues", "Classical", "Electronic", "Folk", "Hip-Hop", "Jazz", "Pop", "Rock"]


@pytest.fixture(scope="module")
def fma(tmp_path_factory) -> SyntheticFMA:
    """The synthetic FMA's small subset, 4-s mp3 clips: 8 genres x 4 artists x 2 small tracks."""
    source = SyntheticFMA(tmp_path_factory.mktemp("fma"), duration=4.0)
    source.prepare()
    return source


def write_tracks_csv(path: Path, rows: list[list[str]], columns: list[tuple[str, str]] | None = None) -> Path:
    """A tracks.csv in FMA's shape: group row, name row, the index's row, then the tracks."""
    columns = columns or [("artist", "id"), ("set", "split"), ("set", "subset"), ("track", "genre_top")]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["", *(c[0] for c in columns)])
        writer.writerow(["", *(c[1] for c in columns)])
        writer.writerow(["track_id", *[""] * len(columns)])
        writer.writerows(rows)
    return path


def test_the_layout_metadata_and_labels_are_fmas(fma):
    clips = fma.clips()
    assert fma.genres == GENRES
    assert len(clips) == 64 and Counter(c.genre for c in clips) == dict.fromkeys(GENRES, 8)
    first = clips[0]
    assert first.path == fma.root / "fma_small" / "000" / "000002.mp3" and first.track_id == "000002"
    assert (first.genre, first.group, first.part) == ("Blues", "artist 1", "train")
    assert sf.info(first.path).format == "MP3"  # decoded by libsndfile, what librosa.load tries first
    header = (fma.root / "fma_metadata" / "tracks.csv").read_text().splitlines()[:3]
    assert header[2].startswith("track_id,") and "genre_top" in header[1] and "track" in header[0]


def test_untagged_tracks_are_left_out_and_counted_and_subsets_include_the_smaller(fma, caplog):
    caplog.set_level("INFO")
    medium = FMA(fma.root, subset="medium")
    medium.audio_path = fma.audio_path  # the same layout, another subset's listing
    assert len(medium.clips()) == 96  # every artist's third track joins
    assert "fma medium: 104 tracks, 8 without a top genre left out" in caplog.text
    small_ids = {c.track_id for c in fma.clips()}
    assert small_ids < {c.track_id for c in medium.clips()}


def test_the_official_split_keeps_each_artist_in_one_part(fma):
    parts: dict[str, set[str]] = {}
    for clip in fma.clips():
        parts.setdefault(clip.group, set()).add(clip.part)
    assert all(len(p) == 1 for p in parts.values())
    assert Counter(c.part for c in fma.clips()) == {"train": 32, "val": 16, "test": 16}


@pytest.fixture(scope="module")
def features(fma, tmp_path_factory):
    return MFCC(cache_dir=str(tmp_path_factory.mktemp("cache"))).extract(fma)


def test_mp3_clips_become_features_and_split_fma_is_the_official_split(fma, features):
    assert len(features.track_ids) == 64 and features.x.shape[1:] == (1, 13, 130)
    assert np.isfinite(features.x).all() and features.x.std() > 0
    ManifestSplit(name="fma").check(fma.clips(), fma.name)
    parts = ManifestSplit(name="fma").assign(features)
    by_id = {c.track_id: c.part for c in fma.clips()}
    for part, idx in parts.items():
        assert {by_id[features.track_ids[t]] for t in np.unique(features.tracks[idx])} == {part}


@pytest.mark.parametrize("split", [KFoldSplit(folds=2, val_fraction=0), TrackSplit("t", {"train": 0.5, "test": 0.5})])
def test_track_and_kfold_splits_keep_an_artist_in_one_part(features, split):
    parts = split.assign(features)
    groups = np.asarray(features.track_groups)
    for idx in parts.values():
        inside = set(groups[np.unique(features.tracks[idx])])
        outside = set(groups[np.setdiff1d(np.arange(len(groups)), np.unique(features.tracks[idx]))])
        assert not inside & outside


def test_bad_metadata_is_one_line(tmp_path):
    path = tmp_path / "fma_metadata" / "tracks.csv"
    misnamed = [("artist", "id"), ("set", "split"), ("set", "subset"), ("track", "genre")]
    write_tracks_csv(path, [["2", "1", "training", "small", "Rock"]], misnamed)
    with pytest.raises(MgcError, match=r"tracks.csv has no column \('track', 'genre_top'\)"):
        FMA(tmp_path).clips()
    write_tracks_csv(path, [["2", "1", "training", "small", "Rock"], ["x7", "1", "training", "small", "Pop"]])
    with pytest.raises(MgcError, match=r"tracks.csv, line 5: not a track row"):
        FMA(tmp_path).clips()
    write_tracks_csv(path, [["2", "1", "training", "small", "Rock"], ["5", "2", "test", "small", "Pop"]])
    unknown = r"data.genres: 'Rokc' is not a top genre of fma_small .*its genres: Pop, Rock"
    with pytest.raises(MgcError, match=unknown):
        FMA(tmp_path, genres=["Rokc"]).clips()
    with pytest.raises(MgcError, match=r"fma_metadata/tracks.csv does not exist"):
        FMA(tmp_path / "elsewhere").clips()
    with pytest.raises(MgcError, match=r"data.subset=tiny: FMA's subsets are small, medium, large, full"):
        FMA(tmp_path, subset="tiny")


def test_a_listed_file_that_does_not_exist_is_skipped_and_listed(fma, tmp_path):
    root = tmp_path / "copy"
    (root / "fma_metadata").mkdir(parents=True)
    (root / "fma_metadata" / "tracks.csv").write_bytes((fma.root / "fma_metadata" / "tracks.csv").read_bytes())
    source = FMA(root, genres=["Blues", "Rock"])
    for clip in source.clips()[1:]:  # every listed Blues and Rock file but the first
        clip.path.parent.mkdir(parents=True, exist_ok=True)
        clip.path.write_bytes(fma.audio_path(int(clip.track_id)).read_bytes())
    data = MFCC(cache_dir=str(tmp_path / "cache")).extract(source)
    assert len(data.track_ids) == 15 and data.class_names == ["Blues", "Rock"]
    (cache,) = (p.parent for p in (tmp_path / "cache").glob("mfcc-*/index.json"))
    assert json.loads((cache / "index.json").read_text())["skipped"] == 1
    assert (cache / "skipped.txt").read_text().startswith(str(source.clips()[0].path))


def test_the_wav_switch_writes_the_same_layout(tmp_path):
    source = SyntheticFMA(tmp_path, duration=2.0, artists_per_genre=1, tracks_per_artist=2, audio_format="wav")
    source.prepare()
    assert source.clips()[0].path == tmp_path / "fma_small" / "000" / "000002.wav"
    assert sf.info(source.clips()[0].path).format == "WAV" and len(source.clips()) == 8


@pytest.mark.slow  # a training run
def test_train_on_fma_with_its_official_split(make_cfg):
    from mgc.train import train_and_test

    cfg = make_cfg("data=synthetic_fma", "split=fma", "data.duration=4", "+trainer.fast_dev_run=true", tiny=False)
    metrics = train_and_test(cfg)
    assert (metrics.data, metrics.split) == ("synthetic_fma", "fma")
    assert list(metrics.test.track.per_class) == GENRES and metrics.test.tracks == 16
