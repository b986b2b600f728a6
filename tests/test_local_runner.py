"""The local runner itself: intrinsic functions, clear refusals, Lambda semantics, the pipe, the CLI."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tapstack.__main__ import main
from tapstack.local import FunctionError, LocalDeployment, UnsupportedTemplate, load_template
from tapstack.local.resolve import Resolver
from tapstack.local.simulation import Scenario, ScenarioError
from tests.support import DAY, appointment, put_appointment


def resolver(template: dict[str, Any] | None = None, **parameters: str) -> Resolver:
    resources = {"Table": ("Appointments-dev", {"Arn": "arn:aws:dynamodb:eu-west-1:1:table/Appointments-dev"})}
    return Resolver(
        template or {},
        parameters,
        {"AWS::Region": "eu-west-1", "AWS::Partition": "aws", "AWS::AccountId": "1", "AWS::StackName": "s"},
        ref=lambda name: resources[name][0],
        get_att=lambda name, attribute: resources[name][1][attribute],
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"Ref": "Env"}, "dev"),
        ({"Ref": "AWS::Region"}, "eu-west-1"),
        ({"Ref": "Table"}, "Appointments-dev"),
        ({"Fn::GetAtt": ["Table", "Arn"]}, "arn:aws:dynamodb:eu-west-1:1:table/Appointments-dev"),
        ({"Fn::GetAtt": "Table.Arn"}, "arn:aws:dynamodb:eu-west-1:1:table/Appointments-dev"),
        ({"Fn::Sub": "x-${Env}-${AWS::Partition}"}, "x-dev-aws"),
        ({"Fn::Sub": "${Table.Arn}/index/*"}, "arn:aws:dynamodb:eu-west-1:1:table/Appointments-dev/index/*"),
        ({"Fn::Sub": ["${A}:${Env}", {"A": {"Ref": "AWS::AccountId"}}]}, "1:dev"),
        ({"Fn::Join": ["/", ["a", {"Ref": "Env"}]]}, "a/dev"),
        ({"Fn::Select": [1, {"Fn::Split": ["@", "r@example.com"]}]}, "example.com"),
        ({"Fn::If": ["IsDev", "yes", "no"]}, "yes"),
        ([1, {"Ref": "AWS::NoValue"}, 2], [1, 2]),
        ({"A": {"Ref": "AWS::NoValue"}, "B": 1}, {"B": 1}),
    ],
)
def test_resolves_intrinsic_functions(value: Any, expected: Any) -> None:
    template = {
        "Conditions": {
            "IsDev": {"Fn::And": [{"Fn::Equals": [{"Ref": "Env"}, "dev"]}, {"Fn::Not": [{"Fn::Equals": ["a", "b"]}]}]}
        }
    }
    assert resolver(template, Env="dev").resolve(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"Fn::ImportValue": "shared"}, "does not support Fn::ImportValue"),
        ({"Fn::GetAtt": ["Missing", "Arn"]}, "cannot resolve Fn::GetAtt Missing.Arn"),
        ({"Ref": "Missing"}, "cannot resolve Ref Missing"),
        ({"Fn::If": ["Undefined", 1, 2]}, "'Undefined' is used but not defined"),
    ],
)
def test_refuses_what_it_cannot_resolve_and_says_where(value: Any, message: str) -> None:
    with pytest.raises(UnsupportedTemplate, match=message) as error:
        resolver().resolve(value, "Resources/Thing/Properties/X")
    assert "Resources/Thing/Properties/X" in str(error.value) or "Conditions" in str(error.value)


def test_refuses_a_missing_parameter_and_an_unknown_resource_type(template_text: str) -> None:
    with pytest.raises(UnsupportedTemplate, match="parameter SenderEmail has no default"):
        LocalDeployment(template_text)
    with pytest.raises(UnsupportedTemplate, match="not declared"):
        LocalDeployment(template_text, {"SenderEmail": "r@example.com", "Nope": "1"})
    template = load_template(template_text)
    template["Resources"]["Bucket"] = {"Type": "AWS::S3::Bucket", "Properties": {}}
    with (
        pytest.raises(UnsupportedTemplate, match=r"cannot deploy resource types \['AWS::S3::Bucket'\]"),
        LocalDeployment(template, {"SenderEmail": "r@example.com"}),
    ):
        pass


def test_deploys_every_resource_with_template_properties(deployment: LocalDeployment) -> None:
    template = deployment.template
    assert set(deployment.resources) == set(template["Resources"]) - {"AlarmEmailSubscription"}, (
        "the subscription's condition is false with the default empty AlarmEmail"
    )
    table = deployment.client("dynamodb").describe_table(TableName=deployment.table_name("RemindersTable"))["Table"]
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == ["DueIndex"]
    ttl = deployment.client("dynamodb").describe_time_to_live(TableName=deployment.table_name("RemindersTable"))
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expiresAt"
    function = deployment.client("lambda").get_function(FunctionName="AppointmentProcessor-dev")
    variables = function["Configuration"]["Environment"]["Variables"]
    assert variables["REMINDERS_TABLE"] == "Reminders-dev" and variables["REMINDER_OFFSETS_MINUTES"] == "1440"
    definition = json.loads(
        deployment.client("stepfunctions").describe_state_machine(stateMachineArn=deployment.state_machine_arn)[
            "definition"
        ]
    )
    resource = definition["States"]["ProcessAppointments"]["Resource"]
    assert resource == "arn:aws:states:::lambda:invoke"
    assert definition["States"]["ProcessAppointments"]["Parameters"]["FunctionName"].endswith(
        ":function:AppointmentProcessor-dev"
    )


def test_a_raised_exception_is_a_lambda_function_error(deployment: LocalDeployment) -> None:
    function = deployment.functions["AppointmentProcessor-dev"]
    function.source = (
        "class RetryableError(Exception):\n    pass\ndef handler(event, context):\n"
        "    raise RetryableError('throttled')\n"
    )
    function._module = None
    with pytest.raises(FunctionError) as error:
        deployment.invoke("AppointmentProcessorFunction", {})
    assert error.value.error["errorType"] == "RetryableError"
    assert error.value.error["errorMessage"] == "throttled"


def test_the_pipe_filters_batches_and_keeps_its_place(deployment: LocalDeployment) -> None:
    for number in range(12):
        put_appointment(deployment, appointment(f"a{number}", 3 * DAY))
    batches = deployment.pipe.batches()
    assert [len(batch) for batch in batches] == [10, 2]
    assert {record["eventName"] for batch in batches for record in batch} == {"INSERT"}
    assert batches[0][0]["eventSourceARN"].endswith("/stream/" + batches[0][0]["eventSourceARN"].split("/")[-1])
    assert deployment.pipe.batches() == [], "records already delivered are not delivered again"
    assert deployment.pipe.matches({"eventName": "REMOVE"}), "no filter: every change concerns reminders"


def test_a_batch_that_cannot_start_the_workflow_goes_to_the_dead_letter_queue(deployment: LocalDeployment) -> None:
    put_appointment(deployment, appointment("a1", 3 * DAY))
    deployment.pipe.target = deployment.state_machine_arn + "-missing"
    assert deployment.run_pipe() == []
    queue = deployment.resources["PipeDeadLetterQueue"].ref
    (message,) = deployment.client("sqs").receive_message(QueueUrl=queue)["Messages"]
    body = json.loads(message["Body"])
    assert body["context"]["condition"] == "RetryAttemptsExhausted"
    assert body["DDBStreamBatchInfo"]["batchSize"] == 1
    attempts = [
        c
        for c in deployment.monitor.calls
        if c.function == "AppointmentStreamPipe" and c.operation == "StartSyncExecution"
    ]
    assert len(attempts) == 1 + deployment.pipe.max_retries


# ---- faults -----------------------------------------------------------------------------------


def test_a_function_failure_is_an_unhandled_error_that_the_workflow_retries(deployment: LocalDeployment) -> None:
    deployment.fail_function("AppointmentProcessorFunction", times=2, error_type="RetryableError", message="later")
    deployment.run_schedule()
    (execution,) = deployment.wait()
    assert execution["status"] == "SUCCEEDED", "the Task's Retry outlived two failures"
    answers = [i for i in deployment.monitor.invocations if i.function == "AppointmentProcessorFunction"]
    assert [(i.error or {}).get("errorType") for i in answers] == ["RetryableError", "RetryableError", None]
    assert answers[0].error == {"errorType": "RetryableError", "errorMessage": "later", "stackTrace": []}


def test_a_function_failure_fails_a_direct_invocation_once(deployment: LocalDeployment) -> None:
    deployment.fail_function("StatusUpdaterFunction")
    with pytest.raises(FunctionError, match="InjectedFailure: injected by the local runner"):
        deployment.invoke("StatusUpdaterFunction", {})
    with pytest.raises(KeyError, match="not a function"):
        deployment.fail_function("AppointmentsTable")


def test_throttled_schedule_starts_are_retried_as_eventbridge_retries_a_target(deployment: LocalDeployment) -> None:
    rule = "ScheduledNotificationRule"
    deployment.throttle_starts(rule, times=3)
    arn = deployment.run_schedule()
    (execution,) = deployment.wait()
    assert execution["executionArn"] == arn
    calls = [c for c in deployment.monitor.calls if c.function == rule]
    assert [c.operation for c in calls] == ["StartExecution"] * 4


def test_a_schedule_start_throttled_past_the_retry_policy_is_dropped(template_data: dict[str, Any], clock: Any) -> None:
    template = copy.deepcopy(template_data)
    template["Resources"]["ScheduledNotificationRule"]["Properties"]["Targets"][0]["RetryPolicy"] = {
        "MaximumRetryAttempts": 2
    }
    with LocalDeployment(template, {"SenderEmail": "r@example.com"}, echo_logs=False) as deployment:
        deployment.throttle_starts("ScheduledNotificationRule", times=3)
        assert deployment.run_schedule() is None
        assert deployment.executions() == []
        assert deployment.run_schedule() is not None, "the next firing starts the workflow"


# ---- scenarios and the command line ----------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "expected an object with a list of steps"),
        ({"steps": [{"at": "soon", "book": {"appointmentId": "a", "in": "1h"}}]}, "expected a duration"),
        ({"steps": [{"book": {"appointmentId": "a"}}]}, "expected an object with appointmentId and in"),
        ({"steps": [{"book": {"appointmentId": "a", "in": "1h"}, "cancel": "a"}]}, "exactly one of"),
        ({"start": "2026-03-02T09:00:00", "steps": []}, "needs a time zone"),
        ({"steps": [{"at": "2h", "cancel": "a"}], "until": "1h"}, "before the last step"),
    ],
)
def test_a_bad_scenario_gets_a_clear_error(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        Scenario.parse(data)


def test_simulate_the_shipped_scenario(capsys: pytest.CaptureFixture[str], tmp_path: Path, template_text: str) -> None:
    template = tmp_path / "TapStack.yml"
    template.write_text(template_text)
    assert main(["simulate", "--template", str(template)]) == 0
    out = capsys.readouterr().out
    assert "time shown to the customer" in out
    assert "paris-checkup  1440 min  email    SENT" in out
    assert "CET (Europe/Paris)" in out
    assert "FAILED execution" not in out
    for line in out.splitlines():
        if line.startswith("2026") and "will-cancel" in line:
            assert "CANCELLED AppointmentCancelled" in line
        if "will-delete" in line:
            assert "SENT" not in line


def test_simulate_exits_non_zero_when_an_execution_fails(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, template_text: str
) -> None:
    broken = load_template(template_text)
    broken["Resources"]["AppointmentProcessorFunction"]["Properties"]["Code"]["ZipFile"] = (
        "def handler(event, context):\n    raise ValueError('broken on purpose')\n"
    )
    template = tmp_path / "broken.yml"
    template.write_text(yaml.safe_dump(broken))
    scenario = tmp_path / "one.json"
    scenario.write_text(json.dumps({"steps": [{"book": {"appointmentId": "a1", "in": "2h"}}], "tick": "1h"}))
    assert main(["simulate", str(scenario), "--template", str(template)]) == 1
    assert "FAILED execution" in capsys.readouterr().out


def test_simulate_reports_a_missing_scenario_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["simulate", str(tmp_path / "nope.json")]) == 2
    assert "no such scenario file" in capsys.readouterr().err
