"""The benchmark runs end to end and reports every field (its speed is not judged here)."""

from __future__ import annotations

import json
import math

from mgc.bench import main


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
