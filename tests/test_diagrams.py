"""The Mermaid diagrams are generated from the template and show all of it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tapstack.diagrams import resources_diagram, workflow_diagram
from tapstack.local import load_template
from tests.assertions import walk_states

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def template(template_text: str) -> dict[str, Any]:
    return load_template(template_text)


def test_the_workflow_diagram_names_every_state_branch_retry_and_catch(template: dict[str, Any]) -> None:
    definition = template["Resources"]["NotificationWorkflow"]["Properties"]["Definition"]
    diagram = workflow_diagram(definition)
    states = walk_states(definition["States"])
    for name, state in states:
        assert re.search(rf"^\s*{name}[\[{{(\"]", diagram, re.M) or f"subgraph {name}[" in diagram, name
        for catch in state.get("Catch", []):
            assert f'{name} -.->|"catch {", ".join(catch["ErrorEquals"])}"| {catch["Next"]}' in diagram
        if state.get("Retry"):
            assert re.search(rf"{name}\[\"{name}<br/>retry ", diagram), name
    assert diagram.count("subgraph ") == sum(1 for _, s in states if s["Type"] in ("Map", "Parallel"))


def test_the_resources_diagram_shows_the_wiring(template: dict[str, Any]) -> None:
    diagram = resources_diagram(template)
    for edge in [
        "app -->|writes| AppointmentsTable",
        "AppointmentsTable -->|stream| AppointmentStreamPipe",
        "AppointmentStreamPipe -->|starts| NotificationWorkflow",
        "ScheduledNotificationRule -->|starts on schedule| NotificationWorkflow",
        "NotificationWorkflow -->|InvokeFunction| EmailSenderFunction",
        "EmailSenderFunction -->|SendEmail| SES",
        "SmsSenderFunction -->|Publish| SMS",
        "StatusUpdaterFunction -->|Publish| NotificationTopic",
        "AppointmentProcessorFunction -->|Query, UpdateItem| RemindersTable",
        "alarms[5 CloudWatch alarms] -->|notify| AlarmTopic",
    ]:
        assert edge in diagram


def test_readme_embeds_the_generated_diagrams() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    docs = (ROOT / "docs" / "workflow.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```mermaid\n.*?```", docs, re.S)
    assert len(blocks) == 2 and all(block in readme for block in blocks)
