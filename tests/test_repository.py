"""The repository keeps its promises to a newcomer: the README's commands are the ones CI runs."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```sh\n(.+?)\n```", readme)[:2]


def test_readme_starts_with_the_two_commands() -> None:
    build, test = readme_commands()
    assert build == "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/python build.py"
    assert test == 'python3 -m venv .venv && .venv/bin/pip install -e ".[test]" && .venv/bin/python -m pytest'


def test_ci_runs_the_readmes_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    _, test = readme_commands()
    install, run = test.rsplit(" && ", 1)
    assert ci.rstrip().endswith(run), "CI ends with the README's test command"
    assert "python3 -m venv .venv" in install and "python3 -m venv .venv" in ci
    assert '".[test]"' in install and '".[test,dev]"' in ci, "CI installs what the README installs, and more"
    assert ".venv/bin/python build.py --check" in ci


def test_every_bug_of_the_mutation_benchmark_can_still_be_planted(monkeypatch: pytest.MonkeyPatch) -> None:
    """benchmarks/mutations.py plants each bug by replacing a text that must occur exactly once in
    its file: code that moved on without it would leave bugs that can no longer be planted."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("mutations", ROOT / "benchmarks" / "mutations.py")
    assert spec and spec.loader
    mutations = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, mutations)  # its dataclasses look their module up
    spec.loader.exec_module(mutations)
    unplantable = [
        (planted.name, original[:60])
        for planted in mutations.BUGS
        for original, _ in planted.edits
        if (ROOT / planted.file).read_text(encoding="utf-8").count(original) != 1
    ]
    assert unplantable == []
