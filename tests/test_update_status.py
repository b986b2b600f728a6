"""UpdateStatus on moto (handlers/update_status.py): rows 10 and 11 of the protocol in
handlers/README.md. The outcome recorded on the reminder, or the deferral that returns it to the due
index; the delivery event on NotificationTopic (final outcomes only, no personal data); the
embedded-metric-format line; nothing at all when the claim is no longer the job's; and every
transient failure, connection errors and lost answers included, raised for the workflow to retry."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tapstack.local import LocalDeployment
from tapstack.local.deployment import FunctionError
from tests.support import (
    APPOINTMENT_TIME,
    HOUR,
    NOW,
    claimed_reminder,
    function_global,
    job,
    lose_answers,
    reminder,
    sent_key,
    stored,
)

FUNCTION = "StatusUpdaterFunction"
RID = "a1#1440"
TOKEN = "9f" * 16
OTHER = "7c" * 16
NAMESPACE = "TapStack-dev"
METRICS = ["RemindersSent", "RemindersFailed", "RemindersSkipped", "RemindersDeferred"]
SENT_EMAIL = {"channel": "email", "status": "SENT", "messageId": "m-email"}
SENT_SMS = {"channel": "sms", "status": "SENT", "messageId": "m-sms"}
#: The marks the senders left: the email went out (row 8); the SMS mark of an attempt that died.
EMAIL_MARK = {"status": "SENT", "token": TOKEN, "attempt": "a-email", "messageId": "m-email"}
SMS_MARK = {"status": "SENDING", "token": TOKEN, "attempt": "a-sms", "until": str(float(NOW + 30))}
#: The first deferral waits a minute, each next one twice as long, up to 15 minutes.
BACKOFF_SECONDS = [60, 120, 240, 480, 900, 900]


def email(status: str, reason: str) -> dict[str, str]:
    return {"channel": "email", "status": status, "reason": reason}


def sms(status: str, reason: str) -> dict[str, str]:
    return {"channel": "sms", "status": status, "reason": reason}


def claim(deployment: LocalDeployment, token: str | None = TOKEN, **fields: Any) -> dict[str, Any]:
    """The reminder as the senders leave it: claimed (SENDING, leased, in the due index), the email
    sent and marked, the SMS marked by an attempt that died."""
    marks = {"emailResult": EMAIL_MARK, "smsResult": SMS_MARK, "sent": {sent_key("email"), sent_key("sms")}}
    return claimed_reminder(deployment, token, **{"updatedAt": NOW - 60, **marks, **fields})


def claim_for(deployment: LocalDeployment, delivery: list[dict[str, str]]) -> dict[str, Any]:
    """As ``claim``, with the email's mark as its sender leaves it for ``delivery``: SENT only when
    it was sent, none when the sender answered without marking (no address, not requested...)."""
    email_sent = any(result["channel"] == "email" and result["status"] == "SENT" for result in delivery)
    return claim(deployment) if email_sent else claim(deployment, emailResult=None)


def update(
    deployment: LocalDeployment, delivery: list[dict[str, str]], deferrals: int = 0, token: str = TOKEN
) -> dict[str, Any]:
    """One invocation, as the workflow's UpdateStatus task makes it after the Parallel state."""
    result: dict[str, Any] = deployment.invoke(FUNCTION, job(token, deferrals=deferrals, delivery=delivery))
    return result


def refused_retryably(deployment: LocalDeployment, delivery: list[dict[str, str]]) -> str:
    with pytest.raises(FunctionError) as raised:
        update(deployment, delivery)
    assert raised.value.error["errorType"] == "RetryableError"
    return str(raised.value.error["errorMessage"])


def recorded(result: dict[str, str], token: str = TOKEN) -> dict[str, str]:
    """A channel's result as UpdateStatus stores it: the delivery's result and the claim's token
    (the map repeats the channel's name, which handlers/README.md does not list)."""
    return {**result, "token": token}


def printed(deployment: LocalDeployment) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(log lines, metric lines) the function printed so far: every line one JSON object."""
    lines = [json.loads(line) for function, line in deployment.monitor.logs if function == FUNCTION]
    return [x for x in lines if "_aws" not in x], [x for x in lines if "_aws" in x]


def counted(deployment: LocalDeployment) -> list[dict[str, Any]]:
    """The counts of every metric line printed so far."""
    return [{name: line[name] for name in METRICS} for line in printed(deployment)[1]]


def due_now(deployment: LocalDeployment, at: int) -> list[str]:
    """The reminders the processor's due-index query finds at ``at`` on a1#1440's shard."""
    items = deployment.client("dynamodb").query(
        TableName=deployment.table_name("RemindersTable"),
        IndexName="DueIndex",
        KeyConditionExpression="dueShard = :s AND attemptAt <= :t",
        ExpressionAttributeValues={":s": {"S": "3"}, ":t": {"N": str(at)}},
    )["Items"]
    return [item["reminderId"]["S"] for item in items]


@pytest.fixture
def events(deployment: LocalDeployment) -> Callable[[], list[dict[str, Any]]]:
    """The delivery events published to NotificationTopic since the last read, through a queue
    subscribed to it: SNS wraps each in a notification (``Message``) and delivers the message
    attributes to an SQS endpoint with it (https://docs.aws.amazon.com/sns/latest/dg/SNSMessageAttributes.html)."""
    sqs = deployment.client("sqs")
    url = sqs.create_queue(QueueName="delivery-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = deployment.resources[deployment.logical_id("AWS::SNS::Topic", "NotificationTopic")].ref
    deployment.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)

    def read() -> list[dict[str, Any]]:
        found = []
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return found

    return read


# ---- row 10: a final outcome ---------------------------------------------------------------------

#: Deliveries and the reminder's state (``state_of``): SENT when a channel was sent, else FAILED when
#: one failed, else SKIPPED. A channel's ERROR that is not transient counts as FAILED.
FINAL_OUTCOMES = [
    ([SENT_EMAIL, SENT_SMS], "SENT"),
    ([SENT_EMAIL, sms("FAILED", "InvalidParameter")], "SENT"),
    ([email("SKIPPED", "NoAddress"), SENT_SMS], "SENT"),
    ([{**SENT_EMAIL, "reason": "AlreadySent"}, sms("SKIPPED", "OptedOut")], "SENT"),
    ([email("FAILED", "MessageRejected"), sms("SKIPPED", "OptedOut")], "FAILED"),
    ([email("FAILED", "OutcomeUnknown"), sms("ERROR", "States.TaskFailed")], "FAILED"),
    ([email("SKIPPED", "ChannelNotRequested"), sms("SKIPPED", "OptedOut")], "SKIPPED"),
    ([email("SKIPPED", "NoAddress"), sms("SKIPPED", "AppointmentStarted")], "SKIPPED"),
]


def test_a_final_outcome_is_recorded_announced_and_counted(
    deployment: LocalDeployment, events: Callable[[], list[dict[str, Any]]]
) -> None:
    for delivery, state in FINAL_OUTCOMES:
        before = claim_for(deployment, delivery)

        assert update(deployment, delivery) == {"reminderId": RID, "state": state, "recorded": True}

        results = [{**r, "status": "FAILED"} if r["status"] == "ERROR" else r for r in delivery]
        # The claim goes, and the reminder leaves the due index; `sent` and the rest stay.
        assert stored(deployment) == {
            **{k: v for k, v in before.items() if k not in ("claimToken", "claimExpiresAt", "dueShard", "attemptAt")},
            "state": state,
            "updatedAt": NOW,
            **{f"{r['channel']}Result": recorded(r) for r in results},
            **_delivered(results),
        }, delivery
        (event,) = events()
        # Ids, the state and the channels' outcomes: no address, number, name or text.
        assert json.loads(event["Message"]) == {
            "reminderId": RID,
            "appointmentId": "a1",
            "offsetMinutes": 1440,
            "state": state,
            "delivery": results,
        }
        assert event["MessageAttributes"] == {"state": {"Type": "String", "Value": state}}
    logs, metrics = printed(deployment)
    assert [(line["event"], line["state"], line["recorded"]) for line in logs] == [
        ("outcome", state, True) for _, state in FINAL_OUTCOMES
    ]
    assert [line["state"] for line in metrics] == [state for _, state in FINAL_OUTCOMES]
    assert due_now(deployment, NOW + 10 * HOUR) == []


def test_a_channel_the_record_holds_as_sent_keeps_it_whatever_a_late_sender_answered(
    deployment: LocalDeployment, events: Callable[[], list[dict[str, Any]]]
) -> None:
    """An earlier claim of this plan sent the email; this job's senders ran once the appointment had
    started and answered without asking the record. Sent is sent: the record and the announcement
    keep the email's result, and the outcome is SENT."""
    claim(deployment)  # the email's result: SENT (EMAIL_MARK)
    late = [email("SKIPPED", "AppointmentStarted"), sms("SKIPPED", "AppointmentStarted")]

    assert update(deployment, late) == {"reminderId": RID, "state": "SENT", "recorded": True}

    item = stored(deployment)
    assert item["state"] == "SENT"
    assert item["emailResult"] == recorded(SENT_EMAIL)
    assert item["smsResult"] == recorded(sms("SKIPPED", "AppointmentStarted"))
    (event,) = events()
    assert json.loads(event["Message"])["delivery"] == [SENT_EMAIL, sms("SKIPPED", "AppointmentStarted")]


def test_a_channel_an_earlier_plan_sent_for_this_time_is_said_sent_whatever_a_late_sender_answered(
    deployment: LocalDeployment, events: Callable[[], list[dict[str, Any]]]
) -> None:
    """Re-planned for a time whose email an earlier plan sent: the results are gone, ``delivered``
    remembers. A late job's email answer (AppointmentStarted) is made SENT AlreadySent, as its sender
    answers from the ledger when it asks the record."""
    claim(deployment, emailResult=None, smsResult=None, delivered={sent_key("email")})
    late = [email("SKIPPED", "AppointmentStarted"), sms("SKIPPED", "AppointmentStarted")]

    assert update(deployment, late)["state"] == "SENT"

    already = {"channel": "email", "status": "SENT", "reason": "AlreadySent"}
    assert stored(deployment)["emailResult"] == recorded(already)
    (event,) = events()
    assert json.loads(event["Message"])["delivery"][0] == already


def test_a_job_whose_claim_is_gone_records_nothing_though_the_record_holds_a_channel_sent(
    deployment: LocalDeployment, events: Callable[[], list[dict[str, Any]]]
) -> None:
    before = claim(deployment, token=OTHER)  # re-claimed by another execution; the email SENT

    assert update(deployment, [email("SKIPPED", "AppointmentStarted"), SENT_SMS])["recorded"] is False

    assert stored(deployment) == before
    assert events() == []


def test_each_outcome_prints_one_metric_line_for_the_alarm(deployment: LocalDeployment) -> None:
    """CloudWatch's embedded metric format: the counts at the root, named in one directive of the
    stack's namespace, with no dimensions, so that FailedRemindersAlarm sees RemindersFailed
    (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html)."""
    for delivery, _ in FINAL_OUTCOMES[:1] + FINAL_OUTCOMES[4:5] + FINAL_OUTCOMES[6:7]:
        claim_for(deployment, delivery)
        update(deployment, delivery)
    claim(deployment)
    update(deployment, [SENT_EMAIL, sms("ERROR", "RetryableError")])

    _, metrics = printed(deployment)
    for line in metrics:
        assert line["_aws"] == {
            "Timestamp": NOW * 1000,
            "CloudWatchMetrics": [
                {"Namespace": NAMESPACE, "Dimensions": [[]], "Metrics": [{"Name": name} for name in METRICS]}
            ],
        }
        assert (line["reminderId"], set(line) - {"_aws", "reminderId", "state"}) == (RID, set(METRICS))
    assert counted(deployment) == [
        {"RemindersSent": 1, "RemindersFailed": 0, "RemindersSkipped": 0, "RemindersDeferred": 0},
        {"RemindersSent": 0, "RemindersFailed": 1, "RemindersSkipped": 0, "RemindersDeferred": 0},
        {"RemindersSent": 0, "RemindersFailed": 0, "RemindersSkipped": 1, "RemindersDeferred": 0},
        {"RemindersSent": 0, "RemindersFailed": 0, "RemindersSkipped": 0, "RemindersDeferred": 1},
    ]
    names = {
        resource["Properties"].get("MetricName")
        for resource in deployment.template["Resources"].values()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }
    assert "RemindersFailed" in names


# ---- the ERROR a channel arrives as, after the workflow's retries ---------------------------------


def test_a_channel_error_is_deferred_when_transient_and_failed_otherwise(
    deployment: LocalDeployment, events: Callable[[], list[dict[str, Any]]]
) -> None:
    """Its retries spent, a task reports its error's name. RetryableError (the handler's transient
    failure), Lambda.* (Lambda's service errors; a timed-out or crashed function is Lambda.Unknown:
    https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html) and
    States.Timeout sent nothing that the channel's mark does not know of: the channel is deferred.
    Anything else (a bug, a permission) fails it."""
    deferred = [
        "RetryableError",
        "Lambda.ServiceException",
        "Lambda.Unknown",
        "Lambda.TooManyRequestsException",
        "States.Timeout",
    ]
    failed = ["States.TaskFailed", "States.Runtime", "KeyError", "InjectedFailure", "NotRetryableError"]
    not_requested = email("SKIPPED", "ChannelNotRequested")
    for reason in deferred + failed:
        claim(deployment, emailResult=None)

        answer = update(deployment, [not_requested, sms("ERROR", reason)])

        item = stored(deployment)
        if reason in deferred:
            assert (answer["state"], item["state"], item["deferReason"]) == ("DEFERRED", "PENDING", reason), reason
            assert item["smsResult"] == SMS_MARK, reason
        else:
            assert (answer["state"], item["state"]) == ("FAILED", "FAILED"), reason
            assert item["smsResult"] == recorded(sms("FAILED", reason)), reason
    assert [json.loads(e["Message"])["delivery"][1]["status"] for e in events()] == ["FAILED"] * len(failed)


@pytest.mark.parametrize(
    ("cause", "reason"),
    [
        (json.dumps({"errorMessage": "Throttling", "errorType": "RetryableError"}), "Throttling"),
        (json.dumps({"errorMessage": "", "errorType": "RetryableError"}), "RetryableError"),
        (json.dumps({"errorType": "RetryableError"}), "RetryableError"),
        (json.dumps(["not", "an", "error"]), "RetryableError"),
        ("Task timed out after 30.00 seconds", "RetryableError"),
        (None, "RetryableError"),
    ],
)
def test_a_deferral_s_reason_is_the_provider_s_code_from_the_error_s_cause(
    deployment: LocalDeployment, cause: str | None, reason: str
) -> None:
    """For a Lambda task, Step Functions' ``Error`` is the function's errorType and ``Cause`` its
    error as JSON: a sender's ``RetryableError("Throttling")`` is recorded as ``Throttling``. A cause
    that is not such JSON (a timeout's text) or has no message leaves the error's name; the cause,
    which may hold a stack trace, is never stored."""
    claim(deployment)
    refused = {**sms("ERROR", "RetryableError"), **({"cause": cause} if cause is not None else {})}

    assert update(deployment, [email("SKIPPED", "ChannelNotRequested"), refused])["state"] == "DEFERRED"

    item = stored(deployment)
    assert item["deferReason"] == reason
    assert "cause" not in json.dumps(item, default=str)


def test_a_permanent_error_s_cause_is_not_stored_or_announced(
    deployment: LocalDeployment, events: Callable[[], list[dict[str, Any]]]
) -> None:
    claim(deployment, emailResult=None)
    failed = {**sms("ERROR", "KeyError"), "cause": json.dumps({"errorMessage": "'x'", "stackTrace": ["..."]})}

    assert update(deployment, [email("SKIPPED", "ChannelNotRequested"), failed])["state"] == "FAILED"

    assert stored(deployment)["smsResult"] == recorded(sms("FAILED", "KeyError"))
    assert "stackTrace" not in json.dumps(events())


@pytest.mark.parametrize(
    ("minutes_ahead", "deferrals", "retry_in"),
    [
        (60, 4, 8 * 60),  # the backoff ends well before the appointment
        (3, 4, 2 * 60),  # 8 minutes would pass the appointment: a minute before it
        (10, 1, 60),
        (1, 3, 60),  # never sooner than a minute: the next run decides it is too late
    ],
)
def test_a_deferral_never_waits_past_the_last_run_before_the_appointment(
    deployment: LocalDeployment, minutes_ahead: int, deferrals: int, retry_in: int
) -> None:
    appointment_time = NOW + minutes_ahead * 60
    claim(deployment, appointmentTime=appointment_time)
    delivery = [email("SKIPPED", "ChannelNotRequested"), sms("ERROR", "RetryableError")]

    deployment.invoke(FUNCTION, job(TOKEN, appointment_time, deferrals=deferrals - 1, delivery=delivery))

    assert stored(deployment)["attemptAt"] == NOW + retry_in


# ---- row 11: a deferral -------------------------------------------------------------------------


def test_a_deferral_returns_the_reminder_to_the_due_index_with_a_growing_backoff(
    deployment: LocalDeployment, events: Callable[[], list[dict[str, Any]]]
) -> None:
    """A channel still refused transiently after the workflow's retries: the reminder goes back to
    the due index (PENDING, attemptAt = now + backoff), keeps what the other channel recorded, leaves
    the deferred channel's mark as it is, and gives up its claim. Nothing is announced."""
    for deferrals, backoff in enumerate(BACKOFF_SECONDS):
        before = claim(deployment, deferrals=deferrals)

        answer = update(deployment, [SENT_EMAIL, sms("ERROR", "RetryableError")], deferrals=deferrals)

        assert answer == {"reminderId": RID, "state": "DEFERRED", "recorded": True}
        assert stored(deployment) == {
            **{k: v for k, v in before.items() if k not in ("claimToken", "claimExpiresAt")},
            "state": "PENDING",
            "attemptAt": NOW + backoff,
            "deferrals": deferrals + 1,
            "deferReason": "RetryableError",
            "updatedAt": NOW,
            "emailResult": recorded(SENT_EMAIL),
            "delivered": {sent_key("email")},
            "smsResult": SMS_MARK,  # untouched: the next claim's sender reads it
        }, deferrals
        assert due_now(deployment, NOW + backoff - 1) == [], deferrals
        assert due_now(deployment, NOW + backoff) == [RID], deferrals
    assert events() == []
    assert counted(deployment) == [
        {"RemindersSent": 0, "RemindersFailed": 0, "RemindersSkipped": 0, "RemindersDeferred": 1}
    ] * len(BACKOFF_SECONDS)


def test_both_channels_deferred_keep_both_marks_and_the_first_reason(deployment: LocalDeployment) -> None:
    before = claim(deployment)

    answer = update(deployment, [email("ERROR", "Lambda.Unknown"), sms("ERROR", "RetryableError")])

    assert answer["state"] == "DEFERRED"
    item = stored(deployment)
    assert (item["deferReason"], item["deferrals"], item["attemptAt"]) == ("Lambda.Unknown", 1, NOW + 60)
    assert (item["emailResult"], item["smsResult"]) == (before["emailResult"], before["smsResult"])


# ---- rows 10 and 11 refused: the claim is not the job's any more -----------------------------------

#: What a final record no longer has: its claim, and its place in the due index.
NO_CLAIM = {"claimExpiresAt": None, "dueShard": None, "attemptAt": None}
#: Records whose claim is not the job's: (what happened, its claim token, its fields; None: no record).
LOST_CLAIMS: list[tuple[str, str | None, dict[str, Any] | None]] = [
    ("re-claimed by another execution after the lease", OTHER, {}),
    ("the job's token on a record that is not SENDING", TOKEN, {"state": "SENT"}),
    ("re-planned for another time", TOKEN, {"appointmentTime": APPOINTMENT_TIME + HOUR}),
    ("cancelled while sending", None, {"state": "CANCELLED", **NO_CLAIM}),
    ("recorded by another claim", None, {"state": "SENT", **NO_CLAIM, "emailResult": recorded(SENT_EMAIL, OTHER)}),
    ("no reminder at all", None, None),
]


@pytest.mark.parametrize(
    "delivery",
    [[SENT_EMAIL, SENT_SMS], [SENT_EMAIL, sms("ERROR", "RetryableError")]],
    ids=["final", "deferral"],
)
def test_a_claim_that_is_not_the_job_s_records_and_announces_nothing(
    deployment: LocalDeployment, events: Callable[[], list[dict[str, Any]]], delivery: list[dict[str, str]]
) -> None:
    state = "SENT" if delivery[1]["status"] == "SENT" else "DEFERRED"
    for case, token, fields in LOST_CLAIMS:
        deployment.client("dynamodb").delete_item(
            TableName=deployment.table_name("RemindersTable"), Key={"reminderId": {"S": RID}}
        )
        before = None if fields is None else claim(deployment, token, **fields)

        assert update(deployment, delivery) == {"reminderId": RID, "state": state, "recorded": False}, case
        assert reminder(deployment, RID) == before, case
    assert events() == []
    logs, metrics = printed(deployment)
    assert metrics == []
    assert logs == [{"level": "INFO", "event": "outcome", "reminderId": RID, "state": state, "recorded": False}] * len(
        LOST_CLAIMS
    )
    assert [c.operation for c in deployment.monitor.calls if c.service == "sns"] == []


# ---- faults: everything transient is retried, and the retry finishes the job ----------------------


@pytest.mark.parametrize(
    "error",
    [
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionClosedError",
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "InternalServerError",
    ],
)
def test_a_transient_failure_to_record_is_retried_and_the_retry_announces_once(
    deployment: LocalDeployment, events: Callable[[], list[dict[str, Any]]], error: str
) -> None:
    """No connection, a timeout, throttling or a 5xx on the write: RetryableError (with the error's
    name), nothing announced; the workflow's retry records and announces once."""
    before = claim(deployment)
    deployment.inject("dynamodb", "UpdateItem", error, status=500 if error == "InternalServerError" else 400)

    assert refused_retryably(deployment, [SENT_EMAIL, SENT_SMS]) == error
    assert stored(deployment) == before
    assert events() == [] and printed(deployment)[1] == []

    assert update(deployment, [SENT_EMAIL, SENT_SMS])["recorded"] is True
    assert stored(deployment)["state"] == "SENT"
    assert len(events()) == 1 and len(printed(deployment)[1]) == 1


@pytest.mark.parametrize(
    "error",
    ["EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "Throttling", "InternalError"],
)
def test_a_transient_failure_to_announce_is_retried_and_the_retry_announces_once(
    deployment: LocalDeployment, events: Callable[[], list[dict[str, Any]]], error: str
) -> None:
    """The outcome was recorded and the publish failed: RetryableError. The retry finds the outcome
    recorded by this very job and announces it; the metric line is printed once, after the publish."""
    claim(deployment)
    deployment.inject("sns", "Publish", error, status=500 if error == "InternalError" else 400)

    assert refused_retryably(deployment, [SENT_EMAIL, SENT_SMS]) == error
    recorded_once = stored(deployment)
    assert recorded_once["state"] == "SENT" and "claimToken" not in recorded_once
    assert events() == [] and printed(deployment)[1] == []

    assert update(deployment, [SENT_EMAIL, SENT_SMS]) == {"reminderId": RID, "state": "SENT", "recorded": True}
    assert stored(deployment) == recorded_once
    assert [json.loads(e["Message"])["state"] for e in events()] == ["SENT"]
    assert counted(deployment) == [
        {"RemindersSent": 1, "RemindersFailed": 0, "RemindersSkipped": 0, "RemindersDeferred": 0}
    ]


@pytest.mark.parametrize(
    "delivery",
    [[SENT_EMAIL, sms("FAILED", "InvalidParameter")], [SENT_EMAIL, sms("ERROR", "RetryableError")]],
    ids=["final", "deferral"],
)
def test_a_write_applied_with_every_answer_lost_is_announced_by_the_retry(
    deployment: LocalDeployment, events: Callable[[], list[dict[str, Any]]], delivery: list[dict[str, str]]
) -> None:
    """Every attempt botocore makes at the write loses its answer (the first one applied it): the
    invocation fails retryably, and its retry, refused by the condition, recognises its own outcome."""
    claim(deployment)
    client = function_global(deployment, FUNCTION, "dynamodb")
    lost = lose_answers(client, "UpdateItem", times=client.meta.config.retries["total_max_attempts"])

    assert refused_retryably(deployment, delivery) == "ReadTimeoutError"
    assert len(lost) == client.meta.config.retries["total_max_attempts"]
    written = stored(deployment)

    answer = update(deployment, delivery)

    assert answer["recorded"] is True and stored(deployment) == written
    assert len(events()) == (1 if answer["state"] == "SENT" else 0)
    assert len(printed(deployment)[1]) == 1


def test_recording_twice_records_the_same_and_announces_at_least_once(
    deployment: LocalDeployment, events: Callable[[], list[dict[str, Any]]]
) -> None:
    """A duplicate invocation (Step Functions retried a task whose answer was lost) finds the outcome
    this job recorded: the record stays as it is, and the event goes out again (at least once)."""
    claim(deployment)
    delivery = [SENT_EMAIL, sms("FAILED", "InvalidParameter")]

    first = update(deployment, delivery)
    written = stored(deployment)
    second = update(deployment, delivery)

    assert first == second == {"reminderId": RID, "state": "SENT", "recorded": True}
    assert stored(deployment) == written
    assert [json.loads(e["Message"])["state"] for e in events()] == ["SENT", "SENT"]


def test_a_permanent_failure_is_raised_as_it_is(deployment: LocalDeployment) -> None:
    """No permission to write, or to publish: not retried (nothing would change); the task fails, the
    workflow's catch leaves the claim to expire, and the executions alarm sees it."""
    before = claim(deployment)
    deployment.inject("dynamodb", "UpdateItem", "AccessDeniedException")
    with pytest.raises(FunctionError) as raised:
        update(deployment, [SENT_EMAIL, SENT_SMS])
    assert raised.value.error["errorType"] == "ClientError"
    assert stored(deployment) == before

    deployment.inject("sns", "Publish", "AuthorizationError", status=403)
    with pytest.raises(FunctionError) as raised:
        update(deployment, [SENT_EMAIL, SENT_SMS])
    assert raised.value.error["errorType"] == "AuthorizationErrorException"
    assert stored(deployment)["state"] == "SENT"


# ---- the template's copy ------------------------------------------------------------------------


def test_the_inlined_copy_records_the_same(deploy: Callable[..., LocalDeployment]) -> None:
    deployment = deploy(inlined=True)
    claim(deployment, deferrals=2)

    assert update(deployment, [SENT_EMAIL, sms("ERROR", "Lambda.Unknown")], deferrals=2)["state"] == "DEFERRED"
    item = stored(deployment)
    assert (item["state"], item["attemptAt"], item["deferrals"]) == ("PENDING", NOW + 240, 3)

    claim(deployment)
    assert update(deployment, [SENT_EMAIL, sms("SKIPPED", "OptedOut")]) == {
        "reminderId": RID,
        "state": "SENT",
        "recorded": True,
    }
    assert stored(deployment)["state"] == "SENT" and "claimToken" not in stored(deployment)


def _delivered(results: list[dict[str, str]]) -> dict[str, set[str]]:
    """``delivered`` as UpdateStatus adds to it: the time of each channel sent (as its sender does)."""
    sent = {sent_key(r["channel"]) for r in results if r["status"] == "SENT"}
    return {"delivered": sent} if sent else {}
