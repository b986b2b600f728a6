"""The channel mark both senders share: each send happens at most once per claim and channel,
whatever is retried, duplicated, late or taken over. Run against each sender."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tapstack.local import LocalDeployment
from tapstack.local.deployment import FunctionError
from tests.support import claimed_reminder, reminder, sent_emails, sent_sms

RID = "a1#1440"
TOKEN = "9f" * 16
EARLIER = "0e" * 16


@dataclass(frozen=True)
class Channel:
    name: str
    function: str
    mark: str
    service: str
    operation: str
    message: dict[str, str]
    sent: Callable[[LocalDeployment], list[Any]]


CHANNELS = [
    Channel("email", "EmailSenderFunction", "emailResult", "ses", "SendEmail",
            {"to": "pat@example.com", "subject": "Reminder", "text": "Hello Pat Example"}, sent_emails),
    Channel("sms", "SmsSenderFunction", "smsResult", "sns", "Publish",
            {"to": "+15555550123", "text": "Hello Pat Example"}, sent_sms),
]  # fmt: skip


@pytest.fixture(params=CHANNELS, ids=lambda channel: channel.name)
def channel(request: pytest.FixtureRequest) -> Channel:
    return request.param  # type: ignore[no-any-return]


def send(deployment: LocalDeployment, channel: Channel, token: str = TOKEN) -> dict[str, Any]:
    return deployment.invoke(channel.function, {"reminderId": RID, "claimToken": token, "message": channel.message})


def provider_calls(deployment: LocalDeployment, channel: Channel) -> list[Any]:
    return [c for c in deployment.monitor.calls if (c.service, c.operation) == (channel.service, channel.operation)]


def stored_mark(deployment: LocalDeployment, channel: Channel) -> Any:
    item = reminder(deployment, RID)
    assert item is not None
    return item.get(channel.mark)


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        ("ProvisionedThroughputExceededException", True),
        ("ThrottlingException", True),
        ("InternalServerError", True),
        ("AccessDeniedException", False),
    ],
)
def test_an_error_while_marking_sends_nothing(
    deployment: LocalDeployment, channel: Channel, error: str, retried: bool
) -> None:
    claimed_reminder(deployment, TOKEN)
    deployment.inject("dynamodb", "UpdateItem", error)

    if retried:
        with pytest.raises(FunctionError) as raised:
            send(deployment, channel)
        assert raised.value.error["errorType"] == "RetryableError"
        assert provider_calls(deployment, channel) == []
        assert send(deployment, channel)["status"] == "SENT", "the workflow's retry sends"
        assert len(channel.sent(deployment)) == 1
    else:
        assert send(deployment, channel) == {"channel": channel.name, "status": "FAILED", "reason": error}
        assert provider_calls(deployment, channel) == [] and channel.sent(deployment) == []


def test_a_message_sent_but_not_recorded_is_still_answered_sent(
    deployment: LocalDeployment, channel: Channel, capsys: pytest.CaptureFixture[str]
) -> None:
    claimed_reminder(deployment, TOKEN)
    # The write that records the outcome (the one after the provider accepted) fails.
    provider = deployment.functions[deployment.resources[channel.function].ref].module.__dict__[channel.service]
    provider.meta.events.register(
        f"after-call.{channel.service}.{channel.operation}",
        lambda **_: deployment.inject("dynamodb", "UpdateItem", "InternalServerError"),
    )

    answer = send(deployment, channel)

    assert answer["status"] == "SENT" and len(channel.sent(deployment)) == 1
    assert stored_mark(deployment, channel) == {"status": "SENDING", "token": TOKEN}
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {"level": "ERROR", "event": "mark_not_recorded", "reminderId": RID, "error": "InternalServerError"} in lines


def test_sending_twice_with_the_same_claim_sends_once(deployment: LocalDeployment, channel: Channel) -> None:
    claimed_reminder(deployment, TOKEN)

    first = send(deployment, channel)
    second = send(deployment, channel)

    assert second == first and first["status"] == "SENT"
    assert len(channel.sent(deployment)) == 1 and len(provider_calls(deployment, channel)) == 1


@pytest.mark.parametrize(
    "recorded",
    [
        {"status": "SENT", "token": EARLIER, "messageId": "m-1"},
        {"status": "FAILED", "token": EARLIER, "reason": "MessageRejected"},
        {"status": "SKIPPED", "token": EARLIER, "reason": "NoAddress"},
    ],
    ids=["sent", "failed", "skipped"],
)
def test_a_result_of_an_earlier_claim_is_returned_not_resent(
    deployment: LocalDeployment, channel: Channel, recorded: dict[str, str]
) -> None:
    claimed_reminder(deployment, TOKEN, **{channel.mark: recorded})  # re-claimed after the earlier execution died

    answer = send(deployment, channel)

    assert answer == {"channel": channel.name, **{k: v for k, v in recorded.items() if k != "token"}}
    assert provider_calls(deployment, channel) == []
    assert stored_mark(deployment, channel) == recorded


@pytest.mark.parametrize("marked_by", [TOKEN, EARLIER], ids=["this-claim", "an-earlier-claim"])
def test_a_send_that_died_midway_is_never_repeated(
    deployment: LocalDeployment, channel: Channel, marked_by: str
) -> None:
    claimed_reminder(deployment, TOKEN, **{channel.mark: {"status": "SENDING", "token": marked_by}})

    assert send(deployment, channel) == {"channel": channel.name, "status": "FAILED", "reason": "OutcomeUnknown"}
    assert provider_calls(deployment, channel) == []


@pytest.mark.parametrize("current", ["a-newer-claim", None, "no reminder"])
def test_a_lost_claim_sends_nothing(deployment: LocalDeployment, channel: Channel, current: str | None) -> None:
    if current != "no reminder":
        claimed_reminder(deployment, current, **{channel.mark: {"status": "SENT", "token": TOKEN, "messageId": "m"}})

    assert send(deployment, channel) == {"channel": channel.name, "status": "SKIPPED", "reason": "ClaimLost"}
    assert provider_calls(deployment, channel) == []
