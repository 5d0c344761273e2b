"""The benchmark's printed tables: one row per measure, with its ratio, its target and what it was measured on."""

from __future__ import annotations

from mgc.bench.musicnn import rows as musicnn_rows
from mgc.bench.store import rows as store_rows


def table(r: dict) -> str:
    """The rows of every part ``r`` holds (``--training-only`` runs hold one)."""
    rows = []
    if "extraction" in r:
        rows += extraction_rows(r)
    if "training" in r:
        rows += training_rows(r["training"])
    if "memory" in r:
        m = r["memory"]
        rows.append(
            (
                "peak RSS: extraction",
                f"{m['extraction_peak_rss_mb']} MB",
                "< raw audio",
                f"{m['extraction_clips']} clips, raw audio {m['raw_audio_mb']} MB",
            )
        )
        rows.append(
            ("peak RSS: default training run", f"{m['train_peak_rss_mb']} MB", "", f"{m['train_epochs']} epoch")
        )
    if "musicnn" in r:
        rows += musicnn_rows(r["musicnn"])
    if "store" in r:
        rows += store_rows(r["store"])
    return render_rows(rows)


def extraction_rows(r: dict) -> list[tuple[str, str, str, str]]:
    e, lo = r["extraction"], r["loading"]
    return [
        (
            "MFCC extraction vs classic loop (A)",
            f"{e['speedup_vs_a']}x",
            f">= {e['targets']['speedup_vs_a']:g}x",
            f"{e['audio_s_per_s']['mgc']} vs {e['audio_s_per_s']['a']} audio-s/s",
        ),
        (
            "MFCC extraction vs joblib loop (B)",
            f"{e['speedup_vs_b']}x",
            f">= {e['targets']['speedup_vs_b']:g}x",
            f"{e['audio_s_per_s']['mgc']} vs {e['audio_s_per_s']['b']} audio-s/s",
        ),
        (
            "MFCC max abs diff vs librosa loop",
            f"{e['max_abs_diff']:.1e}",
            f"<= {e['targets']['max_abs_diff']:g}",
            f"{e['clips']} clips",
        ),
        (
            "log-mel extraction vs per-segment librosa loop",
            f"{r['logmel']['speedup_vs_loop']}x",
            "",
            f"{r['logmel']['audio_s_per_s']['mgc']} vs {r['logmel']['audio_s_per_s']['loop']} audio-s/s; "
            f"max abs diff {r['logmel']['max_abs_diff']:.1e} dB",
        ),
        (
            "feature loading: cache vs json.load",
            f"{lo['speedup']}x",
            f">= {lo['targets']['speedup']:g}x",
            f"{lo['segments']} segments; RSS {lo['cache_peak_rss_mb']} vs {lo['json_peak_rss_mb']} MB",
        ),
    ]


def training_rows(t: dict) -> list[tuple[str, str, str, str]]:
    rows = []
    for name in ("gru", "cnn", "spectrogram_cnn"):
        label = "short-chunk CNN (log-mel)" if name == "spectrogram_cnn" else name.upper()
        rows.append(
            (
                f"{label} training: Lightning vs plain loop",
                f"{t[name]['lightning_vs_plain']}x",
                f">= {t['targets']['lightning_vs_plain']:g}x",
                f"{t[name]['lightning_samples_s']} vs {t[name]['plain_samples_s']} samples/s",
            )
        )
        rows.append(
            (
                f"{label} plain loop: batch slicing vs per-item",
                f"{t[name]['batch_slicing_gain']}x",
                "",
                f"{t[name]['plain_batch_slicing_samples_s']} samples/s",
            )
        )
    for name, label in (("cnn", "CNN"), ("spectrogram_cnn", "short-chunk CNN")):
        rows.append(
            (
                f"{label} plain loop: channels-last vs contiguous",
                f"{t[name]['channels_last_gain']}x",
                "",
                f"{t[name]['channels_last_samples_s']} samples/s",
            )
        )
    rows.append(
        (
            "short-chunk CNN plain loop: bf16-mixed vs 32-bit (channels-last)",
            f"{t['spectrogram_cnn']['bf16_gain']}x",
            "",
            f"{t['spectrogram_cnn']['bf16_samples_s']} samples/s",
        )
    )
    for name in [n for n in ("gru", "cnn") if "compile_gain" in t[n]]:  # not in a --quick run
        rows.append(
            (
                f"{name.upper()} plain loop: torch.compile vs eager",
                f"{t[name]['compile_gain']}x",
                "",
                f"{t[name]['compiled_samples_s']} samples/s after {t[name]['compile_warmup_s']} s compiling",
            )
        )
    return rows


def render_rows(rows: list[tuple[str, str, str, str]]) -> str:
    width = max(len(r[0]) for r in rows)
    lines = [f"{'measure'.ljust(width)} | ratio | target | detail", "-" * (width + 40)]
    lines += [f"{a.ljust(width)} | {b} | {c} | {d}" for a, b, c, d in rows]
    return "\n".join(lines)


def met(entry: dict) -> str:
    """``yes``, or ``no:`` and the targets an extraction entry misses."""
    t = entry["targets"]
    missed = [k for k in ("speedup_vs_a", "speedup_vs_b") if entry[k] < t[k]]
    missed += ["max_abs_diff"] if not entry["max_abs_diff"] <= t["max_abs_diff"] else []
    return "yes" if not missed else "no: " + ", ".join(missed)


def real_table(r: dict) -> str:
    """One row per format of a ``--data-root`` run."""
    header = ("format", "clips", "audio s", "mgc vs A", "mgc vs B", "max abs diff", "audio-s/s mgc / A / B", "targets")
    rows = [header]
    for fmt in r["formats"]:
        e = r[f"extraction_{fmt}"]
        t, s = e["targets"], e["audio_s_per_s"]
        rows.append(
            (
                f".{fmt}",
                str(e["clips"]),
                str(e["audio_seconds"]),
                f"{e['speedup_vs_a']}x (>= {t['speedup_vs_a']:g}x)",
                f"{e['speedup_vs_b']}x (>= {t['speedup_vs_b']:g}x)",
                f"{e['max_abs_diff']:.1e} (<= {t['max_abs_diff']:g})",
                f"{s['mgc']} / {s['a']} / {s['b']}",
                met(e),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines.append(
        "A: the classic sequential loop (librosa.load, mfcc per segment, json.dump); "
        "B: the same loop under joblib, one process per core"
    )
    load = r["load_average_1min"]
    lines.append(
        f"load average (1 min) before / after: {load['before']} / {load['after']} on {r['cpu_count']} cores "
        "(other work on the cores slows A's multithreaded BLAS most, which inflates the ratios vs A)"
    )
    return "\n".join(lines)
