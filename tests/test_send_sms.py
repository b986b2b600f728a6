"""SendSMS on moto: what SNS accepted, what the reminder records, and that a send happens at most once."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tapstack.local import LocalDeployment
from tapstack.local.deployment import FunctionError
from tests.support import OPTED_OUT_PHONE, claimed_reminder, reminder, sent_sms

FUNCTION = "SmsSenderFunction"
RID = "a1#1440"
TOKEN = "9f" * 16
PHONE = "+15555550123"
SMS = {"to": PHONE, "text": "Hello Pat Example, reminder: Tuesday 3 March 2026 at 10:00 CET (Europe/Paris)."}
#: What must never reach the logs.
PERSONAL = ("5555550", "Pat Example", "Tuesday 3 March")


def stored(deployment: LocalDeployment) -> dict[str, Any]:
    """The reminder as it is in the table now."""
    item = reminder(deployment, RID)
    assert item is not None
    return item


def claim(deployment: LocalDeployment, token: str | None = TOKEN, **fields: Any) -> None:
    """The reminder as the processor leaves it when it claims it (channel marks optional)."""
    claimed_reminder(deployment, token, **fields)


def send(deployment: LocalDeployment, message: Any = SMS, token: str = TOKEN) -> dict[str, Any]:
    return deployment.invoke(FUNCTION, {"reminderId": RID, "claimToken": token, "message": message})


def calls(deployment: LocalDeployment, service: str, operation: str) -> list[dict[str, Any]]:
    return [c.params for c in deployment.monitor.calls if (c.service, c.operation) == (service, operation)]


def sns_calls(deployment: LocalDeployment) -> list[Any]:
    return [c for c in deployment.monitor.calls if c.service == "sns"]


def log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """Every stdout line is one JSON object without personal data."""
    out = capsys.readouterr().out
    for needle in PERSONAL:
        assert needle not in out
    return [json.loads(line) for line in out.splitlines()]


def test_sends_a_transactional_sms_and_records_sent(
    deployment: LocalDeployment, capsys: pytest.CaptureFixture[str]
) -> None:
    claim(deployment)

    answer = send(deployment)

    assert answer == {"channel": "sms", "status": "SENT", "messageId": answer["messageId"]}
    assert sent_sms(deployment) == [(PHONE, SMS["text"])]
    assert calls(deployment, "sns", "CheckIfPhoneNumberIsOptedOut") == [{"phoneNumber": PHONE}]
    (request,) = calls(deployment, "sns", "Publish")
    assert request["MessageAttributes"] == {
        "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}
    }
    assert "TopicArn" not in request
    item = stored(deployment)
    assert item["smsResult"] == {"status": "SENT", "token": TOKEN, "messageId": answer["messageId"]}
    assert "emailResult" not in item
    assert log_lines(capsys) == [
        {
            "level": "INFO",
            "event": "delivery",
            "reminderId": RID,
            "channel": "sms",
            "status": "SENT",
            "messageId": answer["messageId"],
        }
    ]


def test_the_inlined_code_sends_the_same(deploy: Callable[..., LocalDeployment]) -> None:
    deployment = deploy(inlined=True)
    claim(deployment)

    assert send(deployment)["status"] == "SENT"
    assert send(deployment)["status"] == "SENT"
    assert len(sent_sms(deployment)) == 1


@pytest.mark.parametrize(
    ("message", "status", "reason"),
    [
        (None, "SKIPPED", "ChannelNotRequested"),
        ({"to": None}, "SKIPPED", "NoAddress"),
        ({**SMS, "to": ""}, "SKIPPED", "NoAddress"),
        ({**SMS, "to": "5555550123"}, "FAILED", "InvalidPhoneNumber"),
        ({**SMS, "to": "+1 555 555 0123"}, "FAILED", "InvalidPhoneNumber"),
        ({**SMS, "to": "+05555550123"}, "FAILED", "InvalidPhoneNumber"),
        ({**SMS, "to": "+12345"}, "FAILED", "InvalidPhoneNumber"),
        ({**SMS, "to": "+1555555012345678"}, "FAILED", "InvalidPhoneNumber"),
        ({**SMS, "to": 15555550123}, "FAILED", "InvalidPhoneNumber"),
    ],
)
def test_what_cannot_be_sent_is_answered_without_calling_sns(
    deployment: LocalDeployment, capsys: pytest.CaptureFixture[str], message: Any, status: str, reason: str
) -> None:
    claim(deployment)

    assert send(deployment, message) == {"channel": "sms", "status": status, "reason": reason}
    assert sns_calls(deployment) == []
    assert "smsResult" not in stored(deployment)
    assert log_lines(capsys)[-1]["reason"] == reason


def test_an_opted_out_number_is_skipped(deployment: LocalDeployment, capsys: pytest.CaptureFixture[str]) -> None:
    claim(deployment)

    answer = send(deployment, {**SMS, "to": OPTED_OUT_PHONE})

    assert answer == {"channel": "sms", "status": "SKIPPED", "reason": "OptedOut"}
    assert sent_sms(deployment) == []
    assert calls(deployment, "sns", "Publish") == []
    assert "smsResult" not in stored(deployment)
    log_lines(capsys)


def test_a_permanent_sns_error_is_recorded_failed_not_raised(
    deployment: LocalDeployment, capsys: pytest.CaptureFixture[str]
) -> None:
    claim(deployment)
    deployment.inject("sns", "Publish", "InvalidParameter", message=f"Invalid parameter: PhoneNumber {PHONE}")

    answer = send(deployment)

    assert answer == {"channel": "sms", "status": "FAILED", "reason": "InvalidParameter"}
    assert sent_sms(deployment) == []
    assert stored(deployment)["smsResult"] == {"status": "FAILED", "token": TOKEN, "reason": "InvalidParameter"}
    assert send(deployment) == answer
    assert len(calls(deployment, "sns", "Publish")) == 1
    log_lines(capsys)


@pytest.mark.parametrize("error", ["Throttling", "ThrottledException", "InternalError", "KMSThrottling"])
def test_a_transient_sns_error_frees_the_mark_and_the_retry_sends_once(
    deployment: LocalDeployment, capsys: pytest.CaptureFixture[str], error: str
) -> None:
    claim(deployment)
    deployment.inject("sns", "Publish", error, times=2)

    for _ in range(2):
        with pytest.raises(FunctionError) as raised:
            send(deployment)
        assert raised.value.error["errorType"] == "RetryableError"
        assert raised.value.error["errorMessage"] == error
        assert "smsResult" not in stored(deployment)
    answer = send(deployment)  # what Step Functions' Retry does

    assert answer["status"] == "SENT"
    assert sent_sms(deployment) == [(PHONE, SMS["text"])]
    assert stored(deployment)["smsResult"]["status"] == "SENT"
    assert [line["event"] for line in log_lines(capsys)] == ["delivery"]


@pytest.mark.parametrize(("error", "retried"), [("Throttling", True), ("AuthorizationError", False)])
def test_an_error_checking_the_opt_out_sends_nothing(deployment: LocalDeployment, error: str, retried: bool) -> None:
    claim(deployment)
    deployment.inject("sns", "CheckIfPhoneNumberIsOptedOut", error)

    if retried:
        with pytest.raises(FunctionError) as raised:
            send(deployment)
        assert raised.value.error["errorType"] == "RetryableError"
    else:
        assert send(deployment) == {"channel": "sms", "status": "FAILED", "reason": error}
    assert calls(deployment, "sns", "Publish") == []
    assert "smsResult" not in stored(deployment)


# The channel mark itself (retries, duplicates, take-overs) is tested for both senders in
# tests/test_channel_marks.py.
