"""Topics, and the alarms that make a quiet failure (a customer simply gets no message) loud."""

from __future__ import annotations

from typing import Any

from troposphere import Equals, GetAtt, Not, Ref, Template
from troposphere.cloudwatch import Alarm, Metric, MetricDataQuery, MetricDimension, MetricStat
from troposphere.kms import Key
from troposphere.sns import SubscriptionResource, Topic
from troposphere.sqs import Queue
from troposphere.stepfunctions import StateMachine

from tapstack.functions import metrics_namespace
from tapstack.settings import Settings

#: The metric the status updater emits (embedded metric format) for each reminder it records.
FAILED_REMINDERS_METRIC = "RemindersFailed"
#: The metric the processor emits on each schedule run: seconds since the oldest due reminder was due.
OVERDUE_METRIC = "OverdueSeconds"


def add_topic(template: Template, settings: Settings, key: Key, logical_id: str, name: str) -> Topic:
    return template.add_resource(
        Topic(
            settings.logical_id(logical_id), TopicName=settings.physical_name(name), KmsMasterKeyId=GetAtt(key, "Arn")
        )
    )


def add_alarm_topic(template: Template, settings: Settings, key: Key) -> Topic:
    """The alarm topic, with an email subscription when ``AlarmEmail`` is not empty."""
    topic = add_topic(template, settings, key, "AlarmTopic", "AppointmentReminderAlarms")
    email = settings["AlarmEmail"]
    if isinstance(email, str) and not email:
        return topic
    condition: dict[str, str] = {}
    if not isinstance(email, str):
        condition["Condition"] = settings.logical_id("HasAlarmEmail")
        template.add_condition(condition["Condition"], Not(Equals(email, "")))
    template.add_resource(
        SubscriptionResource(
            settings.logical_id("AlarmEmailSubscription"),
            TopicArn=Ref(topic),
            Protocol="email",
            Endpoint=email,
            **condition,
        )
    )
    return topic


def _alarm(
    template: Template, settings: Settings, logical_id: str, topic: Topic, description: str, **metric: Any
) -> Alarm:
    if "Metrics" not in metric:
        metric = {"Statistic": "Sum", "Period": 300, **metric}
    return template.add_resource(
        Alarm(
            settings.logical_id(logical_id),
            AlarmDescription=description,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            Threshold=metric.pop("Threshold", 1),
            EvaluationPeriods=metric.pop("EvaluationPeriods", 1),
            TreatMissingData=metric.pop("TreatMissingData", "notBreaching"),
            AlarmActions=[Ref(topic)],
            **metric,
        )
    )


def _sum_of(metrics: list[tuple[str, str, str, Any]]) -> list[MetricDataQuery]:
    """One series that sums several metrics (namespace, metric name, dimension name, value)."""
    queries = [
        MetricDataQuery(
            Id=f"m{number}",
            ReturnData=False,
            MetricStat=MetricStat(
                Metric=Metric(
                    Namespace=namespace, MetricName=name, Dimensions=[MetricDimension(Name=dimension, Value=value)]
                ),
                Period=300,
                Stat="Sum",
            ),
        )
        for number, (namespace, name, dimension, value) in enumerate(metrics)
    ]
    return [MetricDataQuery(Id="total", Expression="SUM(METRICS())", ReturnData=True), *queries]


def _sustained(settings: Settings) -> dict[str, int]:
    """How long executions must keep failing before the first alarm pages. A failed Express run is
    tried again: the pipe retries a failed planning run (REQUEST_RESPONSE), then dead-letters it
    (the second alarm), and the next schedule run, a minute later, finds every reminder the failed
    one left due (the fourth alarm watches how late they get). So with Express, failures page when
    they last: in each of three 5-minute periods in a row, not when a throttled minute was absorbed.
    A failed Standard run is started by nobody again (FIRE_AND_FORGET): one failure pages."""
    if settings.props.workflow_type == "EXPRESS":
        return {"EvaluationPeriods": 3, "DatapointsToAlarm": 3}
    return {}


def add_alarms(
    template: Template,
    settings: Settings,
    topic: Topic,
    workflow: StateMachine,
    dead_letter_queue: Queue,
) -> list[Alarm]:
    """Five alarms: executions fail, changes are dead-lettered, reminders fail, reminders are late,
    SMS spend nears its limit.

    The first sums the workflow's failed and timed-out executions.

    It watches executions, not functions: Lambda's ``Errors`` counts every failed attempt, also the
    ones the workflow's retries absorbed, so it would page for nothing in a busy hour; a function
    failure that the retries do not absorb fails the execution, or records the reminder FAILED (the
    third alarm).
    """
    errors = [
        ("AWS/States", name, "StateMachineArn", Ref(workflow)) for name in ("ExecutionsFailed", "ExecutionsTimedOut")
    ]
    return [
        _alarm(
            template,
            settings,
            "WorkflowErrorsAlarm",
            topic,
            "An execution of the workflow failed or timed out",
            Metrics=_sum_of(errors),
            **_sustained(settings),
        ),
        _alarm(
            template,
            settings,
            "PipeDeadLetterAlarm",
            topic,
            "Appointment changes could not start the workflow: see the dead-letter queue",
            Namespace="AWS/SQS",
            MetricName="ApproximateNumberOfMessagesVisible",
            Statistic="Maximum",
            Dimensions=[MetricDimension(Name="QueueName", Value=GetAtt(dead_letter_queue, "QueueName"))],
        ),
        _alarm(
            template,
            settings,
            "FailedRemindersAlarm",
            topic,
            "Reminders were recorded FAILED on every channel they tried",
            Namespace=metrics_namespace(settings),
            MetricName=FAILED_REMINDERS_METRIC,
            Period=3600,
            Threshold=settings["FailedRemindersAlarmThreshold"],
        ),
        # The processor reports, on every schedule run, how long ago the oldest reminder it found
        # was due: a reminder still unsent long after (a provider refusing for a while, a run that
        # keeps failing, a backlog) raises this one.
        _alarm(
            template,
            settings,
            "LateRemindersAlarm",
            topic,
            f"A reminder is still unsent {settings.props.late_after_minutes} minutes after it was due",
            Namespace=metrics_namespace(settings),
            MetricName=OVERDUE_METRIC,
            Statistic="Maximum",
            Threshold=60 * settings.props.late_after_minutes,
        ),
        _sms_spend_alarm(template, settings, topic),
    ]


def _sms_spend_alarm(template: Template, settings: Settings, topic: Topic) -> Alarm:
    """SMS spend nears the account's monthly limit, past which SNS silently stops sending SMS.

    ``SMSMonthToDateSpentUSD`` (AWS/SNS, no dimensions, statistic Maximum) is "The charges you have
    accrued since the start of the current calendar month for sending SMS messages. You can set an
    alarm for this metric to know when your month-to-date charges are close to the monthly SMS spend
    limit for your account. When Amazon SNS determines that sending an SMS message would incur a cost
    that exceeds this limit, it stops publishing SMS messages within minutes."
    (https://docs.aws.amazon.com/sns/latest/dg/sns-monitoring-using-cloudwatch.html). It is reported
    only while SMS are sent, so a period without data keeps the alarm as it is (``ignore``): it stays
    in ALARM for the rest of the month instead of flapping with every batch, and the next month's
    first SMS, with the spend back near zero, returns it to OK. The metric is the account's in this
    region, not this system's alone.
    """
    return _alarm(
        template,
        settings,
        "SmsSpendAlarm",
        topic,
        "SMS spend nears the SNS monthly limit",
        Namespace="AWS/SNS",
        MetricName="SMSMonthToDateSpentUSD",
        Statistic="Maximum",
        Threshold=settings["SmsSpendAlarmUsd"],
        TreatMissingData="ignore",
    )
