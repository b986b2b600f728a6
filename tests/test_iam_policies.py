"""parliament (Duo Labs' IAM policy linter) on every policy document of the template.

The documents are taken from a deployment of the generated template on the local runner, so every
intrinsic is resolved to the value CloudFormation would give it (``arn:aws:dynamodb:us-east-1:
123456789012:table/Reminders-dev``, a real stream ARN, the key's ARN): parliament checks actions
against resource ARN formats and condition keys, which it cannot do on ``Fn::Sub``. No finding may
remain but the documented ones, and each documented one must still occur.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import parliament
import pytest

from tapstack.local import LocalDeployment
from tests.support import SENDER

ROOT = Path(__file__).resolve().parent.parent
GUARD_DOC = ROOT / "docs" / "guard.md"

#: Properties that hold a policy document, whatever the resource type (roles' inline policies and
#: trust policies, key policies, and queue, topic or managed policies should the template get any).
POLICY_PROPERTIES = ("PolicyDocument", "KeyPolicy", "AssumeRolePolicyDocument")


@dataclass(frozen=True)
class ParliamentException:
    """A finding the template keeps on purpose: in the documents matching ``documents`` (a glob)."""

    documents: str
    issue: str
    reason: str


PARLIAMENT_EXCEPTIONS = (
    ParliamentException(
        "*/AssumeRolePolicyDocument",
        "MALFORMED",
        "a role's trust policy is the role's own resource-based policy and names no Resource; "
        "parliament 1.6.4 wants one in every statement",
    ),
    ParliamentException(
        "EncryptionKey/KeyPolicy",
        "RESOURCE_STAR",
        'in a key policy, Resource "*" means the key itself',
    ),
    ParliamentException(
        "EncryptionKey/KeyPolicy",
        "PERMISSIONS_MANAGEMENT_ACTIONS",
        "KMS's default statement: the account (root) may use the key as its IAM policies allow; "
        "without it only the key policy could ever grant anything",
    ),
    ParliamentException(
        "EncryptionKey/KeyPolicy",
        "MISMATCHED_TYPE",
        "ArnLike on kms:EncryptionContext:aws:logs:arn is how AWS's CloudWatch Logs documentation "
        "and its managed policy CloudWatchLogsAPIKeyAccess limit the key to the account's log groups",
    ),
    ParliamentException(
        "SmsSenderRole/Policies/SmsSender/PolicyDocument",
        "RESOURCE_STAR",
        "SMS to a phone number has no ARN: SNS authorises sns:Publish to a phone number only on "
        '"*"; a condition keeps it to the region and a Deny keeps it off every topic',
    ),
    ParliamentException(
        "StepFunctionsExecutionRole/Policies/NotificationWorkflow/PolicyDocument",
        "PERMISSIONS_MANAGEMENT_ACTIONS",
        "logs:PutResourcePolicy is one of the log-delivery actions CloudWatch Logs requires of a "
        'service that delivers logs for you (Step Functions here), authorised only on "*"',
    ),
    ParliamentException(
        "PipeRole/Policies/AppointmentStreamPipe/PolicyDocument",
        "RESOURCE_MISMATCH",
        "a stream ARN ends in the stream's label, an ISO 8601 timestamp with colons "
        "(table/Appointments-dev/stream/2026-03-02T09:15:00.000), which parliament 1.6.4 "
        "cannot match to DynamoDB's stream ARN format",
    ),
)


def policy_documents(name: str, value: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every policy document inside ``value``, named by its path (inline policies by PolicyName)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in POLICY_PROPERTIES:
                yield f"{name}/{key}", item
            else:
                yield from policy_documents(f"{name}/{key}", item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            label = item.get("PolicyName", index) if isinstance(item, dict) else index
            yield from policy_documents(f"{name}/{label}", item)


@pytest.fixture(scope="module")
def documents(template_data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    with LocalDeployment(template_data, {"SenderEmail": SENDER}, echo_logs=False) as deployment:
        found: dict[str, dict[str, Any]] = {}
        for logical_id, deployed in deployment.resources.items():
            found.update(policy_documents(logical_id, deployed.properties))
    return found


def findings(document: dict[str, Any]) -> set[str]:
    policy = parliament.analyze_policy_string(json.dumps(document), include_community_auditors=True)
    return {finding.issue for finding in policy.findings}


@pytest.fixture(scope="module")
def all_findings(documents: dict[str, dict[str, Any]]) -> set[tuple[str, str]]:
    return {(name, issue) for name, document in documents.items() for issue in findings(document)}


def excused(name: str, issue: str) -> bool:
    return any(fnmatchcase(name, e.documents) and issue == e.issue for e in PARLIAMENT_EXCEPTIONS)


def test_every_policy_document_is_checked(template_data: dict[str, Any], documents: dict[str, Any]) -> None:
    roles = [lid for lid, r in template_data["Resources"].items() if r["Type"] == "AWS::IAM::Role"]
    for role in roles:
        assert f"{role}/AssumeRolePolicyDocument" in documents
        inline = template_data["Resources"][role]["Properties"]["Policies"]
        assert {f"{role}/Policies/{p['PolicyName']}/PolicyDocument" for p in inline} <= set(documents)
    assert "EncryptionKey/KeyPolicy" in documents
    assert "${" not in json.dumps(documents) and "Fn::" not in json.dumps(documents), "all resolved"


def test_no_finding_but_the_documented_ones(all_findings: set[tuple[str, str]]) -> None:
    unexpected = sorted((name, issue) for name, issue in all_findings if not excused(name, issue))
    assert not unexpected, f"parliament finds: {unexpected}"


@pytest.mark.parametrize("exception", PARLIAMENT_EXCEPTIONS, ids=lambda e: f"{e.documents}:{e.issue}")
def test_every_exception_is_still_needed(all_findings: set[tuple[str, str]], exception: ParliamentException) -> None:
    assert any(fnmatchcase(name, exception.documents) and issue == exception.issue for name, issue in all_findings), (
        f"{exception.issue} no longer occurs in {exception.documents}: remove it here and in docs/guard.md"
    )


def test_parliament_sees_a_real_mistake() -> None:
    """The linter is live: an action on a resource of the wrong type is a finding."""
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["dynamodb:UpdateItem"],
                "Resource": ["arn:aws:sqs:us-east-1:123456789012:AppointmentStreamDeadLetters-dev"],
            }
        ],
    }
    assert "RESOURCE_MISMATCH" in findings(document)


def test_a_stream_label_without_colons_would_pass() -> None:
    """Why the pipe's RESOURCE_MISMATCH is parliament's, not ours: the colons of the label."""

    def reading(label: str) -> dict[str, Any]:
        stream = f"arn:aws:dynamodb:us-east-1:123456789012:table/Appointments-dev/stream/{label}"
        statement = {"Effect": "Allow", "Action": ["dynamodb:GetRecords"], "Resource": [stream]}
        return {"Version": "2012-10-17", "Statement": [statement]}

    assert "RESOURCE_MISMATCH" in findings(reading("2026-03-02T09:15:00.000"))
    assert "RESOURCE_MISMATCH" not in findings(reading("20260302T091500"))


def test_docs_list_every_exception_with_its_reason() -> None:
    text = " ".join(GUARD_DOC.read_text(encoding="utf-8").split())
    for exception in PARLIAMENT_EXCEPTIONS:
        assert f"`{exception.issue}`" in text and exception.reason in text, (
            f"docs/guard.md must list {exception.issue} on {exception.documents}: {exception.reason}"
        )
