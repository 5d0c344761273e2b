"""One LightningModule for every backbone: loss, metrics, optimizer, schedule.

Validation and test predictions are gathered over the epoch and scored once
at its end (:func:`mgc.metrics.stage_metrics`: segment and track level), so
both levels come from the same numbers, and from every process under DDP.
Figures and HPARAMS are written by a callback (:mod:`mgc.callbacks`), and
every checkpoint carries the inference contract (:mod:`mgc.checkpoint`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import lightning.pytorch as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from mgc.checkpoint import KEY, InferenceSpec
from mgc.errors import MgcError
from mgc.metrics import StageMetrics, stage_metrics, unique_first
from mgc.models.ensemble import mean_log_probability

if TYPE_CHECKING:
    from mgc.batches import Batch


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
        The resolved run config; its ``features`` and ``model`` entries go into
        the inference contract of every checkpoint.
    input_shape : tuple, optional
        Shape of one segment, for the same contract.
    compile : bool
        Compile the backbone with ``torch.compile`` (in place, so checkpoints keep
        their keys). Off by default: docs/performance.md says why.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: Callable,
        scheduler: Callable,
        class_names: list[str],
        label_smoothing: float = 0.0,
        run_config: dict | None = None,
        input_shape: tuple | None = None,
        compile: bool = False,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["model", "optimizer", "scheduler"])
        if compile:
            model.compile()
        self.model, self.optimizer_factory, self.scheduler_factory = model, optimizer, scheduler
        self.num_classes = len(class_names)
        self.train_acc = MulticlassAccuracy(self.num_classes, average="micro")
        self._outputs: list[tuple[torch.Tensor, ...]] = []
        self.results: dict[str, StageMetrics] = {}
        self.history: list[dict[str, float]] = []
        self.bags: torch.Tensor | None = None  # a bagged ensemble's member leaving out each track (on_fit_start)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Cross-entropy; for an ensemble's ``(members, batch, classes)`` the mean of each member's own loss.

        Each member's gradient then comes from its own loss alone, as if it
        were trained by itself (:mod:`mgc.models.ensemble` says why).
        """
        if logits.ndim == 3:
            logits, y = logits.flatten(0, 1), y.repeat(len(logits), *[1] * (y.ndim - 1))
        return F.cross_entropy(logits, y, label_smoothing=self.hparams.label_smoothing)

    # -- training ---------------------------------------------------------------
    def on_fit_start(self) -> None:
        """A bagged ensemble learns which member leaves out which training track (the same deal on resume)."""
        if not getattr(self.model, "bagging", False):
            return
        datamodule = self.trainer.datamodule
        if datamodule is None or not hasattr(datamodule, "bags"):
            raise MgcError(
                "model.bagging=true deals the training tracks to the members, which needs mgc's GenreDataModule "
                "(train.py); train with train.py or set model.bagging=false"
            )
        self.bags = datamodule.bags(len(self.model.members)).to(self.device)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        x, y = batch.x, batch.y  # y: class indices, or mixed one-hot rows under mixup (mgc.augment)
        if self.bags is not None:
            loss, logits, y = self._bagged_loss(x, y, batch.track)
        else:
            logits = self(x)
            loss = self._loss(logits, y)
            if logits.ndim == 3:  # an ensemble's members: its prediction is their mean probability
                logits = mean_log_probability(logits)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"training loss became {loss.item()} at epoch {self.current_epoch}, step {self.global_step}; "
                f"the last good checkpoint is kept in checkpoints/last.ckpt; lower optim.lr or check the features"
            )
        self.train_acc(logits, y if y.ndim == 1 else y.argmax(dim=1))
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y), sync_dist=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, batch_size=len(y))
        return loss

    def _bagged_loss(
        self, x: torch.Tensor, y: torch.Tensor, track: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The mean of each member's own loss on the segments of the tracks it keeps (see ``self.bags``), and
        the members' logits and labels of those segments, for the training accuracy."""
        losses, logits, labels = [], [], []
        idle = torch.zeros((), device=x.device)
        left_out_by = self.bags[track]  # the member that leaves out each segment's track
        for number, member in enumerate(self.model.members):
            keep = left_out_by != number
            if not keep.any():  # every segment is this member's to leave out: no loss and a zero gradient,
                idle = idle + sum(p.sum() for p in member.parameters()) * 0.0  # which keeps DDP's graph whole
                continue
            logits.append(member(x[keep]))
            labels.append(y[keep])
            losses.append(self._loss(logits[-1], labels[-1]))
        return torch.stack(losses).mean() + idle, torch.cat(logits), torch.cat(labels)

    def on_train_epoch_end(self) -> None:
        """Record one row of the learning curves (validation has run by now)."""
        m = self.trainer.callback_metrics
        row = {"epoch": self.current_epoch}
        for key in ("train/loss", "train/acc", "val/loss", "val/acc", "val/track_acc"):
            if key in m:
                row[key] = float(m[key])
        self.history.append(row)

    # -- evaluation -----------------------------------------------------------
    def _eval_step(self, batch: Batch) -> None:
        """One batch's log-probabilities, in 32-bit whatever ``trainer.precision`` trains in (autocast off):
        the metrics of a run then name the tracks that ``mgc-predict``, which runs in 32-bit, names."""
        with torch.autocast(self.device.type, enabled=False):
            logits = self(batch.x)
        self._outputs.append((F.log_softmax(logits, dim=1).detach(), batch.y, batch.track, batch.index))

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._eval_step(batch)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
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
        datamodule = self.trainer.datamodule  # None when evaluated on bare loaders: no track names then
        track_names = datamodule.track_ids if datamodule is not None else None
        res = self.results[stage] = stage_metrics(logp, y, track, self.hparams.class_names, track_names)
        if self.trainer.sanity_checking:
            return
        self.log_dict(
            {
                f"{stage}/loss": res.loss,
                f"{stage}/acc": res.segment.accuracy,
                f"{stage}/f1": res.segment.macro_f1,
                f"{stage}/track_acc": res.track.accuracy,
                f"{stage}/track_f1": res.track.macro_f1,
            },
            prog_bar=stage == "val",
            sync_dist=True,
        )  # equal on every rank: the mean is the value

    def _gather(self, t: torch.Tensor) -> torch.Tensor:
        """All ranks' rows of ``t``; ranks may hold different numbers of rows."""
        sizes = self.all_gather(torch.tensor(len(t), device=t.device))
        padded = torch.zeros((int(sizes.max()), *t.shape[1:]), dtype=t.dtype, device=t.device)
        padded[: len(t)] = t
        gathered = self.all_gather(padded)
        return torch.cat([g[:n] for g, n in zip(gathered, sizes.tolist())])

    # -- optimisation ---------------------------------------------------------
    def configure_optimizers(self) -> dict:
        groups = getattr(self.model, "parameter_groups", None)  # a pretrained backbone's slower-learning encoder
        optimizer = self.optimizer_factory(groups() if groups else self.parameters())
        for group in optimizer.param_groups:
            group["lr"] *= group.get("lr_scale", 1.0)
        return {"optimizer": optimizer, "lr_scheduler": self.scheduler_factory(optimizer, self.steps_per_epoch())}

    def steps_per_epoch(self) -> int:
        """Optimizer steps in one epoch of the training data, whatever ``max_epochs`` or ``max_steps`` say.

        Schedules count epochs in steps; total steps divided by ``max_epochs``
        would be wrong when ``max_steps`` cuts training short or ``max_epochs`` is -1.
        """
        self.trainer.fit_loop.setup_data()  # counts the training batches (limit_train_batches applied)
        return max(1, math.ceil(self.trainer.num_training_batches / self.trainer.accumulate_grad_batches))

    # -- a resumed run continues exactly: curves and the random state -----------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["mgc_history"] = self.history
        checkpoint["mgc_torch_rng"] = torch.get_rng_state()  # dropout masks of the epochs to come
        checkpoint[KEY] = self.inference_spec().as_entry()

    def inference_spec(self) -> InferenceSpec:
        """The checkpoint contract: what :class:`mgc.predict.Predictor` needs, and only that."""
        config = self.hparams.run_config or {}
        if not {"features", "model"} <= set(config) or self.hparams.input_shape is None:
            raise MgcError(
                "GenreClassifier needs run_config (with features and model) and input_shape to write "
                "a checkpoint that predict can use; build it as mgc.train.run does"
            )
        datamodule = self._trainer.datamodule if self._trainer is not None else None
        mean, std = (datamodule.mean, datamodule.std) if datamodule is not None else (None, None)
        return InferenceSpec(
            features=config["features"],
            model=config["model"],
            class_names=list(self.hparams.class_names),
            input_shape=list(self.hparams.input_shape),
            weights=self.model.state_dict(),
            mean=mean,
            std=std,
        )

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.history = list(checkpoint.get("mgc_history", []))
        if "mgc_torch_rng" in checkpoint and self._trainer is not None and self.trainer.state.fn == "fit":
            torch.set_rng_state(checkpoint["mgc_torch_rng"])
