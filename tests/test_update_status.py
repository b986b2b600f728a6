"""UpdateStatus on moto: the recorded outcome, the delivery event on the topic and the metrics line."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tapstack.local import LocalDeployment
from tapstack.local.deployment import FunctionError
from tests.support import NOW, claimed_reminder, reminder

FUNCTION = "StatusUpdaterFunction"
RID = "a1#1440"
TOKEN = "9f" * 16
SENT_EMAIL = {"channel": "email", "status": "SENT", "messageId": "m-email"}
SENT_SMS = {"channel": "sms", "status": "SENT", "messageId": "m-sms"}


def email(status: str, reason: str) -> dict[str, str]:
    return {"channel": "email", "status": status, "reason": reason}


def sms(status: str, reason: str) -> dict[str, str]:
    return {"channel": "sms", "status": status, "reason": reason}


def stored(deployment: LocalDeployment) -> dict[str, Any]:
    """The reminder as it is in the table now."""
    item = reminder(deployment, RID)
    assert item is not None
    return item


def claim(deployment: LocalDeployment, token: str = TOKEN, **fields: Any) -> dict[str, Any]:
    """The reminder as the senders leave it: claimed, still in the due index, with its channel marks."""
    email = {"status": "SENT", "token": token, "messageId": "m-email"}
    return claimed_reminder(deployment, token, **{"updatedAt": NOW - 60, "emailResult": email, **fields})


def update(deployment: LocalDeployment, delivery: list[dict[str, str]], token: str = TOKEN) -> dict[str, Any]:
    event = {"reminderId": RID, "claimToken": token, "appointmentId": "a1", "offsetMinutes": 1440, "delivery": delivery}
    return deployment.invoke(FUNCTION, event)


@pytest.fixture
def events(deployment: LocalDeployment) -> Callable[[], list[dict[str, Any]]]:
    """The delivery events published to the NotificationTopic, read through a subscribed queue."""
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


def output(capsys: pytest.CaptureFixture[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(log lines, metric lines) printed to stdout: every line one JSON object."""
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return [x for x in lines if "_aws" not in x], [x for x in lines if "_aws" in x]


@pytest.mark.parametrize(
    ("delivery", "state"),
    [
        ([SENT_EMAIL, SENT_SMS], "SENT"),
        ([SENT_EMAIL, sms("FAILED", "InvalidParameter")], "SENT"),
        ([email("SKIPPED", "NoAddress"), SENT_SMS], "SENT"),
        ([email("FAILED", "MessageRejected"), sms("SKIPPED", "OptedOut")], "FAILED"),
        ([email("FAILED", "OutcomeUnknown"), sms("FAILED", "RetryableError")], "FAILED"),
        ([email("SKIPPED", "ChannelNotRequested"), sms("SKIPPED", "OptedOut")], "SKIPPED"),
        ([email("SKIPPED", "NoAddress"), sms("SKIPPED", "NoAddress")], "SKIPPED"),
    ],
)
def test_records_the_state_computed_from_the_channels(
    deployment: LocalDeployment,
    events: Callable[[], list[dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
    delivery: list[dict[str, str]],
    state: str,
) -> None:
    before = claim(deployment)

    assert update(deployment, delivery) == {"reminderId": RID, "state": state, "recorded": True}

    item = stored(deployment)
    results = {d["channel"]: {**{k: v for k, v in d.items() if k != "channel"}, "token": TOKEN} for d in delivery}
    assert item == {
        **{k: v for k, v in before.items() if k not in ("dueShard", "attemptAt")},
        "state": state,
        "updatedAt": NOW,
        "emailResult": results["email"],
        "smsResult": results["sms"],
    }
    (event,) = events()
    assert json.loads(event["Message"]) == {
        "reminderId": RID,
        "appointmentId": "a1",
        "offsetMinutes": 1440,
        "state": state,
        "delivery": delivery,
    }
    assert event["MessageAttributes"] == {"state": {"Type": "String", "Value": state}}
    logs, (metric,) = output(capsys)
    assert metric["_aws"] == {
        "Timestamp": NOW * 1000,
        "CloudWatchMetrics": [
            {
                "Namespace": "TapStack-dev",
                "Dimensions": [[]],
                "Metrics": [{"Name": name} for name in ("RemindersSent", "RemindersFailed", "RemindersSkipped")],
            }
        ],
    }
    assert {k: metric[k] for k in ("RemindersSent", "RemindersFailed", "RemindersSkipped")} == {
        "RemindersSent": int(state == "SENT"),
        "RemindersFailed": int(state == "FAILED"),
        "RemindersSkipped": int(state == "SKIPPED"),
    }
    assert (metric["reminderId"], metric["state"]) == (RID, state)
    assert logs == [{"level": "INFO", "event": "outcome", "reminderId": RID, "state": state, "recorded": True}]


def test_the_recorded_reminder_leaves_the_due_index(deployment: LocalDeployment) -> None:
    claim(deployment)

    def due() -> list[dict[str, Any]]:
        return deployment.client("dynamodb").query(
            TableName=deployment.table_name("RemindersTable"),
            IndexName="DueIndex",
            KeyConditionExpression="dueShard = :s",
            ExpressionAttributeValues={":s": {"S": "3"}},
        )["Items"]

    assert len(due()) == 1
    update(deployment, [SENT_EMAIL, sms("SKIPPED", "NoAddress")])
    assert due() == []


@pytest.mark.parametrize("current", ["a-newer-claim", None])
def test_a_superseded_claim_records_and_publishes_nothing(
    deployment: LocalDeployment,
    events: Callable[[], list[dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
    current: str | None,
) -> None:
    before = claim(deployment, token=current or TOKEN)
    if current is None:  # re-planned: PENDING again, no claim
        before = claim(deployment, state="PENDING", claimToken=None, emailResult=None)
        deployment.client("dynamodb").update_item(
            TableName=deployment.table_name("RemindersTable"),
            Key={"reminderId": {"S": RID}},
            UpdateExpression="REMOVE claimToken, emailResult",
        )
        before = {k: v for k, v in before.items() if v is not None}

    assert update(deployment, [SENT_EMAIL, SENT_SMS]) == {"reminderId": RID, "state": "SENT", "recorded": False}
    assert stored(deployment) == before
    assert events() == []
    assert calls(deployment, "sns", "Publish") == []
    logs, metrics = output(capsys)
    assert metrics == []
    assert logs == [{"level": "INFO", "event": "outcome", "reminderId": RID, "state": "SENT", "recorded": False}]


def test_recording_twice_records_the_same(
    deployment: LocalDeployment, events: Callable[[], list[dict[str, Any]]]
) -> None:
    claim(deployment)
    delivery = [SENT_EMAIL, sms("FAILED", "InvalidParameter")]

    first = update(deployment, delivery)
    recorded = stored(deployment)
    second = update(deployment, delivery)

    assert first == second == {"reminderId": RID, "state": "SENT", "recorded": True}
    assert stored(deployment) == recorded
    assert [json.loads(e["Message"])["state"] for e in events()] == ["SENT", "SENT"]  # at least once


@pytest.mark.parametrize("error", ["Throttling", "InternalError", "KMSThrottling"])
def test_a_transient_publish_failure_is_retried_and_the_retry_announces(
    deployment: LocalDeployment,
    events: Callable[[], list[dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
    error: str,
) -> None:
    claim(deployment)
    deployment.inject("sns", "Publish", error)

    with pytest.raises(FunctionError) as raised:
        update(deployment, [SENT_EMAIL, SENT_SMS])
    assert raised.value.error["errorType"] == "RetryableError"
    assert events() == []
    assert update(deployment, [SENT_EMAIL, SENT_SMS])["recorded"] is True

    assert stored(deployment)["state"] == "SENT"
    assert len(events()) == 1
    logs, metrics = output(capsys)
    assert len(metrics) == 1  # counted once
    assert [line["event"] for line in logs] == ["outcome"]


def test_a_transient_dynamodb_failure_is_retried_and_publishes_nothing_before(
    deployment: LocalDeployment, events: Callable[[], list[dict[str, Any]]]
) -> None:
    claim(deployment)
    deployment.inject("dynamodb", "UpdateItem", "ProvisionedThroughputExceededException")

    with pytest.raises(FunctionError) as raised:
        update(deployment, [SENT_EMAIL, SENT_SMS])
    assert raised.value.error["errorType"] == "RetryableError"
    assert stored(deployment)["state"] == "SENDING"
    assert events() == []

    assert update(deployment, [SENT_EMAIL, SENT_SMS])["recorded"] is True
    assert stored(deployment)["state"] == "SENT"
    assert len(events()) == 1


def test_a_permanent_publish_failure_is_raised_after_recording(deployment: LocalDeployment) -> None:
    claim(deployment)
    deployment.inject("sns", "Publish", "AuthorizationError")

    with pytest.raises(FunctionError) as raised:
        update(deployment, [SENT_EMAIL, SENT_SMS])

    # Not retried (nothing would change); the functions' Errors alarm sees it.
    assert raised.value.error["errorType"] == "AuthorizationErrorException"
    assert stored(deployment)["state"] == "SENT"


def test_the_inlined_code_records_the_same(deploy: Callable[..., LocalDeployment]) -> None:
    deployment = deploy(inlined=True)
    claim(deployment)

    assert update(deployment, [SENT_EMAIL, sms("SKIPPED", "OptedOut")])["state"] == "SENT"
    assert stored(deployment)["state"] == "SENT"


def calls(deployment: LocalDeployment, service: str, operation: str) -> list[dict[str, Any]]:
    return [c.params for c in deployment.monitor.calls if (c.service, c.operation) == (service, operation)]
