"""The checkpoint contract: one entry that holds everything inference needs.

Lightning's checkpoint layout (``state_dict`` keys prefixed by the attribute
name, hyper-parameters, the DataModule's state under its class name) is an
implementation detail of training. Inference reads only ``checkpoint[KEY]``,
an :class:`InferenceSpec`: the feature and model configs, the class names,
the input shape, the normalisation statistics, the backbone's weights and the
mgc version that wrote it. The backbone's tensors share storage with the
module's ``state_dict``, so ``torch.save`` stores them once.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

import mgc
from mgc.errors import MgcError

#: The checkpoint entry of the contract.
KEY = "mgc_inference"


@dataclass
class InferenceSpec:
    """What turns an audio file into genre probabilities, as training left it."""

    features: dict[str, Any]  # the features config (``_target_`` and parameters)
    model: dict[str, Any]  # the model config, built with ``input_shape`` and ``num_classes``
    class_names: list[str]
    input_shape: list[int]  # one segment: (channels, bins, frames)
    weights: dict[str, torch.Tensor]  # the backbone's state_dict
    mean: torch.Tensor | None  # per-(channel, bin) training statistics; None when not normalised
    std: torch.Tensor | None
    mgc_version: str = mgc.__version__

    def as_entry(self) -> dict[str, Any]:
        """The checkpoint entry (not ``dataclasses.asdict``: it would deep-copy the weights)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def load(cls, path: str | Path, key: str = "ckpt") -> InferenceSpec:
        """The spec of the checkpoint file at ``path`` (``weights_only``: no pickled code runs); one line if none.

        ``key`` is the setting that named the file, for the error messages.
        """
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise MgcError(f"{key}={path} does not exist: pass the path of an mgc .ckpt file") from None
        except (pickle.UnpicklingError, RuntimeError, EOFError, TypeError, AttributeError) as err:
            raise MgcError(
                f"{key}={path} is not an mgc checkpoint ({type(err).__name__}); pass a .ckpt written by python train.py"
            ) from None
        return cls.from_checkpoint(state, path, key)

    @classmethod
    def from_checkpoint(cls, checkpoint: dict[str, Any], path: str | Path, key: str = "ckpt") -> InferenceSpec:
        """The spec of a loaded checkpoint; one line when the checkpoint has none."""
        entry = checkpoint.get(KEY) if isinstance(checkpoint, dict) else None
        if not isinstance(entry, dict):
            raise MgcError(
                f"{key}={path} has no '{KEY}' entry (not an mgc checkpoint, or written by mgc before 0.2); "
                f"pass a .ckpt written by python train.py, or retrain"
            )
        try:
            return cls(**entry)
        except TypeError as err:
            raise MgcError(
                f"{key}={path}: its '{KEY}' entry does not match this mgc {mgc.__version__} ({err}); "
                f"retrain with this version"
            ) from None

    def build_model(self) -> nn.Module:
        """The backbone with its trained weights, in eval mode."""
        model = instantiate(
            OmegaConf.create(self.model), input_shape=tuple(self.input_shape), num_classes=len(self.class_names)
        )
        model.load_state_dict(self.weights)
        return model.eval()


def start_from(model: nn.Module, path: str | Path, input_shape: Sequence[int], class_names: Sequence[str]) -> None:
    """Load into ``model`` the trained weights of the mgc checkpoint at ``path`` (``init_from=``: fine-tuning).

    Only the weights come along: the optimiser, the schedule, the epoch count
    and the normalisation statistics start afresh from this run's config and
    training split. One line when the checkpoint was trained on other segments,
    other genres or another model.
    """
    spec = InferenceSpec.load(path, key="init_from")
    if list(spec.input_shape) != list(input_shape) or list(spec.class_names) != list(class_names):
        raise MgcError(
            f"init_from={path} was trained on segments of shape {list(spec.input_shape)} for the genres "
            f"{', '.join(spec.class_names)}; this run has {list(input_shape)} and {', '.join(class_names)}: "
            f"start from a checkpoint of the same features and genres"
        )
    try:
        model.load_state_dict(spec.weights)
    except RuntimeError as err:
        reason = " ".join(line.strip() for line in str(err).splitlines()[:2])[:200]  # the tensors, cut short
        raise MgcError(
            f"init_from={path}: its weights do not fit this model ({reason}); use its model config"
        ) from None
