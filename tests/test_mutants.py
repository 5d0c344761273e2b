"""scripts/mutants.py stays plantable: each fault still matches the code it targets and still parses."""

from __future__ import annotations

import ast
import importlib.util
import sys

import pytest
from helpers import ROOT

spec = importlib.util.spec_from_file_location("mutants", ROOT / "scripts" / "mutants.py")
mutants = sys.modules["mutants"] = importlib.util.module_from_spec(spec)  # dataclasses look it up there
spec.loader.exec_module(mutants)


@pytest.mark.parametrize("mutant", mutants.MUTANTS, ids=lambda m: m.name)
def test_every_mutant_plants_a_fault_that_still_parses(mutant):
    """A mutant whose text the code no longer holds stops `make mutants`; one that breaks the syntax proves nothing."""
    source = (ROOT / mutant.file).read_text()
    assert source.count(mutant.original) == 1, f"{mutant.file} no longer holds {mutant.original!r} exactly once"
    mutated = source.replace(mutant.original, mutant.mutated)
    assert mutated != source
    ast.parse(mutated)
    assert all((ROOT / t).exists() for t in mutant.tests)


def test_help_describes_the_script_and_runs_no_mutant(capsys):
    """`--help` is an option, not a name filter that would select no mutant."""
    with pytest.raises(SystemExit) as stop:
        mutants.main(["--help"])
    assert stop.value.code == 0
    assert "Hand-made mutation testing" in capsys.readouterr().out


def test_a_filter_that_selects_no_mutant_fails(capsys, monkeypatch):
    """A mistyped name must not pass as '0 of 0 mutants killed'."""
    monkeypatch.setattr(mutants, "run_mutant", lambda m: pytest.fail(f"ran {m.name}"))
    assert mutants.main(["no-such-mutant"]) == 2
    assert "'no-such-mutant'" in capsys.readouterr().out
