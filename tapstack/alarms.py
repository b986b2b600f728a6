"""Topics, and the alarms that make a quiet failure (a customer simply gets no message) loud."""

from __future__ import annotations

from typing import Any

from troposphere import Equals, GetAtt, Not, Ref, Template
from troposphere.cloudwatch import Alarm, MetricDimension
from troposphere.kms import Key
from troposphere.sns import SubscriptionResource, Topic
from troposphere.sqs import Queue
from troposphere.stepfunctions import StateMachine

from tapstack.functions import BuiltFunction
from tapstack.settings import Settings

#: The metric the status updater emits (embedded metric format) for each reminder it records.
FAILED_REMINDERS_METRIC = "RemindersFailed"


def add_topic(template: Template, settings: Settings, key: Key, logical_id: str, name: str, display: str) -> Topic:
    return template.add_resource(
        Topic(
            settings.logical_id(logical_id),
            TopicName=settings.physical_name(name),
            DisplayName=display,
            KmsMasterKeyId=GetAtt(key, "Arn"),
        )
    )


def add_alarm_topic(template: Template, settings: Settings, key: Key) -> Topic:
    """The alarm topic, with an email subscription when ``AlarmEmail`` is not empty."""
    topic = add_topic(template, settings, key, "AlarmTopic", "AppointmentReminderAlarms", "Appointment reminder alarms")
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


def _alarm(template: Template, settings: Settings, logical_id: str, topic: Topic, description: str,
           **metric: Any) -> Alarm:
    metric.setdefault("Statistic", "Sum")
    metric.setdefault("Period", 300)
    metric.setdefault("Threshold", 1)
    return template.add_resource(
        Alarm(
            settings.logical_id(logical_id),
            AlarmDescription=description,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            EvaluationPeriods=1,
            TreatMissingData="notBreaching",
            AlarmActions=[Ref(topic)],
            **metric,
        )
    )


def add_alarms(
    template: Template,
    settings: Settings,
    topic: Topic,
    workflow: StateMachine,
    functions: dict[str, BuiltFunction],
    dead_letter_queue: Queue,
) -> list[Alarm]:
    workflow_dimension = [MetricDimension(Name="StateMachineArn", Value=Ref(workflow))]
    alarms = [
        _alarm(template, settings, "WorkflowFailedAlarm", topic,
               "A notification workflow execution failed: its reminders may not have gone out",
               Namespace="AWS/States", MetricName="ExecutionsFailed", Dimensions=workflow_dimension),
        _alarm(template, settings, "WorkflowTimedOutAlarm", topic,
               "A notification workflow execution timed out",
               Namespace="AWS/States", MetricName="ExecutionsTimedOut", Dimensions=workflow_dimension),
        _alarm(template, settings, "PipeDeadLetterAlarm", topic,
               "Appointment changes could not start the workflow and wait in the dead-letter queue",
               Namespace="AWS/SQS", MetricName="ApproximateNumberOfMessagesVisible", Statistic="Maximum",
               Dimensions=[MetricDimension(Name="QueueName", Value=GetAtt(dead_letter_queue, "QueueName"))]),
        _alarm(template, settings, "FailedRemindersAlarm", topic,
               "Reminders were recorded FAILED on every channel they tried",
               Namespace=settings.physical_name("TapStack"), MetricName=FAILED_REMINDERS_METRIC, Period=3600,
               Threshold=settings["FailedRemindersAlarmThreshold"]),
    ]
    for logical_id, built in functions.items():
        stem = logical_id.removesuffix("Function")
        dimension = [MetricDimension(Name="FunctionName", Value=Ref(built.function))]
        for metric in ("Errors", "Throttles"):
            alarms.append(
                _alarm(template, settings, f"{stem}{metric}Alarm", topic,
                       f"{stem} reported {metric.lower()}",
                       Namespace="AWS/Lambda", MetricName=metric, Dimensions=dimension)
            )
    return alarms
