"""The pipe as AWS runs it: input transformation, invocation types, retries, bisection, dead letters.

Two shapes of the template: as generated (``express_template``: EXPRESS, REQUEST_RESPONSE and the
input template that passes the keys only), and a Standard one (``standard_template``: STANDARD,
FIRE_AND_FORGET, raw stream records when it has no input template). The processor is a stub that
takes any batch (``accept_any_batch``): these tests are about the pipe, not the processor.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tapstack.local import LocalDeployment, UnsupportedTemplate
from tapstack.local.pipe import InputTemplate
from tapstack.local.workflows import EXPRESS_TIME_LIMIT_SECONDS
from tapstack.timing import RETRY_ATTEMPTS
from tapstack.triggers import STREAM_INPUT_TEMPLATE
from tests.assertions import resources
from tests.support import DAY, SENDER, appointment, delete_appointment, put_appointment

#: The template's input template: the event name, the keys and the change's sequence number.
KEYS_ONLY = STREAM_INPUT_TEMPLATE
PROCESSOR = "AppointmentProcessorFunction"
#: Stands in for the processor: takes a batch of any shape and answers as the workflow expects,
#: except a batch holding a change of an appointment whose id says "poison": that fails.
ANY_BATCH_PROCESSOR = (
    "def handler(event, context):\n"
    "    if 'poison' in str(event):\n"
    "        raise ValueError('a poison record')\n"
    "    return {'jobs': [], 'more': False}\n"
)

Deploy = Callable[..., LocalDeployment]

#: A Lambda task's attempts in one execution: the first and its retries (every error is retried).
ATTEMPTS = RETRY_ATTEMPTS + 1


def only(template: dict[str, Any], resource_type: str) -> dict[str, Any]:
    (resource,) = resources(template, resource_type).values()
    properties: dict[str, Any] = resource["Properties"]
    return properties


def pipe_properties(template: dict[str, Any]) -> dict[str, Any]:
    return only(template, "AWS::Pipes::Pipe")


def stream_parameters(template: dict[str, Any]) -> dict[str, Any]:
    parameters: dict[str, Any] = pipe_properties(template)["SourceParameters"]["DynamoDBStreamParameters"]
    return parameters


def express_template(template_data: dict[str, Any], invocation: str = "REQUEST_RESPONSE") -> dict[str, Any]:
    """The generated template with an EXPRESS state machine, the given invocation type and the
    keys-only input template."""
    template = copy.deepcopy(template_data)
    only(template, "AWS::StepFunctions::StateMachine")["StateMachineType"] = "EXPRESS"
    pipe_properties(template)["TargetParameters"] = {
        "InputTemplate": KEYS_ONLY,
        "StepFunctionStateMachineParameters": {"InvocationType": invocation},
    }
    return accept_any_batch(template)


def standard_template(template_data: dict[str, Any], input_template: str | None = None) -> dict[str, Any]:
    """The generated template with a STANDARD state machine started FIRE_AND_FORGET, and the given
    input template (none: the pipe passes the raw stream records)."""
    template = copy.deepcopy(template_data)
    only(template, "AWS::StepFunctions::StateMachine")["StateMachineType"] = "STANDARD"
    target: dict[str, Any] = {"StepFunctionStateMachineParameters": {"InvocationType": "FIRE_AND_FORGET"}}
    if input_template is not None:
        target["InputTemplate"] = input_template
    pipe_properties(template)["TargetParameters"] = target
    return accept_any_batch(template)


def accept_any_batch(template: dict[str, Any]) -> dict[str, Any]:
    template["Resources"][PROCESSOR]["Properties"]["Code"]["ZipFile"] = ANY_BATCH_PROCESSOR
    return template


@pytest.fixture
def stack(template_data: dict[str, Any], clock: Any) -> Iterator[Deploy]:
    """Deploy a template (the generated one by default) on the frozen clock."""
    with ExitStack() as stack:

        def make(template: dict[str, Any] | None = None, **parameters: Any) -> LocalDeployment:
            deployment = LocalDeployment(
                template or template_data,
                {"SenderEmail": SENDER, **parameters},
                use_handler_files=template is None,  # an edited template runs its own inlined code
                echo_logs=False,
            )
            return stack.enter_context(deployment)

        yield make


@pytest.fixture
def express(stack: Deploy, template_data: dict[str, Any]) -> LocalDeployment:
    return stack(express_template(template_data))


def execution_inputs(deployment: LocalDeployment, arns: list[str] | None = None) -> list[Any]:
    sfn = deployment.client("stepfunctions")
    arns = arns if arns is not None else [e["executionArn"] for e in deployment.wait()]
    return [json.loads(sfn.describe_execution(executionArn=arn)["input"]) for arn in arns]


def pipe_calls(deployment: LocalDeployment, operation: str) -> int:
    return sum(
        1 for c in deployment.monitor.calls if c.function == deployment.pipe.logical_id and c.operation == operation
    )


def stream(deployment: LocalDeployment) -> list[dict[str, Any]]:
    """Every record of the appointments stream, read apart from the pipe."""
    streams = deployment.client("dynamodbstreams")
    arn = deployment.pipe.stream_arn
    records: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
        page = streams.get_records(ShardIterator=iterator["ShardIterator"])
        records += [{**record, "shardId": shard["ShardId"]} for record in page["Records"]]
    return records


def dead_letter_messages(deployment: LocalDeployment) -> list[dict[str, Any]]:
    queue = deployment.resources[deployment.logical_id("AWS::SQS::Queue", "PipeDeadLetterQueue")].ref
    messages = deployment.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(message["Body"]) for message in messages]


def keys(appointment_id: str, record: dict[str, Any]) -> dict[str, Any]:
    return {
        "eventName": record["eventName"],
        "keys": {"appointmentId": {"S": appointment_id}},
        "sequenceNumber": record["dynamodb"]["SequenceNumber"],
    }


# ---- input ------------------------------------------------------------------------------------


def test_standard_fire_and_forget_receives_the_raw_records_as_one_array(
    stack: Deploy, template_data: dict[str, Any]
) -> None:
    deployment = stack(standard_template(template_data))
    put_appointment(deployment, appointment("a1", 3 * DAY))
    (arn,) = deployment.run_pipe()
    (batch,) = execution_inputs(deployment, [arn])
    assert isinstance(batch, list) and len(batch) == 1, "a batch of one is still a JSON array"
    assert batch[0]["eventName"] == "INSERT"
    assert batch[0]["dynamodb"]["Keys"] == {"appointmentId": {"S": "a1"}}


def test_the_express_workflow_receives_the_batch_transformed_to_keys_only(express: LocalDeployment) -> None:
    put_appointment(express, appointment("a1", 3 * DAY))
    put_appointment(express, appointment("a1", 4 * DAY))
    delete_appointment(express, "a1")
    (arn,) = express.run_pipe()
    insert, modify, remove = stream(express)
    (batch,) = execution_inputs(express, [arn])
    assert batch == [keys("a1", insert), keys("a1", modify), keys("a1", remove)]
    assert [record["eventName"] for record in batch] == ["INSERT", "MODIFY", "REMOVE"]
    text = json.dumps(batch)
    for private in ("@example.com", "+1555", "Pat Example", "Europe/Paris", "NewImage", "OldImage"):
        assert private not in text, f"{private} reached the workflow's input"


# ---- invocation types -------------------------------------------------------------------------


def test_fire_and_forget_delivers_the_batch_when_the_start_succeeds(
    stack: Deploy, template_data: dict[str, Any]
) -> None:
    deployment = stack(standard_template(template_data))
    deployment.fail_function(PROCESSOR, times=100, error_type="PlanningBroken")
    put_appointment(deployment, appointment("a1", 3 * DAY))
    (arn,) = deployment.run_pipe()
    (execution,) = deployment.wait()
    assert execution["executionArn"] == arn
    assert execution["status"] == "FAILED", "the execution fails after the pipe has moved on"
    assert pipe_calls(deployment, "StartExecution") == 1
    assert deployment.pipe.dead_letters == []
    assert deployment.run_pipe() == [], "a delivered batch is not delivered again"


def test_request_response_with_a_standard_state_machine_is_refused_at_deploy(template_data: dict[str, Any]) -> None:
    for target_parameters in (
        {"StepFunctionStateMachineParameters": {"InvocationType": "REQUEST_RESPONSE"}},
        {},  # REQUEST_RESPONSE is the default
    ):
        template = standard_template(template_data)
        pipe_properties(template)["TargetParameters"] = target_parameters
        with (
            pytest.raises(UnsupportedTemplate, match=r"REQUEST_RESPONSE.*STANDARD") as refused,
            LocalDeployment(template, {"SenderEmail": SENDER}),
        ):
            pass
        assert "API_PipeTargetStateMachineParameters.html" in str(refused.value)
        assert "Resources/AppointmentStreamPipe" in str(refused.value)


def test_start_sync_execution_on_a_standard_state_machine_is_refused(
    stack: Deploy, template_data: dict[str, Any]
) -> None:
    deployment = stack(standard_template(template_data))
    with pytest.raises(ClientError) as refused:
        deployment.start_sync_execution([])
    assert refused.value.response["Error"]["Code"] == "StateMachineTypeNotSupported"
    assert deployment.executions() == [], "nothing ran"


def test_start_sync_execution_answers_with_the_outcome_of_an_express_execution(
    express: LocalDeployment, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    described = express.client("stepfunctions").describe_state_machine(stateMachineArn=express.state_machine_arn)
    assert express.state_machine_type == described["type"] == "EXPRESS"
    succeeded = express.start_sync_execution([])
    assert succeeded["status"] == "SUCCEEDED"
    assert json.loads(succeeded["output"]) == {"jobs": [], "more": False}
    assert succeeded["input"] == "[]" and "error" not in succeeded

    # Every attempt of the execution (the workflow retries every error of a Lambda task).
    express.fail_function(PROCESSOR, times=ATTEMPTS, error_type="PlanningBroken", message="no plan")
    failed = express.start_sync_execution([])
    assert (failed["status"], failed["error"]) == ("FAILED", "PlanningBroken")
    assert "no plan" in failed["cause"] and "output" not in failed

    function = express.functions[express.resources[PROCESSOR].ref]
    run = function.invoke

    def six_minutes(event: Any) -> Any:
        clock.shift(EXPRESS_TIME_LIMIT_SECONDS + 60)
        return run(event)

    monkeypatch.setattr(function, "invoke", six_minutes)
    timed_out = express.start_sync_execution([])
    assert (timed_out["status"], timed_out["error"]) == ("TIMED_OUT", "States.Timeout")
    assert "output" not in timed_out
    assert [e["status"] for e in express.executions()].count("TIMED_OUT") == 1


def test_a_standard_execution_has_no_five_minute_limit(
    stack: Deploy, clock: Any, monkeypatch: pytest.MonkeyPatch, template_data: dict[str, Any]
) -> None:
    deployment = stack(standard_template(template_data))
    function = deployment.functions[deployment.resources[PROCESSOR].ref]
    run = function.invoke

    def six_minutes(event: Any) -> Any:
        clock.shift(EXPRESS_TIME_LIMIT_SECONDS + 60)
        return run(event)

    monkeypatch.setattr(function, "invoke", six_minutes)
    deployment.run_schedule()
    (execution,) = deployment.wait()
    assert execution["status"] == "SUCCEEDED"


# ---- retries and dead letters -------------------------------------------------------------------


def test_a_failed_synchronous_execution_is_retried_until_the_fault_clears(express: LocalDeployment) -> None:
    express.fail_function(PROCESSOR, times=2 * ATTEMPTS, error_type="PlanningBroken")  # two whole executions
    put_appointment(express, appointment("a1", 3 * DAY))
    (taken,) = express.run_pipe()
    executions = {e["executionArn"]: e["status"] for e in express.wait()}
    assert sorted(executions.values()) == ["FAILED", "FAILED", "SUCCEEDED"]
    assert executions[taken] == "SUCCEEDED"
    assert len({json.dumps(batch) for batch in execution_inputs(express)}) == 1, "each attempt had the same batch"
    assert express.pipe.dead_letters == []


def test_a_batch_that_keeps_failing_is_dead_lettered_after_the_documented_attempts(
    express: LocalDeployment, template_data: dict[str, Any]
) -> None:
    attempts = 1 + int(stream_parameters(template_data)["MaximumRetryAttempts"])
    failure = express.fail_function(PROCESSOR, times=100, error_type="PlanningBroken")
    put_appointment(express, appointment("a1", 3 * DAY))
    assert express.run_pipe() == []
    assert pipe_calls(express, "StartSyncExecution") == attempts
    assert [e["status"] for e in express.wait()] == ["FAILED"] * attempts

    (message,) = dead_letter_messages(express)
    assert message == express.pipe.dead_letters[0]
    (record,) = stream(express)
    assert message["context"] == {"partnerResourceArn": express.pipe.arn, "condition": "RetryAttemptsExhausted"}
    assert message["version"] == "1.0" and message["timestamp"] == "2026-03-02T09:00:00Z"
    assert message["DDBStreamBatchInfo"] == {
        "shardId": record["shardId"],
        "startSequenceNumber": record["dynamodb"]["SequenceNumber"],
        "endSequenceNumber": record["dynamodb"]["SequenceNumber"],
        "approximateArrivalOfFirstRecord": "2026-03-02T09:00:00Z",
        "approximateArrivalOfLastRecord": "2026-03-02T09:00:00Z",
        "batchSize": 1,
        "streamArn": express.pipe.stream_arn,
    }
    assert "appointmentId" not in json.dumps(message), "the stream position, not the record"

    # The stream position moved past the dead-lettered batch: the next change goes through alone.
    failure.times = 0
    put_appointment(express, appointment("a2", 3 * DAY))
    (taken,) = express.run_pipe()
    (batch,) = execution_inputs(express, [taken])
    assert [record["keys"]["appointmentId"]["S"] for record in batch] == ["a2"]


def test_a_throttled_start_is_retried_within_the_retry_budget(stack: Deploy, template_data: dict[str, Any]) -> None:
    deployment = stack(standard_template(template_data))
    deployment.throttle_starts(deployment.pipe.logical_id, times=2)
    put_appointment(deployment, appointment("a1", 3 * DAY))
    assert len(deployment.run_pipe()) == 1
    assert pipe_calls(deployment, "StartExecution") == 3
    assert deployment.pipe.dead_letters == []


def test_bisection_isolates_the_record_that_fails_and_delivers_the_others(express: LocalDeployment) -> None:
    # A batch holding the poison record fails every time; halves of it are tried until it is alone.
    for appointment_id in ("a0", "a1", "poison", "a3"):
        put_appointment(express, appointment(appointment_id, 3 * DAY))
    taken = express.run_pipe()
    assert [[r["keys"]["appointmentId"]["S"] for r in batch] for batch in execution_inputs(express, taken)] == [
        ["a0", "a1"],
        ["a3"],
    ]
    # [a0 a1 bad a3] fails → [a0 a1] delivered; [bad a3] fails → [bad] fails 1 + 5 times and is
    # dead-lettered; [a3] delivered. Splitting uses no retry.
    assert pipe_calls(express, "StartSyncExecution") == 1 + 1 + 1 + 6 + 1
    bad = stream(express)[2]
    (message,) = express.pipe.dead_letters
    assert message["DDBStreamBatchInfo"]["batchSize"] == 1
    assert message["DDBStreamBatchInfo"]["startSequenceNumber"] == bad["dynamodb"]["SequenceNumber"]


def test_without_bisection_the_whole_batch_is_retried_and_dead_lettered(
    stack: Deploy, template_data: dict[str, Any]
) -> None:
    template = express_template(template_data)
    del stream_parameters(template)["OnPartialBatchItemFailure"]
    deployment = stack(template)
    for appointment_id in ("a0", "poison", "a2"):
        put_appointment(deployment, appointment(appointment_id, 3 * DAY))
    assert deployment.run_pipe() == []
    assert pipe_calls(deployment, "StartSyncExecution") == 6
    first, _, last = stream(deployment)
    (message,) = deployment.pipe.dead_letters
    info = message["DDBStreamBatchInfo"]
    assert (info["batchSize"], info["startSequenceNumber"], info["endSequenceNumber"]) == (
        3,
        first["dynamodb"]["SequenceNumber"],
        last["dynamodb"]["SequenceNumber"],
    )


def test_a_target_that_does_not_answer_holds_the_shard_without_using_retries(express: LocalDeployment) -> None:
    # A connection that fails is a pipe internal error: retried without limit, not counted.
    express.inject(
        "stepfunctions", "StartSyncExecution", "EndpointConnectionError", times=8, function="AppointmentStreamPipe"
    )
    put_appointment(express, appointment("a1", 3 * DAY))
    for _ in range(4):
        assert express.run_pipe() == []
    put_appointment(express, appointment("a2", 3 * DAY))
    for _ in range(4):
        assert express.run_pipe() == []
    assert express.pipe.dead_letters == [], "8 unanswered attempts, more than the 6 a failing batch gets"
    (taken,) = express.run_pipe()
    (batch,) = execution_inputs(express, [taken])
    assert [record["keys"]["appointmentId"]["S"] for record in batch] == ["a1", "a2"], "in stream order, in one batch"


def test_records_older_than_the_maximum_age_are_dead_lettered(
    express: LocalDeployment, clock: Any, template_data: dict[str, Any]
) -> None:
    express.inject(
        "stepfunctions", "StartSyncExecution", "ConnectTimeoutError", times=100, function="AppointmentStreamPipe"
    )
    put_appointment(express, appointment("a1", 3 * DAY))
    assert express.run_pipe() == []
    calls = pipe_calls(express, "StartSyncExecution")
    clock.shift(int(stream_parameters(template_data)["MaximumRecordAgeInSeconds"]) + 1)
    assert express.run_pipe() == []
    assert pipe_calls(express, "StartSyncExecution") == calls, "an expired record is not sent"
    (message,) = express.pipe.dead_letters
    assert message["context"]["condition"] == "RecordAgeExceeded"
    assert message["DDBStreamBatchInfo"]["approximateArrivalOfFirstRecord"] == "2026-03-02T09:00:00Z"


def test_a_dead_letter_topic_gets_the_message(stack: Deploy, template_data: dict[str, Any]) -> None:
    template = express_template(template_data)
    topic = next(iter(resources(template, "AWS::SNS::Topic")))
    stream_parameters(template)["DeadLetterConfig"] = {"Arn": {"Ref": topic}}
    deployment = stack(template)
    deployment.fail_function(PROCESSOR, times=6 * ATTEMPTS)  # the first execution and the pipe's five retries
    put_appointment(deployment, appointment("a1", 3 * DAY))
    assert deployment.run_pipe() == []
    (publish,) = [
        c for c in deployment.monitor.calls if c.function == "AppointmentStreamPipe" and c.operation == "Publish"
    ]
    assert publish.params["TopicArn"] == deployment.resources[topic].ref
    assert json.loads(publish.params["Message"]) == deployment.pipe.dead_letters[0]


# ---- at least once ------------------------------------------------------------------------------


def test_a_duplicated_express_start_runs_the_same_batch_twice(stack: Deploy, template_data: dict[str, Any]) -> None:
    deployment = stack(express_template(template_data, invocation="FIRE_AND_FORGET"))
    deployment.duplicate_express_starts(times=1)
    put_appointment(deployment, appointment("a1", 3 * DAY))
    (arn,) = deployment.run_pipe()
    first, second = execution_inputs(deployment)
    assert arn in {e["executionArn"] for e in deployment.executions()}
    assert first == second and first[0]["keys"]["appointmentId"]["S"] == "a1"
    put_appointment(deployment, appointment("a2", 3 * DAY))
    deployment.run_pipe()
    assert len(deployment.wait()) == 3, "only the next start was duplicated"


def test_a_synchronous_start_is_never_duplicated(express: LocalDeployment) -> None:
    express.duplicate_express_starts(times=1)
    put_appointment(express, appointment("a1", 3 * DAY))
    express.run_pipe()
    assert len(express.wait()) == 1, "a synchronous Express execution runs at most once"
    express.run_schedule()  # an asynchronous start takes the duplicate
    assert len(express.wait()) == 3


def test_a_standard_start_is_never_duplicated(stack: Deploy, template_data: dict[str, Any]) -> None:
    deployment = stack(standard_template(template_data))
    deployment.duplicate_express_starts(times=1)
    deployment.run_schedule()
    assert len(deployment.wait()) == 1


# ---- the input template ---------------------------------------------------------------------------

RECORD = {
    "eventName": "MODIFY",
    "dynamodb": {"Keys": {"id": {"S": "a1"}}, "SequenceNumber": "42", "SizeBytes": 9, "Tags": ["x", "y"]},
}
RESERVED = {"aws.pipes.pipe-name": "p", "aws.pipes.pipe-arn": "arn:p"}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ('{"id": "<$.dynamodb.Keys.id.S>"}', {"id": "a1"}),  # quoted: written as it is
        ('{"id": <$.dynamodb.Keys.id.S>}', {"id": "a1"}),  # unquoted: Pipes adds the quotes
        ('{"size": <$.dynamodb.SizeBytes>}', {"size": 9}),
        ('{"size": "<$.dynamodb.SizeBytes> bytes"}', {"size": "9 bytes"}),
        ('{"keys": <$.dynamodb.Keys>}', {"keys": {"id": {"S": "a1"}}}),
        ('{"tag": "<$.dynamodb.Tags[1]>"}', {"tag": "y"}),
        ('{"pipe": <aws.pipes.pipe-name>, "arn": "<aws.pipes.pipe-arn>"}', {"pipe": "p", "arn": "arn:p"}),
        ('{"event": <aws.pipes.event.json>}', {"event": RECORD}),
        ("<$.dynamodb.Keys>", {"id": {"S": "a1"}}),
        ('[<$.eventName>, "<$.eventName>"]', ["MODIFY", "MODIFY"]),
    ],
)
def test_the_input_template_writes_values_as_pipes_does(template: str, expected: Any) -> None:
    assert json.loads(InputTemplate(template).render(RECORD, RESERVED)) == expected


def test_values_are_not_escaped_so_a_quote_breaks_the_record() -> None:
    record = {"dynamodb": {"Keys": {"id": {"S": 'a"1'}}}}
    text = InputTemplate('{"id": "<$.dynamodb.Keys.id.S>"}').render(record, {})
    assert text == '{"id": "a"1"}'
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("Hello, <$.eventName>", "not free text"),
        ('{"all": <$.dynamodb.Keys.*>}', "dot notation with array"),
        ('{"event": <aws.pipes.event>}', "does not fill <aws.pipes.event>"),
        ('{"enrichment": <aws.pipes.enrichment-arn>}', "does not fill"),
        ('{"event": "<aws.pipes.event.json>"}', "only be the value of a JSON field"),
        ('{"key1": "value1" "key2": <$.eventName>}', "not JSON"),
        ('{"key1": "value1", "key2": <$.eventName>,}', "not JSON"),
    ],
)
def test_the_input_template_refuses_what_the_runner_does_not_copy(template: str, message: str) -> None:
    with pytest.raises(UnsupportedTemplate, match=message):
        InputTemplate(template)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ('{"missing": <$.dynamodb.NewImage.id.S>}', "has no"),
        ('{"keys": "<$.dynamodb.Keys>"}', "between quotes"),
    ],
)
def test_the_input_template_refuses_a_record_it_cannot_render(template: str, message: str) -> None:
    with pytest.raises(UnsupportedTemplate, match=message):
        InputTemplate(template).render(RECORD, RESERVED)


def test_an_unsupported_input_template_is_refused_at_deploy(template_data: dict[str, Any]) -> None:
    template = express_template(template_data)
    pipe_properties(template)["TargetParameters"]["InputTemplate"] = "Changed: <$.eventName>"
    with (
        pytest.raises(UnsupportedTemplate, match="AppointmentStreamPipe/TargetParameters/InputTemplate"),
        LocalDeployment(template, {"SenderEmail": SENDER}),
    ):
        pass


def test_an_id_with_quotes_reaches_the_workflow_intact(express: LocalDeployment) -> None:
    """The template's keys go in as an object, which Pipes writes as JSON: unlike a quoted string
    value, which it does not escape, a quote or a backslash in an id cannot break the record."""
    put_appointment(express, appointment('a "quoted" \\ id', 3 * DAY))
    (arn,) = express.run_pipe()
    (batch,) = execution_inputs(express, [arn])
    assert batch[0]["keys"] == {"appointmentId": {"S": 'a "quoted" \\ id'}}
