"""CloudFormation parameters, and the names every resource of one system derives from them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from troposphere import AWSHelperFn, Parameter, Ref, Sub, Template

from tapstack.messages import message_literal_values, message_parameter_specs
from tapstack.props import (
    EMAIL_PATTERN,
    LOG_RETENTION_DAYS,
    MAX_OFFSET_MINUTES,
    OFFSETS_PATTERN,
    SCHEDULE_PATTERN,
    SUFFIX_PATTERN,
    ReminderProps,
)


@dataclass(frozen=True)
class Settings:
    """The value of each setting as the template sees it: a ``Ref`` to a parameter or a literal."""

    props: ReminderProps
    values: dict[str, Any]

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def logical_id(self, name: str) -> str:
        """The logical ID of a resource of this system: the prefix, then its own name."""
        return f"{self.props.prefix}{name}"

    def physical_name(self, name: str, pattern: str = "{}") -> AWSHelperFn | str:
        """``<prefix><name>-<environment suffix>``, the pattern of every physical name.

        ``pattern`` places the name in a longer string (``"/aws/lambda/{}"``); the result is one
        ``Sub`` when the suffix is a parameter, a plain string when it is baked in.
        """
        suffix = self.values["EnvironmentSuffix"]
        suffix_text = suffix if isinstance(suffix, str) else "${{{}}}".format(suffix.data["Ref"])
        text = pattern.format(f"{self.props.prefix}{name}-{suffix_text}")
        return Sub(text) if "${" in text else text


def _parameter_specs(props: ReminderProps) -> dict[str, dict[str, Any]]:
    email_rule = dict(
        AllowedPattern=EMAIL_PATTERN.pattern,
        ConstraintDescription="an email address, e.g. reminders@example.com",
    )
    return {
        # Every physical name ends in it; its length is bounded by the longest (ReminderProps).
        "EnvironmentSuffix": dict(
            Description="Environment suffix for resource naming",
            Default=props.environment_suffix,
            AllowedPattern=SUFFIX_PATTERN.pattern,
            MaxLength=props.max_suffix_length,
            ConstraintDescription=f"up to {props.max_suffix_length} letters and digits",
        ),
        "SenderEmail": dict(
            Description="SES-verified sender address (or one of a verified domain)",
            **({} if props.sender_email is None else {"Default": props.sender_email}),
            **email_rule,
        ),
        "ReminderOffsetsMinutes": dict(
            Description="Minutes before the appointment each reminder is due",
            Default=props.offsets_text,
            AllowedPattern=OFFSETS_PATTERN.pattern,
            ConstraintDescription=f"1 to {MAX_OFFSET_MINUTES}, comma-separated, e.g. 1440,60",
        ),
        "ScheduleExpression": dict(
            Description="How often to look for due reminders",
            Default=props.schedule_expression,
            AllowedPattern=SCHEDULE_PATTERN.pattern,
            ConstraintDescription="rate(1 minute), rate(5 minutes) or cron(...)",
        ),
        "AlarmEmail": dict(
            Description="Alarm topic subscriber; empty for none",
            Default=props.alarm_email,
            AllowedPattern=r"^$|" + EMAIL_PATTERN.pattern,
            ConstraintDescription="empty or an email address",
        ),
        "ReminderRetentionDays": dict(
            Type="Number",
            Description="Days reminder records are kept after the appointment",
            Default=props.reminder_retention_days,
            MinValue=1,
            MaxValue=3650,
            ConstraintDescription="whole days from 1 to 3650",
        ),
        "DeletionProtection": dict(
            Description="Deletion protection of the tables",
            Default=str(props.deletion_protection).lower(),
            AllowedValues=["true", "false"],
            ConstraintDescription="true or false",
        ),
        "FailedRemindersAlarmThreshold": dict(
            Type="Number",
            Description="Reminders FAILED within an hour that raise the alarm",
            Default=props.failed_reminders_alarm_threshold,
            MinValue=1,
            ConstraintDescription="a whole number of at least 1",
        ),
        "SmsSpendAlarmUsd": dict(
            Type="Number",
            Description="SMS spend (USD) this month that raises the alarm",
            Default=props.sms_spend_alarm_usd,
            MinValue=0.01,
        ),
        # CloudFormation's refusal of a value outside AllowedValues lists the allowed ones itself.
        "LogRetentionDays": dict(
            Type="Number",
            Description="Days the logs are kept (365+ for Control Tower's CT.CLOUDWATCH.PR.2)",
            Default=props.log_retention_days,
            AllowedValues=list(LOG_RETENTION_DAYS),
        ),
    }


def _literal_values(props: ReminderProps) -> dict[str, Any]:
    """Baked-in values, typed as the properties that use them expect."""
    return {
        "EnvironmentSuffix": props.environment_suffix,
        "SenderEmail": props.sender_email,
        "ReminderOffsetsMinutes": props.offsets_text,
        "ScheduleExpression": props.schedule_expression,
        "AlarmEmail": props.alarm_email,
        "ReminderRetentionDays": str(props.reminder_retention_days),  # a Lambda environment value
        "DeletionProtection": props.deletion_protection,
        "FailedRemindersAlarmThreshold": props.failed_reminders_alarm_threshold,
        "LogRetentionDays": props.log_retention_days,
        "SmsSpendAlarmUsd": props.sms_spend_alarm_usd,
    }


def add_parameters(template: Template, props: ReminderProps) -> Settings:
    """Add the parameters ``props`` asks for; the other settings keep their literal values."""
    specs = {**_parameter_specs(props), **message_parameter_specs(props.messages)}
    values = {**_literal_values(props), **message_literal_values(props.messages)}
    for name, spec in specs.items():
        if name in props.parameters:
            spec.setdefault("Type", "String")
            values[name] = Ref(template.add_parameter(Parameter(f"{props.prefix}{name}", **spec)))
    return Settings(props=props, values=values)
