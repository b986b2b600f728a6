"""asl-validator (the Amazon States Language validator) on the workflow's definition as deployed.

The definition is taken from a deployment of the generated template on the local runner, so its
``DefinitionSubstitutions`` carry the function and integration ARNs CloudFormation would resolve
(``arn:aws:lambda:us-east-1:123456789012:function:AppointmentProcessor-dev``), substituted the way
Step Functions substitutes them.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tapstack.local import LocalDeployment
from tapstack.local.resolve import substitute
from tests.support import SENDER
from tests.tools import NpmTools


@pytest.fixture(scope="module")
def deployed_definition(template_data: dict[str, Any]) -> dict[str, Any]:
    with LocalDeployment(template_data, {"SenderEmail": SENDER}, echo_logs=False) as deployment:
        properties = deployment.resources["NotificationWorkflow"].properties
    definition: dict[str, Any] = substitute(properties["Definition"], properties["DefinitionSubstitutions"])
    return definition


def validate(tools: NpmTools, definition: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "definition.json"
    path.write_text(json.dumps(definition), encoding="utf-8")
    return subprocess.run(
        [str(tools.asl_validator), "--json-path", str(path)], capture_output=True, text=True, check=False, timeout=120
    )


def test_definition_as_deployed_is_valid_amazon_states_language(
    npm_tools: NpmTools, deployed_definition: dict[str, Any], tmp_path: Path
) -> None:
    text = json.dumps(deployed_definition)
    assert "${" not in text, "every substitution is resolved"
    assert "arn:aws:lambda:us-east-1:123456789012:function:" in text
    result = validate(npm_tools, deployed_definition, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is valid" in result.stdout


def test_the_validator_refuses_a_broken_definition(
    npm_tools: NpmTools, deployed_definition: dict[str, Any], tmp_path: Path
) -> None:
    """The same definition with a transition to a state that does not exist: the check is live."""
    broken = json.loads(json.dumps(deployed_definition))
    broken["States"][broken["StartAt"]]["Next"] = "NoSuchState"
    result = validate(npm_tools, broken, tmp_path)
    assert result.returncode != 0
    assert "NoSuchState" in result.stdout + result.stderr
