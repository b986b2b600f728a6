"""The NotificationWorkflow state machine: its definition as Python data, its role and its logs."""

from __future__ import annotations

from typing import Any

import awacs.xray as xray
from awacs.aws import Allow, Statement
from awacs.helpers.trust import make_simple_assume_policy
from troposphere import GetAtt, Sub, Template
from troposphere.iam import Role
from troposphere.kms import Key
from troposphere.stepfunctions import (
    CloudWatchLogsLogGroup,
    LogDestination,
    LoggingConfiguration,
    StateMachine,
    TracingConfiguration,
)

from tapstack import policies
from tapstack.functions import BuiltFunction, add_log_group
from tapstack.settings import Settings

#: An execution delivers one batch; its claims outlive it (the lease) so that nobody else
#: takes a reminder that is still being delivered.
WORKFLOW_TIMEOUT_SECONDS = 1800
CLAIM_LEASE_SECONDS = WORKFLOW_TIMEOUT_SECONDS + 60

#: Lambda's own transient failures: the function did not run, or its answer was lost.
LAMBDA_TRANSIENT_ERRORS = [
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
]
#: What the handlers raise when the failure is worth another try (throttling, 5xx).
RETRYABLE_ERROR = "RetryableError"
CONTINUATION_SOURCE = "tapstack.continuation"

#: DefinitionSubstitutions keys of the four functions, by unprefixed logical ID.
FUNCTION_SUBSTITUTIONS = {
    "AppointmentProcessorFunction": "ProcessorArn",
    "EmailSenderFunction": "EmailSenderArn",
    "SmsSenderFunction": "SmsSenderArn",
    "StatusUpdaterFunction": "StatusUpdaterArn",
}


def lambda_retries() -> list[dict[str, Any]]:
    """Every handler is idempotent (claims and channel marks), so every one may be retried, also
    after a time-out or crash (``Lambda.Unknown``): a sender that already sent answers from its
    channel mark instead of sending again."""
    return [
        {
            "ErrorEquals": [
                *LAMBDA_TRANSIENT_ERRORS,
                "Lambda.TooManyRequestsException",
                "Lambda.Unknown",
                RETRYABLE_ERROR,
            ],
            "IntervalSeconds": 2,
            "MaxAttempts": 6,
            "BackoffRate": 2,
            "JitterStrategy": "FULL",
        }
    ]


def invoke(function: str, payload: dict[str, Any] | str, timeout: int, **fields: Any) -> dict[str, Any]:
    """A Lambda task through the optimised integration, with its retries and a timeout."""
    parameters: dict[str, Any] = {"FunctionName": f"${{{function}}}"}
    if isinstance(payload, str):
        parameters["Payload.$"] = payload
    else:
        parameters["Payload"] = payload
    return {
        "Type": "Task",
        "Resource": "${LambdaInvoke}",
        "Parameters": parameters,
        # A little longer than the function's own timeout, so that Lambda reports it first.
        "TimeoutSeconds": timeout + 10,
        "Retry": lambda_retries(),
        **fields,
    }


def delivery_branch(channel: str, state: str, function: str, timeout: int) -> dict[str, Any]:
    """One channel: send, or record why not. A failure here never fails the Parallel state."""
    failed = f"{state}Failed"
    return {
        "StartAt": state,
        "States": {
            state: invoke(
                function,
                {"reminderId.$": "$.reminderId", "claimToken.$": "$.claimToken", "message.$": f"$.{channel}"},
                timeout,
                OutputPath="$.Payload",
                Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": failed}],
                End=True,
            ),
            failed: {
                "Type": "Pass",
                "Parameters": {"channel": channel, "status": "FAILED", "reason.$": "$.error.Error"},
                "End": True,
            },
        },
    }


def definition(functions: dict[str, BuiltFunction], max_concurrency: int) -> dict[str, Any]:
    """Find or plan, claim and render (one Lambda); deliver each claimed reminder; continue if more."""
    timeout = {name: built.timeout for name, built in functions.items()}
    deliver_one = {  # an inline Map (ProcessorConfig's default)
        "StartAt": "Deliver",
        "States": {
            "Deliver": {
                "Type": "Parallel",
                "Branches": [
                    delivery_branch("email", "SendEmail", "EmailSenderArn", timeout["EmailSenderFunction"]),
                    delivery_branch("sms", "SendSMS", "SmsSenderArn", timeout["SmsSenderFunction"]),
                ],
                # Each branch catches its own failure, so the Parallel state itself cannot fail.
                "ResultPath": "$.delivery",
                "Next": "UpdateStatus",
            },
            "UpdateStatus": invoke(
                "StatusUpdaterArn",
                {"reminderId.$": "$.reminderId", "claimToken.$": "$.claimToken", "delivery.$": "$.delivery"},
                timeout["StatusUpdaterFunction"],
                # Unrecorded, the reminder keeps its claim; after the lease a later run records
                # it from the channel marks without sending again.
                Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": "OutcomeNotRecorded"}],
                End=True,
            ),
            "OutcomeNotRecorded": {"Type": "Pass", "Result": {"state": "UNRECORDED"}, "End": True},
        },
    }
    return {
        "TimeoutSeconds": WORKFLOW_TIMEOUT_SECONDS,
        "StartAt": "ProcessAppointments",
        "States": {
            "ProcessAppointments": invoke(
                "ProcessorArn",
                "$",
                timeout["AppointmentProcessorFunction"],
                ResultSelector={"jobs.$": "$.Payload.jobs", "more.$": "$.Payload.more"},
                Next="HasJobs",
            ),
            "HasJobs": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.jobs[0]", "IsPresent": True, "Next": "SendReminders"}],
                "Default": "MoreDue",
            },
            "SendReminders": {
                "Type": "Map",
                "ItemsPath": "$.jobs",
                "MaxConcurrency": max_concurrency,
                "ItemProcessor": deliver_one,
                # Outcomes are on the reminder records; keeping them here would only grow the payload.
                "ResultPath": None,
                "Next": "MoreDue",
            },
            "MoreDue": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.more", "BooleanEquals": True, "Next": "ContinueInNewExecution"}],
                "Default": "Done",
            },
            # One batch per execution keeps every execution far below the history and payload quotas.
            "ContinueInNewExecution": {
                "Type": "Task",
                "Resource": "${StartExecution}",
                "Parameters": {
                    "StateMachineArn.$": "$$.StateMachine.Id",
                    "Input": {
                        "source": CONTINUATION_SOURCE,
                        "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$": "$$.Execution.Id",
                    },
                },
                "TimeoutSeconds": 60,
                "Retry": [
                    {
                        "ErrorEquals": ["States.TaskFailed"],
                        "IntervalSeconds": 2,
                        "MaxAttempts": 3,
                        "BackoffRate": 2,
                        "JitterStrategy": "FULL",
                    }
                ],
                "End": True,
            },
            "Done": {"Type": "Succeed"},
        },
    }


def add_workflow(template: Template, settings: Settings, key: Key, functions: dict[str, BuiltFunction]) -> StateMachine:
    name = settings.physical_name("NotificationWorkflow")
    # Built from the name, not GetAtt: the role must exist before the state machine it serves.
    own_arn = settings.physical_name(
        "NotificationWorkflow", "arn:${{AWS::Partition}}:states:${{AWS::Region}}:${{AWS::AccountId}}:stateMachine:{}"
    )
    log_group = add_log_group(
        template,
        settings,
        "StepFunctionsLogGroup",
        settings.physical_name("NotificationWorkflow", "/aws/vendedlogs/states/{}"),
        key,
    )
    role = template.add_resource(
        Role(
            settings.logical_id("StepFunctionsExecutionRole"),
            AssumeRolePolicyDocument=make_simple_assume_policy("states.amazonaws.com"),
            Policies=[
                policies.inline_policy(
                    "NotificationWorkflow",
                    policies.function_invoking_statements([GetAtt(f.function, "Arn") for f in functions.values()])
                    + policies.execution_starting_statements(own_arn)
                    + policies.log_delivery_statements()
                    # X-Ray authorises trace uploads and sampling only on "*".
                    + [
                        Statement(
                            Effect=Allow,
                            Action=[
                                xray.PutTraceSegments,
                                xray.PutTelemetryRecords,
                                xray.GetSamplingRules,
                                xray.GetSamplingTargets,
                            ],
                            Resource=["*"],
                        )
                    ],
                )
            ],
        )
    )
    substitutions: dict[str, Any] = {
        key_name: GetAtt(functions[logical_id].function, "Arn")
        for logical_id, key_name in FUNCTION_SUBSTITUTIONS.items()
    }
    substitutions["LambdaInvoke"] = Sub("arn:${AWS::Partition}:states:::lambda:invoke")
    substitutions["StartExecution"] = Sub("arn:${AWS::Partition}:states:::states:startExecution")
    return template.add_resource(
        StateMachine(
            settings.logical_id("NotificationWorkflow"),
            StateMachineName=name,
            RoleArn=GetAtt(role, "Arn"),
            Definition=definition(functions, settings.props.max_concurrency),
            DefinitionSubstitutions=substitutions,
            LoggingConfiguration=LoggingConfiguration(
                Level="ERROR",
                IncludeExecutionData=False,
                Destinations=[
                    LogDestination(CloudWatchLogsLogGroup=CloudWatchLogsLogGroup(LogGroupArn=GetAtt(log_group, "Arn")))
                ],
            ),
            TracingConfiguration=TracingConfiguration(Enabled=True),
        )
    )
