"""The benchmark runs end to end and every figure is consistent with its parts (its speed is not judged here)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from mgc.bench import main
from mgc.bench.extraction import format_copies
from mgc.bench.training import MODEL_FEATURES, _models, lightning_loop, plain_loop
from mgc.data import GTZAN, SyntheticGTZAN

pytestmark = pytest.mark.slow  # end-to-end runs: make test runs them, make test-fast leaves them out


def ratio_of(numerator: float, denominator: float, rel: float) -> object:
    """A ratio recomputed from the two rounded figures it is reported beside (ratios keep 3 decimals)."""
    return pytest.approx(numerator / denominator, rel=rel, abs=6e-4)


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> tuple[dict, str]:
    """One ``--quick`` bench: what bench.json holds, and what it printed."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("bench")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        result = main(["--quick", "--out", str(out)])
    saved = json.loads((out / "bench.json").read_text())
    assert saved == json.loads(json.dumps(result))
    return saved, printed.getvalue()


def test_quick_bench_writes_every_part_and_stage(quick):
    saved, out = quick
    parts = {"extraction", "logmel", "loading", "training", "memory", "musicnn", "store"}
    assert set(saved["stage_seconds"]) == {"data", *parts} and parts <= set(saved)
    assert "seconds per stage: data" in out


def test_extraction_and_loading_figures_are_their_parts_ratios(quick):
    saved, out = quick
    e = saved["extraction"]
    assert e["max_abs_diff"] <= 1e-4  # identical numbers is a correctness claim, so it is checked
    for key in ("baseline_a_s", "baseline_b_s", "mgc_s", "speedup_vs_a", "speedup_vs_b"):
        assert e[key] > 0
    assert set(e["audio_s_per_s"]) == {"a", "b", "mgc"}
    # Every ratio is the quotient of the figures beside it, the right way round (a swapped or
    # mislabelled baseline fails here), and every target is stated.
    assert e["speedup_vs_a"] == ratio_of(e["baseline_a_s"], e["mgc_s"], 0.02)
    assert e["speedup_vs_b"] == ratio_of(e["baseline_b_s"], e["mgc_s"], 0.02)
    assert e["audio_s_per_s"]["mgc"] == ratio_of(e["audio_seconds"], e["mgc_s"], 0.02)
    assert e["targets"] == {"speedup_vs_a": 3.0, "speedup_vs_b": 1.3, "max_abs_diff": 1e-4}
    lo = saved["loading"]
    assert lo["segments"] == 200 and lo["speedup"] > 0
    assert lo["speedup"] == ratio_of(lo["json_s"], lo["cache_s"], 0.05) and lo["targets"] == {"speedup": 50.0}
    lm = saved["logmel"]
    assert lm["clips"] == e["clips"] and lm["max_abs_diff"] <= 1e-4 and lm["targets"] == {"max_abs_diff": 1e-4}
    assert lm["speedup_vs_loop"] == ratio_of(lm["loop_s"], lm["mgc_s"], 0.02)
    assert lm["audio_s_per_s"]["mgc"] == ratio_of(lm["audio_seconds"], lm["mgc_s"], 0.02)
    assert "feature loading: cache vs json.load" in out and "log-mel extraction vs per-segment librosa loop" in out
    m = saved["memory"]
    assert m["extraction_peak_rss_mb"] > 0 and m["train_peak_rss_mb"] > 0
    assert m["extraction_clips"] == 20 and m["raw_audio_mb"] > 0  # 20 linked copies of the 10 quick clips


def test_training_figures_are_their_parts_ratios(quick):
    saved, out = quick
    for model in ("gru", "cnn", "spectrogram_cnn"):
        t = saved["training"][model]
        assert not {"compiled_samples_s", "compile_gain"} & set(t)  # --quick leaves torch.compile out
        rates = ("plain_samples_s", "lightning_samples_s", "lightning_vs_plain", "plain_batch_slicing_samples_s")
        assert all(math.isfinite(t[k]) and t[k] > 0 for k in rates)
        assert t["lightning_vs_plain"] == ratio_of(t["lightning_samples_s"], t["plain_samples_s"], 0.01)
        assert t["batch_slicing_gain"] == ratio_of(t["plain_batch_slicing_samples_s"], t["plain_samples_s"], 0.01)
    assert saved["training"]["spectrogram_cnn"]["input_shape"] == [1, 128, 130]  # log-mel, not MFCC
    for model in ("cnn", "spectrogram_cnn"):
        t = saved["training"][model]
        assert t["channels_last_gain"] == ratio_of(
            t["channels_last_samples_s"], t["plain_batch_slicing_samples_s"], 0.01
        )
    scc = saved["training"]["spectrogram_cnn"]
    assert scc["bf16_gain"] == ratio_of(scc["bf16_samples_s"], scc["channels_last_samples_s"], 0.01)
    assert saved["training"]["targets"] == {"lightning_vs_plain": 0.95}
    assert "torch.compile vs eager" not in out
    assert "short-chunk CNN (log-mel) training: Lightning vs plain loop" in out
    assert "short-chunk CNN plain loop: channels-last vs contiguous" in out
    assert "short-chunk CNN plain loop: bf16-mixed vs 32-bit (channels-last)" in out


def test_musicnn_figures_are_their_parts_ratios(quick):
    saved, _ = quick
    mx, me = saved["musicnn"]["extraction"], saved["musicnn"]["encoder"]
    assert mx["clips"] == 10
    assert mx["musicnn_vs_logmel"] == ratio_of(mx["musicnn_clips_per_s"], mx["logmel_clips_per_s"], 0.02)
    assert me["patches"] == 40 and me["target_vs_plain"] == 0.95 and me["met"] == (me["mgc_vs_plain"] >= 0.95)
    assert me["mgc_vs_plain"] == ratio_of(me["mgc_patches_per_s"], me["plain_patches_per_s"], 0.02)
    assert saved["musicnn"]["tensorflow"]["measured"] is False  # mgc's install has no TensorFlow


def test_store_figures_are_their_parts_ratios(quick):
    saved, out = quick
    st = saved["store"]
    assert st["targets"] == {"disk_vs_memory": 0.9, "peak_rss_4x_vs_1x": 1.1}
    assert st["throughput"]["segments"] == 200  # part 2's store of the 20 quick clips
    for model in ("gru", "linear"):
        t = st["throughput"][model]
        assert t["disk_vs_memory"] == ratio_of(t["disk_samples_s"], t["memory_samples_s"], 0.01)
    m = st["memory"]
    assert m["4x"]["store_mb"] == pytest.approx(4 * m["1x"]["store_mb"], rel=1e-3) and m["4x"]["seen"] == 160
    assert m["peak_rss_4x_vs_1x"] == ratio_of(m["4x"]["peak_mb"], m["1x"]["peak_mb"], 0.01)
    assert "GRU training: batches from disk vs memory" in out and "peak RSS of an epoch from disk" in out


def test_training_only_runs_part_three_alone(tmp_path, capsys):
    result = main(["--quick", "--training-only", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert saved == json.loads(json.dumps(result))
    assert set(saved) == {"quick", "cpu_count", "torch_threads", "training", "stage_seconds"}
    assert set(saved["stage_seconds"]) == {"data", "training"}
    t = saved["training"]["spectrogram_cnn"]
    assert t["lightning_vs_plain"] == ratio_of(t["lightning_samples_s"], t["plain_samples_s"], 0.01)
    out = capsys.readouterr().out
    assert "short-chunk CNN (log-mel) training: Lightning vs plain loop" in out and "extraction" not in out


@pytest.mark.parametrize("name", ["gru", "cnn", "spectrogram_cnn"])
def test_the_full_size_bench_models_train_in_both_loops(name):
    """`--quick` swaps in small models; the models behind README's Performance table run here, one step each."""
    build = _models(quick=False)[name]
    assert sum(p.numel() for p in build().parameters()) > 10 * sum(
        p.numel() for p in _models(True)[name]().parameters()
    )
    bins = 128 if MODEL_FEATURES[name] == "logmel" else 13
    x, y = torch.randn(64 * 3, 1, bins, 130), torch.randint(0, 10, (64 * 3,))
    rate, _ = plain_loop(build(), x, y, batches=1, per_item=False)
    assert math.isfinite(rate) and rate > 0
    assert lightning_loop(build(), x, y, batches=1) > 0


# -- --data-root: extraction only, on a folder's clips and on .au copies of them ------------------
SHORT = 92  # real GTZAN clips run this many samples short of 30 s; their tenth segment is still kept


def _snapshot(folder: Path) -> dict[str, tuple[bool, int, int]]:
    """Every entry under ``folder`` (itself included): is-dir, size and mtime."""
    return {
        str(p.relative_to(folder)): (p.is_dir(), p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in [folder, *folder.rglob("*")]
    }


@pytest.fixture(scope="module")
def gtzan_folder(tmp_path_factory) -> Path:
    """A tarball-layout folder, ``genres/<genre>/<genre>.NNNNN.wav``: a 30-s synthetic clip per genre, one
    clip 92 samples short of 30 s (as real GTZAN's are), one unreadable clip and clutter."""
    synthetic = SyntheticGTZAN(tmp_path_factory.mktemp("synthetic"), clips_per_genre=1, duration=30.0, seed=0)
    synthetic.prepare()
    root = tmp_path_factory.mktemp("gtzan")
    for clip in synthetic.clips():
        dest = root / "genres" / clip.genre / clip.path.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(clip.path, dest)
    data, sr = sf.read(root / "genres" / "blues" / "blues.00000.wav", dtype="int16")
    sf.write(root / "genres" / "blues" / "blues.00001.wav", data[:-SHORT], sr, subtype="PCM_16")
    (root / "genres" / "jazz" / "jazz.00054.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEjunk" + bytes(64))
    (root / "genres" / ".DS_Store").write_bytes(bytes(16))
    (root / "genres" / "bl.mf").write_text("blues/blues.00000.wav\tblues\n")
    return root


def test_data_root_runs_extraction_on_the_clips_and_their_au_copies(gtzan_folder, tmp_path, capsys):
    before = _snapshot(gtzan_folder)
    result = main(["--data-root", str(gtzan_folder), "--out", str(tmp_path), "--quick"])
    assert _snapshot(gtzan_folder) == before  # nothing written under the data root
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert saved == json.loads(json.dumps(result))
    assert saved["formats"] == ["wav", "au"]
    assert not {"extraction", "loading", "training", "memory"} & set(saved)  # extraction only
    assert set(saved["stage_seconds"]) == {"copies", "extraction_wav", "extraction_au"}
    assert set(saved["load_average_1min"]) == {"before", "after"}  # a busy machine inflates the ratios vs A
    assert len(saved["skipped"]) == 1 and "jazz.00054.wav" in saved["skipped"][0]
    for fmt in ("wav", "au"):
        e = saved[f"extraction_{fmt}"]
        assert e["clips"] == 11  # 10 genres + the short clip; the unreadable one left out of both
        assert e["audio_seconds"] == pytest.approx(11 * 30.0 - SHORT / 22050, abs=0.1)
        assert e["max_abs_diff"] <= 1e-4  # same numbers as the classic loop, the short clip's tenth segment too
        assert e["speedup_vs_a"] == ratio_of(e["baseline_a_s"], e["mgc_s"], 0.02)
        assert e["speedup_vs_b"] == ratio_of(e["baseline_b_s"], e["mgc_s"], 0.02)
        for who, seconds in (("a", "baseline_a_s"), ("b", "baseline_b_s"), ("mgc", "mgc_s")):
            assert e["audio_s_per_s"][who] == ratio_of(e["audio_seconds"], e[seconds], 0.02)
        assert e["targets"] == {"speedup_vs_a": 4.0, "speedup_vs_b": 1.3, "max_abs_diff": 1e-4}
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith((".wav ", ".au "))]
    assert [r.split()[0] for r in rows] == [".wav", ".au"]
    assert all(f"{saved[f'extraction_{f}']['speedup_vs_a']}x (>= 4x)" in r for f, r in zip(("wav", "au"), rows))
    assert "jazz.00054.wav" in out and "feature loading" not in out


def test_au_copies_are_the_tarballs_format_with_the_same_samples(gtzan_folder, tmp_path):
    fmt, clips, copy_fmt, copies, skipped = format_copies(GTZAN(gtzan_folder), tmp_path / "copies")
    assert (fmt, copy_fmt, len(skipped)) == ("wav", "au", 1)
    assert [c.track_id for c in copies.clips()] == [c.track_id for c in clips.clips()]
    for wav, au in zip(clips.clips(), copies.clips()):
        assert au.path == tmp_path / "copies" / "genres" / wav.genre / f"{wav.track_id}.au"
        assert (sf.info(au.path).format, sf.info(au.path).subtype) == ("AU", "PCM_16")
        np.testing.assert_array_equal(sf.read(au.path, dtype="int16")[0], sf.read(wav.path, dtype="int16")[0])
