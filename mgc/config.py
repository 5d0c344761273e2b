"""The composed run config: checks that fail fast, before any data is touched, and its plain forms.

``train.py`` and ``mgc-extract`` both check a config here, so a value that cannot work gets the same
one-line error from either, naming the key and what to pass instead.
"""

from __future__ import annotations

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from mgc.errors import MgcError


def check_set(cfg: DictConfig, groups: tuple[str, ...] | None = None) -> None:
    """One line for a mandatory value (``???``) left unset in ``groups`` (every group when None)."""
    try:
        resolved_config(cfg if groups is None else {g: cfg[g] for g in groups}, throw_on_missing=True)
    except MissingMandatoryValue as err:
        key = err.full_key
        hint = " (the folder holding your GTZAN genres)" if key == "data.root" else ""
        raise MgcError(f"{key} is not set: pass {key}=...{hint}") from None


def check_config(cfg: DictConfig) -> None:
    """Fail fast, before any data is touched, on values that cannot work."""
    check_set(cfg)
    if not cfg.optim.lr > 0:
        raise MgcError(f"optim.lr={cfg.optim.lr}: the learning rate must be > 0 (e.g. optim.lr=1e-3)")
    if cfg.optim.get("weight_decay", 0) < 0:
        raise MgcError(f"optim.weight_decay={cfg.optim.weight_decay}: must be >= 0")
    if not int(cfg.datamodule.batch_size) >= 1:
        raise MgcError(f"datamodule.batch_size={cfg.datamodule.batch_size}: must be a positive integer")
    if not cfg.train and not cfg.ckpt_path:
        raise MgcError("train=false needs ckpt_path=PATH: the checkpoint to test")


def resolved_config(cfg: DictConfig, throw_on_missing: bool = False) -> dict:
    """The run's config as plain containers, without Hydra's own ``hydra`` node."""
    return {
        k: OmegaConf.to_container(v, resolve=True, throw_on_missing=throw_on_missing) if OmegaConf.is_config(v) else v
        for k, v in cfg.items()
        if k != "hydra"
    }


def group_choices() -> dict[str, str]:
    """Which option of each config group this run uses (e.g. model: gru)."""
    if not HydraConfig.initialized():
        return {}
    return {k: v for k, v in HydraConfig.get().runtime.choices.items() if not k.startswith("hydra") and v}
