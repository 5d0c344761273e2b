"""Splits: no leakage for track splits, stratification, sizes, determinism, the filtered lists."""

from __future__ import annotations

import numpy as np
import pytest
from hydra.utils import instantiate

from mgc.errors import MgcError
from mgc.features import FeatureSet
from mgc.split import FilteredSplit, SegmentSplit, TrackSplit


def fake_features(tracks_per_genre=10, segments=10, genres=("blues", "jazz", "rock"), source="synthetic"):
    track_ids = [f"{g}.{i:05d}" for g in genres for i in range(tracks_per_genre)]
    tracks = np.repeat(np.arange(len(track_ids)), segments)
    labels = tracks // tracks_per_genre
    return FeatureSet(
        x=np.zeros((len(tracks), 1, 2, 2), np.float32),
        labels=labels,
        tracks=tracks,
        track_ids=track_ids,
        class_names=list(genres),
        source=source,
    )


def test_track_split_has_no_track_in_two_parts_and_is_stratified():
    fs = fake_features()
    parts = TrackSplit("t", {"train": 0.8, "val": 0.1, "test": 0.1}, seed=1).assign(fs)
    track_sets = {p: set(fs.tracks[i]) for p, i in parts.items()}
    assert not track_sets["train"] & track_sets["val"]
    assert not track_sets["train"] & track_sets["test"]
    assert not track_sets["val"] & track_sets["test"]
    assert sum(len(i) for i in parts.values()) == len(fs)
    for part, share in (("train", 8), ("val", 1), ("test", 1)):
        per_genre = np.bincount(fs.labels[parts[part]], minlength=3) // 10  # tracks per genre
        assert per_genre.tolist() == [share] * 3


def test_segment_split_sizes_and_its_documented_leak():
    fs = fake_features()
    parts = SegmentSplit("s", {"train": 0.7, "val": 0.3}, seed=0).assign(fs)
    assert (len(parts["train"]), len(parts["val"])) == (210, 90)
    assert set(fs.tracks[parts["train"]]) & set(fs.tracks[parts["val"]])  # segments of one song in both


@pytest.mark.parametrize("kind", [SegmentSplit, TrackSplit])
def test_split_is_determined_by_the_seed(kind):
    fs = fake_features()
    fr = {"train": 0.8, "val": 0.1, "test": 0.1}
    a, b, c = (kind("x", fr, seed=s).assign(fs) for s in (5, 5, 6))
    assert all(np.array_equal(a[p], b[p]) for p in a)
    assert not all(np.array_equal(a[p], c[p]) for p in a)


def test_track_split_refuses_a_genre_too_small_for_its_parts():
    fs = fake_features(tracks_per_genre=2)
    with pytest.raises(MgcError, match="genre 'blues' has 2 tracks, too few for a non-empty train/val/test"):
        TrackSplit("track_80_10_10", {"train": 0.8, "val": 0.1, "test": 0.1}).assign(fs)


def test_track_split_needs_track_ids():
    fs = fake_features()
    fs.has_tracks = False
    with pytest.raises(MgcError, match="needs track ids.*use a segment split"):
        TrackSplit("track_80_10_10", {"train": 0.8, "val": 0.1, "test": 0.1}).assign(fs)


@pytest.mark.parametrize("fractions", [{"train": 0.8, "val": 0.3}, {"val": 1.0}, {"train": 0.5, "dev": 0.5}])
def test_bad_fractions(fractions):
    with pytest.raises(MgcError, match="split.fractions"):
        SegmentSplit("s", fractions)


def test_all_tracks_is_one_training_part_of_every_segment(make_cfg):
    split = instantiate(make_cfg("split=all_tracks").split)
    parts = split.assign(fake_features())
    assert split.name == "all_tracks" and list(parts) == ["train"]
    assert parts["train"].tolist() == list(range(300))


def test_filtered_lists_ship_with_the_package():
    lists = FilteredSplit.track_lists()
    assert {p: len(v) for p, v in lists.items()} == {"train": 443, "val": 197, "test": 290}
    assert lists["val"][0] == "blues.00000"
    assert len(set().union(*map(set, lists.values()))) == 930  # no track in two parts


def test_filtered_split_on_real_gtzan_track_ids():
    genres = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
    fs = fake_features(tracks_per_genre=100, segments=1, genres=genres, source="gtzan")
    parts = FilteredSplit().assign(fs)
    assert {p: len(i) for p, i in parts.items()} == {"train": 443, "val": 197, "test": 290}


def test_filtered_split_on_synthetic_data_errors_clearly():
    with pytest.raises(MgcError, match="split=filtered needs the real GTZAN.*data=gtzan data.root"):
        FilteredSplit().assign(fake_features(tracks_per_genre=30))
