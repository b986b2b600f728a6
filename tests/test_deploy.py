"""A first deploy that can fail and be retried; what a deleted stack keeps, and the way back.

The local runner cannot roll a stack back, so the deletion policies are tested as the template states
them; what the recovery path does with the kept resources runs on moto.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest
from cfnlint.api import ManualArgs, lint
from troposphere import GetAtt, Ref, Template
from troposphere.dynamodb import AttributeDefinition, KeySchema, StreamSpecification, Table

from tapstack import AppointmentReminders, ExistingAppointmentsTable, ReminderProps
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


# ---- a host stack ---------------------------------------------------------------------------------


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
