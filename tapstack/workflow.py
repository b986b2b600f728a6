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
    EncryptionConfiguration,
    LogDestination,
    LoggingConfiguration,
    StateMachine,
    TracingConfiguration,
)

from tapstack import policies
from tapstack.functions import BuiltFunction, add_log_group
from tapstack.settings import Settings
from tapstack.timing import (
    CONTINUATION_TIMEOUT_SECONDS,
    EXECUTION_TIMEOUT_SECONDS,
    RETRY_ATTEMPTS,
    RETRY_BACKOFF_RATE,
    RETRY_INTERVAL_SECONDS,
    task_timeout,
)

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


#: A retrier's fields when it leaves them out: "IntervalSeconds ... (default 1)", "BackoffRate ...
#: (2.0 by default)", https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html.
#: The template leaves out what equals them (five retriers: about 200 bytes).
RETRIER_DEFAULTS = {"IntervalSeconds": 1, "BackoffRate": 2}


def retries(errors: list[str]) -> list[dict[str, Any]]:
    """Few and short (``tapstack.timing``): what still fails is retried by the next run or the pipe."""
    retrier = {
        "ErrorEquals": errors,
        "IntervalSeconds": RETRY_INTERVAL_SECONDS,
        "MaxAttempts": RETRY_ATTEMPTS,
        "BackoffRate": RETRY_BACKOFF_RATE,
        "JitterStrategy": "FULL",
    }
    return [{field: value for field, value in retrier.items() if RETRIER_DEFAULTS.get(field) != value}]


def lambda_retries() -> list[dict[str, Any]]:
    """Every handler is idempotent (claims and channel marks), so every error may be retried: Lambda's
    own (``LAMBDA_TRANSIENT_ERRORS``, throttling, a time-out or crash: ``Lambda.Unknown``), a task's
    time-out, the handlers' ``RetryableError``, and also a permanent error, which fails the same way
    twice more within seconds (a sender that already sent answers from its channel mark instead of
    sending again). One ``States.ALL`` instead of listing the transient ones: whether an error was
    transient is decided where it matters, by UpdateStatus (deferred or FAILED) and by the pipe
    (retried or dead-lettered), and four lists of seven names cost about 600 template bytes."""
    # "States.ALL" must stand alone in its ErrorEquals and in the last retrier; it does not retry the
    # terminal States.Runtime and States.DataLimitExceeded
    # (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html).
    return retries(["States.ALL"])


def invoke(function: str, payload: dict[str, Any], timeout: int, **fields: Any) -> dict[str, Any]:
    """A Lambda task through the optimised integration, with its retries and a timeout."""
    return {
        "Type": "Task",
        "Resource": "${LambdaInvoke}",
        "Parameters": {"FunctionName": f"${{{function}}}", "Payload": payload},
        # A little longer than the function's own timeout, so that Lambda reports it first.
        "TimeoutSeconds": task_timeout(timeout),
        "Retry": lambda_retries(),
        **fields,
    }


#: What each Map iteration (a claimed reminder) passes to its tasks.
JOB = {"reminderId.$": "$.reminderId", "claimToken.$": "$.claimToken", "appointmentTime.$": "$.appointmentTime"}


def delivery_branch(channel: str, state: str, function: str, timeout: int) -> dict[str, Any]:
    """One channel: send, or report the error that its retries could not get past (UpdateStatus
    defers a transient one, fails any other). A failure here never fails the Parallel state."""
    error = f"{state}Error"
    return {
        "StartAt": state,
        "States": {
            state: invoke(
                function,
                {**JOB, "message.$": f"$.{channel}"},
                timeout,
                OutputPath="$.Payload",
                Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": error}],
                End=True,
            ),
            error: {
                "Type": "Pass",
                "Parameters": {
                    "channel": channel,
                    "status": "ERROR",
                    "reason.$": "$.error.Error",
                    "cause.$": "$.error.Cause",  # the function's error as JSON: UpdateStatus reads the provider's code
                },
                "End": True,
            },
        },
    }


def definition(functions: dict[str, BuiltFunction], max_concurrency: int, standard: bool = False) -> dict[str, Any]:
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
                {**JOB, "deferrals.$": "$.deferrals", "delivery.$": "$.delivery"},
                timeout["StatusUpdaterFunction"],
                # Unrecorded, the reminder keeps its claim; after the lease a later run records
                # it from the channel marks without sending again.
                Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": "OutcomeNotRecorded"}],
                End=True,
            ),
            "OutcomeNotRecorded": {"Type": "Pass", "Result": {"state": "UNRECORDED"}, "End": True},
        },
    }
    continuation: dict[str, Any] = {"source": CONTINUATION_SOURCE}
    if standard:  # links the executions in the console (Express has no execution history)
        continuation["AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$"] = "$$.Execution.Id"
    return {
        "TimeoutSeconds": EXECUTION_TIMEOUT_SECONDS,
        "StartAt": "ProcessAppointments",
        "States": {
            "ProcessAppointments": invoke(
                "ProcessorArn",
                # The execution's id and start time make the claim token and the lease; the retry
                # count tells a retried invocation to take back its own claims first.
                {
                    "input.$": "$",
                    "execution.$": "$$.Execution.Id",
                    "started.$": "$$.Execution.StartTime",
                    "retry.$": "$$.State.RetryCount",
                },
                timeout["AppointmentProcessorFunction"],
                ResultSelector={"jobs.$": "$.Payload.jobs", "more.$": "$.Payload.more"},
                Next="SendReminders",
            ),
            "SendReminders": {
                "Type": "Map",
                "ItemsPath": "$.jobs",  # none: the Map ends at once
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
                "Parameters": {"StateMachineArn.$": "$$.StateMachine.Id", "Input": continuation},
                "TimeoutSeconds": CONTINUATION_TIMEOUT_SECONDS,
                "Retry": retries(["States.TaskFailed"]),
                "End": True,
            },
            "Done": {"Type": "Succeed"},
        },
    }


def add_workflow(template: Template, settings: Settings, key: Key, functions: dict[str, BuiltFunction]) -> StateMachine:
    standard = settings.props.workflow_type == "STANDARD"
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
                    ]
                    + (policies.execution_data_key_statements(key, own_arn, decrypt=True) if standard else []),
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
    encryption: dict[str, Any] = {}
    if standard:  # its execution history keeps inputs: encrypted with the stack's key
        encryption["EncryptionConfiguration"] = EncryptionConfiguration(
            Type="CUSTOMER_MANAGED_KMS_KEY", KmsKeyId=GetAtt(key, "Arn"), KmsDataKeyReusePeriodSeconds=300
        )
    return template.add_resource(
        StateMachine(
            settings.logical_id("NotificationWorkflow"),
            StateMachineName=name,
            StateMachineType=settings.props.workflow_type,
            RoleArn=GetAtt(role, "Arn"),
            Definition=definition(functions, settings.props.max_concurrency, standard),
            DefinitionSubstitutions=substitutions,
            LoggingConfiguration=LoggingConfiguration(
                Level="ERROR",
                IncludeExecutionData=False,
                Destinations=[
                    LogDestination(CloudWatchLogsLogGroup=CloudWatchLogsLogGroup(LogGroupArn=GetAtt(log_group, "Arn")))
                ],
            ),
            TracingConfiguration=TracingConfiguration(Enabled=True),
            **encryption,
        )
    )
