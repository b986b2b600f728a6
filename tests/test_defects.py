"""One test per row of the seed's defect table (../shared/DESIGN.md); each fails on the seed's behaviour."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tapstack import ReminderProps, build_template
from tapstack.local import LocalDeployment, load_template
from tapstack.render import to_yaml
from tests.assertions import granted, resources
from tests.support import DAY, HOUR, appointment, put_appointment, reminder, sent_emails, sent_sms
from tests.test_end_to_end import assert_all_succeeded, run


@pytest.fixture(scope="module")
def template(template_text: str) -> dict[str, Any]:
    return load_template(template_text)


def processor_calls(deployment: LocalDeployment, operation: str) -> list[Any]:
    return [
        c for c in deployment.monitor.calls if c.function == "AppointmentProcessorFunction" and c.operation == operation
    ]


def test_1_due_reminders_are_found_by_a_key_condition_not_a_filter(deploy: Any, clock: Any) -> None:
    stack = deploy(inlined=True)
    put_appointment(stack, appointment("a1", DAY + HOUR))
    run(stack)
    clock.shift(HOUR)
    run(stack)
    queries = processor_calls(stack, "Query")
    assert queries and all("attemptAt <= :n" in q.params["KeyConditionExpression"] for q in queries)
    assert not any("FilterExpression" in q.params for q in queries)
    assert len(sent_emails(stack)) == 1
    assert_all_succeeded(stack)


def test_2_finding_due_reminders_reads_only_what_is_due(deploy: Any, clock: Any) -> None:
    stack = deploy(inlined=True)
    put_appointment(stack, appointment("due", DAY + HOUR))
    for number in range(30):
        put_appointment(stack, appointment(f"later{number}", 3 * DAY))
    run(stack)
    clock.shift(HOUR)
    stack.monitor.calls.clear()
    run(stack)
    assert not processor_calls(stack, "Scan")
    assert sum(c.items_read for c in processor_calls(stack, "Query")) == 1
    assert len(sent_emails(stack)) == 1


def test_3_sms_to_a_phone_number_is_authorised_and_sent(deploy: Any, template: dict[str, Any]) -> None:
    assert granted(template["Resources"]["SmsSenderRole"])["sns:Publish"] == ["*"]
    stack = deploy(inlined=True)
    put_appointment(stack, appointment("a1", DAY - HOUR))
    stack.run_pipe()
    assert_all_succeeded(stack)
    assert [phone for phone, _ in sent_sms(stack)] == ["+15555550123"]


def test_4_the_topic_carries_a_delivery_event(deploy: Any) -> None:
    stack = deploy(inlined=True)
    put_appointment(stack, appointment("a1", DAY - HOUR))
    stack.run_pipe()
    assert_all_succeeded(stack)
    publishes = [c for c in stack.monitor.calls if c.operation == "Publish" and "TopicArn" in c.params]
    assert [c.params["TopicArn"] for c in publishes] == [stack.resources["NotificationTopic"].ref]


def test_5_the_booking_is_never_written_and_failures_are_not_successes(deploy: Any) -> None:
    stack = deploy(inlined=True)
    booked = appointment("a1", DAY - HOUR, customerEmail="not-an-address", customerPhone="555-0100")
    put_appointment(stack, booked)
    stack.run_pipe()
    assert_all_succeeded(stack)
    assert stack.item("AppointmentsTable", {"appointmentId": "a1"}) == booked
    record = reminder(stack, "a1#1440")
    assert record["state"] == "FAILED"
    assert (record["emailResult"]["reason"], record["smsResult"]["reason"]) == ("InvalidAddress", "InvalidPhoneNumber")
    appointments = stack.table_name("AppointmentsTable")
    writes = [
        c
        for c in stack.monitor.calls
        if c.params.get("TableName") == appointments and c.operation in ("PutItem", "UpdateItem", "DeleteItem")
    ]
    assert writes == []


def test_6_the_systems_own_writes_do_not_trigger_the_pipe(deploy: Any) -> None:
    stack = deploy(inlined=True)
    put_appointment(stack, appointment("a1", DAY - HOUR))
    assert len(stack.run_pipe()) == 1
    assert_all_succeeded(stack)
    assert reminder(stack, "a1#1440")["state"] == "SENT"
    assert stack.run_pipe() == [], "recording the outcome wrote nothing to the appointments stream"
    put_appointment(stack, appointment("a1", DAY - HOUR, customerName="Pat Renamed"))  # an unrelated change
    stack.run_pipe()
    assert_all_succeeded(stack)
    assert len(sent_emails(stack)) == 1


def test_7_overlapping_runs_claim_a_reminder_once(deploy: Any, clock: Any) -> None:
    stack = deploy(inlined=True)
    put_appointment(stack, appointment("a1", DAY + HOUR))
    run(stack)
    clock.shift(HOUR)
    put_appointment(stack, appointment("a1", DAY, customerName="Pat Again"))
    started = [*stack.pipe.poll(), stack.run_schedule(), stack.run_schedule(), stack.run_schedule()]
    assert len(started) == 4
    assert_all_succeeded(stack)
    assert len(sent_emails(stack)) == 1 and len(sent_sms(stack)) == 1


def test_8_each_function_has_its_own_narrow_role(template: dict[str, Any]) -> None:
    functions = resources(template, "AWS::Lambda::Function")
    roles = {f["Properties"]["Role"]["Fn::GetAtt"][0] for f in functions.values()}
    assert len(roles) == len(functions) == 4
    email = granted(template["Resources"]["EmailSenderRole"])
    assert "*" not in email["ses:SendEmail"]
    assert all("ses:SendEmail" not in granted(template["Resources"][role]) for role in roles - {"EmailSenderRole"})


def test_9_no_execution_data_or_event_in_the_logs(deploy: Any, template: dict[str, Any]) -> None:
    logging = template["Resources"]["NotificationWorkflow"]["Properties"]["LoggingConfiguration"]
    assert (logging["Level"], logging["IncludeExecutionData"]) == ("ERROR", False)
    stack = deploy(inlined=True)
    put_appointment(stack, appointment("a1", DAY - HOUR))
    stack.run_pipe()
    assert_all_succeeded(stack)
    logged = "\n".join(line for _, line in stack.monitor.logs)
    assert logged and "a1@example.com" not in logged and "+15555550123" not in logged and "Pat Example" not in logged


def test_10_the_runtime_is_current(template: dict[str, Any]) -> None:
    runtimes = {f["Properties"]["Runtime"] for f in resources(template, "AWS::Lambda::Function").values()}
    assert runtimes == {"python3.14"}


@pytest.mark.parametrize("logical_id", ["AppointmentsTable", "RemindersTable"])
def test_11_tables_survive_stack_changes(template: dict[str, Any], logical_id: str) -> None:
    table = template["Resources"][logical_id]
    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("RetainExceptOnCreate", "Retain")
    assert table["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["Properties"]["SSESpecification"]["SSEEnabled"] is True


def test_12_a_large_due_set_is_split_over_executions(clock: Any) -> None:
    # A batch of 4 reads one reminder from each of the 8 due-index shards: at most 8 per execution.
    text = to_yaml(build_template(ReminderProps(claim_batch_size=4)))
    with LocalDeployment(text, {"SenderEmail": "reminders@example.com"}) as stack:
        for number in range(11):
            put_appointment(stack, appointment(f"a{number:02}", DAY + HOUR))
        run(stack)
        clock.shift(HOUR)
        stack.run_schedule()
        executions = stack.wait()
        assert {e["status"] for e in executions} == {"SUCCEEDED"}
        sfn = stack.client("stepfunctions")
        claimed, batches = [], 0
        for execution in executions:
            history = sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)["events"]
            started = [e for e in history if e["type"] == "MapStateStarted"]
            for event in history:
                if event["type"] == "TaskSucceeded" and "jobs" in event["taskSucceededEventDetails"]["output"]:
                    jobs = json.loads(event["taskSucceededEventDetails"]["output"])["Payload"]["jobs"]
                    assert len(jobs) <= 8
                    batches += bool(jobs)
                    claimed += [job["reminderId"] for job in jobs]
            assert len(started) <= 1
        assert batches >= 2, "more than one execution delivered"
        assert sorted(claimed) == sorted(f"a{n:02}#1440" for n in range(11))
        assert len(sent_emails(stack)) == 11


def test_13_customers_see_their_own_local_time(deploy: Any) -> None:
    stack = deploy(inlined=True)
    put_appointment(stack, appointment("paris", DAY - HOUR, timeZone="Europe/Paris"))
    put_appointment(stack, appointment("newyork", DAY - HOUR, timeZone="America/New_York"))
    stack.run_pipe()
    assert_all_succeeded(stack)
    bodies = {e["to"][0]: e["body"] for e in sent_emails(stack)}
    assert "Tuesday 3 March 2026 at 09:00 CET (Europe/Paris)" in bodies["paris@example.com"]
    assert "Tuesday 3 March 2026 at 03:00 EST (America/New_York)" in bodies["newyork@example.com"]


def test_14_a_pipe_batch_of_stream_records_starts_a_working_execution(deploy: Any) -> None:
    """The pipe hands the workflow one JSON array of changes (keys only, through its input
    template), and waits for the Express run it starts."""
    stack = deploy(inlined=True)
    put_appointment(stack, appointment("a1", DAY - HOUR))
    (batch,) = stack.pipe.batches()
    changes = json.loads(stack.pipe.target_input(batch))
    assert isinstance(changes, list) and set(changes[0]) == {"eventName", "keys", "sequenceNumber"}
    assert changes[0]["eventName"] == "INSERT" and changes[0]["keys"] == {"appointmentId": {"S": "a1"}}
    assert stack.start_sync_execution(changes)["status"] == "SUCCEEDED"
    assert reminder(stack, "a1#1440")["state"] == "SENT"
