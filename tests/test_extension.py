"""Adding a source, a feature or a model takes its module and its yaml: the contributor guide's examples,
written into a copy of the project, are found and run by the generic tests without editing a test."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, write_tone

from mgc.metrics import RunMetrics

pytestmark = pytest.mark.slow  # a copy of the project and three subprocesses

GUIDE = ROOT / "docs" / "contributing.md"
#: A fenced block of the guide whose first line names the file it is: ``# mgc/models/mean_mlp.py``.
BLOCK = re.compile(r"```(?:python|yaml)\n# ((?:mgc|conf)/[\w/.]+)\n(.*?)```", re.S)


def guide_files() -> dict[str, str]:
    """``{path: content}`` of every file the guide's worked examples define."""
    return {path: body for path, body in BLOCK.findall(GUIDE.read_text(encoding="utf-8"))}


def test_the_guide_defines_a_source_a_feature_and_a_model_in_two_files_each():
    files = guide_files()
    assert sorted(files) == [
        "conf/data/tsv.yaml",
        "conf/features/contrast.yaml",
        "conf/model/mean_mlp.yaml",
        "mgc/data/tsv.py",
        "mgc/features/contrast.py",
        "mgc/models/mean_mlp.py",
    ]
    for path in files:
        assert not (ROOT / path).exists(), f"{path} is the guide's example, not part of mgc"


@pytest.fixture(scope="module")
def extended(tmp_path_factory) -> Path:
    """A copy of mgc's code, configs and tests with the guide's six files added, nothing else changed."""
    copy = tmp_path_factory.mktemp("extended")
    for name in ("mgc", "conf", "tests"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("train.py", "pyproject.toml"):
        shutil.copy(ROOT / name, copy / name)
    for path, body in guide_files().items():
        (copy / path).write_text(body)
    return copy


def run_in(copy: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """A command with the copy's ``mgc`` first on the path (ahead of the installed checkout)."""
    env = {**os.environ, "PYTHONPATH": str(copy)}
    return subprocess.run([sys.executable, *args], cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)


def test_the_generic_tests_find_the_new_model_and_feature_without_an_edit(extended):
    """The generic tests' own ids for the new options: pytest fails on an id its parametrisation did not make.

    The model tests run (they need no data); the training matrix is collected, and the guide's own command
    below trains the three together."""
    shapes = ["mfcc-json", "mfcc-png", "mfcc-png-70", "chroma"]
    models = [f"tests/test_models.py::test_every_model_on_every_feature[mean_mlp-{s}]" for s in shapes]
    out = run_in(extended, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", *models)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert set(re.findall(r"^PASSED (\S+)", out.stdout, flags=re.M)) == set(models)
    trained = [f"tests/test_train.py::test_fast_dev_run_every_model_on_every_feature[{c}]" for c in
               ("linear-contrast", "mean_mlp-logmel", "mean_mlp-contrast")]  # fmt: skip
    out = run_in(extended, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only", *trained)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert all(t in out.stdout for t in trained)


def test_the_three_train_together_as_the_guide_shows(extended, tmp_path):
    (command,) = re.findall(r"```shell\n(python train\.py data=tsv .*)\n```", GUIDE.read_text(encoding="utf-8"))
    lines = []
    for label, freq in (("low", 220.0), ("high", 1760.0), ("mid", 660.0)):
        for i in range(4):
            write_tone(extended / "clips" / f"{label}{i}.wav", 6.0, freq=freq * (1 + i / 50))
            lines.append(f"{label}{i}.wav\t{label}")
    (extended / "clips" / "my_clips.tsv").write_text("\n".join(lines) + "\n")
    args = [*command.split()[1:], "+trainer.fast_dev_run=true", "logger=none", f"paths.outputs={tmp_path}"]
    args = [a.replace("data.listing=my_clips.tsv", "data.listing=clips/my_clips.tsv") for a in args]
    out = run_in(extended, *args)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    (metrics_file,) = tmp_path.glob("runs/*/*/metrics.json")
    metrics = RunMetrics.read(metrics_file)
    assert (metrics.data, metrics.choices["features"], metrics.choices["model"]) == ("tsv", "contrast", "mean_mlp")
    assert list(metrics.test.track.per_class) == ["high", "low", "mid"]  # the listing's labels, not GTZAN's
