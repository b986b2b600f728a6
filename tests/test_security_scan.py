"""checkov, the infrastructure-as-code scanner, on the generated template: no failed check."""

from __future__ import annotations

from pathlib import Path

import pytest
from checkov.cloudformation.runner import Runner
from checkov.common.output.report import Report
from checkov.runner_filter import RunnerFilter

from tapstack.functions import CHECKOV_SKIPS

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, template_text: str) -> Report:
    path = tmp_path_factory.mktemp("scan") / "TapStack.yml"
    path.write_text(template_text, encoding="utf-8")
    return Runner().run(root_folder=None, files=[str(path)], runner_filter=RunnerFilter(framework=["cloudformation"]))


def test_no_failed_checks(report: Report) -> None:
    failed = [f"{c.check_id} {c.resource}: {c.check_name}" for c in report.failed_checks]
    assert failed == []
    assert len(report.passed_checks) > 50, "the scanner looked at the template"


def test_every_suppression_is_a_known_one(report: Report) -> None:
    """Each suppressed check is one of CHECKOV_SKIPS, whose reasons README.md gives (the template
    names the checks only)."""
    assert report.skipped_checks
    for check in report.skipped_checks:
        assert check.check_id in CHECKOV_SKIPS, f"{check.check_id} on {check.resource} is not a documented skip"


def test_readme_lists_every_suppression_with_its_reason() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for check, reason in CHECKOV_SKIPS.items():
        assert f"`{check}`" in readme and reason in readme, f"README.md must list {check}: {reason}"
