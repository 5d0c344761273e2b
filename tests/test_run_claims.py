"""What a run claims, read back from the run itself: best checkpoint, learning rate, optimiser,
early stopping, the journal table in README, scale-out configs and test-only runs.

Each test reads what a real (tiny) run wrote, or what a config composes to, and
compares it with a value computed independently of the code under test.
"""

from __future__ import annotations

import functools
import math
import re
from pathlib import Path
from typing import ClassVar

import lightning.pytorch as L
import pytest
import torch
from helpers import JOURNAL, NARROW, ROOT, compose_cfg, option_config
from hydra.utils import get_class, instantiate
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.optim import lr_scheduler

from mgc.checkpoint import InferenceSpec
from mgc.errors import MgcError
from mgc.train import build_datamodule, train_and_test

pytestmark = pytest.mark.slow  # end-to-end runs: make test runs them, make test-fast leaves them out

#: Quick runs: no TensorBoard (its confusion figures cost more than the training), tiny linear model.
QUICK = ["model=linear", "logger=none"]


class Recorder(L.Callback):
    """Records, per run, the optimiser class and the device the module's parameters sit on while training.

    Added to a run through its config (``+callbacks.recorder._target_=test_run_claims.Recorder``),
    the same seam every callback goes through; what it saw lands in the class-level ``seen``.
    """

    seen: ClassVar[list[dict]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        Recorder.seen.append(
            {
                "optimizer": type(trainer.optimizers[0]).__name__,
                "device": next(pl_module.parameters()).device.type,
                "module_device": pl_module.device.type,
                "batch_device": batch[0].device.type,
            }
        )


RECORD = "+callbacks.recorder._target_=test_run_claims.Recorder"


def load(path: str | Path) -> dict:
    return torch.load(path, weights_only=True, map_location="cpu")


# -- 1 and 7: one real run of 3 epochs, shared ------------------------------------------------
@pytest.fixture(scope="module")
def adam_run(shared_dir, tmp_path_factory):
    """linear + Adam lr 0.05, batches of 16, 3 epochs: val/acc goes up, then down (best epoch != last)."""
    tmp = tmp_path_factory.mktemp("adam_run")
    overrides = [*QUICK, "optim=adam", "optim.lr=0.05", "scheduler=none", "datamodule.batch_size=16"]
    cfg = compose_cfg(shared_dir, tmp / "outputs", tmp / "run", *overrides, "trainer.max_epochs=3")
    metrics = train_and_test(cfg)
    return metrics, overrides


def test_best_checkpoint_is_the_best_epoch_of_the_run(adam_run):
    metrics, _ = adam_run
    history = load(Path(metrics.run_dir) / "checkpoints" / "last.ckpt")["mgc_history"]
    assert [h["epoch"] for h in history] == [0, 1, 2]
    accs = [h["val/acc"] for h in history]
    assert len(set(accs)) > 1, f"val/acc constant over the run {accs}: the check below could not tell epochs apart"
    best_epoch = history[accs.index(max(accs))]["epoch"]  # first epoch of the maximum, as ModelCheckpoint keeps it
    # The config is chosen so that the best epoch is neither the last nor the worst: a checkpoint of the
    # last epoch or one of mode=min would be another file.
    assert best_epoch != history[-1]["epoch"] and max(accs) != min(accs), accs

    best = Path(metrics.best_checkpoint)
    assert best.parent == Path(metrics.run_dir) / "checkpoints" and best.name != "last.ckpt"
    assert load(best)["epoch"] == best_epoch
    assert best.name.startswith(f"epoch{best_epoch:03d}-")
    assert metrics.val.segment.accuracy == pytest.approx(accs[best_epoch], abs=1e-6)
    assert metrics.val.segment.accuracy != pytest.approx(accs[-1], abs=1e-6)


def test_test_only_reproduces_the_checkpoint_not_the_seed(adam_run, make_cfg, tmp_path):
    trained, overrides = adam_run
    # Another seed: other initial weights. The split and batch order keep the training run's seed, so
    # the test part is the same tracks (the split follows `seed` unless pinned).
    other_seed = ["seed=7", "split.seed=42", "datamodule.seed=42"]
    cfg = make_cfg(*overrides, *other_seed, "train=false", f"ckpt_path={trained.best_checkpoint}")
    cfg.paths.run_dir = str(tmp_path / "test_only_best")
    again = train_and_test(cfg)
    assert again.seed == 7 and again.test.segments == trained.test.segments
    assert again.test.loss == pytest.approx(trained.test.loss, rel=1e-6)
    assert again.test.segment.confusion == trained.test.segment.confusion
    assert again.test.track.confusion == trained.test.track.confusion

    # Another checkpoint of the same run (the last epoch, not the best) tests differently.
    last = Path(trained.run_dir) / "checkpoints" / "last.ckpt"
    assert load(last)["epoch"] != load(trained.best_checkpoint)["epoch"]
    cfg = make_cfg(*overrides, *other_seed, "train=false", f"ckpt_path={last}")
    cfg.paths.run_dir = str(tmp_path / "test_only_last")
    other = train_and_test(cfg)
    assert other.test.loss != pytest.approx(trained.test.loss, rel=1e-4)


def test_test_only_normalises_with_the_checkpoint_statistics(adam_run, make_cfg, tmp_path):
    """Another split seed: the test part changes, but the features are normalised as in training."""
    trained, overrides = adam_run
    ckpt = trained.best_checkpoint
    cfg = make_cfg(*overrides, "seed=7", "train=false", f"ckpt_path={ckpt}")
    again = train_and_test(cfg)
    # the same test part, scored by hand with the checkpoint's weights and its training statistics
    datamodule = build_datamodule(cfg)
    state = load(ckpt)
    datamodule.mean, datamodule.std = state["GenreDataModule"]["mean"], state["GenreDataModule"]["std"]
    datamodule.setup()
    x, y = datamodule.parts["test"].x, datamodule.parts["test"].y
    model = instantiate(cfg.model, input_shape=datamodule.input_shape, num_classes=10)
    model.load_state_dict({k.removeprefix("model."): v for k, v in state["state_dict"].items()})
    with torch.no_grad():
        loss = torch.nn.functional.cross_entropy(model.eval()(x), y).item()
    assert again.test.loss == pytest.approx(loss, rel=1e-5)
    assert again.test.segments == len(y)


def test_schedules_count_epochs_in_real_steps_when_max_steps_cuts_training(make_cfg):
    """24-segment batches of 80 training segments: 4 steps an epoch, so the 2-epoch cosine period is 8 steps."""
    metrics = train_and_test(
        make_cfg(*QUICK, "datamodule.batch_size=24", "trainer.max_epochs=3", "+trainer.max_steps=6")
    )
    state = load(Path(metrics.run_dir) / "checkpoints" / "last.ckpt")
    assert state["global_step"] == 6
    assert state["lr_schedulers"][0]["T_0"] == 2 * math.ceil(80 / 24)


# -- 2: the learning rate a run logs is the configured schedule ---------------------------------
def _lr_series(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    series = []
    for events in (run_dir / "tb").glob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        if tag in acc.Tags()["scalars"]:
            series += [(e.step, e.value) for e in acc.Scalars(tag)]
    return sorted(series)


def _expected_schedule(name: str, sched_cfg, lr: float, steps_per_epoch: int, n: int) -> list[float]:
    """The learning rate before each of ``n`` optimiser steps, from torch's own schedulers."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    if name == "cosine_restarts":
        sched = lr_scheduler.CosineAnnealingWarmRestarts(
            opt, T_0=round(sched_cfg.period_epochs * steps_per_epoch), eta_min=lr * sched_cfg.min_lr_ratio
        )
    else:
        sched = lr_scheduler.CyclicLR(
            opt,
            base_lr=lr * sched_cfg.base_lr_ratio,
            max_lr=lr,
            step_size_up=round(sched_cfg.half_cycle_epochs * steps_per_epoch),
            mode=sched_cfg.mode,
            cycle_momentum=False,
        )
    lrs = []
    for _ in range(n):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


@pytest.mark.parametrize("scheduler", ["cosine_restarts", "cyclic"])
def test_logged_learning_rate_is_the_configured_schedule(make_cfg, scheduler):
    epochs, batch_size = 3, 24
    cfg = make_cfg(
        "model=linear",
        f"scheduler={scheduler}",
        f"trainer.max_epochs={epochs}",
        f"datamodule.batch_size={batch_size}",
        "callbacks.lr_monitor.logging_interval=step",
        "trainer.log_every_n_steps=1",
    )
    metrics = train_and_test(cfg)

    # Steps per epoch, counted from the split itself: every training segment once, the last batch partial.
    dm = build_datamodule(cfg)
    dm.setup()
    n_train = len(dm.parts["train"])
    assert n_train + metrics.val.segments + metrics.test.segments == len(dm.data.x)
    assert n_train % batch_size, "pick a batch size that leaves a partial last batch"
    steps_per_epoch = math.ceil(n_train / batch_size)

    optimizer = cfg.optim._target_.rsplit(".", 1)[1]
    logged = _lr_series(Path(cfg.paths.run_dir), f"lr-{optimizer}")
    assert [s for s, _ in logged] == list(range(epochs * steps_per_epoch))
    expected = _expected_schedule(scheduler, cfg.scheduler, float(cfg.optim.lr), steps_per_epoch, len(logged))
    assert len(set(expected)) > steps_per_epoch  # the schedule moves within the run
    for (step, value), want in zip(logged, expected):
        assert value == pytest.approx(want, rel=1e-5), f"step {step}: logged lr {value}, schedule {want}"


# -- 3: the optimiser and its weight decay are the configured ones -------------------------------
#: Evidence only that class leaves: its defining param-group entries and its per-parameter state.
#: (weight_decay=0.02 below: AdamW's default is 0.01, so 0.02 is not a default of any of them.)
ADAM_STATE = {"step", "exp_avg", "exp_avg_sq"}
OPTIMIZERS = {
    "adam": ("Adam", {"decoupled_weight_decay": False, "amsgrad": False, "betas": (0.9, 0.999)}, ADAM_STATE),
    "adamw": ("AdamW", {"decoupled_weight_decay": True, "amsgrad": False, "betas": (0.9, 0.999)}, ADAM_STATE),
    "rmsprop": ("RMSprop", {"centered": False, "momentum": 0, "alpha": 0.99}, {"step", "square_avg"}),
    "sgd": ("SGD", {"momentum": 0.9, "nesterov": True, "dampening": 0}, {"momentum_buffer"}),
}


@pytest.mark.parametrize("optim", OPTIMIZERS)
def test_optimizer_class_and_weight_decay_are_the_configured_ones(make_cfg, optim):
    name, group_items, state_keys = OPTIMIZERS[optim]
    Recorder.seen.clear()
    cfg = make_cfg(
        *QUICK,
        f"optim={optim}",
        "optim.weight_decay=0.02",
        "optim.lr=0.003",
        "scheduler=none",
        "trainer.max_epochs=1",
        RECORD,
    )
    metrics = train_and_test(cfg)
    assert Recorder.seen and {s["optimizer"] for s in Recorder.seen} == {name}

    ckpt = load(Path(metrics.run_dir) / "checkpoints" / "last.ckpt")
    (state,) = ckpt["optimizer_states"]
    (group,) = state["param_groups"]
    assert group["weight_decay"] == 0.02 and group["lr"] == pytest.approx(0.003)
    got = {k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in group.items() if k in group_items}
    assert got == group_items
    assert state["state"]
    assert all(set(s) == state_keys for s in state["state"].values())


# -- 4: early stopping stops ----------------------------------------------------------------------
def test_early_stopping_stops_after_patience_epochs_without_improvement(make_cfg):
    patience = 1
    cfg = make_cfg(
        *QUICK,
        "callbacks=early_stopping",
        f"callbacks.early_stopping.patience={patience}",
        "optim.lr=1e-12",  # nothing can improve
        "scheduler=none",
        "trainer.max_epochs=10",
    )
    metrics = train_and_test(cfg)
    assert metrics.epochs < 10
    assert metrics.epochs == patience + 1
    history = load(Path(metrics.run_dir) / "checkpoints" / "last.ckpt")["mgc_history"]
    assert [h["epoch"] for h in history] == list(range(patience + 1))


# -- 5: the journal table (docs/journal.md) is the configs --------------------------------------------------
def readme_journal_table() -> list[dict[str, str]]:
    """The rows of the first table under docs/journal.md's "## Reproducing the journal", keyed by its header."""
    text = (ROOT / "docs" / "journal.md").read_text(encoding="utf-8")
    section = text.split("\n## Reproducing the journal\n", 1)[1].split("\n## ", 1)[0]
    lines, started = [], False
    for line in section.splitlines():
        if line.startswith("|"):
            lines.append(line)
            started = True
        elif started:
            break
    header, rule, *rows = ([c.strip() for c in line.strip().strip("|").split("|")] for line in lines)
    assert set("".join(rule)) <= set("-:"), rule
    assert all(len(r) == len(header) for r in rows), "a journal row has the wrong number of columns"
    return [dict(zip(header, r)) for r in rows]


def test_readme_journal_rows_are_the_experiment_configs():
    names = [row["name"] for row in readme_journal_table()]
    assert len(names) == len(set(names)), "a journal row is listed twice"
    assert set(names) == set(JOURNAL)
    assert len(JOURNAL) == 14


@pytest.mark.parametrize("name", JOURNAL)
def test_readme_journal_row_matches_the_composed_config(make_cfg, name):
    row = {r["name"]: r for r in readme_journal_table()}.get(name)
    assert row, f"README's journal table has no row {name}"
    cfg = make_cfg(f"experiment={name}")
    choices = cfg.hydra.runtime.choices
    assert row["journal entry"] and re.search(r"[A-Za-z]", row["journal entry"])
    assert cfg.task_name == name
    assert row["features"] == choices["features"]
    assert cfg.features._target_ == option_config("features", row["features"])._target_
    assert row["model"] == choices["model"]
    assert cfg.model._target_ == option_config("model", row["model"])._target_
    assert row["split"] == cfg.split.name == choices["split"]
    assert row["optim"] == choices["optim"] == cfg.optim._target_.rsplit(".", 1)[1].lower()
    assert float(row["lr"]) == cfg.optim.lr
    assert row["scheduler"] == choices["scheduler"]
    assert int(row["epochs"]) == cfg.trainer.max_epochs
    assert int(row["batch size"]) == cfg.datamodule.batch_size


# -- fine-tuning: init_from starts a run from another run's weights ----------------------------------
def one_epoch_cfg(shared_dir: Path, tmp_path: Path, name: str, *overrides: str):
    """A quick one-epoch run in its own folder ``tmp_path / name``, beside the others of the test."""
    return compose_cfg(shared_dir, tmp_path / "outputs", tmp_path / name, *QUICK, "trainer.max_epochs=1", *overrides)


class WeightsAtStart(L.Callback):
    """The model's weights when fitting starts, per run (added as `+callbacks.weights._target_=...`)."""

    seen: ClassVar[list[dict]] = []

    def on_fit_start(self, trainer, pl_module) -> None:
        WeightsAtStart.seen.append({k: v.detach().clone() for k, v in pl_module.model.state_dict().items()})


def test_init_from_starts_training_from_the_checkpoints_weights(shared_dir, tmp_path):
    cfg = functools.partial(one_epoch_cfg, shared_dir, tmp_path)
    pretrained = train_and_test(cfg("pretrained", "seed=1")).best_checkpoint
    WeightsAtStart.seen.clear()
    record = "+callbacks.weights._target_=test_run_claims.WeightsAtStart"
    tuned = train_and_test(cfg("tuned", f"init_from={pretrained}", record))
    train_and_test(cfg("fresh", record))
    started, fresh = WeightsAtStart.seen
    weights = InferenceSpec.load(pretrained).weights
    assert started.keys() == weights.keys()
    assert all(torch.equal(started[k], weights[k]) for k in weights)
    assert not all(torch.equal(fresh[k], weights[k]) for k in weights)  # without it, the seed's own start
    assert tuned.epochs == 1 and tuned.test.segments > 0


def test_init_from_a_checkpoint_that_does_not_fit_is_one_line(shared_dir, tmp_path):
    cfg = functools.partial(one_epoch_cfg, shared_dir, tmp_path)
    linear = train_and_test(cfg("linear")).best_checkpoint
    cases = [
        (f"init_from={tmp_path}/none.ckpt", "does not exist"),
        (f"init_from={tmp_path}/linear/metrics.json", "is not an mgc checkpoint"),
        ("model=mlp", "its weights do not fit this model"),
        ("features=chroma", "was trained on segments of shape [1, 13, 130]"),
    ]
    for override, message in cases:
        overrides = [override] if override.startswith("init_from") else [f"init_from={linear}", override]
        with pytest.raises(MgcError, match=re.escape(message)) as err:
            train_and_test(cfg("bad", *overrides))
        assert "\n" not in str(err.value) and "init_from=" in str(err.value)


# -- 6: scale-out configs -------------------------------------------------------------------------
def test_gpu_ddp_and_slurm_configs_compose(make_cfg):
    gpu = make_cfg("trainer=gpu").trainer
    assert (gpu.accelerator, gpu.devices, gpu.precision, gpu.deterministic) == ("gpu", 1, "32-true", True)
    assert get_class(gpu._target_) is L.Trainer

    ddp = make_cfg("trainer=ddp").trainer
    assert (ddp.strategy, ddp.devices, ddp.accelerator) == ("ddp", 2, "auto")

    cfg = make_cfg("hydra/launcher=slurm")
    launcher = cfg.hydra.launcher
    assert cfg.hydra.runtime.choices["hydra/launcher"] == "slurm"
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert get_class(launcher._target_).__name__ == "SlurmLauncher"  # the plugin is installed
    assert (launcher.gpus_per_node, launcher.tasks_per_node, launcher.timeout_min) == (1, 1, 240)
    assert (launcher.cpus_per_task, launcher.mem_gb) == (8, 32)

    assert make_cfg("threads=3").threads == 3


@pytest.mark.parametrize("threads", [1, 2])
def test_threads_setting_reaches_torch(make_cfg, threads):
    before = torch.get_num_threads()
    try:
        metrics = train_and_test(make_cfg(*QUICK, f"threads={threads}", "+trainer.fast_dev_run=true"))
        assert metrics.threads == threads
    finally:
        torch.set_num_threads(before)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_trainer_gpu_trains_on_cuda(make_cfg):
    Recorder.seen.clear()
    cfg = make_cfg("trainer=gpu", "model=mlp", "logger=none", "trainer.max_epochs=1", RECORD)
    metrics = train_and_test(cfg)
    assert Recorder.seen
    assert {(s["device"], s["module_device"], s["batch_device"]) for s in Recorder.seen} == {("cuda", "cuda", "cuda")}
    assert metrics.epochs == 1 and metrics.test.segments > 0
    assert 0 <= metrics.test.segment.accuracy <= 1 and math.isfinite(metrics.test.loss)
    assert load(metrics.best_checkpoint)["epoch"] == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize(
    "overrides",
    [
        ["model=short_chunk_cnn", *NARROW["short_chunk_cnn"], "features=logmel", "augment=specaug"],
        ["model=resnet18", "+model.widths=[8,16,32,64]"],
        ["model=gru"],
    ],
    ids=["short_chunk_cnn", "resnet18", "gru"],
)
def test_trainer_gpu_gives_the_same_metrics_twice(shared_dir, tmp_path, overrides):
    """trainer=gpu is deterministic: global pooling by reductions, cuDNN's deterministic kernels, no autotuning."""
    runs = [
        train_and_test(
            compose_cfg(
                shared_dir,
                tmp_path / "outputs",
                tmp_path / f"run{i}",
                "trainer=gpu",
                "logger=none",
                "trainer.max_epochs=3",
                *overrides,
            )
        )
        for i in (0, 1)
    ]
    assert runs[0].test.segments > 0
    assert (runs[0].val, runs[0].test) == (runs[1].val, runs[1].test)
