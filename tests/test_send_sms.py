"""SendSMS on moto: the opt-out check and the transactional SMS SNS gets, what cannot be sent (no
mark is written), SNS's own errors, and logs without personal data. The channel mark (at most once
per appointment time, rows 7-9 of handlers/README.md) is tested for both senders in
tests/test_channel_marks.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tapstack.local import LocalDeployment
from tapstack.local.deployment import FunctionError
from tests.support import OPTED_OUT_PHONE, calls, claimed_reminder, job, logged, sent_key, sent_sms, stored

FUNCTION = "SmsSenderFunction"
RID = "a1#1440"
TOKEN = "9f" * 16
PHONE = "+15555550123"
SMS = {"to": PHONE, "text": "Hello Pat Example, reminder: Tuesday 3 March 2026 at 10:00 CET (Europe/Paris)."}
#: What must never reach the logs.
PERSONAL = ("5555550", "Pat Example", "Tuesday 3 March")


pytestmark = pytest.mark.usefixtures("logs_hold_no_personal_data")


def send(deployment: LocalDeployment, message: Any = SMS) -> dict[str, Any]:
    result: dict[str, Any] = deployment.invoke(FUNCTION, job(TOKEN, message=message))
    return result


def refused_retryably(deployment: LocalDeployment, message: Any = SMS) -> str:
    with pytest.raises(FunctionError) as raised:
        send(deployment, message)
    assert raised.value.error["errorType"] == "RetryableError"
    return str(raised.value.error["errorMessage"])


def test_checks_the_opt_out_then_sends_a_transactional_sms(deployment: LocalDeployment) -> None:
    claimed_reminder(deployment, TOKEN)

    answer = send(deployment)

    assert answer == {"channel": "sms", "status": "SENT", "messageId": answer["messageId"]}
    assert sent_sms(deployment) == [(PHONE, SMS["text"])]
    # The opt-out check comes before the mark, the mark before the SMS, the outcome after it.
    assert [(c.service, c.operation) for c in deployment.monitor.calls] == [
        ("sns", "CheckIfPhoneNumberIsOptedOut"),
        ("dynamodb", "UpdateItem"),
        ("sns", "Publish"),
        ("dynamodb", "UpdateItem"),
    ]
    assert calls(deployment, "sns", "CheckIfPhoneNumberIsOptedOut") == [{"phoneNumber": PHONE}]
    (request,) = calls(deployment, "sns", "Publish")
    # A reminder is transactional, not marketing; an SMS to a phone number names no topic.
    assert request == {
        "PhoneNumber": PHONE,
        "Message": SMS["text"],
        "MessageAttributes": {"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}},
    }
    item = stored(deployment)
    assert (item["smsResult"]["status"], item["smsResult"]["messageId"]) == ("SENT", answer["messageId"])
    assert item["sent"] == {sent_key("sms")} and "emailResult" not in item
    assert logged(deployment, FUNCTION) == [{"level": "INFO", "event": "delivery", "reminderId": RID, **answer}]


#: Messages that cannot be sent, and the answer for each (none of them reaches SNS).
UNSENDABLE: list[tuple[Any, str, str]] = [
    (None, "SKIPPED", "ChannelNotRequested"),
    ({"to": None}, "SKIPPED", "NoAddress"),
    ({**SMS, "to": ""}, "SKIPPED", "NoAddress"),
    ({**SMS, "to": "5555550123"}, "FAILED", "InvalidPhoneNumber"),
    ({**SMS, "to": "+1 555 555 0123"}, "FAILED", "InvalidPhoneNumber"),
    ({**SMS, "to": "+05555550123"}, "FAILED", "InvalidPhoneNumber"),
    ({**SMS, "to": "+12345"}, "FAILED", "InvalidPhoneNumber"),
    ({**SMS, "to": "+1555555012345678"}, "FAILED", "InvalidPhoneNumber"),
    ({**SMS, "to": 15555550123}, "FAILED", "InvalidPhoneNumber"),
]


def test_what_cannot_be_sent_is_answered_without_a_mark_or_a_call(deployment: LocalDeployment) -> None:
    before = claimed_reminder(deployment, TOKEN)

    for message, status, reason in UNSENDABLE:
        assert send(deployment, message) == {"channel": "sms", "status": status, "reason": reason}, message
        assert stored(deployment) == before, message
        assert logged(deployment, FUNCTION)[-1]["reason"] == reason
    assert deployment.monitor.calls == []  # no mark, no SNS call


def test_an_opted_out_number_is_skipped_without_a_mark(deployment: LocalDeployment) -> None:
    """SNS would not deliver to a number that opted out: say so, not SENT."""
    before = claimed_reminder(deployment, TOKEN)

    answer = send(deployment, {**SMS, "to": OPTED_OUT_PHONE})

    assert answer == {"channel": "sms", "status": "SKIPPED", "reason": "OptedOut"}
    assert stored(deployment) == before
    assert [(c.service, c.operation) for c in deployment.monitor.calls] == [("sns", "CheckIfPhoneNumberIsOptedOut")]
    assert sent_sms(deployment) == []


def test_an_error_checking_the_opt_out_sends_nothing(deployment: LocalDeployment) -> None:
    """The check is a read: throttled, a 5xx or no connection is retried by the workflow; refused
    for good (no permission) is FAILED. Neither writes a mark. Its errors: Throttled (429),
    InternalError (500), AuthorizationError (403), InvalidParameter (400):
    https://docs.aws.amazon.com/sns/latest/api/API_CheckIfPhoneNumberIsOptedOut.html"""
    before = claimed_reminder(deployment, TOKEN)
    transient = [
        ("Throttled", 429),
        ("InternalError", 500),
        ("EndpointConnectionError", 400),  # a network error: no status, the runner raises it
        ("ConnectTimeoutError", 400),
    ]
    for code, status in transient:
        deployment.inject("sns", "CheckIfPhoneNumberIsOptedOut", code, status=status)
        assert refused_retryably(deployment) == code
    deployment.inject("sns", "CheckIfPhoneNumberIsOptedOut", "AuthorizationError", status=403)
    assert send(deployment) == {"channel": "sms", "status": "FAILED", "reason": "AuthorizationError"}

    assert stored(deployment) == before
    assert calls(deployment, "sns", "Publish") == [] and calls(deployment, "dynamodb", "UpdateItem") == []


def test_an_opt_out_check_whose_answer_is_lost_is_retried(deployment: LocalDeployment) -> None:
    """A read whose answer was lost changed nothing: it is worth another try, not a FAILED channel."""
    before = claimed_reminder(deployment, TOKEN)
    for error in ["ReadTimeoutError", "ConnectionClosedError"]:
        deployment.inject("sns", "CheckIfPhoneNumberIsOptedOut", error)
        assert refused_retryably(deployment) == error

    assert stored(deployment) == before and calls(deployment, "sns", "Publish") == []
    assert send(deployment)["status"] == "SENT"


def test_sns_refusals_are_failed_with_their_code_and_free_the_time(deployment: LocalDeployment) -> None:
    """SNS refused, so nothing went out: FAILED with SNS's code (its message may name the number and
    is never logged), and the appointment time leaves ``sent``. Publish's errors:
    https://docs.aws.amazon.com/sns/latest/api/API_Publish.html"""
    for code in ["InvalidParameter", "ParameterValueInvalid", "AuthorizationError"]:
        claimed_reminder(deployment, TOKEN)
        deployment.inject("sns", "Publish", code, message=f"Invalid parameter: PhoneNumber Reason: {PHONE}")

        assert send(deployment) == {"channel": "sms", "status": "FAILED", "reason": code}
        item = stored(deployment)
        assert (item["smsResult"]["status"], item["smsResult"]["reason"]) == ("FAILED", code)
        assert "sent" not in item
    assert sent_sms(deployment) == []


def test_sns_throttling_and_server_errors_are_retried_and_send_once(deployment: LocalDeployment) -> None:
    """Nothing went out: RetryableError, no mark left, and the workflow's retry sends."""
    transient = [("Throttling", 400), ("InternalError", 500)]
    for sent, (code, status) in enumerate(transient, start=1):
        claimed_reminder(deployment, TOKEN)
        deployment.inject("sns", "Publish", code, status=status)

        assert refused_retryably(deployment) == code
        assert "smsResult" not in stored(deployment) and "sent" not in stored(deployment)

        assert send(deployment)["status"] == "SENT"
        assert len(sent_sms(deployment)) == sent
    assert [line["event"] for line in logged(deployment, FUNCTION)] == ["delivery"] * len(transient)


def test_the_inlined_copy_sends_the_same(deploy: Callable[..., LocalDeployment]) -> None:
    deployment = deploy(inlined=True)
    before = claimed_reminder(deployment, TOKEN)

    assert send(deployment, {**SMS, "to": OPTED_OUT_PHONE})["reason"] == "OptedOut"
    assert stored(deployment) == before
    first = send(deployment)
    assert send(deployment) == first and first["status"] == "SENT"
    assert sent_sms(deployment) == [(PHONE, SMS["text"])]
