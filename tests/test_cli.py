"""One CLI pattern: every entry point ends a user error with one line and the same exit status."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import ROOT, cli

from mgc.cli import MAX_NAME, USER_ERROR, run_name

pytestmark = pytest.mark.slow  # end-to-end runs: make test runs them, make test-fast leaves them out


@pytest.mark.parametrize(
    "args, line",
    [
        ((str(ROOT / "train.py"), "model=nope"), "error: model=nope: no such option in conf/model/; choose one of"),
        ((str(ROOT / "train.py"), "optim.lr=-1"), "error: optim.lr=-1: the learning rate must be > 0"),
        ((str(ROOT / "scripts" / "extract.py"), "data=gtzan"), "error: data.root is not set: pass data.root=..."),
        (("mgc.predict", "ckpt=missing.ckpt", "files=[a.wav]"), "error: ckpt=missing.ckpt does not exist"),
        (("mgc.report", "nowhere"), "error: no finished runs (metrics.json with test metrics) under nowhere"),
        (("mgc.bench", "--data-root", "nowhere"), "error: data.root=nowhere does not exist or is not a folder"),
    ],
)
def test_a_user_error_is_one_line_and_exit_status_2(tmp_path, args, line):
    hydra_outputs = [f"paths.outputs={tmp_path}"] if args[0].endswith(".py") else []
    out = cli(*args, *hydra_outputs, cwd=tmp_path)
    assert out.returncode == USER_ERROR == 2
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr  # exactly one line: no warnings, no traceback
    assert out.stderr.startswith(line), out.stderr


def test_extraction_checks_only_what_extraction_uses(tmp_path, tiny_source):
    """A bad optimiser setting does not stop `scripts/extract.py`: it does not train."""
    out = cli(
        str(ROOT / "scripts" / "extract.py"),
        "data=gtzan",
        f"data.root={tiny_source.root}",
        "optim.lr=-1",
        f"paths.outputs={tmp_path}",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "40 clips" in out.stdout


def test_importing_mgc_leaves_matplotlib_unconfigured():
    # (torchmetrics imports pyplot itself; choosing a backend is what would override a notebook's or GUI's)
    code = (
        "import mgc.module, mgc.callbacks, mgc.train, mgc.report, mgc.predict, matplotlib; "
        "assert matplotlib.rcParams._get_backend_or_none() is None, 'backend set'"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]


def test_run_names_carry_the_overrides_and_fit_a_file_system():
    assert run_name("train", "model=mlp,optim=adam") == "train_model=mlp,optim=adam"
    assert run_name("train", "") == "train"
    assert run_name("train", "data.root=/data/gtzan") == "train_data.root=_data_gtzan"  # no nested folders
    long = run_name("train", ",".join(f"model.p{i}=0.123456789" for i in range(40)))
    other = run_name("train", ",".join(f"model.p{i}=0.123456780" for i in range(40)))
    assert len(long) == MAX_NAME and long.startswith("train_model.p0=0.123456789") and long != other
