"""What every entry point shares: where the configs live, and how a user error ends a command.

Every command (``train.py`` / ``mgc-train``, ``mgc-predict``, ``mgc-report``,
``mgc-extract``, ``mgc-bench``) runs its body under :func:`user_errors_exit`:
an :class:`~mgc.errors.MgcError` prints one line, ``error: <message>``, on
stderr and exits with :data:`USER_ERROR`, never with a traceback.
"""

from __future__ import annotations

import functools
import hashlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

from hydra.errors import InstantiationException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from mgc.errors import MgcError

#: conf/ beside the package (an editable install keeps it there).
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"

#: The exit status of every command that stops on a user error.
USER_ERROR = 2

#: Longest run folder name: file systems allow 255 bytes.
MAX_NAME = 160

P = ParamSpec("P")
R = TypeVar("R")


def user_errors_exit(fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn``; on an :class:`MgcError` print its one line and exit with :data:`USER_ERROR`."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except MgcError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(USER_ERROR) from None
        except InstantiationException as err:  # a constructor's own MgcError, wrapped by hydra.utils.instantiate
            if not isinstance(err.__cause__, MgcError):
                raise
            print(f"error: {err.__cause__}", file=sys.stderr)
            raise SystemExit(USER_ERROR) from None

    return wrapper


def hydra_command(hydra_main: Callable[[], object]) -> Callable[[], None]:
    """A command around a ``@hydra.main`` function: group names checked first (one line), then Hydra runs."""

    @user_errors_exit
    def main() -> None:
        check_group_choices(sys.argv[1:])
        hydra_main()

    return main


def override_key(override: str) -> str:
    """The key a command-line override sets: ``+model.x=1`` -> ``model.x``."""
    return override.lstrip("+~").partition("=")[0]


def check_group_choices(argv: list[str]) -> None:
    """One line for ``group=option`` overrides naming an option that does not exist.

    Hydra's own message for this spans a dozen lines; this check runs first and
    names the group, the bad option and the accepted ones.
    """
    for arg in argv:
        key, value = override_key(arg), arg.partition("=")[2]
        folder = CONF_DIR / key
        if not value or key.startswith("hydra") or not folder.is_dir() or "(" in value:
            continue  # not one of our groups (Hydra's own come from plugins too), or sweep syntax like choice(...)
        options = sorted(p.stem for p in folder.glob("*.yaml"))
        for option in value.split(","):
            if option not in options and option != "null":
                raise MgcError(f"{key}={option}: no such option in conf/{key}/; choose one of {', '.join(options)}")


def run_name(*parts: str) -> str:
    """A folder name from the non-empty ``parts``, e.g. ``train_model=mlp,optim=adam``.

    The config resolver ``mgc.run_name`` names run folders (and so TensorBoard
    runs) by what they override. A ``/`` in a value would nest folders, so it
    becomes ``_``; a name too long for a file system keeps its start and a hash
    of the whole (``.hydra/overrides.yaml`` keeps the full list).
    """
    name = "_".join(str(p) for p in parts if p).replace("/", "_")
    if len(name) > MAX_NAME:
        name = f"{name[: MAX_NAME - 17]}-{hashlib.sha1(name.encode()).hexdigest()[:16]}"
    return name


def sweep_job_name(task: str, sweep_task: str, overrides: str) -> str:
    """A sweep job's folder name: its overrides, led by its own ``task_name`` where that is not the sweep's.

    Jobs of a sweep over experiments (``-m experiment=mar01_lstm,mar05_gru``)
    differ by ``task_name`` alone, which the overrides leave out; without it
    they would share one folder and overwrite each other's checkpoints.
    """
    return run_name("" if task == sweep_task else task, overrides)


class SweepNames(Callback):
    """Hydra callback: resolve the sweep's folder names in the sweep's own config before any job starts.

    Every job resolves ``hydra.sweep.dir`` and ``hydra.sweep.subdir`` again in
    its own config, where its experiment may set another ``task_name``. Their
    ``${mgc.at_launch:${task_name}}`` is cached by its text, like ``${now:}``,
    and Hydra hands the sweep's cache to each job; resolving both here fills
    that cache with the sweep's own task, also where ``hydra.sweep.dir`` is
    given on the command line and so never names it.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        OmegaConf.to_container(config.hydra.sweep, resolve=True)


OmegaConf.register_new_resolver("mgc.run_name", run_name, replace=True)
OmegaConf.register_new_resolver("mgc.sweep_job_name", sweep_job_name, replace=True)
# `${mgc.at_launch:${task_name}}`: the value as the sweep's own config had it at launch (see SweepNames).
OmegaConf.register_new_resolver("mgc.at_launch", lambda value: value, use_cache=True, replace=True)
