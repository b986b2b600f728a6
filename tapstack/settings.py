"""CloudFormation parameters, and the names every resource of one system derives from them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from troposphere import AWSHelperFn, Parameter, Ref, Sub, Template

from tapstack.props import MAX_OFFSET_MINUTES, ReminderProps

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


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
        suffix_text = suffix if isinstance(suffix, str) else "${%s}" % suffix.data["Ref"]
        text = pattern.format(f"{self.props.prefix}{name}-{suffix_text}")
        return Sub(text) if "${" in text else text


def _parameter_specs(props: ReminderProps) -> dict[str, dict[str, Any]]:
    email_rule = dict(
        AllowedPattern=EMAIL_PATTERN,
        ConstraintDescription="must be an email address such as reminders@example.com",
    )
    return {
        "EnvironmentSuffix": dict(
            Description="Environment suffix for resource naming",
            Default=props.environment_suffix,
            AllowedPattern="^[a-zA-Z0-9]+$",
            ConstraintDescription="Must contain only alphanumeric characters",
        ),
        "SenderEmail": dict(
            Description="SES-verified address (or an address of an SES-verified domain) the reminders come from",
            **({} if props.sender_email is None else {"Default": props.sender_email}),
            **email_rule,
        ),
        "ReminderOffsetsMinutes": dict(
            Description="Comma-separated minutes before the appointment at which reminders are due",
            Default=props.offsets_text,
            AllowedPattern=r"^\d{1,5}(,\d{1,5})*$",
            ConstraintDescription=(
                f"must be comma-separated whole minutes from 1 to {MAX_OFFSET_MINUTES}, e.g. 1440 or 1440,60"
            ),
        ),
        "ScheduleExpression": dict(
            Description="How often the workflow looks for due reminders",
            Default=props.schedule_expression,
            AllowedPattern=r"^(rate\((1 (minute|hour|day)|[1-9]\d* (minutes|hours|days))\)|cron\([^()]+\))$",
            ConstraintDescription="must be an EventBridge schedule such as rate(5 minutes) or cron(0/5 * * * ? *)",
        ),
        "AlarmEmail": dict(
            Description="Address subscribed to the alarm topic; empty for no subscription",
            Default=props.alarm_email,
            AllowedPattern=r"^$|" + EMAIL_PATTERN,
            ConstraintDescription="must be empty or an email address",
        ),
        "ReminderRetentionDays": dict(
            Type="Number",
            Description="Days after the appointment at which its reminder records expire",
            Default=props.reminder_retention_days,
            MinValue=1,
            MaxValue=3650,
            ConstraintDescription="must be a whole number of days from 1 to 3650",
        ),
        "DeletionProtection": dict(
            Description="DynamoDB deletion protection on the tables this stack creates",
            Default=str(props.deletion_protection).lower(),
            AllowedValues=["true", "false"],
            ConstraintDescription="must be true or false",
        ),
        "FailedRemindersAlarmThreshold": dict(
            Type="Number",
            Description="Reminders recorded FAILED within an hour that raise the alarm",
            Default=props.failed_reminders_alarm_threshold,
            MinValue=1,
            ConstraintDescription="must be a whole number of at least 1",
        ),
    }


def _literal_values(props: ReminderProps) -> dict[str, Any]:
    return {
        "EnvironmentSuffix": props.environment_suffix,
        "SenderEmail": props.sender_email,
        "ReminderOffsetsMinutes": props.offsets_text,
        "ScheduleExpression": props.schedule_expression,
        "AlarmEmail": props.alarm_email,
        "ReminderRetentionDays": str(props.reminder_retention_days),
        "DeletionProtection": str(props.deletion_protection).lower(),
        "FailedRemindersAlarmThreshold": str(props.failed_reminders_alarm_threshold),
    }


def add_parameters(template: Template, props: ReminderProps) -> Settings:
    """Add the parameters ``props`` asks for; the other settings keep their literal values."""
    specs = _parameter_specs(props)
    values = _literal_values(props)
    for name, spec in specs.items():
        if name in props.parameters:
            spec.setdefault("Type", "String")
            values[name] = Ref(template.add_parameter(Parameter(f"{props.prefix}{name}", **spec)))
    return Settings(props=props, values=values)

