"""AWS Control Tower's proactive controls, run with cfn-guard on the generated template.

An account under Control Tower may enforce these controls as CloudFormation hooks: a resource that
fails one is refused at deploy ("implemented as preCreate and preUpdate hook handlers":
https://docs.aws.amazon.com/controltower/latest/controlreference/proactive-controls.html). The rules
and the cfn-guard binary are those of the npm package ``@cdklabs/cdk-validator-cfnguard``
(tests/tools.py installs it). No control may fail but the documented exceptions, and every
exception must still be needed, so that a stale one fails too.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tapstack import ReminderProps, build_template
from tapstack.local import LocalDeployment, load_template
from tapstack.props import DEFAULT_PARAMETERS
from tapstack.render import to_yaml
from tests.support import SENDER
from tests.tools import NpmTools

ROOT = Path(__file__).resolve().parent.parent
GUARD_DOC = ROOT / "docs" / "guard.md"

FUNCTIONS = ("AppointmentProcessorFunction", "EmailSenderFunction", "SmsSenderFunction", "StatusUpdaterFunction")
LOG_GROUPS = ("ProcessorLogGroup", "EmailLogGroup", "SmsLogGroup", "StatusUpdaterLogGroup", "StepFunctionsLogGroup")


@dataclass(frozen=True)
class GuardException:
    """A control the template fails on purpose, on these resources, for this reason."""

    control: str
    resources: tuple[str, ...]
    reason: str


#: The controls the default template fails, and why (docs/guard.md lists them for the README).
CONTROL_TOWER_EXCEPTIONS = (
    GuardException(
        "CT.LAMBDA.PR.3",
        FUNCTIONS,
        "the functions call only AWS APIs (DynamoDB, SES, SNS) and reach nothing inside a network; a VPC "
        "would add a NAT gateway or interface endpoints at a fixed monthly cost and protect nothing more",
    ),
)

#: cfn-guard exits 19 when a rule fails; anything else but 0 is an error of its own.
GUARD_FAILED = 19
CONTROL_ID = re.compile(r"\[(CT\.[A-Z0-9]+\.PR\.\d+)\]")
RESOURCE_PATH = re.compile(r'"path": "/Resources/([^/"]+)')


@dataclass(frozen=True)
class GuardReport:
    #: (control ID, logical ID) of every resource a control refused.
    failures: frozenset[tuple[str, str]]
    #: Names of the rules that passed.
    passed: frozenset[str]


def run_guard(tools: NpmTools, data: Path, rules: Path | None = None) -> GuardReport:
    """cfn-guard's verdict on one template (or hook input document) against the Control Tower rules."""
    command = [
        str(tools.cfn_guard),
        "validate",
        "--rules",
        str(rules or tools.control_tower_rules),
        "--data",
        str(data),
        "--output-format",
        "json",
        "--show-summary",
        "none",
        "--structured",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    if result.returncode not in (0, GUARD_FAILED):
        raise AssertionError(f"cfn-guard failed to run (exit {result.returncode}): {result.stderr}")
    (report,) = json.loads(result.stdout)
    return GuardReport(
        failures=frozenset(_failures(report["not_compliant"])),
        passed=frozenset(rule for rule in report["compliant"]),
    )


def _failures(not_compliant: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    """Each failed rule's control ID (from its message) with the resources its failed checks name."""
    for failed in not_compliant:
        text = json.dumps(failed)
        controls = set(CONTROL_ID.findall(text))
        assert len(controls) == 1, f"expected one control ID in {failed['Rule']['name']}, found {controls}"
        (control,) = controls
        resources = set(RESOURCE_PATH.findall(text))
        # A hook input document names no resource: it holds exactly one.
        for resource in resources or {"<hook target>"}:
            yield control, resource


def expected_failures(exceptions: tuple[GuardException, ...]) -> set[tuple[str, str]]:
    return {(exception.control, resource) for exception in exceptions for resource in exception.resources}


@pytest.fixture(scope="module")
def template_report(npm_tools: NpmTools, template_text: str, tmp_path_factory: pytest.TempPathFactory) -> GuardReport:
    path = tmp_path_factory.mktemp("guard") / "TapStack.yml"
    path.write_text(template_text, encoding="utf-8")
    return run_guard(npm_tools, path)


def write_json(tmp_path: Path, name: str, document: Mapping[str, Any]) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def hook_input(resource_type: str, properties: Mapping[str, Any]) -> dict[str, Any]:
    """What a Control Tower hook evaluates: one resource's properties, as about to be provisioned."""
    return {resource_type: {"resourceProperties": properties}}


# ---- the template -----------------------------------------------------------------------------


def test_no_control_fails_but_the_documented_exceptions(template_report: GuardReport) -> None:
    unexpected = template_report.failures - expected_failures(CONTROL_TOWER_EXCEPTIONS)
    assert not unexpected, f"Control Tower controls refuse these resources: {sorted(unexpected)}"


def test_every_exception_is_still_needed(template_report: GuardReport) -> None:
    stale = expected_failures(CONTROL_TOWER_EXCEPTIONS) - template_report.failures
    assert not stale, f"these exceptions no longer fail: remove them here and in docs/guard.md: {sorted(stale)}"


def test_the_rules_looked_at_the_template(template_report: GuardReport) -> None:
    # The key, the tables, the queue, the log groups, the workflow: each has controls that pass.
    # (CT.SQS.PR.1 skips a queue marked as a dead-letter queue, so it neither passes nor fails.)
    for rule in (
        "kms_create_grant_aws_service_check",
        "sqs_queue_encrypted_check",
        "cloudwatch_log_group_encrypted_check",
        "step_functions_state_machine_logging_enabled_check",
        "dynamodb_table_pitr_enabled_check",
    ):
        assert rule in template_report.passed, f"{rule} did not pass (or did not run)"


def test_docs_list_every_exception_with_its_reason() -> None:
    text = " ".join(GUARD_DOC.read_text(encoding="utf-8").split())
    for exception in CONTROL_TOWER_EXCEPTIONS:
        assert f"`{exception.control}`" in text and exception.reason in text, (
            f"docs/guard.md must list {exception.control}: {exception.reason}"
        )


def test_docs_list_no_exception_that_the_template_no_longer_has() -> None:
    """The exceptions table names exactly the controls the template fails (no log-retention row
    since every log group keeps a year)."""
    text = GUARD_DOC.read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `(CT\.[A-Z0-9]+\.PR\.\d+)` \|", text, re.MULTILINE))
    assert listed == {exception.control for exception in CONTROL_TOWER_EXCEPTIONS}


# ---- the fixes, each against the rule it answers ----------------------------------------------


def test_short_form_getatt_would_hide_the_encryption_key_from_the_rules(
    npm_tools: NpmTools, template_data: dict[str, Any], tmp_path: Path
) -> None:
    """Why render.py writes !GetAtt [X, Arn]: the dotted form cfn-flip writes reaches cfn-guard as
    one string, and the log group's KmsKeyId no longer names a key of the template."""
    template = json.loads(json.dumps(template_data))
    properties = template["Resources"]["ProcessorLogGroup"]["Properties"]
    assert properties["KmsKeyId"] == {"Fn::GetAtt": ["EncryptionKey", "Arn"]}
    properties["KmsKeyId"] = {"Fn::GetAtt": "EncryptionKey.Arn"}
    report = run_guard(npm_tools, write_json(tmp_path, "dotted.json", template))
    assert ("CT.CLOUDWATCH.PR.3", "ProcessorLogGroup") in report.failures


def test_a_deny_all_redrive_policy_would_fail_the_dead_letter_control(
    npm_tools: NpmTools, template_data: dict[str, Any], tmp_path: Path
) -> None:
    """Why the dead-letter queue says allowAll: the rule counts only allowAll and byQueue as a
    dead-letter queue. If a new rule version accepts denyAll, this fails: then tighten the queue."""
    queue = template_data["Resources"]["PipeDeadLetterQueue"]["Properties"]
    assert queue["RedriveAllowPolicy"] == {"redrivePermission": "allowAll"}
    template = json.loads(json.dumps(template_data))
    template["Resources"]["PipeDeadLetterQueue"]["Properties"]["RedriveAllowPolicy"] = {"redrivePermission": "denyAll"}
    report = run_guard(npm_tools, write_json(tmp_path, "deny-all.json", template))
    assert ("CT.SQS.PR.1", "PipeDeadLetterQueue") in report.failures


def test_a_direct_grant_deny_missing_a_condition_would_not_satisfy_the_key_control(
    npm_tools: NpmTools, template_data: dict[str, Any], tmp_path: Path
) -> None:
    """The key's deny must exempt both services acting for a principal and service principals."""
    template = json.loads(json.dumps(template_data))
    statements = template["Resources"]["EncryptionKey"]["Properties"]["KeyPolicy"]["Statement"]
    (deny,) = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Condition"] == {
        "BoolIfExists": {"kms:GrantIsForAWSResource": "false", "aws:PrincipalIsAWSService": "false"}
    }
    del deny["Condition"]["BoolIfExists"]["aws:PrincipalIsAWSService"]
    report = run_guard(npm_tools, write_json(tmp_path, "key.json", template))
    assert ("CT.KMS.PR.3", "EncryptionKey") in report.failures


@pytest.mark.parametrize(("days", "passes"), [(30, False), (180, False), (365, True)])
def test_log_retention_decides_the_retention_control(
    npm_tools: NpmTools, tmp_path: Path, days: int, passes: bool
) -> None:
    """The hook sees each log group as CloudFormation is about to create it, a parameter resolved:
    with a retention of a year (the default) CT.CLOUDWATCH.PR.2 lets every log group through; a host
    stack that makes it a parameter and deploys less is refused."""
    props = ReminderProps(parameters=DEFAULT_PARAMETERS | {"LogRetentionDays"})
    template = load_template(to_yaml(build_template(props)))
    with LocalDeployment(template, {"SenderEmail": SENDER, "LogRetentionDays": str(days)}) as deployment:
        logs = deployment.client("logs")
        for logical_id in LOG_GROUPS:
            properties = deployment.resources[logical_id].properties
            (group,) = logs.describe_log_groups(logGroupNamePrefix=properties["LogGroupName"])["logGroups"]
            assert group["retentionInDays"] == days
            # A Number parameter reaches the resource as a number.
            document = hook_input("AWS::Logs::LogGroup", {**properties, "RetentionInDays": days})
            rules = npm_tools.control_tower_rules / "cloudwatch"
            report = run_guard(npm_tools, write_json(tmp_path, f"{logical_id}.json", document), rules)
            failed = any(control == "CT.CLOUDWATCH.PR.2" for control, _ in report.failures)
            assert failed is not passes, f"{logical_id} kept {days} days"
