"""The booking app gets in: with only what docs/deploy.md lists, its role can put, update, delete and
read back appointments, key included; and the library grants exactly that to a host's role.

The booking app's calls run on the local deployment through a client recorded under the app's role
(``LocalDeployment.principal_client``); each becomes the IAM requests AWS makes of that role, as in
tests/test_least_privilege.py. A table encrypted with a customer managed key adds the key: DynamoDB
uses it on the caller's behalf (``kms:Decrypt``; ``kms:GenerateDataKey`` to write), through DynamoDB
(``kms:ViaService``): https://docs.aws.amazon.com/kms/latest/developerguide/services-dynamodb.html.
moto checks neither IAM nor KMS for DynamoDB, so the evaluation is tests/iam.py's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from awacs.helpers.trust import make_simple_assume_policy
from troposphere import GetAtt, ImportValue, Ref, Template
from troposphere.iam import Role

from tapstack import AppointmentReminders, ExistingAppointmentsTable, ReminderProps
from tapstack.local import LocalDeployment, load_template
from tapstack.render import to_yaml
from tests import iam
from tests.assertions import granted, statements
from tests.support import DAY, SENDER, appointment
from tests.test_least_privilege import call_requests

ROOT = Path(__file__).resolve().parent.parent
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
BOOKING_APP = "BookingAppRole"
WRITES = {"PutItem", "UpdateItem", "DeleteItem"}
HOST_KEY = "arn:aws:kms:us-east-1:123456789012:key/0fb2c7a5-8d5e-4a31-9d26-2f8a1f2e6b11"


def documented_policy() -> dict[str, Any]:
    """The JSON policy docs/deploy.md gives for the booking app's role, placeholders and all."""
    text = DEPLOY_DOC.read_text(encoding="utf-8")
    (block,) = re.findall(r"<!-- appointments-writing-policy.*?-->\n```json\n(.+?)```", text, re.DOTALL)
    document: dict[str, Any] = json.loads(block)
    return document


def filled_in(document: dict[str, Any], stack: LocalDeployment) -> list[dict[str, Any]]:
    """The documented statements with the deployed stack's outputs and region in the placeholders."""
    values = {
        "<AppointmentsTableArn>": stack.resources["AppointmentsTable"].attributes["Arn"],
        "<EncryptionKeyArn>": stack.resources["EncryptionKey"].attributes["Arn"],
        "<region>": stack.region,
    }
    text = json.dumps(document["Statement"])
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    assert "<" not in text, f"a placeholder the test does not know: {text}"
    found: list[dict[str, Any]] = json.loads(text)
    return found


def with_booking_app(props: ReminderProps | None = None) -> str:
    """The stand-alone system and, beside it, the booking app's role with the library's grant."""
    template = Template()
    template.set_version("2010-09-09")
    reminders = AppointmentReminders(template, props or ReminderProps(sender_email=SENDER))
    role = template.add_resource(
        Role(BOOKING_APP, AssumeRolePolicyDocument=make_simple_assume_policy("lambda.amazonaws.com"))
    )
    reminders.grant_appointments_write(role)
    return to_yaml(template)


@pytest.fixture(scope="module")
def host_text() -> str:
    return with_booking_app()


@pytest.fixture
def stack(host_text: str) -> Iterator[LocalDeployment]:
    with LocalDeployment(host_text) as deployment:
        yield deployment


def book_change_cancel_and_delete(stack: LocalDeployment) -> None:
    """What a booking app does, through a client recorded as its role's."""
    dynamodb = stack.principal_client(BOOKING_APP, "dynamodb")
    table = stack.table_name("AppointmentsTable")
    item = appointment("app-1", DAY)
    dynamodb.put_item(
        TableName=table,
        Item={
            "appointmentId": {"S": item["appointmentId"]},
            "appointmentTime": {"N": str(item["appointmentTime"])},
            "customerEmail": {"S": item["customerEmail"]},
        },
        ConditionExpression="attribute_not_exists(appointmentId)",
    )
    dynamodb.update_item(
        TableName=table,
        Key={"appointmentId": {"S": "app-1"}},
        UpdateExpression="SET appointmentTime = :t",
        ExpressionAttributeValues={":t": {"N": str(item["appointmentTime"] + 3600)}},
    )
    dynamodb.update_item(
        TableName=table,
        Key={"appointmentId": {"S": "app-1"}},
        UpdateExpression="SET #s = :c",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":c": {"S": "CANCELLED"}},
    )
    assert dynamodb.get_item(TableName=table, Key={"appointmentId": {"S": "app-1"}}, ConsistentRead=True)["Item"]
    dynamodb.delete_item(TableName=table, Key={"appointmentId": {"S": "app-1"}})
    assert "Item" not in dynamodb.get_item(TableName=table, Key={"appointmentId": {"S": "app-1"}})


def booking_app_requests(stack: LocalDeployment) -> list[iam.Request]:
    """Every IAM request the booking app's calls made: the table action, and the key that DynamoDB
    uses for it (Decrypt for every item call on the encrypted table, GenerateDataKey for a write)."""
    key = stack.resources["EncryptionKey"].attributes["Arn"]
    through_dynamodb = {"kms:ViaService": f"dynamodb.{stack.region}.amazonaws.com", "aws:RequestedRegion": stack.region}
    requests = []
    for call in (c for c in stack.monitor.calls if c.function == BOOKING_APP):
        for action, (resource,) in call_requests(stack, call):
            requests.append(iam.Request(action, resource, {"aws:RequestedRegion": stack.region}))
        requests.append(iam.Request("kms:Decrypt", key, through_dynamodb))
        if call.operation in WRITES:
            requests.append(iam.Request("kms:GenerateDataKey", key, through_dynamodb))
    return requests


# ---- the output and the documented grants --------------------------------------------------------


def test_the_key_is_an_output_exported_like_the_others(template_data: dict[str, Any]) -> None:
    output = template_data["Outputs"]["EncryptionKeyArn"]
    assert output["Value"] == {"Fn::GetAtt": ["EncryptionKey", "Arn"]}
    assert output["Export"] == {"Name": {"Fn::Sub": "${AWS::StackName}-EncryptionKeyArn"}}


def test_the_library_grants_exactly_what_the_doc_lists(stack: LocalDeployment) -> None:
    role = stack.template["Resources"][BOOKING_APP]
    (policy,) = role["Properties"]["Policies"]
    assert policy["PolicyName"] == "AppointmentsWriting"
    assert stack.resolver.resolve(policy["PolicyDocument"]["Statement"]) == filled_in(documented_policy(), stack)


def test_a_role_with_only_the_documented_grants_puts_updates_and_deletes_appointments(stack: LocalDeployment) -> None:
    book_change_cancel_and_delete(stack)
    requests = booking_app_requests(stack)
    assert {r.action for r in requests} == {
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "kms:Decrypt",
        "kms:GenerateDataKey",
    }
    documented = filled_in(documented_policy(), stack)
    denied = [r for r in requests if iam.evaluate(documented, r) != iam.ALLOW]
    assert not denied, denied


def test_without_the_key_the_first_put_is_denied(stack: LocalDeployment) -> None:
    """The fault the grant prevents: a role with the table alone cannot write an encrypted table."""
    book_change_cancel_and_delete(stack)
    table_only = [s for s in filled_in(documented_policy(), stack) if not s["Action"][0].startswith("kms:")]
    first_put = booking_app_requests(stack)[:3]
    assert [(r.action, iam.evaluate(table_only, r)) for r in first_put] == [
        ("dynamodb:PutItem", iam.ALLOW),
        ("kms:Decrypt", iam.IMPLICIT_DENY),
        ("kms:GenerateDataKey", iam.IMPLICIT_DENY),
    ]


@pytest.mark.parametrize(
    ("action", "resource", "via"),
    [
        ("dynamodb:Scan", "table/Appointments-dev", "dynamodb"),  # reads everyone's appointments
        ("dynamodb:PutItem", "table/Reminders-dev", "dynamodb"),  # the system's own records
        ("dynamodb:DeleteTable", "table/Appointments-dev", "dynamodb"),
        ("kms:Decrypt", "key", None),  # the key used directly, not by DynamoDB
        ("kms:Decrypt", "key", "sqs"),  # nor through another service
        ("kms:Decrypt", "another key", "dynamodb"),
        ("kms:CreateGrant", "key", "dynamodb"),
    ],
)
def test_the_documented_grants_allow_nothing_more(
    stack: LocalDeployment, action: str, resource: str, via: str | None
) -> None:
    arns = {
        "key": stack.resources["EncryptionKey"].attributes["Arn"],
        "another key": HOST_KEY,
        "table/Appointments-dev": stack.resources["AppointmentsTable"].attributes["Arn"],
        "table/Reminders-dev": stack.resources["RemindersTable"].attributes["Arn"],
    }
    context = {"aws:RequestedRegion": stack.region}
    if via:
        context["kms:ViaService"] = f"{via}.{stack.region}.amazonaws.com"
    request = iam.Request(action, arns[resource], context)
    assert iam.evaluate(filled_in(documented_policy(), stack), request) == iam.IMPLICIT_DENY


def test_a_host_role_gets_the_grant_under_the_systems_prefix() -> None:
    template = Template()
    reminders = AppointmentReminders(template, ReminderProps(prefix="Clinic"))
    role = template.add_resource(Role("FrontDesk", AssumeRolePolicyDocument={}, Policies=[]))
    policy = reminders.grant_appointments_write(role)
    assert policy.PolicyName == "ClinicAppointmentsWriting"
    grants = granted(template.to_dict()["Resources"]["FrontDesk"])
    assert grants["dynamodb:PutItem"] == [{"Fn::GetAtt": ["ClinicAppointmentsTable", "Arn"]}]
    assert grants["kms:Decrypt"] == [{"Fn::GetAtt": ["ClinicEncryptionKey", "Arn"]}]


# ---- a host table encrypted with its own key -----------------------------------------------------


def existing_table(kms_key_arn: Any = None) -> dict[str, Any]:
    template = Template()
    existing = ExistingAppointmentsTable(
        name="clinic-bookings",
        stream_arn="arn:aws:dynamodb:us-east-1:123456789012:table/clinic-bookings/stream/2026-03-02T09:15:00.000",
        kms_key_arn=kms_key_arn,
    )
    reminders = AppointmentReminders(
        template, ReminderProps(prefix="Clinic", existing_appointments_table=existing, sender_email=SENDER)
    )
    role = template.add_resource(
        Role("FrontDesk", AssumeRolePolicyDocument=make_simple_assume_policy("lambda.amazonaws.com"))
    )
    reminders.grant_appointments_write(role)
    return load_template(to_yaml(template))


def key_grants(template: dict[str, Any], role: str, key: Any) -> set[str]:
    return {
        action
        for statement in statements(template["Resources"][role])
        if statement["Effect"] == "Allow" and key in statement["Resource"]
        for action in statement["Action"]
    }


@pytest.mark.parametrize("key", [HOST_KEY, ImportValue("bookings-TableKeyArn")])
def test_the_processor_and_the_pipe_read_a_table_encrypted_with_the_hosts_key(key: Any) -> None:
    template = existing_table(kms_key_arn=key)
    key_value = key if isinstance(key, str) else json.loads(json.dumps(key.to_dict()))
    # The processor reads the table (BatchGetItem), the pipe its stream: both decrypt with the table's key.
    assert key_grants(template, "ClinicAppointmentProcessorRole", key_value) == {"kms:Decrypt"}
    assert key_grants(template, "ClinicPipeRole", key_value) == {"kms:Decrypt"}
    # Nobody else reads the host's table.
    for role in ("ClinicEmailSenderRole", "ClinicSmsSenderRole", "ClinicStatusUpdaterRole"):
        assert key_grants(template, role, key_value) == set()
    # The booking app writes it with that key; the stack's own key is not the table's.
    assert key_grants(template, "FrontDesk", key_value) == {"kms:Decrypt", "kms:GenerateDataKey"}
    assert key_grants(template, "FrontDesk", {"Fn::GetAtt": ["ClinicEncryptionKey", "Arn"]}) == set()


def test_a_host_table_without_a_key_of_its_own_needs_no_key_grant() -> None:
    """Encrypted with an AWS owned or AWS managed key, whose use IAM policies do not grant."""
    template = existing_table()
    assert key_grants(template, "ClinicPipeRole", HOST_KEY) == set()
    front_desk = granted(template["Resources"]["FrontDesk"])
    assert not [a for a in front_desk if a.startswith("kms:")]
    assert front_desk["dynamodb:PutItem"] == [
        {
            "Fn::Sub": [
                "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${Name}",
                {"Name": "clinic-bookings"},
            ]
        }
    ]


@pytest.mark.parametrize(
    "key",
    ["alias/bookings", "arn:aws:kms:us-east-1:123456789012:alias/bookings", "1234abcd-12ab-34cd-56ef-1234567890ab"],
)
def test_a_key_is_named_by_its_arn(key: str) -> None:
    """IAM grants a key by its key ARN; an alias or a bare ID in a policy would grant nothing."""
    with pytest.raises(ValueError, match=r"^existing_appointments_table\.kms_key_arn: expected a KMS key ARN"):
        ExistingAppointmentsTable(name="clinic-bookings", stream_arn=GetAtt("T", "StreamArn"), kms_key_arn=key)


def test_a_key_given_as_the_hosts_own_expression_is_accepted() -> None:
    existing = ExistingAppointmentsTable(Ref("Bookings"), GetAtt("Bookings", "StreamArn"), GetAtt("BookingsKey", "Arn"))
    assert existing.kms_key_arn is not None
