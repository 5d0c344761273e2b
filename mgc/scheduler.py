"""Learning-rate schedules as Lightning scheduler dicts.

Each function takes the optimizer and the number of optimizer steps per
epoch (known only once the data is loaded) and returns
``{"scheduler", "interval", ...}`` for ``configure_optimizers``. The configs in
``conf/scheduler/`` are partials of these functions, so the stepping interval
is part of each config.
"""

from __future__ import annotations

from torch.optim import Optimizer, lr_scheduler


def _base_lr(optimizer: Optimizer) -> float:
    return optimizer.param_groups[0]["lr"]


def _group_lrs(optimizer: Optimizer) -> list[float]:
    """Each parameter group's learning rate (a pretrained encoder's group learns slower than its head)."""
    return [group["lr"] for group in optimizer.param_groups]


def constant(optimizer: Optimizer, steps_per_epoch: int, interval: str = "epoch") -> dict:
    """No schedule: the learning rate stays as configured (still logged)."""
    return {"scheduler": lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0), "interval": interval}


def cyclic(
    optimizer: Optimizer,
    steps_per_epoch: int,
    base_lr_ratio: float = 0.1,
    half_cycle_epochs: float = 2.0,
    mode: str = "triangular",
    interval: str = "step",
) -> dict:
    """torch ``CyclicLR`` between ``lr * base_lr_ratio`` and ``lr``, stepped per batch."""
    lrs = _group_lrs(optimizer)
    sched = lr_scheduler.CyclicLR(
        optimizer,
        base_lr=[lr * base_lr_ratio for lr in lrs],
        max_lr=lrs,
        step_size_up=max(1, round(half_cycle_epochs * steps_per_epoch)),
        mode=mode,
        cycle_momentum=False,
    )
    return {"scheduler": sched, "interval": interval}


def cosine_restarts(
    optimizer: Optimizer,
    steps_per_epoch: int,
    period_epochs: float = 2.0,
    min_lr_ratio: float = 0.01,
    interval: str = "step",
) -> dict:
    """Cosine annealing with warm restarts, what the journal called "CyclicLR".

    Falls from ``lr`` to ``lr * min_lr_ratio`` over ``period_epochs`` epochs,
    then restarts; stepped per batch.
    """
    sched = lr_scheduler.CosineAnnealingWarmRestarts(
        optimizer, T_0=max(1, round(period_epochs * steps_per_epoch)), eta_min=_base_lr(optimizer) * min_lr_ratio
    )
    return {"scheduler": sched, "interval": interval}


def plateau(
    optimizer: Optimizer,
    steps_per_epoch: int,
    factor: float = 0.5,
    patience: int = 3,
    monitor: str = "val/loss",
    interval: str = "epoch",
) -> dict:
    """Reduce the learning rate when the validation loss stops improving."""
    sched = lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=factor, patience=patience)
    return {"scheduler": sched, "interval": interval, "monitor": monitor}


def one_cycle(
    optimizer: Optimizer,
    steps_per_epoch: int,
    max_epochs: int,
    max_steps: int = -1,
    warmup_fraction: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    cycle_momentum: bool = True,
    interval: str = "step",
) -> dict:
    """torch ``OneCycleLR`` (Smith & Topin 2019): warm up to ``lr``, then anneal far below it, once over the run.

    The cycle spans the whole run, ``max_steps`` optimizer steps when set
    (> 0), else ``max_epochs`` epochs; the configs interpolate both from the
    trainer group, so the cycle follows ``trainer.max_epochs=...`` overrides.
    """
    total = max_steps if max_steps and max_steps > 0 else steps_per_epoch * max_epochs
    sched = lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=_group_lrs(optimizer),
        total_steps=max(2, int(total)),
        pct_start=warmup_fraction,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
        cycle_momentum=cycle_momentum,
    )
    return {"scheduler": sched, "interval": interval}
