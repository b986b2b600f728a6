"""The runtime end to end on the local runner: the Express default and the Standard variant where
they differ, a reminder on time at the default schedule, an empty run that stays nearly free, and
alarms whose metrics mean something.

Times here are the runner's virtual clock (time-machine), which moves a minute per schedule run:
these tests check when things happen in the system's own time, never how fast the runner is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tapstack.local import LocalDeployment
from tapstack.local.faults import ses_refusing, tally
from tests.support import DAY, NOW, SENDER, appointment, put_appointment, reminder
from tests.test_faults import (
    MINUTE,
    PROCESSOR,
    execution_statuses,
    first_sent,
    metric_lines,
    pipe_calls,
    run_minutes,
    standard_template,
)


@pytest.fixture
def standard(standard_template_data: dict[str, Any], clock: Any) -> Iterator[LocalDeployment]:
    with LocalDeployment(standard_template_data, {"SenderEmail": SENDER}, echo_logs=False) as deployment:
        yield deployment


@pytest.fixture
def express(template_data: dict[str, Any], clock: Any) -> Iterator[LocalDeployment]:
    with LocalDeployment(template_data, {"SenderEmail": SENDER}, echo_logs=False) as deployment:
        yield deployment


@pytest.fixture(scope="session")
def standard_template_data() -> dict[str, Any]:
    return standard_template()


# ---- Express and Standard where they differ ------------------------------------------------------------


def test_express_the_pipe_waits_for_the_run_that_plans_and_sends_a_short_notice_reminder(
    express: LocalDeployment,
) -> None:
    """Express: the pipe starts the workflow synchronously (StartSyncExecution, REQUEST_RESPONSE),
    so when it has delivered a batch, that batch's run has ended: here it has sent the reminder."""
    described = express.client("stepfunctions").describe_state_machine(stateMachineArn=express.state_machine_arn)
    assert described["type"] == "EXPRESS"
    put_appointment(express, appointment("soon", DAY - 3600))

    (arn,) = express.run_pipe()

    assert (pipe_calls(express, "StartSyncExecution"), pipe_calls(express, "StartExecution")) == (1, 0)
    assert {e["executionArn"]: e["status"] for e in express.executions()} == {arn: "SUCCEEDED"}
    record = reminder(express, "soon#1440")
    assert record is not None and record["state"] == "SENT", "sent before the pipe moved on"


def test_standard_an_end_to_end_reminder(standard: LocalDeployment, clock: Any) -> None:
    """Standard: the pipe starts the workflow asynchronously (StartExecution, FIRE_AND_FORGET); the
    schedule finds the reminder when it is due and sends each channel once."""
    described = standard.client("stepfunctions").describe_state_machine(stateMachineArn=standard.state_machine_arn)
    assert described["type"] == "STANDARD"
    put_appointment(standard, appointment("a1", DAY + 90))
    put_appointment(standard, appointment("soon", DAY - 3600, customerPhone="+15555550106"))

    standard.run_pipe()
    standard.wait()

    assert (pipe_calls(standard, "StartExecution"), pipe_calls(standard, "StartSyncExecution")) == (1, 0)
    planned = reminder(standard, "a1#1440")
    assert planned is not None and planned["state"] == "PENDING"
    run_minutes(standard, clock, 2)
    expected = {"email": {"a1@example.com", "soon@example.com"}, "sms": {"+15555550123", "+15555550106"}}
    result = tally(standard, expected)
    assert result.exactly_once_nothing_failed and result.states == Counter({"SENT": 2})
    assert execution_statuses(standard) == Counter({"SUCCEEDED": 3}), "the pipe's run and two schedule runs"
    sent_at = first_sent(standard, "EmailSenderFunction")
    assert sent_at["a1#1440"] == NOW + 2 * MINUTE, "the first schedule run after it was due"


def test_standard_execution_data_is_encrypted_with_the_stacks_key(standard: LocalDeployment) -> None:
    """A Standard workflow keeps its executions' inputs in its history: the template encrypts them
    with the stack's key, and the deployed state machine should say so."""
    described = standard.client("stepfunctions").describe_state_machine(stateMachineArn=standard.state_machine_arn)
    (key,) = standard.of_type("AWS::KMS::Key")
    assert described["encryptionConfiguration"] == {
        "type": "CUSTOMER_MANAGED_KMS_KEY",
        "kmsKeyId": key.attributes["Arn"],
        "kmsDataKeyReusePeriodSeconds": 300,
    }


# ---- on time, nearly free when idle -----------------------------------------------------------------


def test_at_the_default_schedule_every_reminder_goes_out_within_a_minute_of_its_due_time(
    express: LocalDeployment, clock: Any
) -> None:
    """Thirty reminders due at scattered seconds over ten minutes, the schedule at its default
    rate(1 minute): each provider call comes after its reminder was due and less than 60 s later."""
    assert express.parameters["ScheduleExpression"] == "rate(1 minute)"
    # Spread over the ten minutes at uneven seconds (7919 is prime: no two reminders share a second).
    due = {f"a{n:02}#1440": NOW + 1 + (n * 7919) % 599 for n in range(30)}
    for reminder_id, due_at in due.items():
        put_appointment(express, appointment(reminder_id.split("#")[0], due_at - NOW + DAY))
    express.run_pipe()
    express.wait()

    run_minutes(express, clock, 11)

    for function in ("EmailSenderFunction", "SmsSenderFunction"):
        sent = first_sent(express, function)
        assert set(sent) == set(due)
        lateness = [sent[reminder_id] - due_at for reminder_id, due_at in due.items()]
        assert min(lateness) >= 0 and max(lateness) < 60, lateness


def test_a_schedule_run_that_finds_nothing_reads_only_the_empty_due_index(express: LocalDeployment) -> None:
    """What each idle minute costs: one execution, one processor invocation, one Query per shard of
    the due index (each bounded), nothing read from the appointments, nothing written, and one
    metric line (OverdueSeconds 0) for the lateness alarm."""
    put_appointment(express, appointment("later", 3 * DAY))
    express.run_pipe()
    express.wait()
    calls, invocations, executions = (
        len(express.monitor.calls),
        len(express.monitor.invocations),
        len(express.executions()),
    )

    express.run_schedule()
    express.wait()

    assert len(express.executions()) == executions + 1
    assert [i.function for i in express.monitor.invocations[invocations:]] == [PROCESSOR]
    processor_calls = [c for c in express.monitor.calls[calls:] if c.function == PROCESSOR]
    shards = int(express.functions[express.resources[PROCESSOR].ref].environment["DUE_INDEX_SHARDS"])
    assert [c.operation for c in processor_calls] == ["Query"] * shards
    assert all("Limit" in c.params and c.items_read == 0 for c in processor_calls)
    overdue = [line for line in metric_lines(express, PROCESSOR) if "OverdueSeconds" in line]
    assert overdue[-1]["OverdueSeconds"] == 0


# ---- alarms that mean something ------------------------------------------------------------------


def test_the_lateness_metric_sees_an_outage_and_retried_throttling_pages_nothing(
    express: LocalDeployment, clock: Any
) -> None:
    """SES throttled twice, which the workflow's retries absorb: the reminder goes out, no execution
    fails, nothing is counted failed or late. SES refusing for twenty minutes: the schedule runs
    report the oldest due reminder ever later, past the alarm's 15 minutes, and 0 once it is sent."""
    put_appointment(express, appointment("absorbed", DAY + 30, notificationChannels={"email"}))
    express.run_pipe()
    express.wait()
    express.inject("ses", "SendEmail", "Throttling", times=2, message="Maximum sending rate exceeded.")
    run_minutes(express, clock, 1)
    record = reminder(express, "absorbed#1440")
    assert record is not None and record["state"] == "SENT" and "deferrals" not in record
    assert execution_statuses(express) == Counter({"SUCCEEDED": len(express.executions())})
    outcomes = metric_lines(express, "StatusUpdaterFunction")
    assert [(line["RemindersSent"], line["RemindersFailed"], line["RemindersDeferred"]) for line in outcomes] == [
        (1, 0, 0)
    ]

    put_appointment(express, appointment("outage", DAY + 2 * MINUTE, notificationChannels={"email"}))
    express.run_pipe()
    express.wait()
    ses_refusing(express, seconds=20 * MINUTE)
    run_minutes(express, clock, 35)

    overdue = [line["OverdueSeconds"] for line in metric_lines(express, PROCESSOR) if "OverdueSeconds" in line]
    threshold = express.resources["LateRemindersAlarm"].properties["Threshold"]
    assert max(overdue) >= threshold == 15 * MINUTE, "LateRemindersAlarm would page"
    assert overdue[-1] == 0, "and clears once the reminder is sent"
    assert tally(express, {"email": {"absorbed@example.com", "outage@example.com"}}).exactly_once_nothing_failed
    assert execution_statuses(express) == Counter({"SUCCEEDED": len(express.executions())}), "no execution failed"


def test_a_short_notice_reminder_deferred_once_is_not_reported_an_hour_late(
    express: LocalDeployment, clock: Any
) -> None:
    """Booked 23 hours ahead, so its 24-hour reminder was 'due' an hour before anyone booked it. The
    pipe's run finds SES throttled past the workflow's retries and defers it a minute; the next
    schedule run sends it. The lateness alarm's metric should say about a minute, not an hour."""
    put_appointment(express, appointment("soon", DAY - 3600, notificationChannels={"email"}))
    express.inject("ses", "SendEmail", "Throttling", times=3, message="Maximum sending rate exceeded.")
    express.run_pipe()
    express.wait()
    record = reminder(express, "soon#1440")
    assert record is not None and record["deferrals"] == 1

    run_minutes(express, clock, 1)

    assert tally(express, {"email": {"soon@example.com"}}).exactly_once_nothing_failed
    overdue = [line["OverdueSeconds"] for line in metric_lines(express, PROCESSOR) if "OverdueSeconds" in line]
    threshold = express.resources["LateRemindersAlarm"].properties["Threshold"]
    assert max(overdue) < threshold, overdue
