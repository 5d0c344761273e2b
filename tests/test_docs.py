"""The docs a newcomer reads: README stays a short guide, every relative link resolves, and every command they
show that runs train.py's config (``python train.py``, sweeps by their first job, ``make cv|train|journal ARGS=``,
the scripts) composes."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from helpers import ROOT
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from mgc.cli import CONF_DIR

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


#: Commands whose words after these prefixes are train.py overrides (make cv adds its own split=kfold).
OVERRIDE_PREFIXES = {
    "python train.py": [],
    "make train": [],
    "make journal": [],
    "make cv": ["split=kfold"],
    "python scripts/generalisation.py": [],
    "python scripts/extract.py": [],
}


def _overrides(command: str) -> list[str] | None:
    """The train.py overrides a docs command runs, a sweep cut to its first value; None for other commands.

    ``-m`` sweeps (``a,b,c``, ``range(...)``) compose as their first job would; ``hydra.*`` settings
    configure Hydra, not the job, and ``--seeds`` is generalisation.py's own option.
    """
    for prefix, extra in OVERRIDE_PREFIXES.items():
        if command == prefix or command.startswith(prefix + " "):
            words = shlex.split(command[len(prefix) :])
            if prefix.startswith("make"):
                words = shlex.split(next((w[5:] for w in words if w.startswith("ARGS=")), ""))
            words = [w for w in words if w != "-m" and not w.startswith(("hydra.", "--seeds")) and not w.isdigit()]
            if any(w.startswith("<") for w in words):
                return None  # a placeholder such as <configuration>
            return extra + [_first_job(w) for w in words]
    return None


def _first_job(override: str) -> str:
    """``key=a,b,c`` -> ``key=a``; ``key=range(x,y,z)`` -> ``key=x``."""
    key, _, value = override.partition("=")
    if value.startswith("range("):
        return f"{key}={value[6:].split(',')[0].rstrip(')')}"
    if "," in value and not value.startswith("["):
        return f"{key}={value.split(',')[0]}"
    return override


def _commands(page: Path) -> list[str]:
    """The commands of a page's bash blocks that run train.py's config (see :func:`_overrides`), comments cut;
    lines continued with a backslash are joined."""
    commands, in_bash, pending = [], False, ""
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_bash = line.strip() == "```bash"
            continue
        if not in_bash:
            continue
        command = pending + line.split(" #")[0].strip()
        if command.endswith("\\"):
            pending = command[:-1]
            continue
        pending = ""
        if _overrides(command) is not None:
            commands.append(command)
    return commands


COMMANDS = [(page.name, command) for page in PAGES for command in _commands(page)]


def test_the_readme_is_a_short_guide_that_indexes_every_docs_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    for page in PAGES[1:]:
        assert f"](docs/{page.name})" in readme, f"README's index has no link to docs/{page.name}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page):
    text = page.read_text(encoding="utf-8")
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # http:, mailto:
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page.name} links to {target}, which does not exist"
        if anchor and resolved.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", resolved.read_text(encoding="utf-8"), flags=re.M)
            slugs = {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}
            assert anchor in slugs, f"{page.name} links to {target}: no such heading"


def test_the_pages_show_commands():
    assert len(COMMANDS) >= 15


@pytest.fixture(scope="module")
def hydra_conf():
    """conf/ initialised once for every command of the module."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        yield
    GlobalHydra.instance().clear()


@pytest.mark.parametrize(("page", "command"), COMMANDS)
def test_every_train_command_shown_composes(hydra_conf, page, command):
    cfg = compose("train", overrides=_overrides(command))
    assert cfg.model._target_ and cfg.features._target_
