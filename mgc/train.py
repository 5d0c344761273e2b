"""The training entry point: ``python train.py [group=option ...] [key=value ...]``.

Composes ``conf/train.yaml``, seeds everything, builds every object with
``hydra.utils.instantiate``, fits, tests the best checkpoint and writes into
the run directory: ``.hydra/`` (the resolved config), ``tb/`` (TensorBoard),
``checkpoints/``, ``metrics.json``, ``confusion_matrix.png`` and ``curves.png``.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import hydra
import joblib
import lightning.pytorch as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import LearningRateMonitor
from omegaconf import DictConfig

from mgc import pretrain
from mgc.checkpoint import InferenceSpec, start_from
from mgc.cli import CONF_DIR, hydra_command, user_errors_exit
from mgc.config import check_config, group_choices, resolved_config
from mgc.datamodule import GenreDataModule
from mgc.errors import MgcError
from mgc.metrics import RunMetrics
from mgc.plots import save_confusion, save_curves

__all__ = ["CONF_DIR", "main", "run"]

log = logging.getLogger(__name__)


def without_validation(cfg: DictConfig, split: str, callbacks: list[L.Callback]) -> list[L.Callback]:
    """``callbacks`` less those that watch a validation metric, for a split without a validation part.

    The last checkpoint is then the model (a fixed schedule, no selection); a
    scheduler that needs a validation metric cannot run at all.
    """
    monitor = cfg.scheduler.get("monitor")
    if monitor and str(monitor).startswith("val"):
        raise MgcError(
            f"scheduler={group_choices().get('scheduler', 'plateau')} watches {monitor}, but split {split} has no "
            f"validation part; choose another scheduler (e.g. scheduler=one_cycle) or a split with validation"
        )
    kept = [c for c in callbacks if not str(getattr(c, "monitor", None) or "").startswith("val")]
    if len(kept) < len(callbacks):
        log.info("split %s has no validation part: the last epoch's weights are the model", split)
    return kept


def find_last_checkpoint(outputs: str | Path) -> Path:
    """The newest ``checkpoints/last.ckpt`` under ``outputs`` (for ``ckpt_path=last``)."""
    found = sorted(Path(outputs).glob("**/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise MgcError(f"ckpt_path=last: no checkpoints/last.ckpt under {outputs}; pass ckpt_path=PATH")
    return found[-1]


def resolve_checkpoint(cfg: DictConfig) -> str | None:
    if not cfg.ckpt_path:
        return None
    path = find_last_checkpoint(cfg.paths.outputs) if cfg.ckpt_path == "last" else Path(cfg.ckpt_path)
    if not path.is_file():
        raise MgcError(f"ckpt_path={path} does not exist: pass the path of a .ckpt file (or ckpt_path=last)")
    return str(path)


def training_statistics(ckpt_path: str) -> dict[str, torch.Tensor | None]:
    """The normalisation statistics a checkpoint was trained with (its inference contract)."""
    spec = InferenceSpec.load(ckpt_path)
    return {"mean": spec.mean, "std": spec.std}


def configure_threads(threads: int | None) -> None:
    """Set torch's CPU threads: ``threads`` if given; else the launcher's share; else the usable cores.

    torch counts the machine's cores, not the ones a container or CPU quota
    lets this process use; joblib's count honours both, and a joblib launcher
    sets ``OMP_NUM_THREADS`` to each job's share.
    """
    if threads:
        torch.set_num_threads(int(threads))
    elif "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(joblib.cpu_count())


def build_datamodule(cfg: DictConfig) -> GenreDataModule:
    """The run's DataModule from its ``data``, ``features``, ``split``, ``augment`` and ``datamodule`` groups."""
    return instantiate(
        cfg.datamodule,
        source=instantiate(cfg.data),
        features=instantiate(cfg.features),
        split=instantiate(cfg.split),
        augment=instantiate(cfg.augment),
    )


def build_module(cfg: DictConfig, model: torch.nn.Module, datamodule: GenreDataModule) -> L.LightningModule:
    """The LightningModule around ``model``, carrying what predict needs (classes, input shape, config)."""
    return instantiate(
        cfg.module,
        model=model,
        optimizer=instantiate(cfg.optim),
        scheduler=instantiate(cfg.scheduler),
        class_names=datamodule.class_names,
        input_shape=datamodule.input_shape,
        run_config=resolved_config(cfg),
        _recursive_=False,
        _convert_="all",  # plain dicts and lists in the checkpoint
    )


def build_trainer(cfg: DictConfig, datamodule: GenreDataModule) -> L.Trainer:
    """The Trainer with the run's loggers and callbacks; without validation where the split has none."""
    loggers = [instantiate(c) for c in cfg.logger.values()]
    callbacks = [instantiate(c) for c in cfg.callbacks.values()]
    if not loggers:  # logger=none: the lr monitor has nowhere to write
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    without_val = {}
    if "val" not in datamodule.held_out:
        callbacks = without_validation(cfg, datamodule.split.name, callbacks)
        without_val = {"limit_val_batches": 0, "num_sanity_val_steps": 0}
    return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, **without_val)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Train and test as ``cfg`` says; return what ``metrics.json`` holds (:class:`~mgc.metrics.RunMetrics`)."""
    return train_and_test(cfg).as_dict()


def train_and_test(cfg: DictConfig) -> RunMetrics:
    """Train and test as ``cfg`` says; write and return the run's metrics record."""
    check_config(cfg)
    ckpt_path = resolve_checkpoint(cfg)
    run_dir = Path(cfg.paths.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    # before this run seeds anything: a pretraining built now leaves the same RNG state as one found cached
    init_from = pretrain.starting_weights(cfg, train_and_test)
    L.seed_everything(cfg.seed, workers=True, verbose=False)  # the seed is in the config and metrics.json
    configure_threads(cfg.get("threads"))

    datamodule = build_datamodule(cfg)
    if ckpt_path:  # test or resume with the checkpoint's normalisation, not statistics of today's split
        datamodule.load_state_dict(training_statistics(ckpt_path))
    datamodule.setup()
    model = instantiate(cfg.model, input_shape=datamodule.input_shape, num_classes=datamodule.num_classes)
    if init_from:
        start_from(model, init_from, datamodule.input_shape, datamodule.class_names)
    module = build_module(cfg, model, datamodule)
    trainer = build_trainer(cfg, datamodule)

    start = time.perf_counter()
    if cfg.train:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    train_time = time.perf_counter() - start
    epochs, history = int(trainer.current_epoch), list(module.history)  # testing the best ckpt reloads older ones
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    best = best or (ckpt_path if not cfg.train else None)  # fast_dev_run has no checkpoint: use current weights
    if "val" in datamodule.held_out:
        trainer.validate(module, datamodule=datamodule, ckpt_path=best, verbose=False)
    if datamodule.test_part:
        trainer.test(module, datamodule=datamodule, ckpt_path=best, verbose=False)

    metrics = RunMetrics(
        task_name=cfg.task_name,
        choices=group_choices(),
        data=datamodule.data.source,
        split=datamodule.split.name,
        split_leaks=datamodule.split.leaks_tracks,
        test_part=datamodule.test_part,
        lr=float(cfg.optim.lr),
        seed=int(cfg.seed),
        epochs=epochs,
        train_time_s=round(train_time, 2),
        threads=torch.get_num_threads(),
        world_size=trainer.world_size,
        best_checkpoint=best,
        run_dir=str(run_dir),
        val=module.results.get("val"),
        test=module.results.get("test"),
    )
    if trainer.is_global_zero:  # under DDP every rank has the same metrics; one writes them
        write_outputs(metrics, history, module.hparams.class_names, run_dir)
        print(summary_line(metrics))
    return metrics


def write_outputs(metrics: RunMetrics, history: list[dict], class_names: list[str], run_dir: Path) -> None:
    """metrics.json, confusion_matrix.png and curves.png."""
    metrics.write(run_dir / "metrics.json")
    if metrics.test:
        save_confusion(
            metrics.test.track.confusion,
            class_names,
            run_dir / "confusion_matrix.png",
            f"{metrics.split} {metrics.test_part} part, tracks",
        )
    if history:
        save_curves(history, run_dir / "curves.png")


def summary_line(metrics: RunMetrics) -> str:
    test = metrics.test
    if not test:
        return f"split {metrics.split}: nothing held out, no test metrics | run {metrics.run_dir}"
    part = "test part" if metrics.test_part == "test" else "no test part: tested on val"
    return (
        f"split {metrics.split} ({part}) | segment acc {test.segment.accuracy:.3f} | "
        f"track acc {test.track.accuracy:.3f} | macro-F1 {test.segment.macro_f1:.3f} | "
        f"run {metrics.run_dir}"
    )


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
@user_errors_exit
def hydra_main(cfg: DictConfig) -> float:
    """Hydra entry point; returns ``cfg.optimized_metric`` of the run (what sweepers such as Optuna maximise).

    None when the metric's part was not evaluated (a split without validation
    or test part): there is nothing to optimise, and the run itself succeeded.
    """
    metrics = train_and_test(cfg)
    part = str(cfg.optimized_metric).split(".")[0]
    if part in ("val", "test") and getattr(metrics, part) is None:
        log.info("optimized_metric=%s: split %s has no %s part", cfg.optimized_metric, metrics.split, part)
        return None
    return metrics.select(cfg.optimized_metric)


#: ``python train.py ...`` / ``mgc-train ...``
main = hydra_command(hydra_main)


if __name__ == "__main__":
    main()
