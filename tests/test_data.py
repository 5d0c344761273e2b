"""Audio sources: GTZAN layout discovery, label order, bad folders, the synthetic set."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from helpers import write_tone

from mgc.data import GTZAN, SyntheticGTZAN
from mgc.data.synthetic import render_clip
from mgc.data.synthetic_styles import STYLES
from mgc.errors import MgcError


def make_gtzan(base, genres=("rock", "blues", "jazz"), n=2, suffix=".wav", seconds=3.5):
    for g in genres:  # created out of alphabetical order on purpose
        for i in range(n):
            write_tone(base / g / f"{g}.{i:05d}{suffix}", seconds, fmt="AU" if suffix == ".au" else None)
    return base


@pytest.mark.parametrize("layout", ["genres", "genres_original", "Data/genres_original", "."])
@pytest.mark.parametrize("suffix", [".wav", ".au"])
def test_discovers_every_layout(tmp_path, layout, suffix):
    make_gtzan(tmp_path / layout, suffix=suffix)
    clips = GTZAN(tmp_path).clips()
    assert [c.track_id for c in clips] == [
        "blues.00000",
        "blues.00001",
        "jazz.00000",
        "jazz.00001",
        "rock.00000",
        "rock.00001",
    ]
    assert all(c.path.suffix == suffix and c.path.is_file() for c in clips)
    assert GTZAN(tmp_path).genres == ["blues", "jazz", "rock"]


def test_stray_files_and_hidden_folders_are_ignored(tmp_path):
    make_gtzan(tmp_path)
    (tmp_path / ".DS_Store").write_text("x")
    (tmp_path / "README").write_text("x")
    (tmp_path / "rock" / "notes.txt").write_text("x")
    (tmp_path / ".hidden").mkdir()
    write_tone(tmp_path / ".hidden" / "a.wav", 3.5)
    assert GTZAN(tmp_path).genres == ["blues", "jazz", "rock"]
    assert len(GTZAN(tmp_path).clips()) == 6


def test_missing_root_is_a_one_line_error(tmp_path):
    with pytest.raises(MgcError, match=r"data.root=.*does not exist") as err:
        GTZAN(tmp_path / "nope").clips()
    assert "\n" not in str(err.value)


def test_empty_root_says_what_it_expected(tmp_path):
    with pytest.raises(MgcError, match="holds no genre folders with audio.*expected <genre>"):
        GTZAN(tmp_path).clips()


def test_one_genre_is_not_enough(tmp_path):
    make_gtzan(tmp_path, genres=("rock",))
    with pytest.raises(MgcError, match="found audio for 1 genre .*at least two"):
        GTZAN(tmp_path).clips()


def _digest(source: SyntheticGTZAN) -> str:
    h = hashlib.sha256()
    for c in source.clips():
        h.update(c.path.read_bytes())
    return h.hexdigest()


def test_synthetic_is_gtzan_layout_and_deterministic(tmp_path):
    a = SyntheticGTZAN(tmp_path / "a", clips_per_genre=1, duration=4.0, seed=3)
    b = SyntheticGTZAN(tmp_path / "b", clips_per_genre=1, duration=4.0, seed=3)
    c = SyntheticGTZAN(tmp_path / "c", clips_per_genre=1, duration=4.0, seed=4)
    for s in (a, b, c):
        s.prepare()
    assert sorted(p.relative_to(a.root).as_posix() for p in a.root.rglob("*.wav"))[:2] == [
        "genres_original/blues/blues.00000.wav",
        "genres_original/classical/classical.00000.wav",
    ]
    assert a.genres == sorted(STYLES) and len(a.genres) == 10
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)
    # A second prepare with the same parameters writes nothing.
    mtimes = [c.path.stat().st_mtime_ns for c in a.clips()]
    a.prepare()
    assert mtimes == [c.path.stat().st_mtime_ns for c in a.clips()]


def test_synthetic_regenerates_when_parameters_change(tmp_path):
    SyntheticGTZAN(tmp_path, clips_per_genre=1, duration=3.0).prepare()
    longer = SyntheticGTZAN(tmp_path, clips_per_genre=1, duration=4.0)
    longer.prepare()
    import soundfile as sf

    assert sf.info(str(longer.clips()[0].path)).duration == pytest.approx(4.0)


def test_synthetic_genres_differ_like_real_ones():
    """Loudness and brightness order as in real music; tempo follows each style."""
    import librosa

    def stats(genre, i):
        y = render_clip(genre, np.random.default_rng([0, sorted(STYLES).index(genre), i]), 12.0, 22050)
        rms_db = 20 * np.log10(np.sqrt(np.mean(y**2)))
        onset_env = librosa.onset.onset_strength(y=y, sr=22050)
        return rms_db, float(onset_env.mean())

    classical = np.array([stats("classical", i) for i in range(3)])
    metal = np.array([stats("metal", i) for i in range(3)])
    assert classical[:, 0].max() < metal[:, 0].min()  # metal is louder
    assert classical[:, 1].mean() < metal[:, 1].mean()  # and far more percussive
    # Inside a genre clips vary (tempo, mix, timbre), so no two clips are alike.
    a = render_clip("rock", np.random.default_rng(1), 5.0, 22050)
    b = render_clip("rock", np.random.default_rng(2), 5.0, 22050)
    assert not np.allclose(a, b)
