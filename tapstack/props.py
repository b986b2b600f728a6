"""Settings of one appointment-reminder system, validated before anything is built."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TypeAlias

from troposphere import AWSHelperFn

from tapstack.messages import MESSAGE_PARAMETER_NAMES, MessageProps
from tapstack.timing import EXECUTION_TIMEOUT_SECONDS, execution_worst_case_seconds

#: A value given either literally or as a CloudFormation expression of the host stack
#: (``Ref(...)``, ``GetAtt(...)``, ``ImportValue(...)``).
StrOrExpression: TypeAlias = "str | AWSHelperFn"

#: The settings that can become CloudFormation parameters, by parameter name.
PARAMETER_NAMES = (
    "EnvironmentSuffix",
    "SenderEmail",
    "ReminderOffsetsMinutes",
    "ScheduleExpression",
    "AlarmEmail",
    "ReminderRetentionDays",
    "DeletionProtection",
    "FailedRemindersAlarmThreshold",
    "LogRetentionDays",
    "SmsSpendAlarmUsd",
    *MESSAGE_PARAMETER_NAMES,
)
#: The parameters of the stand-alone template. The alarm threshold and the log retention are library
#: settings there (a host stack may make them parameters): CloudFormation reads at most 51,200 bytes
#: of template from a file, and every parameter costs some.
DEFAULT_PARAMETERS = frozenset(PARAMETER_NAMES) - {"FailedRemindersAlarmThreshold", "LogRetentionDays"}

# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)

# The same patterns validate library settings here and CloudFormation parameters in the template.
PREFIX_PATTERN = re.compile(r"^([A-Z][A-Za-z0-9]{0,19})?$")
SUFFIX_PATTERN = re.compile(r"^[a-zA-Z0-9]+$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
OFFSETS_PATTERN = re.compile(r"^[1-9]\d{0,4}(,[1-9]\d{0,4})*$")
SCHEDULE_PATTERN = re.compile(r"^(rate\((1 (minute|hour|day)|([2-9]|[1-9]\d+) (minutes|hours|days))\)|cron\([^()]+\))$")
KEY_ARN_PATTERN = re.compile(r"arn:[\w-]+:kms:[\w-]+:\d{12}:key/[\w-]+")
MAX_OFFSET_MINUTES = 99999
#: The longest physical name for its limit is the schedule rule's,
#: ``<prefix>AppointmentNotificationSchedule-<suffix>``: "Maximum length of 64" for a rule name
#: (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutRule.html). Prefix and suffix
#: together get what it leaves: 32 characters. tests/test_names.py builds every physical name at
#: these lengths and checks each against its own resource's limit.
SCHEDULE_RULE_NAME = "AppointmentNotificationSchedule"
MAX_PREFIX_AND_SUFFIX = 64 - len(SCHEDULE_RULE_NAME) - len("-")
WORKFLOW_TYPES = ("EXPRESS", "STANDARD")  # the most the parameter's pattern accepts: five digits, about 69 days


@dataclass(frozen=True)
class ExistingAppointmentsTable:
    """A booking app's table that the reminder system reads instead of creating its own.

    The table must have ``appointmentId`` (S) as its partition key and a stream (any view type:
    the pipe passes on only the keys). Every value may be a literal or the host stack's own expression.
    ``kms_key_arn``: the customer managed key the table is encrypted with, if it is; the processor
    (which reads the table) and the pipe (which reads its stream) are granted ``kms:Decrypt`` on it.
    """

    name: StrOrExpression
    stream_arn: StrOrExpression
    kms_key_arn: StrOrExpression | None = None

    def __post_init__(self) -> None:
        if isinstance(self.name, str) and not re.fullmatch(r"[a-zA-Z0-9_.-]{3,255}", self.name):
            raise ValueError(
                "existing_appointments_table.name: expected a DynamoDB table name "
                f"(3-255 of a-z A-Z 0-9 _ . -), got {self.name!r}"
            )
        if isinstance(self.stream_arn, str) and ":dynamodb:" not in self.stream_arn:
            raise ValueError(
                "existing_appointments_table.stream_arn: expected a DynamoDB stream ARN "
                f"(arn:<partition>:dynamodb:<region>:<account>:table/<name>/stream/<label>), "
                f"got {self.stream_arn!r}"
            )
        # An IAM policy names a key in Resource by its key ARN, not by an alias
        # (https://docs.aws.amazon.com/kms/latest/developerguide/cmks-in-iam-policies.html).
        if isinstance(self.kms_key_arn, str) and not KEY_ARN_PATTERN.fullmatch(self.kms_key_arn):
            raise ValueError(
                "existing_appointments_table.kms_key_arn: expected a KMS key ARN "
                f"(arn:<partition>:kms:<region>:<account>:key/<key id>; not an alias), got {self.kms_key_arn!r}"
            )


@dataclass(frozen=True)
class ReminderProps:
    """What to build. Every field has a default that makes the stand-alone ``lib/TapStack.yml``.

    Settings named in ``parameters`` become CloudFormation parameters whose default is the value
    given here; the others are baked into the template as fixed values.
    """

    #: Prepended to every logical ID and physical name, so that two systems fit in one
    #: template and one account. PascalCase, up to 20 characters; empty for the stand-alone stack.
    prefix: str = ""
    #: Which settings are CloudFormation parameters (names from ``PARAMETER_NAMES``).
    parameters: frozenset[str] = DEFAULT_PARAMETERS
    #: Distinguishes deployments of the same stack in one account (``Appointments-dev``).
    environment_suffix: str = "dev"
    #: Verified SES identity that sends the emails. ``None``: the parameter has no default,
    #: so whoever deploys must give one (only allowed when it is a parameter).
    sender_email: str | None = None
    #: Minutes before the appointment at which a reminder is due.
    reminder_offsets_minutes: tuple[int, ...] = (1440,)
    #: How often the workflow looks for due reminders (EventBridge schedule expression).
    schedule_expression: str = "rate(1 minute)"
    #: Address subscribed to the alarm topic; empty for none.
    alarm_email: str = ""
    #: Days after the appointment at which its reminder records expire (DynamoDB TTL).
    reminder_retention_days: int = 90
    #: DynamoDB deletion protection on the tables this system creates. Off by default: it would refuse
    #: the DeleteTable with which CloudFormation rolls back a failed first create
    #: (``tapstack.storage.KEEP_EXCEPT_ON_FAILED_CREATE``); turn it on once the stack exists
    #: (docs/deploy.md).
    deletion_protection: bool = False
    #: Reminders recorded FAILED within an hour that raise the alarm.
    failed_reminders_alarm_threshold: int = 5
    #: SMS spend this month (USD, the account's, in this region) that raises the SMS spend alarm. SNS
    #: stops sending SMS once the account's monthly spend limit is reached, $1 in a new account: the
    #: default warns at 80 % of that; whoever raises the limit raises this with it (docs/deploy.md).
    sms_spend_alarm_usd: float = 0.8
    #: Retention of every log group the system creates.
    #: A year: the logs hold no customer data and little volume, and AWS Control Tower's
    #: CT.CLOUDWATCH.PR.2 asks for at least that.
    log_retention_days: int = 365
    #: Read the booking app's existing table instead of creating ``AppointmentsTable``.
    existing_appointments_table: ExistingAppointmentsTable | None = None
    #: Reminders claimed and delivered by one workflow execution; more continue in a new one at
    #: once. Read evenly from the due index's 8 shards. With ``max_concurrency``, it must let an
    #: execution's worst case fit its five minutes (``tapstack.timing``).
    claim_batch_size: int = 40
    #: Reminders delivered at the same time within one execution (Map ``MaxConcurrency``).
    max_concurrency: int = 20
    #: ``EXPRESS``: $1 per million executions and no execution history holding customer data; the
    #: pipe starts it synchronously (REQUEST_RESPONSE) and retries a failed planning run itself.
    #: ``STANDARD``: execution history and redrive, for teams that want them; the pipe starts it
    #: asynchronously (FIRE_AND_FORGET), and its execution data is encrypted with the stack's key.
    workflow_type: str = "EXPRESS"
    #: A due reminder still unsent this many minutes after it was due raises the lateness alarm.
    late_after_minutes: int = 15
    #: Reserved concurrency of each function; ``None`` reserves nothing (a reservation can
    #: make the stack fail to deploy in an account with a low concurrency limit).
    reserved_concurrency: int | None = None
    #: Create the stack's Outputs (with ``${AWS::StackName}-<prefix><Name>`` exports).
    outputs: bool = True
    #: What the reminders say and how: templates, languages, sender name (``tapstack.messages``).
    messages: MessageProps = field(default_factory=MessageProps)

    def __post_init__(self) -> None:
        # A set given as list or set is accepted and frozen, so props stay hashable.
        object.__setattr__(self, "parameters", frozenset(self.parameters))
        object.__setattr__(self, "reminder_offsets_minutes", tuple(self.reminder_offsets_minutes))
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first setting that is not of the accepted form."""
        if not PREFIX_PATTERN.match(self.prefix):
            _bad("prefix", "PascalCase letters and digits, up to 20, starting with a capital (or empty)", self.prefix)
        unknown = sorted(self.parameters - set(PARAMETER_NAMES))
        if unknown:
            _bad("parameters", f"names from {', '.join(PARAMETER_NAMES)}", unknown)
        if not SUFFIX_PATTERN.match(self.environment_suffix):
            _bad("environment_suffix", "letters and digits only", self.environment_suffix)
        if len(self.environment_suffix) > self.max_suffix_length:
            _bad(
                "environment_suffix",
                f"at most {self.max_suffix_length} characters (prefix and suffix together at most"
                f" {MAX_PREFIX_AND_SUFFIX}, so that every physical name fits its limit)",
                self.environment_suffix,
            )
        if self.sender_email is None:
            if "SenderEmail" not in self.parameters:
                _bad("sender_email", "an email address (it is baked in, so it cannot be left empty)", None)
        elif not EMAIL_PATTERN.match(self.sender_email):
            _bad("sender_email", "an email address such as reminders@example.com", self.sender_email)
        offsets = self.reminder_offsets_minutes
        if not offsets or any(not isinstance(m, int) or isinstance(m, bool) for m in offsets):
            _bad("reminder_offsets_minutes", "a non-empty tuple of whole minutes, e.g. (1440, 60)", offsets)
        if len(set(offsets)) != len(offsets) or any(not 1 <= m <= MAX_OFFSET_MINUTES for m in offsets):
            _bad(
                "reminder_offsets_minutes",
                f"distinct minutes between 1 and {MAX_OFFSET_MINUTES}, e.g. (1440, 60)",
                offsets,
            )
        if not SCHEDULE_PATTERN.match(self.schedule_expression):
            _bad("schedule_expression", "rate(1 minute), rate(5 minutes) or cron(...)", self.schedule_expression)
        if self.alarm_email and not EMAIL_PATTERN.match(self.alarm_email):
            _bad("alarm_email", "an email address or empty", self.alarm_email)
        _check_int("reminder_retention_days", self.reminder_retention_days, 1, 3650)
        _check_int("failed_reminders_alarm_threshold", self.failed_reminders_alarm_threshold, 1, 100000)
        spend = self.sms_spend_alarm_usd
        if isinstance(spend, bool) or not isinstance(spend, int | float) or not 0.01 <= spend <= 1_000_000:
            _bad("sms_spend_alarm_usd", "US dollars from 0.01 to 1000000", spend)
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            _bad("log_retention_days", f"one of {LOG_RETENTION_DAYS}", self.log_retention_days)
        _check_int("claim_batch_size", self.claim_batch_size, 1, 150)
        _check_int("max_concurrency", self.max_concurrency, 1, 40)
        worst = execution_worst_case_seconds(self.claim_batch_size, self.max_concurrency)
        if worst > EXECUTION_TIMEOUT_SECONDS:
            _bad(
                "claim_batch_size",
                f"at most 2 waves of max_concurrency ({2 * self.max_concurrency} here), so that an execution's"
                f" worst case fits {EXECUTION_TIMEOUT_SECONDS} s (it would take {worst} s)",
                self.claim_batch_size,
            )
        if self.workflow_type not in WORKFLOW_TYPES:
            _bad("workflow_type", " or ".join(WORKFLOW_TYPES), self.workflow_type)
        _check_int("late_after_minutes", self.late_after_minutes, 1, 1440)
        if self.reserved_concurrency is not None:
            _check_int("reserved_concurrency", self.reserved_concurrency, 1, 1000)
        if not isinstance(self.deletion_protection, bool):
            _bad("deletion_protection", "True or False", self.deletion_protection)

    @property
    def max_suffix_length(self) -> int:
        """The longest environment suffix that this prefix leaves room for."""
        return MAX_PREFIX_AND_SUFFIX - len(self.prefix)

    @property
    def offsets_text(self) -> str:
        """Offsets as the comma-separated text that the parameter and the handler read."""
        return ",".join(str(m) for m in self.reminder_offsets_minutes)


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        _bad(name, f"a whole number from {low} to {high}", value)


def _bad(name: str, accepted: str, value: object) -> None:
    raise ValueError(f"{name}: expected {accepted}, got {value!r}")
