"""tapstack as a library: props validated up front, systems that compose, the example host stack."""

from __future__ import annotations

import importlib.util
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint
from troposphere import GetAtt, Template

import tapstack
from tapstack import AppointmentReminders, ExistingAppointmentsTable, ReminderProps, build_template
from tapstack.render import to_yaml
from tests.assertions import granted, resources

ROOT = Path(__file__).resolve().parent.parent


def load_example() -> Any:
    spec = importlib.util.spec_from_file_location("host_stack", ROOT / "examples" / "host_stack.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def host() -> dict[str, Any]:
    return json.loads(json.dumps(load_example().build().to_dict()))


# ---- props ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "field", "accepted"),
    [
        ({"reminder_offsets_minutes": ()}, "reminder_offsets_minutes", "non-empty"),
        ({"reminder_offsets_minutes": (60, 60)}, "reminder_offsets_minutes", "distinct minutes"),
        ({"reminder_offsets_minutes": (0,)}, "reminder_offsets_minutes", "between 1 and 99999"),
        ({"reminder_offsets_minutes": ("60",)}, "reminder_offsets_minutes", "whole minutes"),
        ({"sender_email": ""}, "sender_email", "an email address"),
        ({"sender_email": None, "parameters": frozenset()}, "sender_email", "cannot be left empty"),
        ({"prefix": "clinic"}, "prefix", "PascalCase"),
        ({"prefix": "Clinic-1"}, "prefix", "PascalCase"),
        ({"parameters": frozenset({"Nope"})}, "parameters", "names from EnvironmentSuffix"),
        ({"environment_suffix": "dev-1"}, "environment_suffix", "letters and digits"),
        ({"schedule_expression": "every 5 minutes"}, "schedule_expression", "rate(5 minutes)"),
        ({"alarm_email": "ops"}, "alarm_email", "an email address or empty"),
        ({"log_retention_days": 10}, "log_retention_days", "one of"),
        ({"claim_batch_size": 0}, "claim_batch_size", "from 1 to 150"),
        ({"max_concurrency": 100}, "max_concurrency", "from 1 to 40"),
        ({"reserved_concurrency": 0}, "reserved_concurrency", "from 1 to 1000"),
        ({"reminder_retention_days": True}, "reminder_retention_days", "whole number"),
    ],
)
def test_bad_settings_are_refused_naming_the_field_and_the_accepted_form(
    settings: dict[str, Any], field: str, accepted: str
) -> None:
    with pytest.raises(ValueError, match=f"^{field}: expected .*{re.escape(accepted)}"):
        ReminderProps(**settings)


def test_existing_table_values_are_checked() -> None:
    with pytest.raises(ValueError, match=r"existing_appointments_table\.name: expected a DynamoDB table name"):
        ExistingAppointmentsTable(name="no spaces allowed", stream_arn=GetAtt("T", "StreamArn"))
    with pytest.raises(ValueError, match=r"existing_appointments_table\.stream_arn: expected a DynamoDB stream ARN"):
        ExistingAppointmentsTable(name="Bookings", stream_arn="bookings-stream")


def test_props_are_frozen_and_hashable() -> None:
    props = ReminderProps(reminder_offsets_minutes=[1440, 60], parameters={"SenderEmail"})  # type: ignore[arg-type]
    assert props.reminder_offsets_minutes == (1440, 60) and props.parameters == frozenset({"SenderEmail"})
    assert hash(props)
    with pytest.raises(AttributeError):
        props.prefix = "Other"  # type: ignore[misc]


def test_a_prefix_is_used_once_per_template() -> None:
    template = Template()
    AppointmentReminders(template, ReminderProps(prefix="Clinic"))
    with pytest.raises(ValueError, match=r"^prefix: expected a prefix not yet used in this template"):
        AppointmentReminders(template, ReminderProps(prefix="Clinic"))


def test_public_api() -> None:
    assert set(tapstack.__all__) >= {
        "AppointmentReminders",
        "ReminderProps",
        "ExistingAppointmentsTable",
        "build_template",
        "__version__",
    }
    assert tapstack.__version__.count(".") == 2
    assert (ROOT / "tapstack" / "py.typed").is_file()


def test_the_construct_exposes_what_it_made() -> None:
    template = Template()
    system = AppointmentReminders(template, ReminderProps(prefix="Clinic"))
    assert system.appointments_table is not None and system.appointments_table.title == "ClinicAppointmentsTable"
    assert system.reminders_table.title == "ClinicRemindersTable"
    assert system.state_machine.title == "ClinicNotificationWorkflow"
    assert system.topic.title == "ClinicNotificationTopic"
    assert sorted(f.title for f in system.functions.values()) == [
        "ClinicAppointmentProcessorFunction",
        "ClinicEmailSenderFunction",
        "ClinicSmsSenderFunction",
        "ClinicStatusUpdaterFunction",
    ]
    assert system.pipe.title == "ClinicAppointmentStreamPipe" and system.rule.title == "ClinicScheduledNotificationRule"


def test_baked_in_settings_make_no_parameters() -> None:
    template = build_template(
        ReminderProps(
            parameters=frozenset(),
            sender_email="r@example.com",
            reminder_offsets_minutes=(1440, 60),
            deletion_protection=False,
            log_retention_days=365,
        )
    )
    data = template.to_dict()
    assert "Parameters" not in data
    assert data["Resources"]["ProcessorLogGroup"]["Properties"]["RetentionInDays"] == 365
    processor = data["Resources"]["AppointmentProcessorFunction"]["Properties"]
    assert processor["Environment"]["Variables"]["REMINDER_OFFSETS_MINUTES"] == "1440,60"
    assert data["Resources"]["RemindersTable"]["Properties"]["DeletionProtectionEnabled"] is False
    assert data["Resources"]["AppointmentsTable"]["Properties"]["TableName"] == "Appointments-dev"
    assert "AlarmEmailSubscription" not in data["Resources"]
    matches = lint(to_yaml(template), config=ManualArgs(regions=["us-east-1"], include_checks=["I"]))
    assert [str(m) for m in matches] == []


# ---- the example host stack -----------------------------------------------------------------


def test_example_host_stack_is_lint_clean() -> None:
    text = to_yaml(load_example().build())
    assert [str(m) for m in lint(text, config=ManualArgs(regions=["us-east-1"], include_checks=["I"]))] == []


def test_two_systems_share_nothing_by_name(host: dict[str, Any]) -> None:
    names = Counter()
    for resource in host["Resources"].values():
        for key, value in resource.get("Properties", {}).items():
            if key.endswith("Name") and key not in ("MetricName", "DisplayName") and isinstance(value, str):
                names[value] += 1
    assert names and max(names.values()) == 1, [n for n, c in names.items() if c > 1]
    assert {"PatientNotificationWorkflow", "LabNotificationWorkflow"} <= set(host["Resources"])
    workflows = [
        r["Properties"]["StateMachineName"] for r in resources(host, "AWS::StepFunctions::StateMachine").values()
    ]
    assert sorted(workflows) == ["LabNotificationWorkflow-prod", "PatientNotificationWorkflow-prod"]


def test_existing_table_is_read_not_created(host: dict[str, Any]) -> None:
    assert not [k for k in host["Resources"] if k.endswith("AppointmentsTable")]
    pipe = host["Resources"]["PatientAppointmentStreamPipe"]["Properties"]
    assert pipe["Source"] == {"Fn::GetAtt": ["BookingsTable", "StreamArn"]}
    processor = granted(host["Resources"]["PatientAppointmentProcessorRole"])
    assert processor["dynamodb:BatchGetItem"] == [
        {
            "Fn::Sub": [
                "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${Name}",
                {"Name": {"Ref": "BookingsTable"}},
            ]
        }
    ]
    assert "dynamodb:PutItem" not in processor and "dynamodb:UpdateItem" in processor  # on its own table only
    assert processor["dynamodb:UpdateItem"] == [{"Fn::GetAtt": ["PatientRemindersTable", "Arn"]}]


def test_outputs_only_under_the_prefix_and_only_when_asked(host: dict[str, Any]) -> None:
    outputs = host["Outputs"]
    assert not [name for name in outputs if name.startswith("Lab")]
    exports = [o["Export"]["Name"]["Fn::Sub"] for o in outputs.values() if "Export" in o]
    assert exports and all(e.startswith("${AWS::StackName}-Patient") for e in exports)
    assert len(exports) == len(set(exports))
    assert "StackName" not in outputs and "PatientStackName" not in outputs
    assert list(host["Parameters"]) == ["PatientScheduleExpression"]


def test_host_wires_to_what_the_system_exposes(host: dict[str, Any]) -> None:
    subscription = host["Resources"]["DeliveryEventsSubscription"]["Properties"]
    assert subscription["TopicArn"] == {"Ref": "PatientNotificationTopic"}
    assert host["Outputs"]["PatientRemindersTable"]["Value"] == {"Ref": "PatientRemindersTable"}


def test_two_systems_in_one_template_stay_apart_in_intrinsic_references(host: dict[str, Any]) -> None:
    lab = json.dumps({k: v for k, v in host["Resources"].items() if k.startswith("Lab")})
    assert '"Patient' not in lab


def test_an_embedded_system_reminds_from_the_hosts_existing_table(clock: Any) -> None:
    from troposphere import Ref
    from troposphere.dynamodb import AttributeDefinition, KeySchema, StreamSpecification, Table

    from tapstack.local import LocalDeployment
    from tests.support import DAY, HOUR, appointment, sent_emails, sent_sms

    template = Template()
    bookings = template.add_resource(
        Table(
            "BookingsTable",
            TableName="clinic-bookings",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[AttributeDefinition(AttributeName="appointmentId", AttributeType="S")],
            KeySchema=[KeySchema(AttributeName="appointmentId", KeyType="HASH")],
            StreamSpecification=StreamSpecification(StreamViewType="NEW_AND_OLD_IMAGES"),
        )
    )
    AppointmentReminders(
        template,
        ReminderProps(
            prefix="Clinic",
            sender_email="reminders@example.com",
            parameters=frozenset(),
            existing_appointments_table=ExistingAppointmentsTable(Ref(bookings), GetAtt(bookings, "StreamArn")),
        ),
    )
    with LocalDeployment(to_yaml(template)) as stack:
        assert stack.table_name("BookingsTable") == "clinic-bookings"
        from boto3.dynamodb.types import TypeSerializer

        item = appointment("b1", DAY - HOUR)
        stack.client("dynamodb").put_item(
            TableName="clinic-bookings", Item={k: TypeSerializer().serialize(v) for k, v in item.items()}
        )
        stack.run_pipe()
        executions = stack.wait()
        assert {e["status"] for e in executions} == {"SUCCEEDED"}
        assert [e["to"] for e in sent_emails(stack)] == [["b1@example.com"]] and len(sent_sms(stack)) == 1
        assert stack.item("ClinicRemindersTable", {"reminderId": "b1#1440"})["state"] == "SENT"
