"""Callbacks of ``conf/callbacks/``: what a run shows in TensorBoard beyond its scalars.

The LightningModule computes loss, metrics and optimisers; how results are
presented lives here, so a run without TensorBoard carries none of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as L
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig, ListConfig, OmegaConf

from mgc.features.store import SegmentStore
from mgc.module import GenreClassifier
from mgc.plots import confusion_figure


class RunSummary(L.Callback):
    """Confusion matrices per validation epoch and for the test; HPARAMS beside the final metrics.

    Parameters
    ----------
    hparams : dict
        What tells runs apart in the HPARAMS tab (experiment name, group
        choices, learning rate, seed, ...); nested dicts are flattened
        (``choices.model`` becomes ``model``) and ``hydra/...`` choices dropped.
    data_root : str, optional
        The data folder; its name goes into HPARAMS as ``data_root``, so runs
        on two data sets look different there.
    """

    def __init__(self, hparams: dict[str, Any] | DictConfig | None = None, data_root: str | list[str] | None = None):
        params = OmegaConf.to_container(hparams, resolve=True) if isinstance(hparams, DictConfig) else hparams
        self.hparams = _flat(params or {})
        if data_root:  # one folder or manifest, or a list of folders read as one data set
            roots = data_root if isinstance(data_root, list | tuple | ListConfig) else [data_root]
            self.hparams["data_root"] = "+".join(Path(str(r)).name for r in roots)

    def on_validation_end(self, trainer: L.Trainer, pl_module: GenreClassifier) -> None:
        if not trainer.sanity_checking:
            self._add_confusion(trainer, pl_module, "val")

    def on_test_end(self, trainer: L.Trainer, pl_module: GenreClassifier) -> None:
        self._add_confusion(trainer, pl_module, "test")
        params = {**self.hparams, "epochs": int(trainer.current_epoch)}
        final = final_metrics(pl_module)
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):  # fills the HPARAMS tab: params next to final metrics
                logger.log_hyperparams(params, final)
            else:
                logger.log_hyperparams(params)
                logger.log_metrics(final)

    @staticmethod
    def _add_confusion(trainer: L.Trainer, pl_module: GenreClassifier, stage: str) -> None:
        result = pl_module.results.get(stage)
        if result is None:
            return
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                fig = confusion_figure(result.track.confusion, pl_module.hparams.class_names, f"{stage} (tracks)")
                logger.experiment.add_figure(f"{stage}/confusion_matrix", fig, trainer.current_epoch, close=False)


class EmbeddingProjector(L.Callback):
    """TensorBoard's PROJECTOR: each track's mean embedding, labelled with its genre, split part and id.

    Only for features that are embeddings (``Extractor.projectable``, e.g.
    ``features=musicnn``): a frozen encoder's vectors, where how the genres
    cluster says what a probe can learn. Written once, when fitting starts
    (the embeddings do not change with training), as the data set holds them,
    before standardisation.
    """

    def on_fit_start(self, trainer: L.Trainer, pl_module: GenreClassifier) -> None:
        datamodule = trainer.datamodule
        loggers = [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        if not loggers or datamodule is None or not getattr(datamodule.features, "projectable", False):
            return
        data = datamodule.data
        part_of_track = ["unused"] * len(data.track_ids)
        for part, dataset in datamodule.parts.items():
            for track in torch.unique(torch.as_tensor(data.tracks)[dataset.index]).tolist():
                part_of_track[track] = part
        means = track_means(data.x, torch.as_tensor(data.tracks), len(data.track_ids))
        rows = [
            [data.class_names[label], part_of_track[t], data.track_ids[t]]
            for t, label in enumerate(data.track_labels.tolist())
        ]
        for logger in loggers:
            logger.experiment.add_embedding(
                means, metadata=rows, metadata_header=["genre", "split", "track"], tag=f"{datamodule.features.name}"
            )


def final_metrics(pl_module: GenreClassifier) -> dict[str, float]:
    """``hp/<part>_<level>_acc`` and ``hp/<part>_f1`` of the evaluated parts (the HPARAMS metric columns)."""
    final = {}
    for stage, res in pl_module.results.items():
        final[f"hp/{stage}_segment_acc"] = res.segment.accuracy
        final[f"hp/{stage}_track_acc"] = res.track.accuracy
        final[f"hp/{stage}_f1"] = res.segment.macro_f1
    return final


def _flat(params: dict[str, Any]) -> dict[str, Any]:
    """One level: nested dicts merged into the top (hydra's own choices and empty values left out)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, dict):
            out.update({k: v for k, v in _flat(value).items() if not k.startswith("hydra")})
        elif value is not None:
            out[key] = value
    return out


def track_means(x: np.ndarray | SegmentStore, tracks: torch.Tensor, n_tracks: int, chunk: int = 4096) -> torch.Tensor:
    """Each track's mean segment, flattened, read ``chunk`` rows at a time (a store on disk is never loaded whole)."""
    sums = torch.zeros(n_tracks, int(np.prod(x.shape[1:])), dtype=torch.float64)
    for start in range(0, len(tracks), chunk):
        rows = torch.from_numpy(np.asarray(x[start : start + chunk])).flatten(1).double()
        sums.index_add_(0, tracks[start : start + chunk], rows)
    return (sums / torch.bincount(tracks, minlength=n_tracks).clamp_min(1)[:, None]).float()
