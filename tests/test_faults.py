"""Faults are features: providers and the Reminders table refusing for a while, duplicates and
timeouts, end to end on the local runner with the template's own code, for both workflow types
where they behave differently.

A refusal that lasts (``tapstack.local.faults.Throttle``) refuses every call in a window of the
runner's clock; the clock moves a minute at a time, and each minute the pipe delivers what changed
and the schedule fires (``rate(1 minute)``), as in AWS. What the customers got is counted from what
SES and SNS accepted (moto keeps every message), per address.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tapstack import ReminderProps, build_template
from tapstack.local import LocalDeployment, load_template
from tapstack.local.faults import (
    DYNAMODB_THROTTLING,
    Throttle,
    dead_letters_waiting,
    replay_dead_letters,
    ses_refusing,
    sns_refusing,
    table_throttling,
    tally,
    throttle,
)
from tapstack.render import to_yaml
from tapstack.triggers import PIPE_MAXIMUM_RETRY_ATTEMPTS
from tests.support import DAY, HOUR, NOW, SENDER, appointment, put_appointment, reminder

MINUTE = 60
PROCESSOR = "AppointmentProcessorFunction"
#: Who is booked in the small fault runs: both channels (two customers), one channel each.
CUSTOMERS = {
    "both-1": {"customerPhone": "+15555550101"},
    "both-2": {"customerPhone": "+15555550102"},
    "email-only": {"customerPhone": "+15555550103", "notificationChannels": {"email"}},
    "sms-only": {"customerPhone": "+15555550104", "notificationChannels": {"sms"}},
}
WORKFLOW_TYPES = ["EXPRESS", "STANDARD"]


# ---- the stacks -----------------------------------------------------------------------------------


@functools.cache
def standard_template() -> dict[str, Any]:
    """The stand-alone template with ``ReminderProps(workflow_type="STANDARD")`` (each deployment
    copies it)."""
    return load_template(to_yaml(build_template(ReminderProps(workflow_type="STANDARD"))))


@pytest.fixture(scope="session")
def standard_template_data() -> dict[str, Any]:
    return standard_template()


def deploy_type(
    workflow_type: str, template_data: dict[str, Any], standard_template_data: dict[str, Any], **parameters: str
) -> LocalDeployment:
    """The template of that workflow type, its functions running the code the template inlines."""
    data = template_data if workflow_type == "EXPRESS" else standard_template_data
    return LocalDeployment(data, {"SenderEmail": SENDER, **parameters}, echo_logs=False)


@pytest.fixture(params=WORKFLOW_TYPES)
def stack(
    request: pytest.FixtureRequest, template_data: dict[str, Any], standard_template_data: dict[str, Any], clock: Any
) -> Iterator[LocalDeployment]:
    """The generated stack (EXPRESS) and its Standard variant, each in turn."""
    with deploy_type(request.param, template_data, standard_template_data) as deployment:
        assert deployment.state_machine_type == request.param
        yield deployment


@pytest.fixture
def express(template_data: dict[str, Any], clock: Any) -> Iterator[LocalDeployment]:
    with LocalDeployment(template_data, {"SenderEmail": SENDER}, echo_logs=False) as deployment:
        yield deployment


@pytest.fixture
def standard(standard_template_data: dict[str, Any], clock: Any) -> Iterator[LocalDeployment]:
    with LocalDeployment(standard_template_data, {"SenderEmail": SENDER}, echo_logs=False) as deployment:
        yield deployment


# ---- helpers shared with test_runtime.py -------------------------------------------------------------


def run_minutes(deployment: LocalDeployment, clock: Any, minutes: int) -> None:
    """``minutes`` minutes of the default schedule: each minute the clock moves on, the pipe
    delivers what changed and the schedule fires; each time until every execution has ended."""
    for _ in range(minutes):
        clock.shift(MINUTE)
        deployment.run_pipe()
        deployment.wait()
        deployment.run_schedule()
        deployment.wait()


def book_customers(deployment: LocalDeployment, starts_in: int, gap: int = MINUTE) -> dict[str, set[str]]:
    """Book ``CUSTOMERS`` ``starts_in`` seconds ahead, ``gap`` seconds apart; what each channel
    should deliver: the addresses of the customers who asked for it."""
    expected: dict[str, set[str]] = {"email": set(), "sms": set()}
    for number, (appointment_id, fields) in enumerate(CUSTOMERS.items()):
        item = appointment(appointment_id, starts_in + number * gap, **fields)
        put_appointment(deployment, item)
        channels = fields.get("notificationChannels", {"email", "sms"})
        if "email" in channels:
            expected["email"].add(item["customerEmail"])
        if "sms" in channels:
            expected["sms"].add(item["customerPhone"])
    return expected


def first_sent(deployment: LocalDeployment, sender: str) -> dict[str, float]:
    """When (virtual time) a sender first answered SENT for each reminder. A later invocation for the
    same reminder answers from the channel's mark without sending again."""
    sent: dict[str, float] = {}
    for invocation in deployment.monitor.invocations:
        if invocation.function == sender and (invocation.result or {}).get("status") == "SENT":
            sent.setdefault(invocation.event["reminderId"], invocation.at)
    return sent


def provider_calls(deployment: LocalDeployment, channel: str) -> int:
    """Calls the senders made to the provider: SES SendEmail, or SNS Publish to a phone number
    (accepted or refused)."""
    if channel == "email":
        return sum(1 for call in deployment.monitor.calls if call.operation == "SendEmail")
    return sum(1 for call in deployment.monitor.calls if call.operation == "Publish" and "PhoneNumber" in call.params)


def metric_lines(deployment: LocalDeployment, function: str) -> list[dict[str, Any]]:
    """The embedded-metric-format lines a function printed (its CloudWatch metrics)."""
    return [json.loads(line) for name, line in deployment.monitor.logs if name == function and '"_aws"' in line]


def deferred_outcomes(deployment: LocalDeployment) -> Counter[str]:
    """How often UpdateStatus deferred each reminder (its RemindersDeferred metric)."""
    return Counter(
        line["reminderId"]
        for line in metric_lines(deployment, "StatusUpdaterFunction")
        if line.get("RemindersDeferred")
    )


def pipe_calls(deployment: LocalDeployment, operation: str) -> int:
    pipe = deployment.pipe.logical_id
    return sum(1 for call in deployment.monitor.calls if call.function == pipe and call.operation == operation)


def logged(deployment: LocalDeployment, function: str, event: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for name, line in deployment.monitor.logs if name == function and line.startswith("{")]
    return [line for line in lines if line.get("event") == event]


def execution_statuses(deployment: LocalDeployment) -> Counter[str]:
    return Counter(e["status"] for e in deployment.wait())


# ---- a provider refusing for minutes ---------------------------------------------------------------

OUTAGES = {"email": (ses_refusing, "EmailSenderFunction"), "sms": (sns_refusing, "SmsSenderFunction")}


@pytest.mark.parametrize("channel", ["email", "sms"])
def test_a_provider_refusing_for_minutes_delivers_each_channel_once_after_it_recovers(
    stack: LocalDeployment, clock: Any, channel: str
) -> None:
    """SES (or SNS) throttles every send for five minutes while four reminders fall due. The
    refused channel is deferred, not failed: the reminder returns to the due index with a growing
    backoff, keeps the other channel (sent at once, never again), and a later run sends only what
    is missing. Each customer gets each channel they asked for exactly once; nothing is FAILED."""
    expected = book_customers(stack, DAY + 30)
    stack.run_pipe()
    stack.wait()
    refuse, sender = OUTAGES[channel]
    outage = refuse(stack, seconds=5 * MINUTE)
    other = "sms" if channel == "email" else "email"

    run_minutes(stack, clock, 10)

    assert outage.refused > 0, "the provider did refuse"
    result = tally(stack, expected)
    assert result.exactly_once_nothing_failed, (result.sent, result.states)
    assert result.states == Counter({"SENT": 4})
    assert execution_statuses(stack) == Counter({"SUCCEEDED": len(stack.executions())})
    # Nothing of the refused channel went out during the outage, all of it after; the other channel
    # went out at the first attempt, and the later runs did not send it again.
    assert outage.end is not None
    assert max(first_sent(stack, OUTAGES[other][1]).values()) < outage.end
    assert min(first_sent(stack, sender).values()) >= outage.end
    assert provider_calls(stack, other) == len(expected[other])
    assert provider_calls(stack, channel) == outage.refused + len(expected[channel])
    # The deferrals are on each record, as many as UpdateStatus reported, with their reason.
    deferred = deferred_outcomes(stack)
    for appointment_id, fields in CUSTOMERS.items():
        record = reminder(stack, f"{appointment_id}#1440")
        assert record is not None
        asked = fields.get("notificationChannels", {"email", "sms"})
        if channel in asked:
            assert record["deferrals"] == deferred[record["reminderId"]] >= 1, record
            assert record["deferReason"] == outage.code, record
            assert record[f"{channel}Result"]["status"] == "SENT"
        else:
            assert "deferrals" not in record and deferred[record["reminderId"]] == 0
        assert "dueShard" not in record and "attemptAt" not in record, "final: out of the due index"


def test_the_deferral_reason_names_the_providers_refusal(express: LocalDeployment, clock: Any) -> None:
    put_appointment(express, appointment("a1", DAY + 30, notificationChannels={"email"}))
    express.run_pipe()
    express.wait()
    ses_refusing(express, seconds=5 * MINUTE)
    run_minutes(express, clock, 1)
    record = reminder(express, "a1#1440")
    assert record is not None and record["deferrals"] == 1
    assert record["deferReason"] == "Throttling"


def test_an_appointment_that_starts_before_its_deferred_reminder_could_go_out_ends_failed(
    stack: LocalDeployment, clock: Any
) -> None:
    """Booked seven minutes ahead (its 24-hour reminder is due at once) while SES refuses for an
    hour: the email is deferred (tried at 0, 1, 3 and 6 minutes: the last backoff is cut to a minute
    before the appointment) until the
    appointment starts, then the reminder is FAILED with a reason that says so, and counted for the
    alarm. A customer whose SMS went out is not FAILED: the record says SENT, with the same reason
    for what is missing."""
    put_appointment(stack, appointment("email-only", 7 * MINUTE, notificationChannels={"email"}))
    put_appointment(stack, appointment("both", 7 * MINUTE, customerPhone="+15555550105"))
    ses_refusing(stack, seconds=HOUR)
    stack.run_pipe()
    stack.wait()

    run_minutes(stack, clock, 8)

    failed = reminder(stack, "email-only#1440")
    assert failed is not None
    assert (failed["state"], failed["reason"], failed["deferrals"]) == ("FAILED", "NotSentBeforeAppointment", 4)
    assert "emailResult" not in failed and "attemptAt" not in failed and "dueShard" not in failed
    partly = reminder(stack, "both#1440")
    assert partly is not None
    assert (partly["state"], partly["reason"], partly["smsResult"]["status"]) == (
        "SENT",
        "NotSentBeforeAppointment",
        "SENT",
    )
    assert "emailResult" not in partly
    result = tally(stack, {"sms": {"+15555550105"}})
    assert result.sent["email"] == Counter() and result.sent["sms"] == Counter({"+15555550105": 1})
    assert result.states == Counter({"FAILED": 1, "SENT": 1})


def test_a_deferral_never_waits_past_the_appointment(express: LocalDeployment, clock: Any) -> None:
    """Booked ten minutes ahead while SES refuses for eight: tried at 0, 1, 3 and 7 minutes, when the
    next backoff (8 minutes) would pass the appointment and is cut to 9 minutes; SES accepts again at
    8, and the customer gets the reminder at 9, not a FAILED record."""
    put_appointment(express, appointment("a1", 10 * MINUTE, notificationChannels={"email"}))
    ses_refusing(express, seconds=8 * MINUTE)
    express.run_pipe()
    express.wait()

    run_minutes(express, clock, 10)

    record = reminder(express, "a1#1440")
    assert record is not None and record["deferrals"] == 4
    assert record["state"] == "SENT", "tried again a minute before the appointment, after SES recovered"
    assert tally(express, {"email": {"a1@example.com"}}).exactly_once_nothing_failed


@pytest.mark.parametrize(
    ("fields", "fault", "channel", "reason"),
    [
        ({"notificationChannels": {"email"}}, ("ses", "SendEmail", "MessageRejected"), "email", "MessageRejected"),
        ({"notificationChannels": {"sms"}, "customerPhone": "555-0100"}, None, "sms", "InvalidPhoneNumber"),
    ],
)
def test_a_permanent_refusal_is_failed_at_once_not_deferred(
    stack: LocalDeployment,
    clock: Any,
    fields: dict[str, Any],
    fault: tuple[str, str, str] | None,
    channel: str,
    reason: str,
) -> None:
    """SES refusing the message for good, or a phone number that is no phone number: FAILED in the
    run that tried it, with the reason, out of the due index, counted for the alarm; no later run
    tries it again."""
    if fault is not None:
        service, operation, code = fault
        stack.inject(service, operation, code, times=5, message="Email address is not verified.")
    put_appointment(stack, appointment("a1", DAY - HOUR, **fields))
    stack.run_pipe()
    stack.wait()

    record = reminder(stack, "a1#1440")
    assert record is not None
    assert record["state"] == "FAILED" and record[f"{channel}Result"] == {
        "channel": channel,
        "status": "FAILED",
        "reason": reason,
        "token": record[f"{channel}Result"]["token"],
    }
    assert "deferrals" not in record and "attemptAt" not in record and "dueShard" not in record
    failures = [line for line in metric_lines(stack, "StatusUpdaterFunction") if line["RemindersFailed"]]
    assert [line["reminderId"] for line in failures] == ["a1#1440"]
    run_minutes(stack, clock, 10)
    assert provider_calls(stack, channel) == (1 if fault else 0), "tried once at most, never again"
    assert reminder(stack, "a1#1440") == record


# ---- the Reminders table throttling while changes are planned ------------------------------------


def test_a_batch_that_recovers_within_the_pipes_retries_is_planned_once(express: LocalDeployment) -> None:
    """Three short-notice bookings in one stream batch while the table refuses the processor's next
    four writes: the synchronous run fails (its invocations failed retryably, three times), the
    pipe bisects and retries, and every reminder is planned once and sent once; nothing is
    dead-lettered."""
    ids = ["a1", "a2", "a3"]
    for appointment_id in ids:
        put_appointment(
            express, appointment(appointment_id, DAY - HOUR, customerPhone=f"+1555555011{appointment_id[1]}")
        )
    refused = express.inject(
        "dynamodb",
        "UpdateItem",
        DYNAMODB_THROTTLING.code,
        times=4,
        function=PROCESSOR,
        message=DYNAMODB_THROTTLING.message,
    )

    express.run_pipe()

    assert refused.times == 0, "every refusal was used"
    errors = [i.error for i in express.monitor.invocations if i.function == PROCESSOR and i.error]
    assert [(e["errorType"], e["errorMessage"]) for e in errors] == [("RetryableError", DYNAMODB_THROTTLING.code)] * 4
    assert execution_statuses(express) == Counter({"FAILED": 1, "SUCCEEDED": 2})
    assert pipe_calls(express, "StartSyncExecution") == 3, "the batch of three, then its two halves"
    assert express.pipe.dead_letters == [] and dead_letters_waiting(express) == 0
    planned = Counter(line["reminderId"] for line in logged(express, PROCESSOR, "reminder_pending"))
    assert planned == Counter({f"{i}#1440": 1 for i in ids})
    result = tally(express, {"email": {f"{i}@example.com" for i in ids}, "sms": {f"+1555555011{i[1]}" for i in ids}})
    assert result.exactly_once_nothing_failed and result.states == Counter({"SENT": 3})


def test_a_planning_run_that_the_pipes_retries_absorbed_pages_nothing(express: LocalDeployment) -> None:
    """Issue 10: transient errors that retries absorbed do not page. The table refuses the
    processor's next four writes: the pipe's first run fails and the pipe's retries plan
    everything, with no dead letter. WorkflowErrorsAlarm watches ExecutionsFailed and
    ExecutionsTimedOut of the state machine, which Step Functions publishes per execution
    (https://docs.aws.amazon.com/step-functions/latest/dg/procedures-cw-metrics.html), summed over
    5 minutes, against its threshold; here they are counted from the runner's executions."""
    for appointment_id in ("a1", "a2", "a3"):
        put_appointment(
            express, appointment(appointment_id, DAY - HOUR, customerPhone=f"+1555555013{appointment_id[1]}")
        )
    express.inject(
        "dynamodb",
        "UpdateItem",
        DYNAMODB_THROTTLING.code,
        times=4,
        function=PROCESSOR,
        message=DYNAMODB_THROTTLING.message,
    )

    express.run_pipe()

    assert express.pipe.dead_letters == [] and reminder(express, "a1#1440") is not None, "the retries absorbed it"
    alarm = express.resources["WorkflowErrorsAlarm"].properties
    watched = {m["MetricStat"]["Metric"]["MetricName"] for m in alarm["Metrics"] if "MetricStat" in m}
    assert watched == {"ExecutionsFailed", "ExecutionsTimedOut"}
    statuses = execution_statuses(express)
    assert statuses["FAILED"] + statuses["TIMED_OUT"] >= 1, "the pipe's first run failed"
    # With Express, the alarm pages when executions fail in each of three 5-minute periods in a
    # row; the failures here, and their retries, all happened within one.
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (3, 3)
    started = [execution["startDate"].timestamp() for execution in express.wait()]
    assert max(started) - min(started) < 300


def complete_plan(record: dict[str, Any], starts: int, offset: int, sequence: str) -> bool:
    """A whole plan as the processor writes it in one conditional write (handlers/README.md, row 1)."""
    return (
        record["state"] == "PENDING"
        and record["appointmentTime"] == starts
        and record["dueAt"] == record["attemptAt"] == starts - 60 * offset
        and "dueShard" in record
        and record["version"] == sequence.zfill(40)
        and not {"claimToken", "emailResult", "smsResult", "sent"} & set(record)
    )


def test_table_throttling_beyond_the_retries_dead_letters_the_batch_and_nothing_is_half_planned(
    template_data: dict[str, Any], clock: Any
) -> None:
    """Two offsets, three bookings in one batch; the table lets three writes through, then throttles
    every write. Each invocation fails retryably, the workflow retries it, the pipe retries the
    batch (bisecting it) and dead-letters each booking it could not plan, which the alarm watches.
    What was written is whole plans only, nothing was claimed or sent, and each booking missing a
    plan is in a dead letter. Replayed once the table recovers, every reminder is planned once and
    sent once, at its time."""
    with LocalDeployment(
        template_data, {"SenderEmail": SENDER, "ReminderOffsetsMinutes": "1440,60"}, echo_logs=False
    ) as stack:
        ids = ["a1", "a2", "a3"]
        starts = NOW + 2 * DAY
        for appointment_id in ids:
            put_appointment(
                stack, appointment(appointment_id, 2 * DAY, customerPhone=f"+1555555012{appointment_id[1]}")
            )
        throttling = table_throttling(stack, after=3)

        assert stack.run_pipe() == []

        processor_errors = {
            (i.error["errorType"], i.error["errorMessage"])
            for i in stack.monitor.invocations
            if i.function == PROCESSOR and i.error
        }
        assert processor_errors == {("RetryableError", DYNAMODB_THROTTLING.code)}
        attempts = 1 + PIPE_MAXIMUM_RETRY_ATTEMPTS
        # [a1 a2 a3] fails and is halved; [a1 a2] fails and is halved; each single record gets its attempts.
        assert pipe_calls(stack, "StartSyncExecution") == 1 + 1 + 3 * attempts
        assert execution_statuses(stack) == Counter({"FAILED": 2 + 3 * attempts})
        assert dead_letters_waiting(stack) == 3, "PipeDeadLetterAlarm: ApproximateNumberOfMessagesVisible >= 1"
        alarm = stack.resources["PipeDeadLetterAlarm"].properties
        assert alarm["Dimensions"][0]["Value"] == stack.resources["PipeDeadLetterQueue"].attributes["QueueName"]

        sequences = stream_sequences(stack)
        written = {}
        for appointment_id in ids:
            for offset in (60, 1440):
                record = reminder(stack, f"{appointment_id}#{offset}")
                if record is not None:
                    assert complete_plan(record, starts, offset, sequences[appointment_id]), record
                    written[(appointment_id, offset)] = record
        assert len(written) == throttling.after == 3, "the writes that went through are whole plans"
        dead = [
            (int(m["DDBStreamBatchInfo"]["startSequenceNumber"]), int(m["DDBStreamBatchInfo"]["endSequenceNumber"]))
            for m in stack.pipe.dead_letters
        ]
        for appointment_id in ids:
            if not all((appointment_id, offset) in written for offset in (60, 1440)):
                number = int(sequences[appointment_id])
                assert any(first <= number <= last for first, last in dead), f"{appointment_id} is in a dead letter"
        senders = {"EmailSenderFunction", "SmsSenderFunction", "StatusUpdaterFunction"}
        assert not [i for i in stack.monitor.invocations if i.function in senders], "nothing claimed or sent"

        throttling.lift()
        replayed = replay_dead_letters(stack)

        assert len(replayed) == 3 and dead_letters_waiting(stack) == 0
        planned = Counter(line["reminderId"] for line in logged(stack, PROCESSOR, "reminder_pending"))
        assert planned == Counter({f"{i}#{o}": 1 for i in ids for o in (60, 1440)}), "each planned once"
        for appointment_id in ids:
            for offset in (60, 1440):
                record = reminder(stack, f"{appointment_id}#{offset}")
                assert record is not None and complete_plan(record, starts, offset, sequences[appointment_id])

        clock.shift(DAY)  # the 24-hour reminders are due
        run_minutes(stack, clock, 1)
        clock.shift(DAY - HOUR - 2 * MINUTE)  # the one-hour reminders are due
        run_minutes(stack, clock, 1)
        emails = {f"{i}@example.com" for i in ids}
        result = tally(stack, {"email": emails, "sms": {f"+1555555012{i[1]}" for i in ids}})
        assert result.sent["email"] == Counter(dict.fromkeys(emails, 2)), "one per offset"
        assert result.states == Counter({"SENT": 6})


def test_the_table_throttling_a_share_of_every_write_while_bookings_are_planned_sends_each_channel_once(
    stack: LocalDeployment, clock: Any
) -> None:
    """The third fault run at a small size: four short-notice bookings (due at once, so the pipe's
    own run plans, claims and sends them) reach the pipe while the Reminders table refuses 30 % of
    every function's writes: the processor's plans and claims, the senders' channel marks,
    UpdateStatus's outcome. Then the table recovers. An operator acts on what the alarms show: with
    Express, replays the pipe's dead letters; with Standard (the pipe does not wait for the run, so
    there are none), starts each failed planning run again with its input. The schedule then runs
    every minute. Each customer gets each channel exactly once, nothing is FAILED, and every
    deferral on a record is one that UpdateStatus reported, with its reason."""
    expected = book_customers(stack, DAY - HOUR, gap=0)
    throttling = throttle(stack, "dynamodb", "UpdateItem", DYNAMODB_THROTTLING, rate=0.3, seed=10)

    stack.run_pipe()
    stack.wait()
    throttling.lift()

    assert throttling.refused > 0, "the table did refuse"
    assert execution_statuses(stack)["FAILED"] >= 1, "a planning run failed past the workflow's retries"
    if stack.state_machine_type == "EXPRESS":
        assert pipe_calls(stack, "StartSyncExecution") > 1, "and the pipe retried its batch"
        replay_dead_letters(stack)
    else:
        kept_inputs = failed_planning_inputs(stack)
        assert kept_inputs, "the pipe does not retry a Standard run: its input is kept for a redrive"
        for kept in kept_inputs:
            stack.start_execution(kept)
    stack.wait()
    run_minutes(stack, clock, 15)

    result = tally(stack, expected)
    assert result.exactly_once_nothing_failed, (result.sent, result.states)
    assert result.states == Counter({"SENT": 4})
    deferred = deferred_outcomes(stack)
    for appointment_id in CUSTOMERS:
        record = reminder(stack, f"{appointment_id}#1440")
        assert record is not None
        assert record.get("deferrals", 0) == deferred[record["reminderId"]], record
        assert ("deferReason" in record) == (deferred[record["reminderId"]] > 0), record
    assert dead_letters_waiting(stack) == 0


def failed_planning_inputs(deployment: LocalDeployment) -> list[Any]:
    """The input of every failed execution started by the pipe (a list of changes), as a
    Standard execution's history keeps it for a redrive."""
    sfn = deployment.client("stepfunctions")
    inputs = [
        json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"])
        for e in deployment.wait()
        if e["status"] == "FAILED"
    ]
    return [kept for kept in inputs if isinstance(kept, list)]


def stream_sequences(deployment: LocalDeployment) -> dict[str, str]:
    """Each appointment's newest stream sequence number, read apart from the pipe."""
    streams = deployment.new_client("dynamodbstreams")
    arn = deployment.pipe.stream_arn
    found: dict[str, str] = {}
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
        for record in streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]:
            found[record["dynamodb"]["Keys"]["appointmentId"]["S"]] = record["dynamodb"]["SequenceNumber"]
    return found


def test_standard_a_failed_planning_run_is_not_retried_by_the_pipe_but_kept_for_redrive(
    standard: LocalDeployment,
) -> None:
    """With Standard the pipe starts the workflow asynchronously (FIRE_AND_FORGET): once the start
    succeeded the batch is delivered, so a planning run that fails is neither retried nor
    dead-lettered by the pipe. It fails the execution, which WorkflowErrorsAlarm watches, and the
    execution keeps its input (the keys) for a redrive. Started again with that input once the
    table recovers, it plans each reminder once."""
    for appointment_id in ("a1", "a2"):
        put_appointment(standard, appointment(appointment_id, 2 * DAY))
    throttling = table_throttling(standard)

    (arn,) = standard.run_pipe()

    assert execution_statuses(standard) == Counter({"FAILED": 1})
    assert pipe_calls(standard, "StartExecution") == 1 and pipe_calls(standard, "StartSyncExecution") == 0
    assert standard.pipe.dead_letters == [] and dead_letters_waiting(standard) == 0
    assert standard.run_pipe() == [], "the pipe moved on"
    errors = {i.error["errorType"] for i in standard.monitor.invocations if i.function == PROCESSOR and i.error}
    assert errors == {"RetryableError"} and throttling.refused == 3, "the workflow's own retries, then FAILED"
    assert reminder(standard, "a1#1440") is None and reminder(standard, "a2#1440") is None
    watched = standard.resources["WorkflowErrorsAlarm"].properties["Metrics"]
    assert {m["MetricStat"]["Metric"]["MetricName"] for m in watched[1:]} == {"ExecutionsFailed", "ExecutionsTimedOut"}

    kept = json.loads(standard.client("stepfunctions").describe_execution(executionArn=arn)["input"])
    assert [change["keys"] for change in kept] == [{"appointmentId": {"S": i}} for i in ("a1", "a2")]
    throttling.lift()
    # moto has no RedriveExecution: the same input in a new execution, which is what planning needs
    # (it is idempotent and keyed by the change's sequence number, not by the execution).
    standard.start_execution(kept)
    assert execution_statuses(standard) == Counter({"FAILED": 1, "SUCCEEDED": 1})
    planned = Counter(line["reminderId"] for line in logged(standard, PROCESSOR, "reminder_pending"))
    assert planned == Counter({"a1#1440": 1, "a2#1440": 1})


# ---- duplicates and timeouts ------------------------------------------------------------------------


def test_duplicated_express_starts_send_each_reminder_once(express: LocalDeployment, clock: Any) -> None:
    """Express runs an asynchronous start at least once: every schedule run started twice, with the
    same input, at the same moment. Claims and channel marks keep each channel to one message."""
    expected = book_customers(express, DAY + 30)
    express.run_pipe()
    express.wait()
    express.duplicate_express_starts(times=10)

    run_minutes(express, clock, 5)

    assert len(express.executions()) >= 1 + 2 * 5, "each schedule run twice"
    result = tally(express, expected)
    assert result.exactly_once_nothing_failed and result.states == Counter({"SENT": 4})


def test_a_sender_that_times_out_is_deferred_then_sends_once(express: LocalDeployment, clock: Any) -> None:
    """The email sender times out on every attempt of one run (Lambda.Unknown, which the workflow
    retries): nothing went out that its channel mark does not know of, so the channel is deferred,
    and the next attempt sends it once."""
    put_appointment(express, appointment("a1", DAY + 30, notificationChannels={"email"}))
    express.run_pipe()
    express.wait()
    express.fail_function("EmailSenderFunction", times=3, error_type="Lambda.Unknown", message="Task timed out")

    run_minutes(express, clock, 3)

    record = reminder(express, "a1#1440")
    assert record is not None
    assert (record["state"], record["deferrals"], record["deferReason"]) == ("SENT", 1, "Lambda.Unknown")
    assert tally(express, {"email": {"a1@example.com"}}).exactly_once_nothing_failed


def test_a_throttle_counts_what_it_refused(express: LocalDeployment, clock: Any) -> None:
    """The fault itself: a window on the runner's clock, a share of the calls, after the first few."""
    outage = ses_refusing(express, seconds=2 * MINUTE)
    assert isinstance(outage, Throttle) and outage.function == "EmailSenderFunction"
    assert (outage.start, outage.end) == (NOW, NOW + 2 * MINUTE)
    assert outage.matches("EmailSenderFunction", "ses", "SendEmail")
    assert not outage.matches("SmsSenderFunction", "ses", "SendEmail")
    clock.shift(2 * MINUTE)
    assert not outage.matches("EmailSenderFunction", "ses", "SendEmail"), "over when its window ends"
    assert (outage.seen, outage.refused) == (2, 1)
    share = table_throttling(express, rate=0.5, after=2, seed=7)
    answers = [share.matches(PROCESSOR, "dynamodb", "UpdateItem") for _ in range(200)]
    assert answers[:2] == [False, False] and 70 < sum(answers) < 130
    share.lift()
    assert not any(share.matches(PROCESSOR, "dynamodb", "UpdateItem") for _ in range(20))
