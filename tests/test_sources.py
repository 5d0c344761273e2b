"""Data sources beyond GTZAN: any ``<label>/<files>`` folder, a CSV manifest with split and group columns, and
splits that keep a group (an artist) in one part."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mgc.data import FolderSource, ManifestSource
from mgc.errors import MgcError
from mgc.features import FeatureSet
from mgc.metrics import RunMetrics
from mgc.split import KFoldSplit, ManifestSplit, TrackSplit
from mgc.train import run

LABELS = {"blues": "ambient", "metal": "chiptune", "reggae": "zydeco"}  # three of the tiny genres, renamed


@pytest.fixture
def own_tree(tiny_source, tmp_path) -> Path:
    """Three labels of other names than GTZAN's, files in sub-folders, named anyhow, one of them FLAC."""
    root = tmp_path / "my-music"
    for clip in tiny_source.clips():
        if clip.genre in LABELS:
            number = int(clip.track_id.rsplit(".", 1)[1])
            dest = root / LABELS[clip.genre] / f"disc{number % 2}" / f"take {number}.wav"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(clip.path, dest)
    y, sr = sf.read(root / "zydeco" / "disc0" / "take 0.wav")
    (root / "zydeco" / "disc0" / "take 0.wav").unlink()
    sf.write(root / "zydeco" / "disc0" / "take 0.flac", y, sr)
    (root / "zydeco" / ".hidden.wav").write_bytes(b"")
    return root


def test_a_folder_source_reads_any_label_names_and_sub_folders(own_tree):
    clips = FolderSource(own_tree).clips()
    assert FolderSource(own_tree).genres == ["ambient", "chiptune", "zydeco"]
    assert len(clips) == 12 and len({c.track_id for c in clips}) == 12
    assert "zydeco/disc0/take 0.flac" in {c.track_id for c in clips}


@pytest.mark.slow
def test_data_folder_trains_on_three_labels_of_its_own(own_tree, make_cfg):
    cfg = make_cfg(
        "data=folder",
        f"data.root={own_tree}",
        "split=kfold",
        "split.folds=2",
        "model=linear",
        "trainer.max_epochs=2",
        "split.val_fraction=0",
        "callbacks.progress_bar.refresh_rate=0",
        tiny=False,
    )
    metrics = RunMetrics.read(Path(run(cfg)["run_dir"]) / "metrics.json")
    assert metrics.test.tracks == 6 and metrics.data == "folder"
    assert {v.genre for v in metrics.test.verdicts} == set(LABELS.values())


def _manifest(tmp_path: Path, rows: list[str], header: str = "path,label,split,group") -> Path:
    path = tmp_path / "manifest.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_a_manifest_lists_clips_with_labels_groups_and_parts(own_tree, tmp_path):
    files = sorted(p.relative_to(tmp_path).as_posix() for p in own_tree.rglob("*.*") if not p.name.startswith("."))
    rows = [f"{f},{f.split('/')[1]},{'test' if i % 4 == 0 else 'train'},artist{i // 2}" for i, f in enumerate(files)]
    clips = ManifestSource(_manifest(tmp_path, rows)).clips()
    assert len(clips) == 12 and all(c.path.is_file() for c in clips)  # relative to the manifest's folder
    assert {c.group for c in clips} == {f"artist{i}" for i in range(6)}
    assert sum(c.part == "test" for c in clips) == 3


@pytest.mark.parametrize(
    ("header", "rows", "message"),
    [
        ("file,label", ["a.wav,rock"], "has no 'path' column (it has file, label); the header must name path"),
        ("path,genre", ["a.wav,rock"], "has no 'label' column"),
        ("path,label,split", ["a.wav,rock,training", "b.wav,pop,test"], "line 2: split 'training' is not one of"),
        ("path,label", ["a.wav,rock", "a.wav,pop"], "line 3: a.wav is listed twice"),
        ("path,label", ["a.wav,rock", "b.wav,rock"], "needs at least two labels"),
    ],
)
def test_bad_manifests_are_one_line(tmp_path, header, rows, message):
    with pytest.raises(MgcError, match=re.escape(message)) as err:
        ManifestSource(_manifest(tmp_path, rows, header)).clips()
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_a_listed_file_that_does_not_exist_is_skipped_and_listed(own_tree, tmp_path, make_cfg):
    files = sorted(p.relative_to(tmp_path).as_posix() for p in own_tree.rglob("*.wav") if not p.name.startswith("."))
    rows = [f"{f},{f.split('/')[1]}" for f in files] + ["my-music/ambient/gone.wav,ambient"]
    manifest = _manifest(tmp_path, rows, "path,label")
    cfg = make_cfg(
        "data=csv",
        f"data.manifest={manifest}",
        "split=kfold",
        "split.folds=2",
        "split.val_fraction=0",
        "model=linear",
        "trainer.max_epochs=1",
        "logger=none",
        "callbacks.progress_bar.refresh_rate=0",
        tiny=False,
    )
    assert run(cfg)["test"]["tracks"] > 0
    (cache,) = [p for p in Path(cfg.paths.cache_dir).glob("mfcc-*/skipped.txt") if "gone.wav" in p.read_text()]
    assert cache.read_text().startswith(str(tmp_path / "my-music/ambient/gone.wav") + "\tunreadable")
    index = json.loads((cache.parent / "index.json").read_text())
    assert len(index["track_ids"]) == 11 and "my-music/ambient/gone.wav" not in index["track_ids"]


def grouped_features(groups: list[str | None], labels: list[int]) -> FeatureSet:
    tracks = np.repeat(np.arange(len(labels)), 2)
    return FeatureSet(
        x=np.zeros((len(tracks), 1, 2, 2), np.float32),
        labels=np.asarray(labels)[tracks],
        tracks=tracks,
        track_ids=[f"t{i}" for i in range(len(labels))],
        class_names=["a", "b", "c"],
        track_groups=groups,
    )


#: 30 tracks, 3 genres, 15 artists of two tracks each (five to a genre); artist0 plays two genres.
LABEL_OF = [(i // 2) % 3 for i in range(30)]
LABEL_OF[1] = 1
GROUP_OF = [f"artist{i // 2}" for i in range(30)]


def _parts_of_groups(features: FeatureSet, parts: dict[str, np.ndarray]) -> dict[str, set[str]]:
    return {
        g: {p for p, idx in parts.items() if any(features.track_groups[t] == g for t in features.tracks[idx])}
        for g in set(features.track_groups)
    }


@pytest.mark.parametrize(
    "split",
    [KFoldSplit(folds=3, fold=f, seed=1, val_fraction=0.2) for f in range(3)]
    + [TrackSplit("t", {"train": 0.6, "val": 0.2, "test": 0.2}, seed=2)],
)
def test_grouped_splits_keep_every_group_in_one_part(split):
    features = grouped_features(GROUP_OF, LABEL_OF)
    parts = split.assign(features)
    spread = {g: p for g, p in _parts_of_groups(features, parts).items() if len(p) > 1}
    assert not spread, f"groups in two parts: {spread}"
    assert sum(len(i) for i in parts.values()) == len(features.tracks) and set(parts) == {"train", "val", "test"}


def test_grouped_k_fold_tests_every_track_once_and_one_track_groups_deal_as_no_groups():
    grouped = grouped_features(GROUP_OF, LABEL_OF)
    tested = np.concatenate(
        [grouped.tracks[KFoldSplit(folds=3, fold=f, seed=1).assign(grouped)["test"]] for f in range(3)]
    )
    assert sorted(tested.tolist()) == sorted(grouped.tracks.tolist())
    plain = grouped_features([None] * 30, LABEL_OF)
    plain.track_groups = None
    ungrouped = KFoldSplit(folds=3, fold=0, seed=1).assign(plain)
    groups_of_singletons = grouped_features([f"solo{i}" for i in range(30)], LABEL_OF)
    assert {p: i.tolist() for p, i in ungrouped.items()} == {
        p: i.tolist() for p, i in KFoldSplit(folds=3, fold=0, seed=1).assign(groups_of_singletons).items()
    }


def test_manifest_split_takes_the_parts_the_manifest_gives():
    features = grouped_features([None] * 30, LABEL_OF)
    features.track_parts = ["test" if i % 5 == 0 else "val" if i % 5 == 1 else "train" for i in range(30)]
    parts = ManifestSplit().assign(features)
    assert {p: sorted(set(features.tracks[i].tolist())) for p, i in parts.items()} == {
        "train": [i for i in range(30) if i % 5 > 1],
        "val": list(range(1, 30, 5)),
        "test": list(range(0, 30, 5)),
    }
    features.track_parts = None
    with pytest.raises(MgcError, match=r"split=manifest takes its parts from the source \(a manifest's split column"):
        ManifestSplit().assign(features)
