"""The benchmark runs end to end and every figure is consistent with its parts (its speed is not judged here)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from mgc.bench import _models, lightning_loop, main, plain_loop


def ratio_of(numerator: float, denominator: float, rel: float) -> object:
    """A ratio recomputed from the two rounded figures it is reported beside (ratios keep 3 decimals)."""
    return pytest.approx(numerator / denominator, rel=rel, abs=6e-4)


def test_quick_bench_writes_every_field(tmp_path, capsys):
    result = main(["--quick", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert saved == json.loads(json.dumps(result))
    e = saved["extraction"]
    assert e["max_abs_diff"] <= 1e-4  # identical numbers is a correctness claim, so it is checked
    for key in ("baseline_a_s", "baseline_b_s", "mgc_s", "speedup_vs_a", "speedup_vs_b"):
        assert e[key] > 0
    assert set(e["audio_s_per_s"]) == {"a", "b", "mgc"}
    assert saved["loading"]["segments"] == 200 and saved["loading"]["speedup"] > 0
    for model in ("gru", "cnn"):
        t = saved["training"][model]
        assert all(
            math.isfinite(t[k]) and t[k] > 0
            for k in (
                "plain_samples_s",
                "lightning_samples_s",
                "lightning_vs_plain",
                "plain_batch_slicing_samples_s",
                "compiled_samples_s",
                "compile_gain",
                "compile_warmup_s",
            )
        )
    assert saved["training"]["cnn"]["channels_last_gain"] > 0
    m = saved["memory"]
    assert m["extraction_peak_rss_mb"] > 0 and m["train_peak_rss_mb"] > 0
    assert m["extraction_clips"] == 20 and m["raw_audio_mb"] > 0  # 20 linked copies of the 10 quick clips
    assert set(saved["stage_seconds"]) == {"data", "extraction", "loading", "training", "memory"}
    out = capsys.readouterr().out
    assert "feature loading: cache vs json.load" in out and "CNN plain loop: torch.compile vs eager" in out
    assert "seconds per stage: data" in out

    # Every ratio is the quotient of the figures beside it, the right way round (a swapped or
    # mislabelled baseline fails here), and every target is stated.
    assert e["speedup_vs_a"] == ratio_of(e["baseline_a_s"], e["mgc_s"], 0.02)
    assert e["speedup_vs_b"] == ratio_of(e["baseline_b_s"], e["mgc_s"], 0.02)
    assert e["audio_s_per_s"]["mgc"] == ratio_of(e["audio_seconds"], e["mgc_s"], 0.02)
    assert e["targets"] == {"speedup_vs_a": 3.0, "speedup_vs_b": 1.3, "max_abs_diff": 1e-4}
    lo = saved["loading"]
    assert lo["speedup"] == ratio_of(lo["json_s"], lo["cache_s"], 0.05) and lo["targets"] == {"speedup": 50.0}
    for model in ("gru", "cnn"):
        t = saved["training"][model]
        assert t["lightning_vs_plain"] == ratio_of(t["lightning_samples_s"], t["plain_samples_s"], 0.01)
        assert t["batch_slicing_gain"] == ratio_of(t["plain_batch_slicing_samples_s"], t["plain_samples_s"], 0.01)
    cnn = saved["training"]["cnn"]
    assert cnn["channels_last_gain"] == ratio_of(
        cnn["channels_last_samples_s"], cnn["plain_batch_slicing_samples_s"], 0.01
    )
    assert cnn["compile_gain"] == ratio_of(cnn["compiled_samples_s"], cnn["channels_last_samples_s"], 0.01)
    assert saved["training"]["targets"] == {"lightning_vs_plain": 0.95}


@pytest.mark.parametrize("name", ["gru", "cnn"])
def test_the_full_size_bench_models_train_in_both_loops(name):
    """`--quick` swaps in small models; the models behind README's Performance table run here, one step each."""
    build = _models(quick=False)[name]
    assert sum(p.numel() for p in build().parameters()) > 10 * sum(
        p.numel() for p in _models(True)[name]().parameters()
    )
    x, y = torch.randn(64 * 3, 1, 13, 130), torch.randint(0, 10, (64 * 3,))
    rate, _ = plain_loop(build(), x, y, batches=1, per_item=False)
    assert math.isfinite(rate) and rate > 0
    assert lightning_loop(build(), x, y, batches=1) > 0
