"""The metrics record and the scoring functions, on hand-built tensors with known answers."""

from __future__ import annotations

import json
import math

import pytest
import torch

from mgc.errors import MgcError
from mgc.metrics import RunMetrics, scores, stage_metrics, track_means, unique_first

NAMES = ["blues", "jazz", "rock"]


def logp_of(*rows: list[float]) -> torch.Tensor:
    return torch.log(torch.tensor(rows, dtype=torch.float64))


def test_track_means_average_log_probabilities_per_track_in_id_order():
    logp = logp_of([0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8], [0.5, 0.4, 0.1])
    y = torch.tensor([1, 1, 2, 0])
    track = torch.tensor([7, 7, 3, 5])  # ids out of order, one track split over two segments
    means, labels, _ = track_means(logp, y, track)
    assert labels.tolist() == [2, 0, 1]  # tracks 3, 5, 7
    torch.testing.assert_close(means[0], logp[2])
    torch.testing.assert_close(means[2], (logp[0] + logp[1]) / 2)


def test_a_track_is_predicted_by_mean_log_probability_not_by_majority_vote():
    # Two segments mildly say blues, one says jazz with certainty: the vote is blues, the mean log-prob jazz.
    logp = logp_of([0.5, 0.4, 0.1], [0.5, 0.4, 0.1], [0.001, 0.998, 0.001])
    result = stage_metrics(logp.float(), torch.tensor([1, 1, 1]), torch.tensor([0, 0, 0]), NAMES)
    assert result.segment.accuracy == pytest.approx(1 / 3)
    assert result.track.accuracy == 1.0 and result.tracks == 1 and result.segments == 3


def test_each_track_verdict_names_the_track_its_genre_and_the_mean_log_probability_winner():
    # track ids out of order and not 0..n-1: names are looked up by id, verdicts come in id order
    logp = logp_of([0.5, 0.4, 0.1], [0.001, 0.998, 0.001], [0.2, 0.2, 0.6], [0.7, 0.2, 0.1])
    y, track = torch.tensor([0, 0, 2, 1]), torch.tensor([5, 5, 1, 3])
    names = ["t0", "t1", "t2", "t3", "t4", "t5"]
    verdicts = stage_metrics(logp.float(), y, track, NAMES, names).verdicts
    assert [(v.track, v.genre, v.predicted, v.missed) for v in verdicts] == [
        ("t1", "rock", "rock", False),
        ("t3", "jazz", "blues", True),
        ("t5", "blues", "jazz", True),  # one certain jazz segment outweighs a mild blues one
    ]
    mean = (logp[0] + logp[1]) / 2
    assert verdicts[2].probability == pytest.approx(float(torch.softmax(mean, 0)[1]), abs=1e-6)
    # every genre's mean log-probability, by name: what an ensemble of runs averages (mgc.report)
    assert list(verdicts[2].log_probs) == NAMES
    assert list(verdicts[2].log_probs.values()) == pytest.approx(mean.tolist(), abs=1e-6)
    assert list(verdicts[0].log_probs.values()) == pytest.approx(logp[2].tolist(), abs=1e-6)
    assert stage_metrics(logp.float(), y, track, NAMES).verdicts == []  # bare segments: no tracks to name


def test_scores_confusion_rows_are_the_true_genre():
    pred = torch.tensor([0, 0, 1, 2, 2, 2])
    true = torch.tensor([0, 1, 1, 2, 2, 0])
    s = scores(pred, true, NAMES)
    assert s.confusion == [[1, 0, 1], [1, 1, 0], [0, 0, 2]]  # row blues: one right, one called rock
    assert s.accuracy == pytest.approx(4 / 6)
    assert s.per_class["blues"]["recall"] == pytest.approx(1 / 2)
    assert s.per_class["blues"]["precision"] == pytest.approx(1 / 2)
    assert s.per_class["rock"]["precision"] == pytest.approx(2 / 3) and s.per_class["rock"]["recall"] == 1.0
    f1 = [2 * p * r / (p + r) for p, r in ((1 / 2, 1 / 2), (1, 1 / 2), (2 / 3, 1))]
    assert s.macro_f1 == pytest.approx(sum(f1) / 3)


def test_macro_f1_is_the_plain_mean_over_genres_whatever_their_support():
    true = torch.tensor([0, 0, 0, 1, 2])  # blues 3 tracks, jazz 1, rock 1
    pred = torch.tensor([0, 0, 1, 1, 1])
    s = scores(pred, true, NAMES)
    assert [s.per_class[g]["f1"] for g in NAMES] == pytest.approx([0.8, 0.5, 0.0])
    assert s.macro_f1 == pytest.approx((0.8 + 0.5 + 0.0) / 3)  # weighted by support it would be 0.58


def test_unique_first_scores_padded_duplicates_once():
    index = torch.tensor([4, 2, 4, 9, 2])
    values, first = unique_first(index)
    assert values.tolist() == [2, 4, 9] and first.tolist() == [1, 0, 3]


def test_stage_loss_is_the_mean_negative_log_likelihood():
    logp = logp_of([0.5, 0.25, 0.25], [0.1, 0.8, 0.1]).float()
    result = stage_metrics(logp, torch.tensor([0, 1]), torch.tensor([0, 1]), NAMES)
    assert result.loss == pytest.approx(-(math.log(0.5) + math.log(0.8)) / 2, rel=1e-6)


def record(**changes) -> RunMetrics:
    logp = logp_of([0.6, 0.3, 0.1], [0.2, 0.7, 0.1]).float()
    part = stage_metrics(logp, torch.tensor([0, 2]), torch.tensor([0, 1]), NAMES, ["a.0", "c.1"])
    fields = dict(
        task_name="t",
        choices={"model": "mlp"},
        data="synthetic",
        split="track_80_10_10",
        test_part="test",
        lr=1e-3,
        seed=1,
        epochs=2,
        train_time_s=1.5,
        threads=2,
        world_size=1,
        best_checkpoint=None,
        run_dir="r",
        val=part,
        test=part,
    )
    return RunMetrics(**{**fields, **changes})


def test_metrics_json_round_trips_and_keeps_its_layout(tmp_path):
    m = record()
    m.write(tmp_path / "metrics.json")
    raw = json.loads((tmp_path / "metrics.json").read_text())
    assert raw["test"]["segment"]["accuracy"] == 0.5 and raw["val"]["track"]["confusion"][2] == [
        0,
        1,
        0,
    ]  # rock called jazz
    assert set(raw["test"]) == {"loss", "segments", "tracks", "segment", "track", "verdicts"}
    assert raw["test"]["verdicts"][1] == {
        "track": "c.1",
        "genre": "rock",
        "predicted": "jazz",
        "probability": 0.7,
        "log_probs": {g: round(math.log(q), 6) for g, q in zip(NAMES, (0.2, 0.7, 0.1))},
    }
    assert "verdicts" not in str(m.numbers())  # per-track verdicts are no metric to average
    older = m.as_dict()
    del older["test"]["verdicts"]  # written before mgc recorded verdicts
    assert RunMetrics.from_dict(older).test.verdicts == []
    older = m.as_dict()
    del older["test"]["verdicts"][0]["log_probs"]  # written before verdicts kept every genre's score
    assert RunMetrics.from_dict(older).test.verdicts[0].log_probs == {}
    assert RunMetrics.read(tmp_path / "metrics.json") == m
    assert record(val=None).as_dict()["val"] == {}  # a part that was not evaluated, as before
    assert RunMetrics.from_dict(record(val=None).as_dict()).val is None


def test_select_reads_the_sweep_objective_and_names_a_bad_key():
    m = record()
    assert m.select("val.segment.accuracy") == 0.5
    assert m.select("test.track.per_class.blues.recall") == 1.0
    for bad in ("val.segment.acc", "val.segment", "nope"):
        with pytest.raises(MgcError, match=f"optimized_metric={bad}") as err:
            m.select(bad)
        assert "\n" not in str(err.value)


def test_a_damaged_metrics_json_gets_one_line(tmp_path):
    (tmp_path / "metrics.json").write_text('{"task_name": "x"')
    with pytest.raises(MgcError, match="metrics.json is not an mgc metrics.json"):
        RunMetrics.read(tmp_path / "metrics.json")
