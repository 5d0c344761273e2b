"""Part 3 of the benchmark: training throughput of mgc's Lightning pipeline against a plain PyTorch loop.

Same model, optimizer, batch size and threads on both sides, for the journal's GRU and CNN on MFCC
segments and the short-chunk CNN of ``experiment=scratch_cnn`` on log-mel; then variants of the plain
loop (batch slicing, channels-last, ``torch.compile``, bf16 autocast) that show what each layout buys.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from mgc.bench import targets
from mgc.data import GTZAN
from mgc.features import MFCC, LogMel

#: The models measured, and the feature each trains on (13x130 MFCC or 128x130 log-mel segments).
MODEL_FEATURES = {"gru": "mfcc", "cnn": "mfcc", "spectrogram_cnn": "logmel"}


def _models(quick: bool) -> dict[str, Callable[[], torch.nn.Module]]:
    """The journal's GRU and CNN on MFCC, and the short-chunk CNN of ``experiment=scratch_cnn`` on log-mel."""
    from omegaconf import OmegaConf

    from mgc.cli import CONF_DIR
    from mgc.models import CNN, Recurrent, ShortChunkCNN

    mfcc, logmel = (1, 13, 130), (1, 128, 130)
    scratch_cnn = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "experiment" / "scratch_cnn.yaml").model)
    # The CNNs are measured in the contiguous layout; the channels-last variant is its own row.
    if quick:
        return {
            "gru": lambda: Recurrent(mfcc, 10, hidden_size=32),
            "cnn": lambda: CNN(mfcc, 10, channels=(8, 8, 8, 16), channels_last=False),
            "spectrogram_cnn": lambda: ShortChunkCNN(
                logmel, 10, channels=(4, 8, 8), dense_head=False, channels_last=False
            ),
        }
    return {
        "gru": lambda: Recurrent(mfcc, 10),
        "cnn": lambda: CNN(mfcc, 10, channels_last=False),
        "spectrogram_cnn": lambda: ShortChunkCNN(logmel, 10, **scratch_cnn, channels_last=False),
    }


def plain_loop(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    batches: int,
    per_item: bool = True,
    channels_last: bool = False,
    compile: bool = False,
    bf16: bool = False,
) -> tuple[float, float]:
    """Samples/s of a textbook PyTorch loop after two warm-up batches, and the warm-up's seconds
    (where ``torch.compile`` does its compiling). ``bf16``: forward and loss under bfloat16 autocast,
    what ``trainer.precision=bf16-mixed`` does on CPU."""
    from torch.utils.data import DataLoader, TensorDataset

    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if compile:
        model.compile()
    if per_item:
        loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)
    else:
        loader = [(x[i], y[i]) for i in torch.randperm(len(x)).split(64)]
    model.train()
    done, start, warm_start = 0, None, time.perf_counter()
    while done < batches + 2:
        for batch_x, yb in loader:
            if done == 2:
                start = time.perf_counter()
                warmup = start - warm_start
            xb = batch_x.contiguous(memory_format=torch.channels_last) if channels_last else batch_x
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = torch.nn.functional.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            done += 1
            if done == batches + 2:
                break
    return batches * 64 / (time.perf_counter() - start), warmup


def lightning_loop(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batches: int) -> float:
    """Samples/s of mgc's GenreClassifier + data loading under a Lightning Trainer."""
    import functools

    import lightning.pytorch as L

    from mgc.batches import EpochBatches, TensorBatches
    from mgc.module import GenreClassifier
    from mgc.scheduler import constant

    class Timer(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if trainer.global_step == 2:
                self.start = time.perf_counter()

        def on_train_end(self, trainer, module):
            self.rate = batches * 64 / (time.perf_counter() - self.start)

    data = TensorBatches(x, y, torch.zeros_like(y), torch.arange(len(y)))
    loader = torch.utils.data.DataLoader(data, sampler=EpochBatches(len(y), 64, True), batch_size=None)
    module = GenreClassifier(
        model, functools.partial(torch.optim.RMSprop, lr=1e-3), constant, [str(i) for i in range(10)]
    )
    timer = Timer()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=batches + 2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
        limit_val_batches=0,
    )
    trainer.fit(module, train_dataloaders=loader)
    return timer.rate


def _variants(
    name: str, build: Callable[[], torch.nn.Module], x: torch.Tensor, y: torch.Tensor, batches: int, quick: bool
):
    """The loops timed for one model: ``{variant: () -> (samples/s, warm-up seconds)}``. ``quick`` leaves out
    ``torch.compile``, whose cold compiling would be most of a smoke run (tests/test_train.py trains compiled)."""

    def plain(**options) -> Callable[[], tuple[float, float]]:
        return lambda: plain_loop(build(), x, y, batches, **options)

    convolutional = name in ("cnn", "spectrogram_cnn")
    mgc_layout = {"per_item": False, "channels_last": convolutional}  # sliced batches, channels-last CNNs
    variants = {
        "plain": plain(),
        "light": lambda: (lightning_loop(build(), x, y, batches), 0.0),
        "sliced": plain(per_item=False),
    }
    if name != "spectrogram_cnn" and not quick:  # its row is Lightning vs plain; compiling it costs minutes
        variants["compiled"] = plain(**mgc_layout, compile=True)
    if convolutional:
        variants["channels_last"] = plain(**mgc_layout)
    if name == "spectrogram_cnn":  # what trainer.precision=bf16-mixed buys it
        variants["bf16"] = plain(**mgc_layout, bf16=True)
    return variants


def _best_rates(variants: dict, rounds: int) -> tuple[dict[str, float], dict[str, float]]:
    """The best samples/s of each variant over ``rounds`` interleaved rounds, and each one's first warm-up.

    Many short interleaved rounds, best of each: a shared machine drifts within a minute, and the best
    of short runs is what the code itself can do. Each round starts at another variant, so none always
    follows the same neighbour. Only the first compile is cold (later models reuse its kernels); its
    warm-up is the one reported.
    """
    rates: dict[str, float] = {}
    warmups: dict[str, float] = {}
    order = list(variants)
    for r in range(rounds):
        for variant in order[r % len(order) :] + order[: r % len(order)]:
            torch.manual_seed(0)
            rate, warmup = variants[variant]()
            rates[variant] = max(rates.get(variant, 0.0), rate)
            warmups.setdefault(variant, warmup)
    return rates, warmups


def _entry(rates: dict[str, float], warmups: dict[str, float], batches: int, shape: tuple) -> dict:
    """One model's part of bench.json: its rates and the gain of each variant over the one before it."""
    base, sliced = rates["plain"], rates["sliced"]
    default = rates.get("channels_last", sliced)
    entry = {
        "plain_samples_s": round(base, 1),
        "lightning_samples_s": round(rates["light"], 1),
        "lightning_vs_plain": round(rates["light"] / base, 3),
        "plain_batch_slicing_samples_s": round(sliced, 1),
        "batch_slicing_gain": round(sliced / base, 3),
        "batches": batches,
        "input_shape": list(shape),
    }
    if "compiled" in rates:
        entry |= {
            "compiled_samples_s": round(rates["compiled"], 1),
            "compile_gain": round(rates["compiled"] / default, 3),
            "compile_warmup_s": round(warmups["compiled"], 1),
        }
    if "channels_last" in rates:
        entry |= {"channels_last_samples_s": round(default, 1), "channels_last_gain": round(default / sliced, 3)}
    if "bf16" in rates:
        entry |= {"bf16_samples_s": round(rates["bf16"], 1), "bf16_gain": round(rates["bf16"] / default, 3)}
    return entry


def bench_training(data: dict[str, tuple[np.ndarray, np.ndarray]], quick: bool) -> dict:
    """Training throughput of each model of :func:`_models` on its feature's ``(x, labels)`` in ``data``."""
    results = {"threads": torch.get_num_threads()}
    for name, build in _models(quick).items():
        x, y = data[MODEL_FEATURES[name]]
        # Whole batches of 64 only: every variant then counts the same samples per step, and a last,
        # smaller batch would make torch.compile compile again inside the timed part.
        whole = len(y) // 64 * 64
        x_t, y_t = torch.from_numpy(x[:whole]), torch.from_numpy(y[:whole])
        batches = 4 if quick else (10 if name == "gru" else 5)
        variants = _variants(name, build, x_t, y_t, batches, quick)
        rates, warmups = _best_rates(variants, rounds=1 if quick else 5)
        results[name] = _entry(rates, warmups, batches, x.shape[1:])
    results["targets"] = dict(targets.TRAINING)
    return results


def training_data(source: GTZAN, work: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{feature: (x, labels)}`` for :func:`bench_training`, from the caches of part 1 (extracted here if absent)."""
    mfcc = MFCC(cache_dir=str(work / "cache")).extract(source)
    spectrograms = LogMel(cache_dir=str(work / "logmel-cache0")).extract(source)
    return {"mfcc": (mfcc.x, mfcc.labels), "logmel": (spectrograms.x, spectrograms.labels)}
