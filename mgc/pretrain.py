"""Pretraining: the run's model first learns on mgc's synthetic GTZAN, then trains on the run's data.

GTZAN's dev clips are few; the synthetic set costs nothing and exists on
every machine, so ``pretrain=synthetic`` trains the run's own configuration
(features, model, optimiser, schedule, augmentation, batching, trainer) on it
first, and the run starts from those weights (as ``init_from`` would).

The pretrained checkpoint depends on that configuration and the pretraining's
own data, split, epochs and seed, never on the run's data or seed: it is built
once, cached under ``paths.cache_dir/pretrain`` by a key of exactly those
settings, and shared by every later run, fold and seed. It is written the way
the feature cache is: under a file lock, and renamed into place only when
complete; an interrupted pretraining resumes from its last epoch.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock
from omegaconf import DictConfig, OmegaConf, open_dict

import mgc
from mgc.checkpoint import InferenceSpec
from mgc.errors import MgcError

log = logging.getLogger(__name__)

#: The config groups whose settings shape the pretrained weights (with ``seed``), hence the cache key.
SHAPES_THE_WEIGHTS = ("data", "features", "split", "datamodule", "augment", "model", "module", "optim", "scheduler")


def wanted(cfg: DictConfig) -> bool:
    """Whether this run starts from pretrained weights it must build or find.

    Not when it resumes or tests a checkpoint (the weights come from there),
    and not under ``fast_dev_run``, which writes no checkpoint to start from.
    """
    if not cfg.get("pretrain"):
        return False
    if cfg.init_from:
        raise MgcError(
            f"init_from={cfg.init_from} and pretrain both say where the weights start: "
            f"pass pretrain=none to start from init_from, or drop init_from"
        )
    if cfg.trainer.get("fast_dev_run"):
        log.info("fast_dev_run: pretraining skipped, the model starts from random weights")
        return False
    return bool(cfg.train) and not cfg.ckpt_path


def starting_weights(cfg: DictConfig, train: Callable[[DictConfig], object]) -> str | Path | None:
    """Where the run's weights start: its pretrained checkpoint (built now if missing), ``init_from``, or None."""
    return pretrained_checkpoint(cfg, train) if wanted(cfg) else cfg.init_from


def pretraining_config(cfg: DictConfig) -> DictConfig:
    """The pretraining run of ``cfg``: its own data, split, epochs and seed; no logger, nothing to start from."""
    pre = copy.deepcopy(cfg)  # interpolations kept: they resolve against the pretraining's own values
    with open_dict(pre):
        pre.data, pre.split, pre.seed = cfg.pretrain.data, cfg.pretrain.split, cfg.pretrain.seed
        pre.trainer.max_epochs = cfg.pretrain.epochs
        pre.task_name, pre.logger, pre.pretrain = "pretrain", {}, None
        pre.init_from, pre.ckpt_path, pre.train = None, None, True
    return pre


def cache_key(pre: DictConfig) -> str:
    """A hash of every setting of the pretraining run ``pre`` that shapes its weights, and of mgc's version."""
    settings = {g: OmegaConf.to_container(pre[g], resolve=True) for g in SHAPES_THE_WEIGHTS}
    for group in settings.values():  # where features are cached and how many workers make them: not what they hold
        for where_or_how_fast in ("cache_dir", "num_workers"):
            group.pop(where_or_how_fast, None)
    trainer = OmegaConf.to_container(pre.trainer)  # unresolved: default_root_dir names the run, not the weights
    trainer.pop("default_root_dir", None)
    settings.update(trainer=trainer, seed=pre.seed, mgc_version=mgc.__version__)  # trainer holds the epochs
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def pretrained_checkpoint(cfg: DictConfig, train: Callable[[DictConfig], object]) -> Path:
    """The cached pretrained checkpoint of ``cfg``, built first with ``train`` (``train_and_test``) when missing."""
    pre = pretraining_config(cfg)
    cache = Path(cfg.paths.cache_dir) / "pretrain" / f"{cache_key(pre)}.ckpt"
    if not cache.is_file():
        cache.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{cache}.lock"):
            if not cache.is_file():  # another process may have built it meanwhile
                build(pre, cache, train)
    log.info("pretrain: starting from %s", cache)
    return cache


def build(pre: DictConfig, cache: Path, train: Callable[[DictConfig], object]) -> None:
    """Run the pretraining ``pre`` in a work folder beside ``cache``, resuming it there; then rename its result."""
    work = cache.with_suffix(".partial")  # kept when interrupted: the next run resumes from its last epoch
    last = work / "checkpoints" / "last.ckpt"
    if last.is_file():
        try:
            InferenceSpec.load(last)
            pre.ckpt_path = str(last)
            log.info("pretrain: resuming the interrupted pretraining from %s", last)
        except MgcError as err:  # killed while writing it
            log.warning("pretrain: cannot resume (%s); starting the pretraining again", err)
            shutil.rmtree(work)
    pre.paths.run_dir = str(work)
    log.info("pretrain: %d epochs on %s, cached as %s", pre.trainer.max_epochs, pre.data.root, cache)
    start = time.perf_counter()
    train(pre)
    os.replace(last, cache)  # atomic: the cache holds a complete pretraining or nothing
    shutil.rmtree(work, ignore_errors=True)
    log.info("pretrain: built in %.0f s (cached for later runs)", time.perf_counter() - start)
