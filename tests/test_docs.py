"""The docs a newcomer reads: README stays a short guide, every relative link resolves, and every single-run
``python train.py`` command they show composes."""

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


def _commands(page: Path) -> list[str]:
    """The ``python train.py ...`` lines of a page's bash blocks that run one job (no ``-m``), comments cut."""
    commands, in_bash = [], False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_bash = line.strip() == "```bash"
            continue
        command = line.split(" #")[0].strip()
        if in_bash and command.startswith("python train.py") and " -m " not in f"{command} ":
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


@pytest.mark.parametrize(("page", "command"), COMMANDS)
def test_every_train_command_shown_composes(page, command):
    overrides = shlex.split(command)[2:]
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose("train", overrides=overrides)
    finally:
        GlobalHydra.instance().clear()
    assert cfg.model._target_ and cfg.features._target_
