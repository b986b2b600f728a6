"""The generated template: lint-clean, small enough, deterministic, and built as designed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint

from tapstack import ReminderProps, build_template
from tapstack.local import load_template
from tapstack.timing import execution_worst_case_seconds
from tests.assertions import granted, has_resource_properties, resource_count_is, resources, statements, walk_states
from tests.iam import STAR_ACTIONS

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "lib" / "TapStack.yml"


@pytest.fixture(scope="module")
def template(template_text: str) -> dict[str, Any]:
    return load_template(template_text)


@pytest.fixture(scope="module")
def definition(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]["NotificationWorkflow"]["Properties"]["Definition"]


# ---- quality bars ---------------------------------------------------------------------------


def test_cfn_lint_with_informational_checks_reports_nothing(template_text: str) -> None:
    matches = lint(template_text, config=ManualArgs(regions=["us-east-1"], include_checks=["I"]))
    assert [str(m) for m in matches] == []


def test_fits_a_template_body_without_an_s3_bucket(template_text: str) -> None:
    assert len(template_text.encode()) <= 51_200


def test_committed_template_is_a_fresh_build(template_text: str) -> None:
    assert COMMITTED.read_text(encoding="utf-8") == template_text, "run python build.py and commit lib/TapStack.yml"


def test_build_is_byte_for_byte_deterministic_across_processes(template_text: str) -> None:
    outputs = {
        subprocess.run(
            [sys.executable, "-c", "import sys; from tapstack.cli import render; sys.stdout.write(render())"],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        ).stdout
        for seed in ("0", "1", "4242")
    }
    assert outputs == {template_text}


def test_no_hard_coded_partition(template_text: str) -> None:
    assert "arn:aws:" not in template_text


def test_handlers_are_inlined_as_readable_blocks(template_text: str) -> None:
    """Each handler module is a YAML literal block in the HandlerModules mapping, not one escaped
    line (a tab or a trailing space would make the writer fall back to one); each ZipFile is a
    block of the modules it joins."""
    assert template_text.count("ZipFile: !Sub\n    - |-\n     ${common}\n") == 4
    for module in ("common", "processAppointments", "channelMarks", "sendEmail", "sendSms", "updateStatus"):
        assert f"\n   {module}: |\n" in template_text, module


def test_state_machine_is_native_yaml_not_a_json_string(template: dict[str, Any]) -> None:
    properties = template["Resources"]["NotificationWorkflow"]["Properties"]
    assert "DefinitionString" not in properties
    assert isinstance(properties["Definition"], dict)
    assert properties["DefinitionSubstitutions"]["LambdaInvoke"] == {
        "Fn::Sub": "arn:${AWS::Partition}:states:::lambda:invoke"
    }


# ---- parameters -----------------------------------------------------------------------------

PATTERN_CASES = [
    ("EnvironmentSuffix", "dev", True),
    ("EnvironmentSuffix", "prod2", True),
    ("EnvironmentSuffix", "dev-1", False),
    ("SenderEmail", "reminders@example.com", True),
    ("SenderEmail", "not-an-address", False),
    ("SenderEmail", "", False),
    ("ReminderOffsetsMinutes", "1440", True),
    ("ReminderOffsetsMinutes", "1440,60", True),
    ("ReminderOffsetsMinutes", "1440, 60", False),
    ("ReminderOffsetsMinutes", "-5", False),
    ("ReminderOffsetsMinutes", "0", False),
    ("ReminderOffsetsMinutes", "60,0", False),
    ("ReminderOffsetsMinutes", "99999", True),
    ("ReminderOffsetsMinutes", "100000", False),
    ("ReminderOffsetsMinutes", "", False),
    ("ScheduleExpression", "rate(5 minutes)", True),
    ("ScheduleExpression", "rate(1 hour)", True),
    ("ScheduleExpression", "cron(0/5 * * * ? *)", True),
    ("ScheduleExpression", "rate(1 minutes)", False),
    ("ScheduleExpression", "every 5 minutes", False),
    ("AlarmEmail", "", True),
    ("AlarmEmail", "oncall@example.com", True),
    ("AlarmEmail", "oncall", False),
]


@pytest.mark.parametrize(("name", "value", "accepted"), PATTERN_CASES)
def test_parameter_patterns(template: dict[str, Any], name: str, value: str, accepted: bool) -> None:
    parameter = template["Parameters"][name]
    assert parameter["ConstraintDescription"]
    assert bool(re.fullmatch(parameter["AllowedPattern"], value)) is accepted


def test_parameter_defaults(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    assert "Default" not in parameters["SenderEmail"], "whoever deploys must name a verified sender"
    assert parameters["ReminderOffsetsMinutes"]["Default"] == "1440"
    assert parameters["ScheduleExpression"]["Default"] == "rate(1 minute)"
    assert parameters["EnvironmentSuffix"]["Default"] == "dev"
    assert parameters["DeletionProtection"]["AllowedValues"] == ["true", "false"]
    # On, it would refuse the rollback of a failed first create (docs/deploy.md: turn it on after).
    assert parameters["DeletionProtection"]["Default"] == "false"
    assert parameters["ReminderRetentionDays"]["Default"] == 90


# ---- storage --------------------------------------------------------------------------------


@pytest.mark.parametrize("logical_id", ["AppointmentsTable", "RemindersTable"])
def test_tables_keep_their_data(template: dict[str, Any], logical_id: str) -> None:
    table = template["Resources"][logical_id]
    # Kept on a stack delete or replacement; deleted only by the rollback of the create that made it.
    assert table["DeletionPolicy"] == "RetainExceptOnCreate"
    assert table["UpdateReplacePolicy"] == "Retain"
    properties = table["Properties"]
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"] == {
        "SSEEnabled": True,
        "SSEType": "KMS",
        "KMSMasterKeyId": {"Fn::GetAtt": ["EncryptionKey", "Arn"]},
    }
    assert properties["DeletionProtectionEnabled"] == {"Ref": "DeletionProtection"}


def test_key_is_kept_with_the_tables_it_encrypts(template: dict[str, Any]) -> None:
    key = template["Resources"]["EncryptionKey"]
    assert (key["DeletionPolicy"], key["UpdateReplacePolicy"]) == ("RetainExceptOnCreate", "Retain")
    assert key["Properties"]["EnableKeyRotation"] is True
    principals = [s["Principal"] for s in key["Properties"]["KeyPolicy"]["Statement"]]
    assert {"Service": "cloudwatch.amazonaws.com"} in principals
    assert {"Service": {"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"}} in principals


def test_appointments_table_is_the_booking_apps(template: dict[str, Any]) -> None:
    properties = template["Resources"]["AppointmentsTable"]["Properties"]
    assert properties["TableName"] == {"Fn::Sub": "Appointments-${EnvironmentSuffix}"}
    assert properties["KeySchema"] == [{"AttributeName": "appointmentId", "KeyType": "HASH"}]
    # Which item changed, nothing of it: the processor reads the item itself.
    assert properties["StreamSpecification"] == {"StreamViewType": "KEYS_ONLY"}
    assert "TimeToLiveSpecification" not in properties, "the booking app's data never expires by our hand"


def test_reminders_due_index_is_sharded_and_range_keyed_by_time(template: dict[str, Any]) -> None:
    properties = template["Resources"]["RemindersTable"]["Properties"]
    (index,) = properties["GlobalSecondaryIndexes"]
    assert index["KeySchema"] == [
        {"AttributeName": "dueShard", "KeyType": "HASH"},
        {"AttributeName": "attemptAt", "KeyType": "RANGE"},
    ]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}


# ---- functions and roles --------------------------------------------------------------------

FUNCTIONS = {
    "AppointmentProcessorFunction": ("AppointmentProcessorRole", "ProcessorLogGroup"),
    "EmailSenderFunction": ("EmailSenderRole", "EmailLogGroup"),
    "SmsSenderFunction": ("SmsSenderRole", "SmsLogGroup"),
    "StatusUpdaterFunction": ("StatusUpdaterRole", "StatusUpdaterLogGroup"),
}


def test_runtime_is_the_newest_python_that_cfn_lint_does_not_deprecate(template: dict[str, Any]) -> None:
    import cfnlint.data.AdditionalSpecs as specs

    lifecycle = json.loads((Path(specs.__file__).parent / "LmbdRuntimeLifecycle.json").read_text())
    current = sorted(
        (name for name, dates in lifecycle.items() if name.startswith("python3.") and dates["successor"] is None),
        key=lambda name: int(name.split(".")[1]),
    )
    for function in resources(template, "AWS::Lambda::Function").values():
        assert function["Properties"]["Runtime"] == current[-1]


@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_each_function_has_its_own_role_log_group_and_no_active_tracing(
    template: dict[str, Any], function_id: str
) -> None:
    role_id, log_group_id = FUNCTIONS[function_id]
    properties = template["Resources"][function_id]["Properties"]
    assert properties["Role"] == {"Fn::GetAtt": [role_id, "Arn"]}
    assert properties["LoggingConfig"] == {"LogGroup": {"Ref": log_group_id}}
    assert "TracingConfig" not in properties, "without the X-Ray SDK it traces only Lambda itself (functions.py)"
    assert properties["KmsKeyArn"] == {"Fn::GetAtt": ["EncryptionKey", "Arn"]}
    log_group = template["Resources"][log_group_id]["Properties"]
    assert log_group["RetentionInDays"] == 365
    assert log_group["KmsKeyId"] == {"Fn::GetAtt": ["EncryptionKey", "Arn"]}
    trust = template["Resources"][role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust[0]["Principal"] == {"Service": ["lambda.amazonaws.com"]}


def test_no_role_is_shared(template: dict[str, Any]) -> None:
    roles = [f["Properties"]["Role"]["Fn::GetAtt"][0] for f in resources(template, "AWS::Lambda::Function").values()]
    roles.append(template["Resources"]["NotificationWorkflow"]["Properties"]["RoleArn"]["Fn::GetAtt"][0])
    roles.append(template["Resources"]["AppointmentStreamPipe"]["Properties"]["RoleArn"]["Fn::GetAtt"][0])
    target = template["Resources"]["ScheduledNotificationRule"]["Properties"]["Targets"][0]
    roles.append(target["RoleArn"]["Fn::GetAtt"][0])
    assert len(roles) == len(set(roles)) == 7


REMINDERS = {"Fn::GetAtt": ["RemindersTable", "Arn"]}
KEY = {"Fn::GetAtt": ["EncryptionKey", "Arn"]}
TABLE_KEY = {"kms:Decrypt": [KEY], "kms:GenerateDataKey": [KEY]}


def _logs(group: str) -> dict[str, list[Any]]:
    return {action: [{"Fn::GetAtt": [group, "Arn"]}] for action in ("logs:CreateLogStream", "logs:PutLogEvents")}


IDENTITY = "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/"
EXPECTED_GRANTS = {
    "AppointmentProcessorRole": {
        **_logs("ProcessorLogGroup"),
        **TABLE_KEY,
        "dynamodb:BatchGetItem": [{"Fn::GetAtt": ["AppointmentsTable", "Arn"]}],
        "dynamodb:Query": [{"Fn::Sub": ["${Table}/index/DueIndex", {"Table": REMINDERS}]}],
        "dynamodb:UpdateItem": [REMINDERS],
    },
    "EmailSenderRole": {
        **_logs("EmailLogGroup"),
        **TABLE_KEY,
        "dynamodb:UpdateItem": [REMINDERS],
        "ses:SendEmail": [
            {"Fn::Sub": IDENTITY + "${SenderEmail}"},
            {
                "Fn::Sub": [
                    IDENTITY + "${Domain}",
                    {"Domain": {"Fn::Select": [1, {"Fn::Split": ["@", {"Ref": "SenderEmail"}]}]}},
                ]
            },
            # The identity's default configuration set, whichever it is (tapstack.policies).
            {"Fn::Sub": "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:configuration-set/*"},
        ],
    },
    "SmsSenderRole": {
        **_logs("SmsLogGroup"),
        **TABLE_KEY,
        "dynamodb:UpdateItem": [REMINDERS],
        "sns:Publish": ["*"],
        "sns:CheckIfPhoneNumberIsOptedOut": ["*"],
    },
    "StatusUpdaterRole": {
        **_logs("StatusUpdaterLogGroup"),
        **TABLE_KEY,
        "dynamodb:UpdateItem": [REMINDERS],
        "sns:Publish": [{"Ref": "NotificationTopic"}],
    },
}


@pytest.mark.parametrize("role_id", EXPECTED_GRANTS)
def test_each_function_role_grants_exactly_what_its_function_uses(template: dict[str, Any], role_id: str) -> None:
    assert granted(template["Resources"][role_id]) == EXPECTED_GRANTS[role_id]


def test_sms_role_can_reach_phone_numbers_but_no_topic(template: dict[str, Any]) -> None:
    sms = statements(template["Resources"]["SmsSenderRole"])
    allow = next(s for s in sms if s["Effect"] == "Allow" and "sns:Publish" in s["Action"])
    assert allow["Condition"] == {"StringEquals": {"aws:RequestedRegion": {"Ref": "AWS::Region"}}}
    deny = next(s for s in sms if s["Effect"] == "Deny")
    assert deny["Action"] == ["sns:Publish"]
    assert deny["Resource"] == [{"Fn::Sub": "arn:${AWS::Partition}:sns:*:*:*"}]


def test_star_resources_only_where_aws_authorises_on_star(template: dict[str, Any]) -> None:
    star_actions = set()
    for role in resources(template, "AWS::IAM::Role").values():
        for statement in statements(role):
            if "*" in statement["Resource"] and statement["Effect"] == "Allow":
                star_actions.update(statement["Action"])
    assert star_actions <= set(STAR_ACTIONS)


def test_workflow_and_trigger_roles(template: dict[str, Any]) -> None:
    workflow = granted(template["Resources"]["StepFunctionsExecutionRole"])
    assert workflow["lambda:InvokeFunction"] == [{"Fn::GetAtt": [f, "Arn"]} for f in FUNCTIONS]
    assert workflow["states:StartExecution"] == [
        {
            "Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:"
            "NotificationWorkflow-${EnvironmentSuffix}"
        }
    ]
    schedule = granted(template["Resources"]["EventBridgeExecutionRole"])
    assert schedule == {"states:StartExecution": [{"Ref": "NotificationWorkflow"}]}
    pipe = granted(template["Resources"]["PipeRole"])
    stream = [{"Fn::GetAtt": ["AppointmentsTable", "StreamArn"]}]
    assert pipe == {
        "dynamodb:DescribeStream": stream,
        "dynamodb:GetRecords": stream,
        "dynamodb:GetShardIterator": stream,
        "dynamodb:ListStreams": ["*"],
        "states:StartSyncExecution": [{"Ref": "NotificationWorkflow"}],
        "sqs:SendMessage": [{"Fn::GetAtt": ["PipeDeadLetterQueue", "Arn"]}],
        "kms:GenerateDataKey": [KEY],
        "kms:Decrypt": [KEY],
    }


# ---- workflow -------------------------------------------------------------------------------


def test_workflow_logs_errors_without_execution_data_and_traces(template: dict[str, Any]) -> None:
    properties = template["Resources"]["NotificationWorkflow"]["Properties"]
    assert properties["LoggingConfiguration"]["Level"] == "ERROR"
    assert properties["LoggingConfiguration"]["IncludeExecutionData"] is False
    assert properties["TracingConfiguration"] == {"Enabled": True}
    assert properties["StateMachineType"] == "EXPRESS"
    assert "EncryptionConfiguration" not in properties  # Express keeps no execution history


def test_every_execution_fits_express_five_minutes_even_when_every_attempt_times_out(
    definition: dict[str, Any],
) -> None:
    """Read from the definition itself: the processor, every wave of the Map (a sender, then the
    updater), and the continuation, each task's every attempt running into its TimeoutSeconds with
    the longest wait between attempts."""

    def worst(state: dict[str, Any]) -> int:
        (retrier,) = state["Retry"]
        attempts = retrier["MaxAttempts"]
        waits = sum(retrier.get("IntervalSeconds", 1) * retrier.get("BackoffRate", 2) ** n for n in range(attempts))
        return int((attempts + 1) * state["TimeoutSeconds"] + waits)

    states = dict(walk_states(definition["States"]))
    map_state = states["SendReminders"]
    waves = -(-ReminderProps().claim_batch_size // map_state["MaxConcurrency"])
    wave = max(worst(states["SendEmail"]), worst(states["SendSMS"])) + worst(states["UpdateStatus"])
    total = worst(states["ProcessAppointments"]) + waves * wave + worst(states["ContinueInNewExecution"])
    assert definition["TimeoutSeconds"] == 300 and total <= 300, total
    assert total == execution_worst_case_seconds(ReminderProps().claim_batch_size, map_state["MaxConcurrency"])


def test_a_batch_whose_worst_case_does_not_fit_is_refused() -> None:
    with pytest.raises(ValueError, match="claim_batch_size: expected at most 2 waves"):
        ReminderProps(claim_batch_size=100, max_concurrency=10)


def test_standard_is_a_library_setting_with_encrypted_history_and_an_asynchronous_pipe() -> None:
    template = build_template(ReminderProps(workflow_type="STANDARD")).to_dict()
    workflow = template["Resources"]["NotificationWorkflow"]["Properties"]
    assert workflow["StateMachineType"] == "STANDARD"
    assert workflow["EncryptionConfiguration"]["Type"] == "CUSTOMER_MANAGED_KMS_KEY"
    pipe = template["Resources"]["AppointmentStreamPipe"]["Properties"]["TargetParameters"]
    assert pipe["StepFunctionStateMachineParameters"]["InvocationType"] == "FIRE_AND_FORGET"
    # Whoever starts an execution of an encrypted Standard workflow needs the key's data key.
    for role in ("PipeRole", "EventBridgeExecutionRole", "StepFunctionsExecutionRole"):
        assert "kms:GenerateDataKey" in granted(template["Resources"][role]), role
    with pytest.raises(ValueError, match="workflow_type"):
        ReminderProps(workflow_type="express")


def test_every_task_has_retries_and_a_timeout(definition: dict[str, Any]) -> None:
    tasks = [(name, state) for name, state in walk_states(definition["States"]) if state["Type"] == "Task"]
    assert len(tasks) == 5
    for name, state in tasks:
        assert state.get("TimeoutSeconds"), name
        assert state.get("Retry"), name
        if state["Resource"] == "${LambdaInvoke}":
            # Every handler is idempotent: every error is retried, the transient ones included.
            assert [retrier["ErrorEquals"] for retrier in state["Retry"]] == [["States.ALL"]], name


def test_task_timeouts_fit_their_functions(template: dict[str, Any], definition: dict[str, Any]) -> None:
    substitutions = template["Resources"]["NotificationWorkflow"]["Properties"]["DefinitionSubstitutions"]
    function_of = {f"${{{k}}}": v["Fn::GetAtt"][0] for k, v in substitutions.items() if "Fn::GetAtt" in v}
    for name, state in walk_states(definition["States"]):
        if state["Type"] == "Task" and state["Resource"] == "${LambdaInvoke}":
            function = function_of[state["Parameters"]["FunctionName"]]
            assert state["TimeoutSeconds"] > template["Resources"][function]["Properties"]["Timeout"], name
    assert definition["TimeoutSeconds"] <= 3600


def test_every_map_is_bounded_and_no_branch_failure_escapes(definition: dict[str, Any]) -> None:
    states = walk_states(definition["States"])
    maps = [state for _, state in states if state["Type"] == "Map"]
    assert maps and all(state.get("MaxConcurrency") for state in maps)
    for _, state in states:
        if state["Type"] == "Parallel":
            for branch in state["Branches"]:
                for _, inner in walk_states(branch["States"]):
                    if inner["Type"] == "Task":
                        assert inner["Catch"][0]["ErrorEquals"] == ["States.ALL"]


# ---- triggers -------------------------------------------------------------------------------


def test_pipe_is_bounded_and_keeps_what_it_cannot_deliver(template: dict[str, Any]) -> None:
    properties = template["Resources"]["AppointmentStreamPipe"]["Properties"]
    stream = properties["SourceParameters"]["DynamoDBStreamParameters"]
    # Express: the pipe waits for the run and retries (then dead-letters) a batch whose run failed.
    assert properties["TargetParameters"]["StepFunctionStateMachineParameters"]["InvocationType"] == "REQUEST_RESPONSE"
    # Keys only into the workflow, also from a table that streams whole images.
    template_text = properties["TargetParameters"]["InputTemplate"]
    assert set(re.findall(r"<\$\.([\w.]+)>", template_text)) == {
        "eventName",
        "dynamodb.Keys",
        "dynamodb.SequenceNumber",
    }
    assert 0 <= stream["MaximumRetryAttempts"] <= 10
    assert 60 <= stream["MaximumRecordAgeInSeconds"] <= 86400
    assert stream["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["PipeDeadLetterQueue", "Arn"]}}
    assert "FilterCriteria" not in properties["SourceParameters"], "every change concerns reminders"
    queue = template["Resources"]["PipeDeadLetterQueue"]["Properties"]
    assert queue["KmsMasterKeyId"] == KEY


def test_schedule_uses_the_parameter(template: dict[str, Any]) -> None:
    has_resource_properties(
        template,
        "AWS::Events::Rule",
        {
            "ScheduleExpression": {"Ref": "ScheduleExpression"},
            "Targets": [{"Arn": {"Ref": "NotificationWorkflow"}}],
        },
    )


# ---- alarms and outputs ---------------------------------------------------------------------


def test_alarms_notify_an_encrypted_topic_with_an_optional_subscription(template: dict[str, Any]) -> None:
    resource_count_is(template, "AWS::CloudWatch::Alarm", 5)
    for alarm in resources(template, "AWS::CloudWatch::Alarm").values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert template["Resources"]["AlarmTopic"]["Properties"]["KmsMasterKeyId"] == KEY
    subscription = template["Resources"]["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert template["Conditions"]["HasAlarmEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}


def test_a_reminder_late_beyond_the_setting_pages(template: dict[str, Any]) -> None:
    """The processor reports on every schedule run how long ago the oldest due reminder was due."""
    alarm = template["Resources"]["LateRemindersAlarm"]["Properties"]
    assert (alarm["MetricName"], alarm["Statistic"]) == ("OverdueSeconds", "Maximum")
    assert alarm["Namespace"] == {"Fn::Sub": "TapStack-${EnvironmentSuffix}"}
    assert alarm["Threshold"] == 15 * 60 == 60 * ReminderProps().late_after_minutes
    later = build_template(ReminderProps(late_after_minutes=45)).to_dict()
    assert later["Resources"]["LateRemindersAlarm"]["Properties"]["Threshold"] == 45 * 60


def test_the_workflow_is_watched_by_its_executions_not_by_every_lambda_attempt(template: dict[str, Any]) -> None:
    """Lambda's Errors counts attempts the workflow's retries absorbed; a failure that matters fails
    or times out the execution (or records a reminder FAILED, the third alarm)."""
    metrics = template["Resources"]["WorkflowErrorsAlarm"]["Properties"]["Metrics"]
    assert metrics[0] == {"Id": "total", "Expression": "SUM(METRICS())", "ReturnData": True}
    watched = {
        (m["MetricStat"]["Metric"]["MetricName"], json.dumps(m["MetricStat"]["Metric"]["Dimensions"][0]["Value"]))
        for m in metrics[1:]
    }
    assert watched == {
        ("ExecutionsFailed", '{"Ref": "NotificationWorkflow"}'),
        ("ExecutionsTimedOut", '{"Ref": "NotificationWorkflow"}'),
    }


SEED_OUTPUTS = [
    "AppointmentsTableName",
    "AppointmentsTableArn",
    "NotificationTopicArn",
    "NotificationWorkflowArn",
    "AppointmentProcessorFunctionArn",
    "EmailSenderFunctionArn",
    "SmsSenderFunctionArn",
    "StackName",
    "EnvironmentSuffix",
]


@pytest.mark.parametrize("name", [*SEED_OUTPUTS, "RemindersTableName", "AlarmTopicArn"])
def test_outputs_are_exported_under_the_stack_name(template: dict[str, Any], name: str) -> None:
    assert template["Outputs"][name]["Export"] == {"Name": {"Fn::Sub": "${AWS::StackName}-" + name}}
