"""``python build.py`` and ``python -m tapstack build``: write, check, formats, clear errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tapstack.__main__ import main as tapstack_main
from tapstack.cli import main as build_main
from tapstack.diagrams import README_END, README_START
from tapstack.local import load_template

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory with the committed outputs, as the current directory."""
    for name in ("lib/TapStack.yml", "docs/workflow.md", "README.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_check_passes_on_the_committed_files(checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert build_main(["--check"]) == 0
    assert "lib/TapStack.yml is up to date" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["lib/TapStack.yml", "docs/workflow.md", "README.md"])
def test_check_fails_and_shows_the_difference_when_a_file_is_stale(
    checkout: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    path = checkout / name
    text = path.read_text()
    stale = (
        text.replace("NotificationWorkflow", "OldWorkflow", 1)
        if name != "README.md"
        else text.replace(README_END, "stale line\n" + README_END)
    )
    path.write_text(stale)
    assert build_main(["--check"]) == 1
    err = capsys.readouterr().err
    assert f"{name} is stale: run python build.py and commit it" in err
    assert "(fresh build)" in err and err.count("\n-") + err.count("\n+") >= 2


def test_build_writes_the_template_and_the_diagrams(checkout: Path) -> None:
    (checkout / "docs" / "workflow.md").unlink()
    readme = checkout / "README.md"
    head, _ = readme.read_text().split(README_START)
    readme.write_text(head + README_START + "\n" + README_END + "\n")
    assert build_main([]) == 0
    assert (checkout / "docs" / "workflow.md").read_text() == (ROOT / "docs" / "workflow.md").read_text()
    assert "```mermaid" in readme.read_text()
    assert build_main(["--check"]) == 0


def test_output_and_json_format(tmp_path: Path) -> None:
    target = tmp_path / "stack.json"
    assert build_main(["--output", str(target), "--format", "json"]) == 0
    as_json = json.loads(target.read_text())
    assert as_json == load_template((ROOT / "lib" / "TapStack.yml").read_text())
    assert not (tmp_path / "docs").exists(), "diagrams are written only with the default output"


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("directory", "is a directory; give a file path"),
        ("missing/parent/stack.yml", "does not exist"),
    ],
)
def test_a_bad_output_path_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str, message: str
) -> None:
    target = tmp_path / where
    if where == "directory":
        target.mkdir()
    assert build_main(["--output", str(target)]) == 2
    assert message in capsys.readouterr().err


def test_python_m_tapstack_build_is_the_same_command(tmp_path: Path) -> None:
    target = tmp_path / "stack.yml"
    assert tapstack_main(["build", "--output", str(target)]) == 0
    assert target.read_text() == (ROOT / "lib" / "TapStack.yml").read_text()


def test_build_py_runs_as_a_script() -> None:
    result = subprocess.run([sys.executable, "build.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# ---- the template's byte budget -------------------------------------------------------------


def test_the_build_reports_size_headroom_and_the_largest_parts(
    checkout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert build_main([]) == 0
    out = capsys.readouterr().out
    size = (checkout / "lib/TapStack.yml").stat().st_size
    assert f"lib/TapStack.yml: {size:,} of 51,200 bytes, {51200 - size:,} of headroom" in out
    assert "AppointmentProcessorFunction" in out and "NotificationWorkflow" in out


def test_the_budget_counts_every_byte_once_and_shows_what_a_change_cost() -> None:
    from tapstack.budget import Budget

    before = Budget.of("Parameters:\n  A: x\nResources:\n  Small:\n    Type: X\n  Big:\n    Type: Y\n")
    after = Budget.of("Parameters:\n  A: x\nResources:\n  Small:\n    Type: X\n  Big:\n    Type: Y\n    More: z\n")

    assert sum(after.parts.values()) == after.size
    assert after.parts["Big"] == before.parts["Big"] + len("    More: z\n")
    report = after.report("t.yml", before)
    assert report[0] == f"t.yml: {after.size:,} of 51,200 bytes (+12), {51200 - after.size:,} of headroom"
    assert report[1].split() == ["31", "Big", "(+12)"]


def test_a_template_over_the_limit_is_not_written(
    checkout: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import tapstack.cli

    committed = (checkout / "lib/TapStack.yml").read_text(encoding="utf-8")
    monkeypatch.setattr(tapstack.cli, "render", lambda fmt="yaml": committed + "#" * 51200)

    assert build_main([]) == 1
    assert "over the 51,200" in capsys.readouterr().err
    assert (checkout / "lib/TapStack.yml").read_text(encoding="utf-8") == committed
