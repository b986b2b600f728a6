"""SendEmail on moto: the request SES gets, what cannot be sent (no mark is written), SES's own
errors, and logs without personal data. The channel mark (at most once per appointment time, rows
7-9 of handlers/README.md) is tested for both senders in tests/test_channel_marks.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tapstack.local import LocalDeployment
from tapstack.local.deployment import FunctionError
from tests.support import SENDER, calls, claimed_reminder, job, logged, sent_emails, sent_key, stored

FUNCTION = "EmailSenderFunction"
RID = "a1#1440"
TOKEN = "9f" * 16
EMAIL = {
    "to": "pat@example.com",
    "subject": "Reminder: your appointment on Tuesday 3 March 2026 at 10:00 CET (Europe/Paris)",
    "text": "Hello Pat Example,\n\nThis is a reminder of your appointment on Tuesday 3 March 2026 at 10:00 CET.\n",
}
#: What must never reach the logs.
PERSONAL = ("pat@example.com", "Pat Example", "Tuesday 3 March", "Reminder: your appointment")


pytestmark = pytest.mark.usefixtures("logs_hold_no_personal_data")


def send(deployment: LocalDeployment, message: Any = EMAIL) -> dict[str, Any]:
    result: dict[str, Any] = deployment.invoke(FUNCTION, job(TOKEN, message=message))
    return result


def test_sends_the_rendered_email_through_ses(deployment: LocalDeployment) -> None:
    claimed_reminder(deployment, TOKEN)

    answer = send(deployment)

    assert answer == {"channel": "email", "status": "SENT", "messageId": answer["messageId"]}
    assert sent_emails(deployment) == [
        {"to": ["pat@example.com"], "subject": EMAIL["subject"], "body": EMAIL["text"], "source": SENDER}
    ]
    (request,) = calls(deployment, "ses", "SendEmail")
    assert request == {
        "Source": SENDER,
        "Destination": {"ToAddresses": ["pat@example.com"]},
        "Message": {
            "Subject": {"Data": EMAIL["subject"], "Charset": "UTF-8"},
            "Body": {"Text": {"Data": EMAIL["text"], "Charset": "UTF-8"}},
        },
    }
    item = stored(deployment)
    assert (item["emailResult"]["status"], item["emailResult"]["messageId"]) == ("SENT", answer["messageId"])
    assert item["sent"] == {sent_key("email")}
    assert logged(deployment, FUNCTION) == [{"level": "INFO", "event": "delivery", "reminderId": RID, **answer}]


#: Messages that cannot be sent, and the answer for each.
UNSENDABLE: list[tuple[Any, str, str]] = [
    (None, "SKIPPED", "ChannelNotRequested"),
    ({"to": None}, "SKIPPED", "NoAddress"),
    ({**EMAIL, "to": ""}, "SKIPPED", "NoAddress"),
    ({**EMAIL, "to": "pat.example.com"}, "FAILED", "InvalidAddress"),
    ({**EMAIL, "to": "pat@example"}, "FAILED", "InvalidAddress"),
    ({**EMAIL, "to": "pat smith@example.com"}, "FAILED", "InvalidAddress"),
    ({**EMAIL, "to": "pat@@example.com"}, "FAILED", "InvalidAddress"),
    ({**EMAIL, "to": ["pat@example.com"]}, "FAILED", "InvalidAddress"),
]


def test_what_cannot_be_sent_is_answered_without_a_mark_or_a_call(deployment: LocalDeployment) -> None:
    before = claimed_reminder(deployment, TOKEN)

    for message, status, reason in UNSENDABLE:
        assert send(deployment, message) == {"channel": "email", "status": status, "reason": reason}, message
        assert stored(deployment) == before, message
        assert logged(deployment, FUNCTION)[-1] == {
            "level": "INFO",
            "event": "delivery",
            "reminderId": RID,
            "channel": "email",
            "status": status,
            "reason": reason,
        }
    assert deployment.monitor.calls == []  # no mark, no SES call


def test_ses_refusals_are_failed_with_their_code_and_free_the_time(deployment: LocalDeployment) -> None:
    """SES refused, so nothing went out ("Amazon SES returns an error message to your application and
    does not send the email": https://docs.aws.amazon.com/ses/latest/dg/troubleshoot-error-messages.html):
    FAILED with SES's code (its message may name the address and is never logged), and the
    appointment time leaves ``sent``."""
    refusals = [
        "MessageRejected",
        "MailFromDomainNotVerifiedException",
        "ConfigurationSetDoesNotExist",
        "AccountSendingPausedException",
    ]
    for code in refusals:
        claimed_reminder(deployment, TOKEN)
        deployment.inject("ses", "SendEmail", code, message="Email address is not verified: pat@example.com")

        assert send(deployment) == {"channel": "email", "status": "FAILED", "reason": code}
        item = stored(deployment)
        assert (item["emailResult"]["status"], item["emailResult"]["reason"]) == ("FAILED", code)
        assert "sent" not in item
    assert sent_emails(deployment) == []


def test_a_sender_no_longer_verified_is_refused_by_ses_itself(deployment: LocalDeployment) -> None:
    claimed_reminder(deployment, TOKEN)
    deployment.client("ses").delete_identity(Identity=SENDER)

    assert send(deployment) == {"channel": "email", "status": "FAILED", "reason": "MessageRejected"}
    assert sent_emails(deployment) == [] and "sent" not in stored(deployment)


def test_ses_throttling_and_server_errors_are_retried_and_send_once(deployment: LocalDeployment) -> None:
    """SES refuses a send over the account's rate with a throttling error ("Maximum sending rate
    exceeded"), and drops it: it may be retried
    (https://docs.aws.amazon.com/ses/latest/dg/manage-sending-quotas-errors.html); a 5xx is SES's own
    failure. Nothing went out: RetryableError, no mark left, and the workflow's retry sends."""
    transient = [
        ("Throttling", 400),
        ("TooManyRequestsException", 429),
        ("ServiceUnavailable", 503),
        ("InternalFailure", 500),
    ]
    for sent, (code, status) in enumerate(transient, start=1):
        claimed_reminder(deployment, TOKEN)
        deployment.inject("ses", "SendEmail", code, status=status)

        with pytest.raises(FunctionError) as raised:
            send(deployment)
        assert (raised.value.error["errorType"], raised.value.error["errorMessage"]) == ("RetryableError", code)
        assert "emailResult" not in stored(deployment) and "sent" not in stored(deployment)

        assert send(deployment)["status"] == "SENT"
        assert len(sent_emails(deployment)) == sent
    assert [line["event"] for line in logged(deployment, FUNCTION)] == ["delivery"] * len(transient)


def test_the_inlined_copy_sends_the_same(deploy: Callable[..., LocalDeployment]) -> None:
    deployment = deploy(inlined=True)
    before = claimed_reminder(deployment, TOKEN)

    assert send(deployment, {"to": None}) == {"channel": "email", "status": "SKIPPED", "reason": "NoAddress"}
    assert stored(deployment) == before
    first = send(deployment)
    assert send(deployment) == first and first["status"] == "SENT"
    assert len(sent_emails(deployment)) == 1
    assert calls(deployment, "ses", "SendEmail")[0]["Source"] == SENDER
