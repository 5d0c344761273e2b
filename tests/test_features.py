"""Features: exact MFCC numbers, JSON and PNG round trips, chroma, the cache and skipping."""

from __future__ import annotations

import json
from pathlib import Path

import librosa
import numpy as np
import pytest
from helpers import write_tone
from PIL import Image
from threadpoolctl import threadpool_info

from mgc.data import GTZAN
from mgc.errors import MgcError
from mgc.features import MFCC, Chroma, LogMel, MFCCFromJSON, MFCCImage, export_json, load_json


def test_mfcc_equals_the_per_segment_reference(tiny_source, tmp_path):
    feats = MFCC(cache_dir=tmp_path).extract(tiny_source)
    assert feats.x.shape[1:] == (1, 13, 130)
    clips = tiny_source.clips()
    for clip_index in (0, 17, 39):
        y, _ = librosa.load(clips[clip_index].path, sr=22050)
        rows = np.flatnonzero(feats.tracks == clip_index)
        assert len(rows) == 4  # 12-s clip: four full 3-s segments
        for s, row in enumerate(rows):
            start, finish = 66150 * s, 66150 * (s + 1)
            ref = librosa.feature.mfcc(y=y[start:finish], sr=22050, n_mfcc=13, n_fft=2048, hop_length=512)
            np.testing.assert_allclose(feats.x[row, 0], ref, atol=1e-4)
    assert feats.class_names == tiny_source.genres
    assert feats.track_ids[0] == "blues.00000"


def test_json_round_trip(tiny_source, tmp_path):
    feats = MFCC(cache_dir=tmp_path).extract(tiny_source)
    path = export_json(feats, tmp_path / "data_10.json")
    raw = json.loads(path.read_text())
    assert set(raw) == {"mapping", "labels", "mfcc"}
    assert np.asarray(raw["mfcc"]).shape == (len(feats), 130, 13)  # segments x frames x coefficients
    back = MFCCFromJSON(json_path=str(path)).extract(tiny_source)
    np.testing.assert_allclose(back.x, feats.x, atol=1e-6)
    np.testing.assert_array_equal(back.labels, feats.labels)
    assert back.class_names == feats.class_names
    assert not back.has_tracks  # a data_10.json has no track ids


def test_json_with_genre_paths_in_mapping(tmp_path):
    """Files made by the classic extract_data.py store 'genres/blues'-style mappings."""
    path = tmp_path / "old.json"
    path.write_text(
        json.dumps(
            {"mapping": ["genres/blues", "genres/rock"], "labels": [0, 1], "mfcc": np.zeros((2, 130, 13)).tolist()}
        )
    )
    assert load_json(path).class_names == ["blues", "rock"]


@pytest.mark.parametrize(
    "content, message",
    [
        ({"mapping": ["a", "b"], "labels": [0], "mfcc": np.zeros((2, 130, 13)).tolist()}, "1 labels for 2 mfcc"),
        ({"mapping": ["a", "b"], "labels": [0, 5], "mfcc": np.zeros((2, 130, 13)).tolist()}, "labels run 0..5"),
        ({"mapping": ["a"], "labels": [0], "mfcc": [[1, 2], [3]]}, "different shapes|has shape"),
        ({"labels": [0]}, "is not an MFCC JSON file"),
    ],
)
def test_bad_json_is_a_one_line_error(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(content))
    with pytest.raises(MgcError, match=message) as err:
        load_json(path)
    assert "\n" not in str(err.value) and "bad.json" in str(err.value)


def test_png_round_trip(tiny_source, tmp_path):
    ex = MFCCImage(cache_dir=tmp_path, segment_seconds=10.0, segments_per_clip=1)
    feats = ex.extract(tiny_source)
    assert feats.x.shape[1:] == (3, 13, 431)
    pngs = sorted(tmp_path.glob("mfcc-png-*/shards/00000/blues/blues.0000*.png"))  # one shard: 40 clips
    assert len(pngs) == 4
    with Image.open(pngs[0]) as img:
        assert img.mode == "RGB" and img.size == (431, 13)
        np.testing.assert_allclose(np.asarray(img).transpose(2, 0, 1) / 255, feats.x[0], atol=1e-6)
    cache = pngs[0].parents[3]
    again = ex.load(cache)  # read back from the PNG files
    np.testing.assert_array_equal(again.x, feats.x)
    resized = MFCCImage(cache_dir=tmp_path, segment_seconds=10.0, segments_per_clip=1, size=[70, 70]).extract(
        tiny_source
    )
    assert resized.x.shape[1:] == (3, 70, 70)


def test_chroma_shape(tiny_source, tmp_path):
    feats = Chroma(cache_dir=tmp_path).extract(tiny_source)
    assert feats.x.shape == (40, 1, 12, 431)  # one 10-s segment per 12-s clip
    assert 0 <= feats.x.min() and feats.x.max() <= 1


def test_cache_hit_and_miss(tiny_source, tmp_path, monkeypatch):
    MFCC(cache_dir=tmp_path).extract(tiny_source)
    assert len(list(tmp_path.glob("mfcc-*/index.json"))) == 1

    def boom(self, path):
        raise AssertionError("a cache hit must not extract")

    monkeypatch.setattr(MFCC, "clip", boom)
    MFCC(cache_dir=tmp_path, num_workers=1).extract(tiny_source)  # hit: same parameters
    with pytest.raises(AssertionError, match="must not extract"):  # in-process, so the patch applies
        MFCC(cache_dir=tmp_path, n_mfcc=20, num_workers=1).extract(tiny_source)  # miss: n_mfcc changes the numbers


def test_threaded_extraction_equals_one_thread(tiny_source, tmp_path):
    blas_before = [p["num_threads"] for p in threadpool_info()]
    one = MFCC(cache_dir=tmp_path / "one", num_workers=1).extract(tiny_source)
    three = MFCC(cache_dir=tmp_path / "three", num_workers=3).extract(tiny_source)
    assert three.track_ids == one.track_ids  # clip order does not depend on which thread finished first
    np.testing.assert_array_equal(three.labels, one.labels)
    np.testing.assert_array_equal(three.x, one.x)  # to the bit
    assert [p["num_threads"] for p in threadpool_info()] == blas_before  # the one-BLAS-thread limit is undone


def test_crash_mid_write_leaves_no_cache(tiny_source, tmp_path, monkeypatch):
    real_save = MFCC.save_segments

    def crash(self, folder, kept):
        real_save(self, folder, kept)  # half the cache is on disk...
        raise KeyboardInterrupt  # ...when the run is interrupted

    monkeypatch.setattr(MFCC, "save_segments", crash)
    with pytest.raises(KeyboardInterrupt):
        MFCC(cache_dir=tmp_path).extract(tiny_source)
    assert not list(tmp_path.glob("mfcc-*/index.json"))
    (partial,) = [p for p in tmp_path.iterdir() if p.is_dir()]  # the store being built, holding no shard:
    assert partial.name.endswith(".partial") and not [p for p in (partial / "shards").iterdir() if p.is_dir()]
    monkeypatch.undo()
    feats = MFCC(cache_dir=tmp_path).extract(tiny_source)
    assert len(feats) == 160


def _folder_with_bad_clips(tmp_path: Path) -> Path:
    """Two good 6.5-s clips per genre, and clips that are not audio, truncated, too short, 44.1 kHz stereo."""
    root = tmp_path / "genres"
    for g in ("blues", "rock"):
        for i in range(2):
            write_tone(root / g / f"{g}.{i:05d}.wav", 6.5)
    (root / "rock" / "rock.00002.wav").write_text("not audio at all")
    good = (root / "blues" / "blues.00000.wav").read_bytes()
    (root / "blues" / "blues.00054.wav").write_bytes(good[:200])  # truncated, like jazz.00054
    write_tone(root / "blues" / "blues.00003.wav", 1.0)  # shorter than one segment
    write_tone(root / "rock" / "rock.00003.wav", 6.5, sr=44100, channels=2)  # resampled and downmixed
    return root


def test_bad_clips_are_skipped_and_listed(tmp_path, caplog):
    root = _folder_with_bad_clips(tmp_path)
    feats = MFCC(cache_dir=tmp_path / "cache").extract(GTZAN(tmp_path))
    assert feats.track_ids == ["blues.00000", "blues.00001", "rock.00000", "rock.00001", "rock.00003"]
    assert len(feats) == 10  # two 3-s segments per usable clip
    skipped = next((tmp_path / "cache").glob("mfcc-*/skipped.txt")).read_text().splitlines()
    assert sorted(line.split("\t")[0].rsplit("/", 1)[-1] for line in skipped) == [
        "blues.00003.wav",
        "blues.00054.wav",
        "rock.00002.wav",
    ]
    assert any("too short" in line for line in skipped)
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 3 and all("\n" not in w for w in warned)
    # The 44.1 kHz stereo clip is read as librosa.load(sr=22050, mono=True) reads it.
    y, sr = librosa.load(root / "rock" / "rock.00003.wav", sr=22050, mono=True)
    assert sr == 22050 and y.ndim == 1
    ref = librosa.feature.mfcc(y=y[:66150], sr=22050, n_mfcc=13, n_fft=2048, hop_length=512)
    np.testing.assert_allclose(feats.x[8, 0], ref, atol=1e-4)


def test_logmel_skips_and_lists_the_same_bad_clips(tmp_path, caplog):
    _folder_with_bad_clips(tmp_path)
    feats = LogMel(cache_dir=tmp_path / "cache").extract(GTZAN(tmp_path))
    assert feats.track_ids == ["blues.00000", "blues.00001", "rock.00000", "rock.00001", "rock.00003"]
    assert feats.x.shape == (10, 1, 128, 130)
    listed = next((tmp_path / "cache").glob("logmel-*/skipped.txt")).read_text().splitlines()
    skipped = dict(line.split("\t") for line in listed)
    assert sorted(Path(p).name for p in skipped) == ["blues.00003.wav", "blues.00054.wav", "rock.00002.wav"]
    assert skipped[str(tmp_path / "genres" / "blues" / "blues.00003.wav")].startswith("too short (1.00 s")
    assert len([r for r in caplog.records if r.levelname == "WARNING"]) == 3
