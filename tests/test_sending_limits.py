"""What stops reminders without an error anyone sees: SNS's monthly SMS spend limit, and SES's
authorisation of a send on the identity's default configuration set.

SMS: "When Amazon SNS determines that sending an SMS message would incur a cost that exceeds this
limit, it stops publishing SMS messages within minutes"; ``SMSMonthToDateSpentUSD`` (AWS/SNS,
statistic Maximum) is "The charges you have accrued since the start of the current calendar month
for sending SMS messages" and "You can set an alarm for this metric to know when your month-to-date
charges are close to the monthly SMS spend limit for your account"
(https://docs.aws.amazon.com/sns/latest/dg/sns-monitoring-using-cloudwatch.html). A new account's
limit is $1 (docs/deploy.md). moto keeps alarms but never evaluates them: the deployed alarm's own
settings are applied here to the metric data, published into moto as SNS would publish it (AWS
refuses PutMetricData to an ``AWS/`` namespace from anyone else; moto does not).

Email: ``ses:SendEmail`` is authorised on the identity and also on the configuration set, and an
identity's default configuration set applies to every send from it
(https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonses.html,
https://docs.aws.amazon.com/ses/latest/dg/managing-configuration-sets.html). moto does not check
IAM; tests/iam.py evaluates the deployed role's policy.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tapstack import ReminderProps, build_template
from tapstack.local import LocalDeployment
from tapstack.local.deployment import ACCOUNT_ID
from tests import iam
from tests.assertions import statements
from tests.support import SENDER

NEW_ACCOUNT_SMS_LIMIT_USD = 1
COMPARISONS = {
    "GreaterThanOrEqualToThreshold": operator.ge,
    "GreaterThanThreshold": operator.gt,
}


@pytest.fixture(scope="module")
def stack(template_text: str) -> Iterator[LocalDeployment]:
    with LocalDeployment(template_text, {"SenderEmail": SENDER}) as deployment:
        yield deployment


def spend_alarm(stack: LocalDeployment) -> dict[str, Any]:
    """The SMS spend alarm as CloudWatch (moto) holds it after the deploy."""
    name = stack.resources["SmsSpendAlarm"].ref
    (alarm,) = stack.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"]
    return alarm


def sns_reports_spend(stack: LocalDeployment, usd: float, at: datetime) -> None:
    """SNS's month-to-date SMS spend, as SNS publishes it: account-wide, no dimensions."""
    stack.client("cloudwatch").put_metric_data(
        Namespace="AWS/SNS", MetricData=[{"MetricName": "SMSMonthToDateSpentUSD", "Value": usd, "Timestamp": at}]
    )


def breaches(stack: LocalDeployment, alarm: dict[str, Any], at: datetime) -> bool | None:
    """Whether the alarm's own metric, statistic, period and comparison find its threshold reached in
    the period that ends at ``at`` (None: no data in that period)."""
    found = stack.client("cloudwatch").get_metric_statistics(
        Namespace=alarm["Namespace"],
        MetricName=alarm["MetricName"],
        Dimensions=alarm.get("Dimensions", []),
        StartTime=at - timedelta(seconds=alarm["Period"]),
        EndTime=at + timedelta(seconds=1),
        Period=alarm["Period"],
        Statistics=[alarm["Statistic"]],
    )["Datapoints"]
    if not found:
        return None
    value = max(point[alarm["Statistic"]] for point in found)
    return bool(COMPARISONS[alarm["ComparisonOperator"]](value, alarm["Threshold"]))


# ---- SMS spend ------------------------------------------------------------------------------------


def test_the_alarm_watches_snss_month_to_date_spend_and_notifies_the_alarm_topic(stack: LocalDeployment) -> None:
    alarm = spend_alarm(stack)
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
        "AWS/SNS",
        "SMSMonthToDateSpentUSD",
        "Maximum",
    )
    assert alarm.get("Dimensions", []) == []  # the account's spend in the region has no dimensions
    assert alarm["AlarmActions"] == [stack.resources["AlarmTopic"].ref]
    # Reported only while SMS are sent: a quiet hour keeps the alarm as it is instead of clearing it.
    assert alarm["TreatMissingData"] == "ignore"


def test_the_default_threshold_is_below_a_new_accounts_limit(template_data: dict[str, Any]) -> None:
    parameter = template_data["Parameters"]["SmsSpendAlarmUsd"]
    assert 0 < parameter["Default"] == ReminderProps().sms_spend_alarm_usd < NEW_ACCOUNT_SMS_LIMIT_USD
    alarm = template_data["Resources"]["SmsSpendAlarm"]["Properties"]
    assert alarm["Threshold"] == {"Ref": "SmsSpendAlarmUsd"}


@pytest.mark.parametrize(("spent", "alarmed"), [(0.42, False), (0.8, True), (0.97, True)])
def test_spend_nearing_a_new_accounts_limit_raises_the_alarm_before_sns_stops(
    stack: LocalDeployment, spent: float, alarmed: bool
) -> None:
    at = datetime.now(UTC) + timedelta(days=1 + int(spent * 100))  # a period of its own for each case
    sns_reports_spend(stack, spent, at)
    assert breaches(stack, spend_alarm(stack), at) is alarmed


def test_a_deployer_who_raised_the_limit_raises_the_threshold(template_text: str) -> None:
    """$0.97 of a $100 limit is nothing to page about; $80 of it is."""
    parameters = {"SenderEmail": SENDER, "SmsSpendAlarmUsd": "80", "EnvironmentSuffix": "prod"}
    with LocalDeployment(template_text, parameters, stack_name="raised-limit") as stack:
        alarm = spend_alarm(stack)
        assert alarm["Threshold"] == 80
        now = datetime.now(UTC)
        sns_reports_spend(stack, 0.97, now)
        assert breaches(stack, alarm, now) is False
        later = now + timedelta(hours=2)
        sns_reports_spend(stack, 80.5, later)
        assert breaches(stack, alarm, later) is True


def test_a_host_stack_bakes_its_own_threshold_in() -> None:
    props = ReminderProps(
        prefix="Clinic",
        sender_email=SENDER,
        sms_spend_alarm_usd=40,
        parameters=frozenset({"EnvironmentSuffix"}),
    )
    resources = build_template(props).to_dict()["Resources"]
    assert resources["ClinicSmsSpendAlarm"]["Properties"]["Threshold"] == 40


@pytest.mark.parametrize("usd", [0, -1, 0.001, True, "0.8", 2_000_000])
def test_a_threshold_that_could_never_warn_in_time_is_refused(usd: Any) -> None:
    with pytest.raises(ValueError, match=r"^sms_spend_alarm_usd: expected US dollars from 0\.01 to 1000000"):
        ReminderProps(sms_spend_alarm_usd=usd)


# ---- SES configuration sets -----------------------------------------------------------------------


def send_requests(stack: LocalDeployment, configuration_set: str) -> list[iam.Request]:
    """What SES authorises for one SendEmail from SENDER when the identity's default set applies."""
    region, context = stack.region, {"aws:RequestedRegion": stack.region}
    arn = f"arn:aws:ses:{region}:{ACCOUNT_ID}:"
    return [
        iam.Request("ses:SendEmail", f"{arn}identity/{SENDER}", context),
        iam.Request("ses:SendEmail", f"{arn}configuration-set/{configuration_set}", context),
    ]


def email_sender_statements(stack: LocalDeployment) -> list[dict[str, Any]]:
    resolved: list[dict[str, Any]] = stack.resolver.resolve(statements(stack.template["Resources"]["EmailSenderRole"]))
    return resolved


def test_a_send_under_the_identitys_default_configuration_set_is_authorised(stack: LocalDeployment) -> None:
    granted = email_sender_statements(stack)
    assert [iam.evaluate(granted, r) for r in send_requests(stack, "tracking")] == [iam.ALLOW, iam.ALLOW]


def test_without_the_configuration_set_grant_every_email_is_denied(stack: LocalDeployment) -> None:
    """The fault the grant prevents: the identity alone authorises nothing once a default set applies."""
    identity_only = [
        {**s, "Resource": [r for r in s["Resource"] if ":configuration-set/" not in r]}
        for s in email_sender_statements(stack)
    ]
    assert [iam.evaluate(identity_only, r) for r in send_requests(stack, "tracking")] == [
        iam.ALLOW,
        iam.IMPLICIT_DENY,
    ]


def test_the_configuration_set_grant_does_not_let_the_sender_use_another_identity(stack: LocalDeployment) -> None:
    arn = f"arn:aws:ses:{stack.region}:{ACCOUNT_ID}:identity/"
    request = iam.Request("ses:SendEmail", f"{arn}someone-else.example.org", {"aws:RequestedRegion": stack.region})
    assert iam.evaluate(email_sender_statements(stack), request) == iam.IMPLICIT_DENY
    other_region = iam.Request(
        "ses:SendEmail", f"arn:aws:ses:eu-west-1:{ACCOUNT_ID}:configuration-set/tracking", request.context
    )
    assert iam.evaluate(email_sender_statements(stack), other_region) == iam.IMPLICIT_DENY
