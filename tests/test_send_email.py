"""SendEmail on moto: what SES accepted, what the reminder records, and that a send happens at most once."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tapstack.local import LocalDeployment
from tapstack.local.deployment import FunctionError
from tests.support import SENDER, claimed_reminder, reminder, sent_emails

FUNCTION = "EmailSenderFunction"
RID = "a1#1440"
TOKEN = "9f" * 16
EMAIL = {
    "to": "pat@example.com",
    "subject": "Reminder: your appointment on Tuesday",
    "text": "Hello Pat Example, see you on Tuesday 3 March 2026 at 10:00 CET (Europe/Paris).",
}
#: What must never reach the logs.
PERSONAL = ("pat@example.com", "Pat Example", "Tuesday 3 March", "Reminder: your appointment")


def stored(deployment: LocalDeployment) -> dict[str, Any]:
    """The reminder as it is in the table now."""
    item = reminder(deployment, RID)
    assert item is not None
    return item


def claim(deployment: LocalDeployment, token: str | None = TOKEN, **fields: Any) -> None:
    """The reminder as the processor leaves it when it claims it (channel marks optional)."""
    claimed_reminder(deployment, token, **fields)


def send(deployment: LocalDeployment, message: Any = EMAIL, token: str = TOKEN) -> dict[str, Any]:
    return deployment.invoke(FUNCTION, {"reminderId": RID, "claimToken": token, "message": message})


def calls(deployment: LocalDeployment, service: str, operation: str) -> list[dict[str, Any]]:
    return [c.params for c in deployment.monitor.calls if (c.service, c.operation) == (service, operation)]


def log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """Every stdout line is one JSON object without personal data."""
    out = capsys.readouterr().out
    for needle in PERSONAL:
        assert needle not in out
    return [json.loads(line) for line in out.splitlines()]


def test_sends_through_ses_and_records_sent(deployment: LocalDeployment, capsys: pytest.CaptureFixture[str]) -> None:
    claim(deployment)

    answer = send(deployment)

    assert answer == {"channel": "email", "status": "SENT", "messageId": answer["messageId"]}
    assert sent_emails(deployment) == [
        {"to": ["pat@example.com"], "subject": EMAIL["subject"], "body": EMAIL["text"], "source": SENDER}
    ]
    (request,) = calls(deployment, "ses", "SendEmail")
    assert request["Message"]["Body"] == {"Text": {"Data": EMAIL["text"], "Charset": "UTF-8"}}
    assert request["Message"]["Subject"]["Charset"] == "UTF-8"
    item = stored(deployment)
    assert item["emailResult"] == {"status": "SENT", "token": TOKEN, "messageId": answer["messageId"]}
    assert item["state"] == "SENDING"  # the outcome of the reminder is UpdateStatus's to record
    assert log_lines(capsys) == [
        {
            "level": "INFO",
            "event": "delivery",
            "reminderId": RID,
            "channel": "email",
            "status": "SENT",
            "messageId": answer["messageId"],
        }
    ]


def test_the_inlined_code_sends_the_same(deploy: Callable[..., LocalDeployment]) -> None:
    deployment = deploy(inlined=True)
    claim(deployment)

    assert send(deployment)["status"] == "SENT"
    assert send(deployment)["status"] == "SENT"
    assert len(sent_emails(deployment)) == 1


@pytest.mark.parametrize(
    ("message", "status", "reason"),
    [
        (None, "SKIPPED", "ChannelNotRequested"),
        ({"to": None}, "SKIPPED", "NoAddress"),
        ({**EMAIL, "to": ""}, "SKIPPED", "NoAddress"),
        ({**EMAIL, "to": "pat.example.com"}, "FAILED", "InvalidAddress"),
        ({**EMAIL, "to": "pat@example"}, "FAILED", "InvalidAddress"),
        ({**EMAIL, "to": "pat smith@example.com"}, "FAILED", "InvalidAddress"),
        ({**EMAIL, "to": "pat@@example.com"}, "FAILED", "InvalidAddress"),
        ({**EMAIL, "to": ["pat@example.com"]}, "FAILED", "InvalidAddress"),
    ],
)
def test_what_cannot_be_sent_is_answered_without_calling_ses(
    deployment: LocalDeployment, capsys: pytest.CaptureFixture[str], message: Any, status: str, reason: str
) -> None:
    claim(deployment)

    assert send(deployment, message) == {"channel": "email", "status": status, "reason": reason}
    assert calls(deployment, "ses", "SendEmail") == []
    assert "emailResult" not in stored(deployment)
    assert log_lines(capsys)[-1]["reason"] == reason


@pytest.mark.parametrize("how", ["injected", "sender no longer verified"])
def test_a_permanent_ses_error_is_recorded_failed_not_raised(
    deployment: LocalDeployment, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    claim(deployment)
    if how == "injected":
        # The provider's message names the address: only the code may reach the logs.
        deployment.inject("ses", "SendEmail", "MessageRejected", message="Address not verified: pat@example.com")
    else:
        deployment.client("ses").delete_identity(Identity=SENDER)

    answer = send(deployment)

    assert answer == {"channel": "email", "status": "FAILED", "reason": "MessageRejected"}
    assert sent_emails(deployment) == []
    assert stored(deployment)["emailResult"] == {"status": "FAILED", "token": TOKEN, "reason": "MessageRejected"}
    # Retrying cannot help and does not send: the recorded answer stands.
    assert send(deployment) == answer
    assert len(calls(deployment, "ses", "SendEmail")) == 1
    log_lines(capsys)


@pytest.mark.parametrize("error", ["Throttling", "ServiceUnavailable", "InternalFailure", "TooManyRequestsException"])
def test_a_transient_ses_error_frees_the_mark_and_the_retry_sends_once(
    deployment: LocalDeployment, capsys: pytest.CaptureFixture[str], error: str
) -> None:
    claim(deployment)
    deployment.inject("ses", "SendEmail", error, times=2)

    for _ in range(2):
        with pytest.raises(FunctionError) as raised:
            send(deployment)
        assert raised.value.error["errorType"] == "RetryableError"
        assert raised.value.error["errorMessage"] == error
        assert "emailResult" not in stored(deployment)
    answer = send(deployment)  # what Step Functions' Retry does

    assert answer["status"] == "SENT"
    assert len(sent_emails(deployment)) == 1
    assert stored(deployment)["emailResult"]["status"] == "SENT"
    lines = log_lines(capsys)
    # A raised RetryableError is logged by the Lambda runtime; the handler logs the final answer.
    assert [line["event"] for line in lines] == ["delivery"]


@pytest.mark.parametrize("error", ["ReadTimeoutError", "ConnectionClosedError"])
def test_a_lost_answer_from_ses_is_failed_and_never_resent(deployment: LocalDeployment, error: str) -> None:
    """SES may have sent it: a retry could send twice, so the channel is FAILED, not retried."""
    claim(deployment)
    deployment.inject("ses", "SendEmail", error)
    answer = send(deployment)
    assert answer == {"channel": "email", "status": "FAILED", "reason": error}
    assert stored(deployment)["emailResult"]["status"] == "FAILED"
    assert send(deployment)["reason"] == error, "a retry answers from the mark, without calling SES"
    assert len(calls(deployment, "ses", "SendEmail")) == 1


def test_no_connection_to_ses_is_retried(deployment: LocalDeployment) -> None:
    claim(deployment)
    deployment.inject("ses", "SendEmail", "EndpointConnectionError")
    with pytest.raises(FunctionError) as raised:
        send(deployment)
    assert raised.value.error["errorType"] == "RetryableError"
    assert send(deployment)["status"] == "SENT"
    assert len(sent_emails(deployment)) == 1


# The channel mark itself (retries, duplicates, take-overs) is tested for both senders in
# tests/test_channel_marks.py.
