"""``features=kaggle-csv``: Kaggle's GTZAN tables, both formats, their errors, every model, the filtered split."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from helpers import NARROW

from mgc.errors import MgcError
from mgc.features import KaggleTable
from mgc.features.kaggle import COLUMNS, STATISTICS, read_table
from mgc.predict import Predictor
from mgc.train import train_and_test

pytestmark = pytest.mark.slow  # end-to-end runs: make test runs them, make test-fast leaves them out

GENRES = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]


def write_table(path: Path, tracks_per_genre: int = 4, segments: int | None = None, seed: int = 0) -> Path:
    """A table in Kaggle's format: genre-dependent statistics, one row per track or per 3-s segment."""
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for g, genre in enumerate(GENRES):
            for t in range(tracks_per_genre):
                for s in range(segments or 1):
                    name = f"{genre}.{t:05d}.{s}.wav" if segments else f"{genre}.{t:05d}.wav"
                    values = rng.normal(loc=g, scale=1.0, size=len(STATISTICS)) ** 2 + 0.01  # positive, like a var
                    writer.writerow([name, 661794, *values, genre])
    return path


def test_thirty_second_rows_are_tracks_with_their_statistics_in_order(tmp_path):
    path = write_table(tmp_path / "features_30_sec.csv")
    raw = list(csv.DictReader(open(path)))
    table = KaggleTable(path, log_variances=False).extract()
    assert table.x.shape == (40, 1, 57, 1) and table.class_names == GENRES and table.has_tracks
    row = next(r for r in raw if r["filename"] == "disco.00002.wav")
    i = table.track_ids.index("disco.00002")
    np.testing.assert_allclose(table.x[table.tracks == i][0, 0, :, 0], [float(row[c]) for c in STATISTICS], rtol=1e-6)
    assert table.labels[table.tracks == i].tolist() == [GENRES.index("disco")]
    logged = KaggleTable(path).extract().x[table.tracks == i][0, 0, :, 0]
    for k, column in enumerate(STATISTICS):  # the log of variances only
        expected = math.log(float(row[column])) if column.endswith("_var") else float(row[column])
        assert logged[k] == pytest.approx(expected, rel=1e-5), column


def test_three_second_rows_are_segments_of_their_track(tmp_path):
    path = write_table(tmp_path / "features_3_sec.csv", tracks_per_genre=2, segments=10)
    rows = list(csv.DictReader(open(path)))
    rows.reverse()  # any row order in the file
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    table = read_table(path)
    assert len(table.track_ids) == 20 and len(table) == 200
    assert np.bincount(table.tracks).tolist() == [10] * 20  # ten segments per track
    seg3 = next(r for r in rows if r["filename"] == "rock.00001.3.wav")
    rock1 = table.x[table.tracks == table.track_ids.index("rock.00001")]
    assert rock1[3, 0, 0, 0] == pytest.approx(float(seg3[STATISTICS[0]]))  # segment 3 sits fourth, in order


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda rows: rows, "does not exist"),
        (lambda rows: [[c for c in r if c != r[5]] for r in rows], "column 'rms_var' is missing"),
        (lambda rows: [[*r, "x"] for r in rows], "column 'x' is unexpected"),
        (lambda rows: [rows[0], [*rows[1][:4], "abc", *rows[1][5:]]], "line 2: column 'rms_mean' holds 'abc'"),
        (lambda rows: [rows[0], [*rows[1][:-1], "rock"]], "line 2: label 'rock' disagrees with file name blues.00000"),
        (lambda rows: [rows[0], ["blues00000.wav", *rows[1][1:]]], "file name 'blues00000.wav' is not"),
        (lambda rows: [rows[0], rows[1], rows[1]], "track blues.00000 segment 0 appears twice"),
    ],
)
def test_a_bad_table_gets_one_line_naming_it(tmp_path, change, message):
    rows = list(csv.reader(open(write_table(tmp_path / "good.csv", tracks_per_genre=1))))
    path = tmp_path / "bad.csv"
    if message != "does not exist":
        with open(path, "w", newline="") as f:
            csv.writer(f).writerows(change(rows))
    with pytest.raises(MgcError, match=f"features.csv_path={path}.*{message}") as err:
        read_table(path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "model", ["linear", "mlp", "cnn", "lstm", "bilstm", "gru", "resnet18", "short_chunk_cnn", "stats_linear"]
)
def test_every_model_trains_on_the_table(make_cfg, tmp_path, model):
    path = write_table(tmp_path / "features_30_sec.csv")
    metrics = train_and_test(
        make_cfg(
            "features=kaggle-csv",
            f"features.csv_path={path}",
            f"model={model}",
            *NARROW.get(model, []),
            "+trainer.fast_dev_run=true",
        )
    )
    assert metrics.data == "kaggle:features_30_sec.csv" and metrics.test.tracks == 10


def test_a_model_learns_the_genres_from_a_table(make_cfg, tmp_path):
    path = write_table(tmp_path / "features_30_sec.csv", tracks_per_genre=10)
    metrics = train_and_test(
        make_cfg(
            "features=kaggle-csv",
            f"features.csv_path={path}",
            "model=linear",
            "optim=adam",
            "scheduler=none",
            "optim.lr=0.02",
            "trainer.max_epochs=30",
            "logger=none",
        )
    )
    assert metrics.test.track.accuracy >= 0.6  # the genres differ in their statistics' means


def test_a_model_trained_on_a_table_cannot_predict_audio_and_says_so(make_cfg, tmp_path, tiny_source):
    path = write_table(tmp_path / "features_30_sec.csv")
    metrics = train_and_test(
        make_cfg(
            "features=kaggle-csv", f"features.csv_path={path}", "model=linear", "trainer.max_epochs=1", "logger=none"
        )
    )
    with pytest.raises(MgcError, match="were read from a table, not computed from audio") as err:
        Predictor(metrics.best_checkpoint)
    assert "\n" not in str(err.value)


def test_the_csv_path_must_be_set(make_cfg):
    with pytest.raises(MgcError, match=r"^features.csv_path is not set: pass features.csv_path=\.\.\.$"):
        train_and_test(make_cfg("features=kaggle-csv", "+trainer.fast_dev_run=true"))
