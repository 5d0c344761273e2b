"""One LightningModule for every backbone: loss, metrics, optimizer, schedule.

Metrics are reported at two levels. *Segment* metrics score every 3-s
segment on its own. *Track* metrics score whole clips: a track's prediction is
the mean of its segments' log-probabilities (as CLMR and
sota-music-tagging-models report it). Validation and test predictions are
gathered over the epoch and scored once at its end, so both levels come from
the same numbers, and from every process under DDP.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning.pytorch as L
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import TensorBoardLogger
from torch import nn
from torchmetrics.classification import MulticlassAccuracy
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_confusion_matrix,
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
)

from mgc.errors import MgcError
from mgc.plots import confusion_figure


class NonFiniteLossError(MgcError):
    """The loss became NaN or infinite: training stops, the last good checkpoint stays."""


class GenreClassifier(L.LightningModule):
    """Train any backbone as a genre classifier.

    Parameters
    ----------
    model : nn.Module
        The backbone, mapping ``(batch, channels, bins, frames)`` to logits.
    optimizer : callable
        ``params -> Optimizer`` (a ``_partial_`` optimizer config).
    scheduler : callable
        ``(optimizer, steps_per_epoch) -> lr_scheduler dict`` (see :mod:`mgc.scheduler`).
    class_names : list of str
        Genre names in label order.
    label_smoothing : float
        Cross-entropy label smoothing.
    run_config : dict, optional
        The resolved run config, stored in the checkpoint so ``predict`` can
        rebuild the model and features.
    input_shape : tuple, optional
        Shape of one segment, stored for the same reason.
    compile : bool
        Compile the backbone with ``torch.compile`` (in place, so checkpoints keep
        their keys). Off by default: on 2 CPU cores ``make bench`` measured the
        CNN at 0.92x to 1.24x eager samples/s after 20-45 s of compiling, and the
        GRU at 1.0x (its recurrent kernel is not compiled); a new batch shape or
        evaluation compiles again, so it can pay back only on long CNN runs.
    """

    def __init__(self, model: nn.Module, optimizer: Callable, scheduler: Callable, class_names: list[str],
                 label_smoothing: float = 0.0, run_config: dict | None = None, input_shape: tuple | None = None,
                 compile: bool = False):
        super().__init__()
        self.save_hyperparameters(ignore=["model", "optimizer", "scheduler"])
        if compile:
            model.compile()
        self.model, self.optimizer_factory, self.scheduler_factory = model, optimizer, scheduler
        self.num_classes = len(class_names)
        self.train_acc = MulticlassAccuracy(self.num_classes, average="micro")
        self._outputs: list[tuple[torch.Tensor, ...]] = []
        self.results: dict[str, dict[str, Any]] = {}
        self.history: list[dict[str, float]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y, label_smoothing=self.hparams.label_smoothing)

    # -- training ---------------------------------------------------------------
    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        x, y, *_ = batch
        logits = self(x)
        loss = self._loss(logits, y)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"training loss became {loss.item()} at epoch {self.current_epoch}, step {self.global_step}; "
                f"the last good checkpoint is kept in checkpoints/last.ckpt; lower optim.lr or check the features"
            )
        self.train_acc(logits, y)
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y), sync_dist=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, batch_size=len(y))
        return loss

    def on_train_epoch_end(self) -> None:
        """Record one row of the learning curves (validation has run by now)."""
        m = self.trainer.callback_metrics
        row = {"epoch": self.current_epoch}
        for key in ("train/loss", "train/acc", "val/loss", "val/acc", "val/track_acc"):
            if key in m:
                row[key] = float(m[key])
        self.history.append(row)

    # -- evaluation -----------------------------------------------------------
    def _eval_step(self, batch: tuple[torch.Tensor, ...]) -> None:
        x, y, track, index = batch
        self._outputs.append((F.log_softmax(self(x), dim=1).detach(), y, track, index))

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        self._eval_step(batch)

    def test_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        self._eval_step(batch)

    def on_validation_epoch_end(self) -> None:
        self._score("val")

    def on_test_epoch_end(self) -> None:
        self._score("test")

    def _score(self, stage: str) -> None:
        if not self._outputs:
            return
        logp, y, track, index = (torch.cat(t) for t in zip(*self._outputs))
        self._outputs.clear()
        if self.trainer.world_size > 1:  # every rank scores all predictions, each segment once
            logp, y, track, index = (self._gather(t) for t in (logp, y, track, index))
            index, first = unique_first(index)
            logp, y, track = logp[first], y[first], track[first]
        track_logp, track_y = track_means(logp, y, track)
        res = {
            "loss": float(F.nll_loss(logp, y)),
            "segments": len(y),
            "tracks": len(track_y),
            "segment": scores(logp.argmax(1), y, self.num_classes, self.hparams.class_names),
            "track": scores(track_logp.argmax(1), track_y, self.num_classes, self.hparams.class_names),
        }
        self.results[stage] = res
        if self.trainer.sanity_checking:
            return
        self.log_dict({
            f"{stage}/loss": res["loss"], f"{stage}/acc": res["segment"]["accuracy"],
            f"{stage}/f1": res["segment"]["macro_f1"], f"{stage}/track_acc": res["track"]["accuracy"],
            f"{stage}/track_f1": res["track"]["macro_f1"],
        }, prog_bar=stage == "val", sync_dist=True)  # equal on every rank: the mean is the value
        for logger in self.loggers:
            if isinstance(logger, TensorBoardLogger):
                fig = confusion_figure(res["track"]["confusion"], self.hparams.class_names, f"{stage} (tracks)")
                logger.experiment.add_figure(f"{stage}/confusion_matrix", fig, self.current_epoch)

    def _gather(self, t: torch.Tensor) -> torch.Tensor:
        """All ranks' rows of ``t``; ranks may hold different numbers of rows."""
        sizes = self.all_gather(torch.tensor(len(t), device=t.device))
        padded = torch.zeros((int(sizes.max()), *t.shape[1:]), dtype=t.dtype, device=t.device)
        padded[: len(t)] = t
        gathered = self.all_gather(padded)
        return torch.cat([g[:n] for g, n in zip(gathered, sizes.tolist())])

    # -- optimisation ---------------------------------------------------------
    def configure_optimizers(self) -> dict:
        optimizer = self.optimizer_factory(self.parameters())
        epochs = max(1, self.trainer.max_epochs or 1)
        steps_per_epoch = max(1, int(self.trainer.estimated_stepping_batches) // epochs)
        return {"optimizer": optimizer, "lr_scheduler": self.scheduler_factory(optimizer, steps_per_epoch)}

    # -- a resumed run continues exactly: curves and the random state -----------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["mgc_history"] = self.history
        checkpoint["mgc_torch_rng"] = torch.get_rng_state()  # dropout masks of the epochs to come

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.history = list(checkpoint.get("mgc_history", []))
        if "mgc_torch_rng" in checkpoint and self._trainer is not None and self.trainer.state.fn == "fit":
            torch.set_rng_state(checkpoint["mgc_torch_rng"])


def unique_first(index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unique values of ``index`` and the position of each one's first occurrence.

    A distributed sampler pads ranks with repeated batches; scoring each
    segment once keeps the metrics those of the real split.
    """
    values, inverse = torch.unique(index, return_inverse=True)
    positions = torch.arange(len(index), device=index.device)
    first = torch.full((len(values),), len(index), device=index.device).scatter_reduce(0, inverse, positions, "amin")
    return values, first


def track_means(logp: torch.Tensor, y: torch.Tensor, track: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean log-probability per track, and each track's label."""
    ids, inverse = torch.unique(track, return_inverse=True)
    sums = torch.zeros(len(ids), logp.shape[1], dtype=logp.dtype, device=logp.device).index_add_(0, inverse, logp)
    counts = torch.bincount(inverse, minlength=len(ids)).unsqueeze(1)
    labels = torch.zeros(len(ids), dtype=y.dtype, device=y.device).scatter_(0, inverse, y)
    return sums / counts, labels


def scores(pred: torch.Tensor, target: torch.Tensor, num_classes: int, class_names: list[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix (rows = true)."""
    kw = {"num_classes": num_classes}
    per_class = [fn(pred, target, average=None, **kw)
                 for fn in (multiclass_precision, multiclass_recall, multiclass_f1_score)]
    return {
        "accuracy": float(multiclass_accuracy(pred, target, average="micro", **kw)),
        "macro_f1": float(multiclass_f1_score(pred, target, average="macro", **kw)),
        "per_class": {
            c: {"precision": float(p), "recall": float(r), "f1": float(f)}
            for c, p, r, f in zip(class_names, *per_class)
        },
        "confusion": multiclass_confusion_matrix(pred, target, **kw).tolist(),
    }
