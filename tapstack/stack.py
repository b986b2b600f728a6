"""The public entry points: ``AppointmentReminders`` adds the system to a template;
``build_template`` makes the stand-alone stack that ``build.py`` writes."""

from __future__ import annotations

import json
import warnings
from typing import Any

from awacs.aws import Statement
from troposphere import Export, GetAtt, Output, Ref, Sub, Template, encode_to_dict
from troposphere.awslambda import Function
from troposphere.cloudwatch import Alarm
from troposphere.dynamodb import Table
from troposphere.events import Rule
from troposphere.iam import Policy, Role
from troposphere.kms import Key
from troposphere.pipes import Pipe
from troposphere.sns import Topic
from troposphere.sqs import Queue
from troposphere.stepfunctions import StateMachine

from tapstack import policies
from tapstack.alarms import add_alarm_topic, add_alarms, add_topic
from tapstack.functions import BuiltFunction, add_functions
from tapstack.props import ReminderProps
from tapstack.settings import add_parameters
from tapstack.storage import AppointmentsTableRef, add_appointments_table, add_key, add_reminders_table
from tapstack.triggers import add_triggers
from tapstack.workflow import add_workflow

DESCRIPTION = (
    "Appointment reminders: EventBridge schedule and Pipe -> Step Functions -> Lambda -> DynamoDB, SES and SNS"
)


class AppointmentReminders:
    """Adds one appointment-reminder system to ``template`` and exposes what it made.

    >>> template = Template()
    >>> reminders = AppointmentReminders(template, ReminderProps(prefix="Clinic"))
    >>> reminders.state_machine.title
    'ClinicNotificationWorkflow'
    """

    key: Key
    appointments: AppointmentsTableRef
    reminders_table: Table
    topic: Topic
    alarm_topic: Topic
    functions: dict[str, Function]
    state_machine: StateMachine
    rule: Rule
    pipe: Pipe
    dead_letter_queue: Queue
    alarms: list[Alarm]

    def __init__(self, template: Template, props: ReminderProps | None = None) -> None:
        props = props or ReminderProps()
        _claim_prefix(template, props.prefix)
        _claim_stream_reader(template, props)
        self.template = template
        self.props = props
        self.settings = settings = add_parameters(template, props)
        self.key = add_key(template, settings)
        self.appointments = add_appointments_table(template, settings, self.key)
        self.reminders_table = add_reminders_table(template, settings, self.key)
        self.topic = add_topic(template, settings, self.key, "NotificationTopic", "AppointmentNotifications")
        built = add_functions(template, settings, self.key, self.appointments, self.reminders_table, self.topic)
        self.built_functions: dict[str, BuiltFunction] = built
        self.functions = {name: b.function for name, b in built.items()}
        self.state_machine = add_workflow(template, settings, self.key, built)
        triggers = add_triggers(template, settings, self.key, self.appointments, self.state_machine)
        self.rule, self.pipe, self.dead_letter_queue = triggers.rule, triggers.pipe, triggers.dead_letter_queue
        self.alarm_topic = add_alarm_topic(template, settings, self.key)
        self.alarms = add_alarms(template, settings, self.alarm_topic, self.state_machine, self.dead_letter_queue)
        if props.outputs:
            self._add_outputs()

    @property
    def appointments_table(self) -> Table | None:
        """The created Appointments table; ``None`` when the props name an existing one."""
        return self.appointments.resource

    def appointments_writing_statements(self) -> list[Statement]:
        """What a booking app's role needs to put, update, delete and read back appointments: the
        item actions on the Appointments table and the key the table is encrypted with."""
        return policies.appointments_writing_statements(self.appointments.arn, self.appointments.key_arn)

    def grant_appointments_write(self, role: Role) -> Policy:
        """Add those grants to a role of the host template as an inline policy, and return it.

        >>> template = Template()
        >>> reminders = AppointmentReminders(template, ReminderProps(prefix="Clinic"))
        >>> booking_app = template.add_resource(Role("BookingAppRole", AssumeRolePolicyDocument={}))
        >>> reminders.grant_appointments_write(booking_app).PolicyName
        'ClinicAppointmentsWriting'
        """
        policy = policies.inline_policy(
            self.settings.logical_id("AppointmentsWriting"), self.appointments_writing_statements()
        )
        role.Policies = [*role.properties.get("Policies", []), policy]
        return policy

    def _add_outputs(self) -> None:
        """The handles a user needs, each exported as ``<stack name>-<prefix><name>``.

        README.md describes them; the template carries no descriptions, to keep its bytes
        (CloudFormation reads at most 51,200 from a file).
        """
        settings = self.settings
        values: dict[str, Any] = {
            "AppointmentsTableName": self.appointments.name,
            "AppointmentsTableArn": self.appointments.arn,
            "RemindersTableName": Ref(self.reminders_table),
            "NotificationTopicArn": Ref(self.topic),
            "AlarmTopicArn": Ref(self.alarm_topic),
            "NotificationWorkflowArn": Ref(self.state_machine),
            # The booking app's role needs the key its table is encrypted with (docs/deploy.md).
            "EncryptionKeyArn": GetAtt(self.key, "Arn"),
            **{
                f"{name}Arn": GetAtt(self.functions[name], "Arn")
                for name in ("AppointmentProcessorFunction", "EmailSenderFunction", "SmsSenderFunction")
            },
            # A host stack has its own name; only the stand-alone stack reports it.
            **({} if settings.props.prefix else {"StackName": Ref("AWS::StackName")}),
            "EnvironmentSuffix": settings["EnvironmentSuffix"],
        }
        for name, value in values.items():
            logical_id = settings.logical_id(name)
            self.template.add_output(
                Output(logical_id, Value=value, Export=Export(Sub("${AWS::StackName}-" + logical_id)))
            )


def _claim_prefix(template: Template, prefix: str) -> None:
    """Refuse a second system with the same prefix before troposphere meets a duplicate ID."""
    claimed = _prefixes(template)
    if prefix in claimed:
        raise ValueError(
            f"prefix: expected a prefix not yet used in this template (used: {sorted(claimed)!r}), got {prefix!r}"
        )
    claimed.add(prefix)


_PREFIXES_ATTRIBUTE = "_tapstack_prefixes"


def _prefixes(template: Template) -> set[str]:
    if not hasattr(template, _PREFIXES_ATTRIBUTE):
        setattr(template, _PREFIXES_ATTRIBUTE, set())
    prefixes: set[str] = getattr(template, _PREFIXES_ATTRIBUTE)
    return prefixes


#: "More than 2 processes are reading from the same streams shard at the same time. Exceeding this
#: limit may result in request throttling." (DynamoDB Streams, LimitExceededException:
#: https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_GetRecords.html).
#: Each system's pipe is one reader of its table's stream.
STREAM_READERS_PER_SHARD = 2


class StreamReadersWarning(UserWarning):
    """A table's stream has as many readers as DynamoDB Streams allows: no room for another."""


def _claim_stream_reader(template: Template, props: ReminderProps) -> None:
    """Refuse a system whose pipe would be a third reader of an existing table's stream; warn at two.

    Systems that create their own table each have their own stream. Only the host knows its own
    readers of the stream (a Lambda trigger, another pipe, global tables' replication), so two systems
    on one stream are allowed with a warning that they take every reader it has.
    """
    existing = props.existing_appointments_table
    if existing is None:
        return
    stream = json.dumps(encode_to_dict(existing.stream_arn), sort_keys=True)
    readers: dict[str, list[str]] = getattr(template, _STREAM_READERS_ATTRIBUTE, {})
    setattr(template, _STREAM_READERS_ATTRIBUTE, readers)
    systems = readers.setdefault(stream, [])
    if len(systems) >= STREAM_READERS_PER_SHARD:
        raise ValueError(
            f"existing_appointments_table: expected a stream with fewer than {STREAM_READERS_PER_SHARD} readers,"
            f" got one that the systems with prefixes {systems!r} already read: DynamoDB Streams throttles more"
            f" than {STREAM_READERS_PER_SHARD} readers of a shard"
        )
    systems.append(props.prefix)
    if len(systems) == STREAM_READERS_PER_SHARD:
        warnings.warn(
            f"the systems with prefixes {systems!r} are the {STREAM_READERS_PER_SHARD} readers DynamoDB Streams"
            " allows on one stream: the table's stream has no room left for a reader of the host's own",
            StreamReadersWarning,
            stacklevel=3,
        )


_STREAM_READERS_ATTRIBUTE = "_tapstack_stream_readers"


def build_template(props: ReminderProps | None = None) -> Template:
    """The stand-alone stack: one system, no prefix, every setting a parameter."""
    template = Template(Description=DESCRIPTION)
    template.set_version("2010-09-09")
    AppointmentReminders(template, props)
    return template
