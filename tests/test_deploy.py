"""A first deploy that can fail and be retried; what a deleted stack keeps, and the way back.

The local runner cannot roll a stack back, so the deletion policies are tested as the template states
them; what the recovery path does with the kept resources runs on moto.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest
from cfnlint.api import ManualArgs, lint
from troposphere import GetAtt, Ref, Template
from troposphere.dynamodb import AttributeDefinition, KeySchema, StreamSpecification, Table

from tapstack import AppointmentReminders, ExistingAppointmentsTable, ReminderProps, StreamReadersWarning
from tapstack.local import LocalDeployment, load_template
from tapstack.recovery import import_template, kept_resources, main, resources_to_import
from tapstack.render import to_yaml
from tests.support import SENDER

ROOT = Path(__file__).resolve().parent.parent
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
KEPT = {"EncryptionKey", "AppointmentsTable", "RemindersTable"}
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def doc_commands() -> str:
    """The shell commands of docs/deploy.md, each continued line joined."""
    blocks = re.findall(r"```sh\n(.+?)```", DEPLOY_DOC.read_text(encoding="utf-8"), re.DOTALL)
    return "\n".join(blocks).replace("\\\n", " ")


# ---- what the template keeps, and when -----------------------------------------------------------


def test_only_the_key_and_the_tables_are_kept(template_data: dict[str, Any]) -> None:
    assert set(kept_resources(template_data)) == KEPT


@pytest.mark.parametrize("logical_id", sorted(KEPT))
def test_a_failed_first_create_deletes_what_it_made_and_nothing_else_is_lost(
    template_data: dict[str, Any], logical_id: str
) -> None:
    """RetainExceptOnCreate: deleted only by the rollback of the create that made it; kept on a stack
    delete. A replacement keeps the old resource (UpdateReplacePolicy has no such value)."""
    resource = template_data["Resources"][logical_id]
    assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("RetainExceptOnCreate", "Retain")


def test_nothing_in_the_template_is_retained_by_a_failed_create(template_data: dict[str, Any]) -> None:
    """A plain Retain left behind by a rolled-back create makes the retry fail with "already exists"."""
    policies = {r.get("DeletionPolicy") for r in template_data["Resources"].values()}
    assert "Retain" not in policies and policies <= {"RetainExceptOnCreate", "Delete", None}


def test_a_host_stacks_systems_keep_the_same_way() -> None:
    template = build_host(prefixes=("Clinic",))
    kept = kept_resources(template)
    # The system reads the host's table, which the host keeps as it chooses (Retain here).
    assert set(kept) == {"BookingsTable", "ClinicEncryptionKey", "ClinicRemindersTable"}
    assert {kept[r]["DeletionPolicy"] for r in ("ClinicEncryptionKey", "ClinicRemindersTable")} == {
        "RetainExceptOnCreate"
    }


def test_deletion_protection_is_off_until_the_deployer_turns_it_on(template_data: dict[str, Any]) -> None:
    """On during the first create, it would refuse the rollback's DeleteTable (next test)."""
    assert template_data["Parameters"]["DeletionProtection"]["Default"] == "false"
    assert ReminderProps().deletion_protection is False
    for logical_id in ("AppointmentsTable", "RemindersTable"):
        properties = template_data["Resources"][logical_id]["Properties"]
        assert properties["DeletionProtectionEnabled"] == {"Ref": "DeletionProtection"}
    assert "DeletionProtection=true" in doc_commands()


def test_a_protected_table_refuses_the_delete_a_rollback_needs_and_the_doc_lifts_it(template_text: str) -> None:
    """The tables as the template makes them with DeletionProtection=true: DynamoDB refuses DeleteTable
    (as it would refuse CloudFormation's rollback), and docs/deploy.md's commands delete them."""
    commands = doc_commands()
    with LocalDeployment(template_text, {"SenderEmail": SENDER, "DeletionProtection": "true"}) as stack:
        dynamodb = stack.client("dynamodb")
        for table in ("Appointments-dev", "Reminders-dev"):
            with pytest.raises(botocore.exceptions.ClientError):
                dynamodb.delete_table(TableName=table)
            assert f"aws dynamodb update-table --table-name {table} --no-deletion-protection-enabled" in commands
            dynamodb.update_table(TableName=table, DeletionProtectionEnabled=False)
            assert f"aws dynamodb delete-table --table-name {table}" in commands
            dynamodb.delete_table(TableName=table)
        assert dynamodb.list_tables()["TableNames"] == []


# ---- the way back: an import of what a deleted stack kept ----------------------------------------


def test_the_import_template_holds_the_kept_resources_and_only_the_parameters_they_use(
    template_data: dict[str, Any],
) -> None:
    imported = import_template(template_data)
    assert set(imported["Resources"]) == KEPT
    for logical_id, resource in imported["Resources"].items():
        assert resource == template_data["Resources"][logical_id], "described exactly as the stack describes it"
        assert resource["DeletionPolicy"], "an import needs a DeletionPolicy on each resource"
    # SenderEmail has no default: an import template that declared it would ask for it.
    assert set(imported["Parameters"]) == {"EnvironmentSuffix", "DeletionProtection"}
    assert "Outputs" not in imported


def test_the_import_template_is_lint_clean(template_data: dict[str, Any]) -> None:
    text = json.dumps(import_template(template_data))
    assert [str(m) for m in lint(text, config=ManualArgs(regions=["us-east-1"], include_checks=["I"]))] == []


def test_the_import_template_stands_on_its_own(template_data: dict[str, Any]) -> None:
    """Every reference resolves inside it: deployed alone, it makes the tables with the key."""
    with LocalDeployment(import_template(template_data), {"EnvironmentSuffix": "prod"}) as stack:
        tables = stack.client("dynamodb").list_tables()["TableNames"]
        assert sorted(tables) == ["Appointments-prod", "Reminders-prod"]
        key = stack.resources["EncryptionKey"].attributes["Arn"]
        described = stack.client("dynamodb").describe_table(TableName="Reminders-prod")["Table"]
        assert described["SSEDescription"]["KMSMasterKeyArn"] == key


def test_the_recovery_command_writes_what_the_doc_passes_to_cloudformation(tmp_path: Path) -> None:
    assert main(["--key-id", KEY_ARN, "--environment-suffix", "prod", "--out", str(tmp_path)]) == 0
    resources = json.loads((tmp_path / "resources.json").read_text(encoding="utf-8"))
    assert resources == [
        {
            "ResourceType": "AWS::KMS::Key",
            "LogicalResourceId": "EncryptionKey",
            "ResourceIdentifier": {"KeyId": "1234abcd-12ab-34cd-56ef-1234567890ab"},  # an import names the key ID
        },
        {
            "ResourceType": "AWS::DynamoDB::Table",
            "LogicalResourceId": "AppointmentsTable",
            "ResourceIdentifier": {"TableName": "Appointments-prod"},
        },
        {
            "ResourceType": "AWS::DynamoDB::Table",
            "LogicalResourceId": "RemindersTable",
            "ResourceIdentifier": {"TableName": "Reminders-prod"},
        },
    ]
    assert set(json.loads((tmp_path / "template.json").read_text(encoding="utf-8"))["Resources"]) == KEPT
    commands = doc_commands()
    assert "python -m tapstack.recovery --key-id" in commands
    for part in (
        "--change-set-type IMPORT",
        "--template-body file://import/template.json",
        "--resources-to-import file://import/resources.json",
        "aws cloudformation wait stack-import-complete",
    ):
        assert part in commands


def test_an_import_needs_every_kept_resources_identifier(template_data: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"^identifiers: expected a value for each kept resource, missing"):
        resources_to_import(template_data, {"EncryptionKey": "k"})


def test_a_host_stacks_import_names_its_own_kept_resources() -> None:
    template = build_host(prefixes=("Clinic",))
    imported = import_template(template)
    # Whatever the host stack's delete kept, the host's own table included.
    assert set(imported["Resources"]) == {"BookingsTable", "ClinicEncryptionKey", "ClinicRemindersTable"}
    assert set(imported["Parameters"]) == {"ClinicEnvironmentSuffix", "ClinicDeletionProtection"}


# ---- the pipe and its role -----------------------------------------------------------------------


def test_the_pipe_is_created_after_its_roles_permissions(template_data: dict[str, Any]) -> None:
    """No DependsOn is needed: the pipe names its role with GetAtt, so CloudFormation creates the role
    first, and the role's permissions are inline, part of the role resource, not an AWS::IAM::Policy
    that CloudFormation could create after the pipe (a ref or GetAtt orders creation:
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-dependson.html)."""
    resources = template_data["Resources"]
    pipe = resources["AppointmentStreamPipe"]
    role = pipe["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    granted = {
        a
        for p in resources[role]["Properties"]["Policies"]
        for s in p["PolicyDocument"]["Statement"]
        for a in s["Action"]
    }
    assert {"dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:DescribeStream"} <= granted
    assert not [r for r in resources.values() if r["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")]


# ---- readers of one stream -----------------------------------------------------------------------


def build_host(prefixes: tuple[str, ...]) -> dict[str, Any]:
    """A host template with its own streamed table and a system on it for each prefix."""
    template = Template()
    bookings = template.add_resource(
        Table(
            "BookingsTable",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[AttributeDefinition(AttributeName="appointmentId", AttributeType="S")],
            KeySchema=[KeySchema(AttributeName="appointmentId", KeyType="HASH")],
            StreamSpecification=StreamSpecification(StreamViewType="KEYS_ONLY"),
            DeletionPolicy="Retain",
            UpdateReplacePolicy="Retain",
        )
    )
    for prefix in prefixes:
        existing = ExistingAppointmentsTable(name=Ref(bookings), stream_arn=GetAtt(bookings, "StreamArn"))
        props = ReminderProps(prefix=prefix, existing_appointments_table=existing, sender_email=SENDER)
        AppointmentReminders(template, props)
    return load_template(to_yaml(template))


@pytest.fixture
def no_warnings() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


@pytest.mark.usefixtures("no_warnings")
def test_one_system_on_a_hosts_stream_leaves_a_reader_for_the_host() -> None:
    build_host(prefixes=("Clinic",))


def test_two_systems_on_one_stream_are_warned_that_they_take_both_readers() -> None:
    with pytest.warns(StreamReadersWarning, match=r"\['Patient', 'Lab'\] are the 2 readers"):
        build_host(prefixes=("Patient", "Lab"))


def test_a_third_system_on_one_stream_is_refused() -> None:
    with (
        pytest.warns(StreamReadersWarning),
        pytest.raises(ValueError, match=r"^existing_appointments_table: expected a stream with fewer than 2 readers"),
    ):
        build_host(prefixes=("Patient", "Lab", "Billing"))


@pytest.mark.usefixtures("no_warnings")
def test_systems_on_different_streams_do_not_count_against_each_other() -> None:
    template = Template()
    for prefix, table in (("Patient", "Patients"), ("Lab", "Labs"), ("Billing", "Bills")):
        stream = f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/2026-03-02T09:15:00.000"
        existing = ExistingAppointmentsTable(name=table, stream_arn=stream)
        AppointmentReminders(
            template, ReminderProps(prefix=prefix, existing_appointments_table=existing, sender_email=SENDER)
        )
    # And the systems that create their own tables each read their own stream.
    for prefix in ("A", "B", "C"):
        AppointmentReminders(template, ReminderProps(prefix=prefix, sender_email=SENDER))
