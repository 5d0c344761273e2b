"""The musicnn package's trained weights as PyTorch state_dicts, converted once and cached.

The ``musicnn`` package (0.1.0, ISC licence, Pons & Serra) ships four trained
checkpoints as package data: ``MSD_musicnn`` and ``MTT_musicnn`` (the musicnn
architecture trained on the Million Song Dataset's and MagnaTagATune's 50
tags) and ``MSD_vgg`` and ``MTT_vgg`` (a VGG-like baseline). Its code needs
TensorFlow 1, so mgc installs it with ``--no-deps`` and reads only its data
(``importlib.resources``, which imports nothing of it), through
:mod:`mgc.models.tf_checkpoint`.

The converted state_dict is cached in ``<cache_dir>/musicnn/<name>-<key>.pt``,
``key`` hashing the checkpoint's index file and the converter's version,
written to a temporary file and renamed into place (a killed conversion leaves
nothing), and checked on every load: a cache file that cannot be read is
deleted and rebuilt; a tensor of the wrong shape, a missing package or a torn
checkpoint is one line saying what to do. Nothing ever falls back to random
weights.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import importlib.util
import logging
import os
import tempfile
from pathlib import Path

import torch
from torch import nn

from mgc.errors import MgcError
from mgc.models.musicnn import VGG, Musicnn
from mgc.models.tf_checkpoint import read_checkpoint

log = logging.getLogger(__name__)

#: Each shipped checkpoint's architecture (all have 50 tags and read 96-band patches).
ARCHITECTURES: dict[str, type[nn.Module]] = {
    "MSD_musicnn": Musicnn,
    "MTT_musicnn": Musicnn,
    "MSD_vgg": VGG,
    "MTT_vgg": VGG,
}
CONVERTER_VERSION = 1
INSTALL = "pip install --no-deps musicnn==0.1.0 (make install does)"


def check_name(weights: str, key: str = "weights") -> type[nn.Module]:
    """The architecture of the weights called ``weights``; one line listing the names when there is none."""
    if weights not in ARCHITECTURES:
        raise MgcError(f"{key}={weights} is not a musicnn checkpoint; choose one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[weights]


def package_folder(weights: str) -> Path:
    """The folder of the ``musicnn`` package that holds the checkpoint ``weights``; one line if not installed."""
    if importlib.util.find_spec("musicnn") is None:
        raise MgcError(f"the musicnn weights come from the musicnn package, which is not installed: {INSTALL}")
    folder = Path(str(importlib.resources.files("musicnn") / weights))
    if not (folder / ".index").is_file():
        raise MgcError(f"{folder}/.index is missing: the musicnn package is incomplete; reinstall it: {INSTALL}")
    return folder


def pretrained(weights: str, cache_dir: str | os.PathLike) -> nn.Module:
    """The architecture of ``weights`` with those weights loaded, in eval mode."""
    model = check_name(weights)()
    model.load_state_dict(converted(weights, cache_dir))
    return model.eval()


def converted(weights: str, cache_dir: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The PyTorch state_dict of the package's checkpoint ``weights``, from the cache or converted into it."""
    architecture = check_name(weights)
    folder = package_folder(weights)
    key = hashlib.sha256((folder / ".index").read_bytes() + f"|{CONVERTER_VERSION}".encode()).hexdigest()[:16]
    path = Path(cache_dir) / "musicnn" / f"{weights}-{key}.pt"
    if path.is_file():
        try:
            return _checked(torch.load(path, map_location="cpu", weights_only=True), architecture, weights)
        except (RuntimeError, EOFError, OSError, ValueError, MgcError) as err:  # torn or damaged: convert again
            log.warning("musicnn weights cache %s is unreadable (%s): converting again", path, type(err).__name__)
            path.unlink()
    try:
        state = architecture.from_tensorflow(read_checkpoint(f"{folder}{os.sep}"))
    except KeyError as err:
        raise MgcError(
            f"{folder}: the checkpoint has no variable {err}; reinstall the musicnn package: {INSTALL}"
        ) from None
    state = _checked(state, architecture, weights)
    _save_atomically(state, path)
    log.info("converted the musicnn package's %s weights into %s", weights, path)
    return state


def _checked(state: dict[str, torch.Tensor], architecture: type[nn.Module], weights: str) -> dict[str, torch.Tensor]:
    """``state`` when it has exactly the architecture's tensors and shapes; one line naming the first that differs."""
    expected = architecture().state_dict()
    if not isinstance(state, dict) or set(state) != set(expected):
        raise MgcError(
            f"musicnn weights {weights}: the tensors are not those of {architecture.__name__}; "
            f"reinstall the musicnn package: {INSTALL}"
        )
    for name, tensor in expected.items():
        if tuple(state[name].shape) != tuple(tensor.shape):
            raise MgcError(
                f"musicnn weights {weights}: {name} has shape {tuple(state[name].shape)}, the architecture wants "
                f"{tuple(tensor.shape)}; reinstall the musicnn package: {INSTALL}"
            )
    return state


def _save_atomically(state: dict[str, torch.Tensor], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=path.name + ".tmp-", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as f:
            torch.save(state, f)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
