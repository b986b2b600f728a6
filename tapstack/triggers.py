"""What starts the workflow: the EventBridge schedule and the Pipe from the Appointments stream."""

from __future__ import annotations

from dataclasses import dataclass

import awacs.kms as kms
from awacs.helpers.trust import make_simple_assume_policy
from troposphere import GetAtt, Ref, Template
from troposphere.events import Rule, Target
from troposphere.iam import Role
from troposphere.kms import Key
from troposphere.pipes import (
    DeadLetterConfig,
    Pipe,
    PipeSourceDynamoDBStreamParameters,
    PipeSourceParameters,
    PipeTargetParameters,
    PipeTargetStateMachineParameters,
)
from troposphere.sqs import Queue
from troposphere.stepfunctions import StateMachine

from tapstack import policies
from tapstack.props import SCHEDULE_RULE_NAME
from tapstack.settings import Settings
from tapstack.storage import AppointmentsTableRef

#: Records of one stream batch that start one execution.
PIPE_BATCH_SIZE = 10
#: A record that cannot start the workflow is retried this often, then kept in the dead-letter queue.
PIPE_MAXIMUM_RETRY_ATTEMPTS = 5
#: Long enough to ride out a workflow outage; short enough that a stuck shard is seen the same day.
PIPE_MAXIMUM_RECORD_AGE_SECONDS = 21600
#: Every change of the Appointments table concerns reminders (the system never writes that table,
#: so none is its own echo), and INSERT, MODIFY and REMOVE are all the event names a DynamoDB
#: stream has (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_Record.html):
#: the pipe has no filter.
#: What the workflow receives of each change: which item changed and the change's place in its
#: stream, nothing of the item (a table of the host's may stream whole images: names, emails,
#: phones). The keys go in unquoted, as an object: Pipes does not escape the values it substitutes,
#: so a quoted id holding a quote would break the JSON.
#: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-pipes-input-transformation.html
STREAM_INPUT_TEMPLATE = (
    '{"eventName": "<$.eventName>", "keys": <$.dynamodb.Keys>, "sequenceNumber": "<$.dynamodb.SequenceNumber>"}'
)


@dataclass
class Triggers:
    rule: Rule
    pipe: Pipe
    dead_letter_queue: Queue


def add_triggers(
    template: Template,
    settings: Settings,
    key: Key,
    appointments: AppointmentsTableRef,
    workflow: StateMachine,
) -> Triggers:
    workflow_arn = Ref(workflow)
    express = settings.props.workflow_type == "EXPRESS"
    # A Standard workflow's execution data is encrypted with the key: who starts one needs it.
    data_key = [] if express else policies.execution_data_key_statements(key, workflow_arn)
    schedule_role = template.add_resource(
        Role(
            settings.logical_id("EventBridgeExecutionRole"),
            AssumeRolePolicyDocument=make_simple_assume_policy("events.amazonaws.com"),
            Policies=[
                policies.inline_policy(
                    "StartStepFunctions", policies.execution_starting_statements(workflow_arn) + data_key
                )
            ],
        )
    )
    rule = template.add_resource(
        Rule(
            settings.logical_id("ScheduledNotificationRule"),
            Name=settings.physical_name(SCHEDULE_RULE_NAME),
            ScheduleExpression=settings["ScheduleExpression"],
            Targets=[
                Target(
                    Id="NotificationWorkflowTarget",
                    Arn=workflow_arn,
                    RoleArn=GetAtt(schedule_role, "Arn"),
                )
            ],
        )
    )
    queue = template.add_resource(
        Queue(
            settings.logical_id("PipeDeadLetterQueue"),
            QueueName=settings.physical_name("AppointmentStreamDeadLetters"),
            KmsMasterKeyId=GetAtt(key, "Arn"),
            MessageRetentionPeriod=1209600,
            # Marks the queue as a dead-letter queue, the form AWS Control Tower's CT.SQS.PR.1 accepts
            # instead of a dead-letter queue of its own ("applies only to queues that are not configured
            # as a dead-letter queue with a RedriveAllowPolicy":
            # https://docs.aws.amazon.com/controltower/latest/controlreference/sqs-rules.html). Its rule
            # counts only allowAll and byQueue as such; denyAll fails it (tests/test_guard.py), and
            # byQueue needs a source queue, which a pipe is not: the pipe writes with sqs:SendMessage.
            # allowAll is SQS's default ("allowAll: (Default) Any source queues in this AWS account in
            # the same Region can specify this queue as the dead-letter queue":
            # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html),
            # so this states the queue's purpose without changing who may use it.
            RedriveAllowPolicy={"redrivePermission": "allowAll"},
            # Its records belong to this stack's pipe; a retained queue would block a redeploy.
            DeletionPolicy="Delete",
            UpdateReplacePolicy="Delete",
        )
    )
    # Pipes checks its role's permissions on the source when it creates the pipe (a pipe whose role
    # lacks them ends CREATE_FAILED: "The provided customer role does not have permissions to call
    # ...", https://github.com/terraform-aws-modules/terraform-aws-eventbridge/issues/133). No
    # DependsOn is needed here: the permissions are inline, part of the role resource, and the pipe
    # names the role with GetAtt, so "Resource B is created before resource A"
    # (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-dependson.html).
    # A separate AWS::IAM::Policy would be created in parallel with the pipe and need a DependsOn.
    pipe_role = template.add_resource(
        Role(
            settings.logical_id("PipeRole"),
            AssumeRolePolicyDocument=make_simple_assume_policy("pipes.amazonaws.com"),
            Policies=[
                policies.inline_policy(
                    "AppointmentStreamPipe",
                    policies.stream_reading_statements(appointments.stream_arn)
                    + appointments.foreign_key_statements()
                    + policies.execution_starting_statements(workflow_arn, synchronously=express)
                    + data_key
                    + policies.queue_sending_statements(GetAtt(queue, "Arn"))
                    # SQS encrypts the dead letters with the pipe's role.
                    + policies.key_statements(GetAtt(key, "Arn"), [kms.GenerateDataKey, kms.Decrypt]),
                )
            ],
        )
    )
    pipe = template.add_resource(
        Pipe(
            settings.logical_id("AppointmentStreamPipe"),
            Name=settings.physical_name("AppointmentStreamPipe"),
            RoleArn=GetAtt(pipe_role, "Arn"),
            Source=appointments.stream_arn,
            SourceParameters=PipeSourceParameters(
                DynamoDBStreamParameters=PipeSourceDynamoDBStreamParameters(
                    # Replanning is idempotent, so reading what the stream already holds loses
                    # nothing and repeats nothing.
                    StartingPosition="TRIM_HORIZON",
                    BatchSize=PIPE_BATCH_SIZE,
                    MaximumBatchingWindowInSeconds=5,
                    MaximumRetryAttempts=PIPE_MAXIMUM_RETRY_ATTEMPTS,
                    MaximumRecordAgeInSeconds=PIPE_MAXIMUM_RECORD_AGE_SECONDS,
                    OnPartialBatchItemFailure="AUTOMATIC_BISECT",
                    DeadLetterConfig=DeadLetterConfig(Arn=GetAtt(queue, "Arn")),
                ),
            ),
            Target=workflow_arn,
            TargetParameters=PipeTargetParameters(
                InputTemplate=STREAM_INPUT_TEMPLATE,
                # Express: the pipe waits for the run, and retries (then dead-letters) a batch whose
                # run failed. Standard runs only asynchronously: a failed run is the alarm's, and
                # redrive's. https://docs.aws.amazon.com/eventbridge/latest/pipes-reference/API_PipeTargetStateMachineParameters.html
                StepFunctionStateMachineParameters=PipeTargetStateMachineParameters(
                    InvocationType="REQUEST_RESPONSE" if express else "FIRE_AND_FORGET"
                ),
            ),
        )
    )
    return Triggers(rule=rule, pipe=pipe, dead_letter_queue=queue)
