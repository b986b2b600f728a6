"""The four Lambda functions, each with its own log group and its own least-privilege role."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import awacs.dynamodb as dynamodb
import awacs.kms as kms
from awacs.aws import Statement
from awacs.helpers.trust import make_simple_assume_policy
from troposphere import FindInMap, GetAtt, Ref, Sub, Template
from troposphere.awslambda import Code, Environment, Function, LoggingConfig
from troposphere.iam import Role
from troposphere.kms import Key
from troposphere.logs import LogGroup
from troposphere.sns import Topic

from tapstack import policies
from tapstack.messages import checked_environment, email_sender_environment, processor_environment
from tapstack.settings import Settings
from tapstack.sources import HANDLER_MODULES, handler_parts
from tapstack.storage import DUE_INDEX, DUE_INDEX_SHARDS, AppointmentsTableRef
from tapstack.timing import CLAIM_LEASE_SECONDS, DELIVERY_TIMEOUT_SECONDS, PROCESSOR_TIMEOUT_SECONDS

#: A function's memory when MemorySize is left out ("Default: 128",
#: https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-lambda-function.html):
#: the template writes only another size.
LAMBDA_DEFAULT_MEMORY_MB = 128

#: The newest Python runtime cfn-lint knows and does not mark deprecated.
RUNTIME = "python3.14"


#: checkov checks that do not fit these functions, each with its reason. The template names the
#: checks only (a reason written in each of the four functions' Metadata costs about 600 bytes of
#: the template's 51,200): README.md's "Security scan suppressions" gives the reasons.
CHECKOV_SKIPS = {
    "CKV_AWS_115": "optional: may fail a deploy in a low-limit account",
    "CKV_AWS_116": "synchronous: Step Functions retries",
    "CKV_AWS_117": "AWS APIs only: no VPC to reach",
}


def checkov_skips(reserved_concurrency: int | None) -> list[dict[str, str]]:
    skipped = [k for k in CHECKOV_SKIPS if not (k == "CKV_AWS_115" and reserved_concurrency is not None)]
    return [{"id": check} for check in skipped]


#: The mapping that holds the handlers' code, each module once (its top-level key is the language):
#: a module that several functions use is written once. CloudFormation has no YAML aliases;
#: ``Fn::FindInMap`` is how a template repeats a value.
CODE_MAPPING = "HandlerModules"
CODE_KEY = "Python"


def inline_code(template: Template, module: str) -> Any:
    """The function's ``Code.ZipFile``: its ``index.py``, the modules it runs joined in order, a
    blank line between them (``${common}``, ``${channelMarks}``, ``${sendEmail}``), each held in the
    template's mappings; two systems in one template share them."""
    parts = {_mapping_key(part.module): part.code for part in handler_parts(module)}
    template.mappings.setdefault(CODE_MAPPING, {}).setdefault(CODE_KEY, {}).update(parts)
    text = "\n".join(f"${{{key}}}" for key in parts)
    return Sub(text, **{key: FindInMap(CODE_MAPPING, CODE_KEY, key) for key in parts})


def _mapping_key(module: str) -> str:
    """``channel_marks`` → ``channelMarks``: mapping keys are letters and digits only."""
    first, *rest = module.split("_")
    return first + "".join(word.capitalize() for word in rest)


def metrics_namespace(settings: Settings) -> Any:
    """The CloudWatch namespace of the metrics the handlers emit (one per system and environment)."""
    return settings.physical_name("TapStack")


@dataclass
class FunctionSpec:
    logical_id: str  # also the key into HANDLER_MODULES
    name: str  # physical name stem and log group name stem
    log_group_id: str
    role_id: str
    timeout: int
    memory: int
    statements: list[Statement]
    environment: dict[str, Any] = field(default_factory=dict)


@dataclass
class BuiltFunction:
    function: Function
    role: Role
    log_group: LogGroup
    timeout: int


def add_log_group(template: Template, settings: Settings, logical_id: str, name: Any, key: Key) -> LogGroup:
    return template.add_resource(
        LogGroup(
            settings.logical_id(logical_id),
            LogGroupName=name,
            RetentionInDays=settings["LogRetentionDays"],
            KmsKeyId=GetAtt(key, "Arn"),
            # Operational history only (no customer data): it goes with the stack. Delete is
            # CloudFormation's default, written all the same: cfn-lint's I3011 asks it of a stateful
            # resource.
            DeletionPolicy="Delete",
            UpdateReplacePolicy="Delete",
        )
    )


def _add_function(template: Template, settings: Settings, key: Key, spec: FunctionSpec) -> BuiltFunction:
    props = settings.props
    physical = settings.physical_name(spec.name)
    log_group = add_log_group(
        template, settings, spec.log_group_id, settings.physical_name(spec.name, "/aws/lambda/{}"), key
    )
    role = template.add_resource(
        Role(
            settings.logical_id(spec.role_id),
            AssumeRolePolicyDocument=make_simple_assume_policy("lambda.amazonaws.com"),
            Policies=[
                policies.inline_policy(
                    spec.name,
                    policies.log_writing_statements(log_group)
                    + spec.statements
                    # Lambda decrypts the function's environment, and DynamoDB and SNS use the
                    # key, with the function's role.
                    + policies.key_statements(GetAtt(key, "Arn"), [kms.Decrypt, kms.GenerateDataKey]),
                )
            ],
        )
    )
    optional: dict[str, Any] = {"Metadata": {"checkov": {"skip": checkov_skips(props.reserved_concurrency)}}}
    if props.reserved_concurrency is not None:
        optional["ReservedConcurrentExecutions"] = props.reserved_concurrency
    if spec.memory != LAMBDA_DEFAULT_MEMORY_MB:
        optional["MemorySize"] = spec.memory
    function = template.add_resource(
        Function(
            settings.logical_id(spec.logical_id),
            FunctionName=physical,
            Runtime=RUNTIME,
            Architectures=["arm64"],
            Handler="index.handler",
            Role=GetAtt(role, "Arn"),
            Timeout=spec.timeout,
            Code=Code(ZipFile=inline_code(template, HANDLER_MODULES[spec.logical_id])),
            Environment=Environment(
                Variables=checked_environment(template, settings.logical_id(spec.logical_id), spec.environment)
            ),
            KmsKeyArn=GetAtt(key, "Arn"),
            # No active tracing: without the X-Ray SDK (handlers import boto3 only), a function's
            # trace holds only Lambda's own Initialization, Invocation and Overhead
            # (https://docs.aws.amazon.com/lambda/latest/dg/services-xray.html). The workflow's trace
            # times each task; each REPORT log line gives the init duration.
            LoggingConfig=LoggingConfig(LogGroup=Ref(log_group)),
            **optional,
        )
    )
    return BuiltFunction(function=function, role=role, log_group=log_group, timeout=spec.timeout)


def add_functions(
    template: Template,
    settings: Settings,
    key: Key,
    appointments: AppointmentsTableRef,
    reminders: Any,
    topic: Topic,
) -> dict[str, BuiltFunction]:
    """Add the processor, the two senders and the status updater; keyed by unprefixed logical ID."""
    reminders_arn = GetAtt(reminders, "Arn")
    record_channel = policies.table_statements(reminders_arn, [dynamodb.UpdateItem])
    specs = [
        FunctionSpec(
            logical_id="AppointmentProcessorFunction",
            name="AppointmentProcessor",
            log_group_id="ProcessorLogGroup",
            role_id="AppointmentProcessorRole",
            timeout=PROCESSOR_TIMEOUT_SECONDS,
            memory=256,  # claims and renders a whole batch
            statements=[
                *policies.table_statements(appointments.arn, [dynamodb.BatchGetItem]),
                *appointments.foreign_key_statements(),
                *policies.index_query_statements(reminders_arn, DUE_INDEX),
                *record_channel,
            ],
            environment={
                "APPOINTMENTS_TABLE": appointments.name,
                "REMINDERS_TABLE": Ref(reminders),
                "DUE_INDEX": DUE_INDEX,
                "DUE_INDEX_SHARDS": str(DUE_INDEX_SHARDS),
                "REMINDER_OFFSETS_MINUTES": settings["ReminderOffsetsMinutes"],
                "CLAIM_BATCH_SIZE": str(settings.props.claim_batch_size),
                "CLAIM_LEASE_SECONDS": str(CLAIM_LEASE_SECONDS),
                "METRICS_NAMESPACE": metrics_namespace(settings),
                "RETENTION_DAYS": settings["ReminderRetentionDays"],
                **processor_environment(settings),
            },
        ),
        FunctionSpec(
            logical_id="EmailSenderFunction",
            name="EmailSender",
            log_group_id="EmailLogGroup",
            role_id="EmailSenderRole",
            timeout=DELIVERY_TIMEOUT_SECONDS,
            memory=128,
            statements=[
                *policies.email_sending_statements(settings["SenderEmail"]),
                *record_channel,
            ],
            environment={
                "REMINDERS_TABLE": Ref(reminders),
                "SENDER_EMAIL": settings["SenderEmail"],
                **email_sender_environment(settings),
            },
        ),
        FunctionSpec(
            logical_id="SmsSenderFunction",
            name="SmsSender",
            log_group_id="SmsLogGroup",
            role_id="SmsSenderRole",
            timeout=DELIVERY_TIMEOUT_SECONDS,
            memory=128,
            statements=[
                *policies.sms_sending_statements(),
                *record_channel,
            ],
            environment={"REMINDERS_TABLE": Ref(reminders)},
        ),
        FunctionSpec(
            logical_id="StatusUpdaterFunction",
            name="StatusUpdater",
            log_group_id="StatusUpdaterLogGroup",
            role_id="StatusUpdaterRole",
            timeout=DELIVERY_TIMEOUT_SECONDS,
            memory=128,
            statements=[
                *record_channel,
                *policies.topic_publishing_statements(Ref(topic)),
            ],
            environment={
                "REMINDERS_TABLE": Ref(reminders),
                "TOPIC_ARN": Ref(topic),
                "METRICS_NAMESPACE": metrics_namespace(settings),
            },
        ),
    ]
    return {spec.logical_id: _add_function(template, settings, key, spec) for spec in specs}
