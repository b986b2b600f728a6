"""The channel mark both senders share (handlers/channel_marks.py): rows 7, 8, 8b and 9 of the protocol
in handlers/README.md. A channel reaches its provider at most once per appointment time, whatever is
retried, duplicated, late, taken over, cancelled or re-planned. Every test runs against each sender,
on moto, and checks the stored reminder (result, ``sent``, state) and the provider calls made.

Interleavings inside one invocation are forced with botocore event hooks on the function's own
clients (tests/support.py): a write applied whose answer is lost, an appointment cancelled or moved
while the provider call is in flight, a retried task arriving while the first attempt still sends.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import botocore.exceptions
import pytest
import time_machine

from tapstack.local import LocalDeployment
from tapstack.local.deployment import FunctionError
from tests.support import (
    APPOINTMENT_TIME,
    DAY,
    HOUR,
    NOW,
    appointment,
    before_sending,
    claimed_reminder,
    function_global,
    job,
    lose_answers,
    put_appointment,
    reminder,
    sent_emails,
    sent_key,
    sent_sms,
    stored,
    stream_run,
    while_in_flight,
)

RID = "a1#1440"
TOKEN = "9f" * 16
EARLIER = "0e" * 16
OTHER = "7c" * 16
#: A mark's ``until`` is the invocation's end: now + ``context.get_remaining_time_in_millis()``, "the
#: number of milliseconds left before the execution times out"
#: (https://docs.aws.amazon.com/lambda/latest/dg/python-context.html). The local runner gives every
#: invocation 30 s and the clock stands still at NOW, so a mark written now gives up at NOW + 30.
UNTIL = NOW + 30


@dataclass(frozen=True)
class Channel:
    name: str
    function: str
    #: The provider's client in the sender's module, and the service it calls.
    service: str
    operation: str
    message: dict[str, str]
    delivered: Callable[[LocalDeployment], list[Any]]
    #: A permanent refusal, a throttling and a 5xx error code of the provider.
    refusal: str
    throttled: str
    unavailable: str

    @property
    def result(self) -> str:
        return f"{self.name}Result"

    @property
    def key(self) -> str:
        return sent_key(self.name)


CHANNELS = [
    Channel("email", "EmailSenderFunction", "ses", "SendEmail",
            {"to": "pat@example.com", "subject": "Reminder", "text": "Hello Pat Example"}, sent_emails,
            refusal="MessageRejected", throttled="Throttling", unavailable="ServiceUnavailable"),
    Channel("sms", "SmsSenderFunction", "sns", "Publish",
            {"to": "+15555550123", "text": "Hello Pat Example"}, sent_sms,
            refusal="InvalidParameter", throttled="Throttling", unavailable="InternalError"),
]  # fmt: skip


@pytest.fixture(params=CHANNELS, ids=lambda channel: channel.name)
def channel(request: pytest.FixtureRequest) -> Channel:
    return request.param  # type: ignore[no-any-return]


def send(
    deployment: LocalDeployment, channel: Channel, token: str = TOKEN, appointment_time: int = APPOINTMENT_TIME
) -> dict[str, Any]:
    """One invocation of the sender, as the workflow's SendEmail/SendSMS task makes it."""
    result: dict[str, Any] = deployment.invoke(channel.function, job(token, appointment_time, message=channel.message))
    return result


def refused_retryably(deployment: LocalDeployment, channel: Channel, token: str = TOKEN) -> str:
    """Invoke the sender, which must raise RetryableError (the workflow retries it); its message."""
    with pytest.raises(FunctionError) as raised:
        send(deployment, channel, token)
    assert raised.value.error["errorType"] == "RetryableError"
    return str(raised.value.error["errorMessage"])


def provider(deployment: LocalDeployment, channel: Channel) -> Any:
    return function_global(deployment, channel.function, channel.service)


def marks(deployment: LocalDeployment, channel: Channel) -> Any:
    """The sender's DynamoDB client, which writes the marks."""
    return function_global(deployment, channel.function, "reminders")


def provider_calls(deployment: LocalDeployment, channel: Channel) -> int:
    return sum((c.service, c.operation) == (channel.service, channel.operation) for c in deployment.monitor.calls)


def logged(deployment: LocalDeployment, channel: Channel) -> list[dict[str, Any]]:
    """The sender's log lines (each one JSON object)."""
    return [json.loads(line) for function, line in deployment.monitor.logs if function == channel.function]


def other_channel(channel: Channel) -> Channel:
    return next(c for c in CHANNELS if c != channel)


def claim_by_the_processor(deployment: LocalDeployment) -> dict[str, Any]:
    """Book a1 for tomorrow and let a stream run plan its 1440-minute reminder, due now, and claim it:
    the job it returns."""
    put_appointment(deployment, appointment("a1", DAY))
    (claimed,) = stream_run(deployment, "a1", 100, "booked")["jobs"]
    assert claimed["appointmentTime"] == APPOINTMENT_TIME
    return dict(claimed)


def deliver(deployment: LocalDeployment, channel: Channel, claimed: dict[str, Any]) -> dict[str, Any]:
    """The sender's invocation for a job the processor returned."""
    ids = {name: claimed[name] for name in ("reminderId", "claimToken", "appointmentTime")}
    result: dict[str, Any] = deployment.invoke(channel.function, {**ids, "message": claimed[channel.name]})
    return result


def http_status(code: str) -> int:
    """The HTTP status AWS answers an error code with (a network error has none: the runner raises it)."""
    return 500 if code in ("InternalServerError", "InternalError", "InternalFailure", "ServiceUnavailable") else 400


def botocore_error(name: str) -> Exception:
    """A network error as botocore raises it."""
    error: Exception = getattr(botocore.exceptions, name)(endpoint_url="https://local.invalid/")
    return error


# ---- row 7: the mark, before the provider is called ---------------------------------------------


def test_a_send_is_marked_before_the_call_and_recorded_after_it(deployment: LocalDeployment, channel: Channel) -> None:
    claimed_reminder(deployment, TOKEN)
    seen: list[dict[str, Any]] = []
    before_sending(provider(deployment, channel), channel.operation, lambda: seen.append(stored(deployment)))

    answer = send(deployment, channel)

    (during,) = seen
    mark = during[channel.result]
    assert {k: v for k, v in mark.items() if k != "until"} == {
        "status": "SENDING",
        "token": TOKEN,
        "attempt": mark["attempt"],
    }
    assert float(mark["until"]) == UNTIL  # when this attempt gives up: its remaining time
    assert during["sent"] == {channel.key}
    assert answer == {"channel": channel.name, "status": "SENT", "messageId": answer["messageId"]}
    item = stored(deployment)
    assert item[channel.result] == {
        "status": "SENT",
        "token": TOKEN,
        "attempt": mark["attempt"],
        "messageId": answer["messageId"],
    }
    assert item["sent"] == {channel.key}  # it went out for this appointment time, for good
    assert (item["state"], item["claimToken"]) == ("SENDING", TOKEN)  # the reminder's outcome is UpdateStatus's
    assert other_channel(channel).result not in item
    assert provider_calls(deployment, channel) == 1 and len(channel.delivered(deployment)) == 1
    assert logged(deployment, channel) == [{"level": "INFO", "event": "delivery", "reminderId": RID, **answer}]


def test_a_retried_job_answers_from_the_record_and_sends_once(deployment: LocalDeployment, channel: Channel) -> None:
    claimed_reminder(deployment, TOKEN)

    first = send(deployment, channel)
    recorded = stored(deployment)
    second = send(deployment, channel)

    assert second == first and first["status"] == "SENT"
    assert stored(deployment) == recorded
    assert provider_calls(deployment, channel) == 1 and len(channel.delivered(deployment)) == 1


def test_its_own_mark_after_a_lost_answer_goes_ahead_and_sends_once(
    deployment: LocalDeployment, channel: Channel
) -> None:
    """The mark was written but its answer lost: botocore repeats the write, which DynamoDB refuses
    (the mark exists). The refusal carries the item as it is (ReturnValuesOnConditionCheckFailure
    ALL_OLD: "Item which caused the ConditionalCheckFailedException",
    https://docs.aws.amazon.com/botocore/latest/reference/services/dynamodb/client/exceptions/ConditionalCheckFailedException.html),
    which shows this invocation's own attempt: it goes ahead and sends."""
    claimed_reminder(deployment, TOKEN)
    lost = lose_answers(marks(deployment, channel), "UpdateItem")

    answer = send(deployment, channel)

    assert lost == [1]
    assert answer["status"] == "SENT" and "reason" not in answer
    assert stored(deployment)[channel.result]["status"] == "SENT"
    assert stored(deployment)["sent"] == {channel.key}
    assert provider_calls(deployment, channel) == 1 and len(channel.delivered(deployment)) == 1


# ---- row 7 refused: what the mark's condition found instead ---------------------------------------


#: Records whose claim is not the job's: (what happened, its claim token, its fields; None: no record).
LOST_CLAIMS: list[tuple[str, str | None, dict[str, Any] | None]] = [
    ("taken over by another execution after the lease", OTHER, {}),
    ("the job's token on a record that is not SENDING", TOKEN, {"state": "SENT"}),
    ("re-planned for another time", TOKEN, {"appointmentTime": APPOINTMENT_TIME + HOUR}),
    ("cancelled", None, {"state": "CANCELLED", "claimExpiresAt": None, "dueShard": None, "attemptAt": None}),
    ("final", None, {"state": "SENT", "claimExpiresAt": None, "dueShard": None, "attemptAt": None}),
    ("no reminder at all", None, None),
]


def test_a_lost_claim_sends_nothing(deployment: LocalDeployment, channel: Channel) -> None:
    """The mark is refused when the claim is not the job's (token, SENDING and appointment time, each
    on its own): the sender answers ClaimLost, writes nothing and calls no provider."""
    for case, token, fields in LOST_CLAIMS:
        deployment.client("dynamodb").delete_item(
            TableName=deployment.table_name("RemindersTable"), Key={"reminderId": {"S": RID}}
        )
        before = None if fields is None else claimed_reminder(deployment, token, **fields)

        answer = send(deployment, channel)

        assert answer == {"channel": channel.name, "status": "SKIPPED", "reason": "ClaimLost"}, case
        assert reminder(deployment, RID) == before, case
    assert provider_calls(deployment, channel) == 0 and channel.delivered(deployment) == []


def test_a_send_in_progress_is_waited_for_then_given_up(
    deployment: LocalDeployment, channel: Channel, clock: time_machine.Coordinates
) -> None:
    """Another attempt marked the channel, of this claim or of an earlier one that died: while it may
    still be sending (before its ``until``) the task is retried later; once past, the attempt died and
    its outcome is unknown: never retried."""
    for marked_by in (TOKEN, EARLIER):
        until = time.time() + 20
        mark = {"status": "SENDING", "token": marked_by, "attempt": "a-dead-attempt", "until": str(until)}
        before = claimed_reminder(deployment, TOKEN, **{channel.result: mark, "sent": {channel.key}})

        assert refused_retryably(deployment, channel) == "SendInProgress"
        clock.shift(19)
        assert refused_retryably(deployment, channel) == "SendInProgress"
        clock.shift(1)
        assert send(deployment, channel) == {"channel": channel.name, "status": "FAILED", "reason": "OutcomeUnknown"}

        assert stored(deployment) == before, "the mark stays: it may have gone out"
    assert provider_calls(deployment, channel) == 0


def test_a_retry_while_the_first_attempt_still_sends_waits_for_it(
    deployment: LocalDeployment, channel: Channel
) -> None:
    """Step Functions retries the task (its answer was lost) while the first invocation is still
    waiting for the provider: the retry is told to come back, and then answers from the record."""
    claimed_reminder(deployment, TOKEN)
    retried: list[str] = []
    while_in_flight(
        provider(deployment, channel), channel.operation, lambda: retried.append(refused_retryably(deployment, channel))
    )

    first = send(deployment, channel)
    later = send(deployment, channel)

    assert retried == ["SendInProgress"]
    assert first["status"] == "SENT" and later == first
    assert provider_calls(deployment, channel) == 1 and len(channel.delivered(deployment)) == 1


#: Results of this plan that are final (the ``attempt`` of the sender that recorded it, if one did).
FINAL_RESULTS = [
    {"status": "SENT", "token": TOKEN, "attempt": "a-1", "messageId": "m-1"},  # by this claim
    {"status": "SENT", "token": EARLIER, "attempt": "a-1", "messageId": "m-1"},  # by an earlier claim
    {"status": "FAILED", "token": EARLIER, "attempt": "a-1", "reason": "MessageRejected"},
    {"status": "FAILED", "token": EARLIER, "reason": "OutcomeUnknown"},  # recorded by UpdateStatus
    {"status": "SKIPPED", "token": EARLIER, "reason": "OptedOut"},
]


def test_a_final_result_of_this_plan_is_answered_again_without_sending(
    deployment: LocalDeployment, channel: Channel
) -> None:
    """An earlier claim of this plan (deferred, or taken over after its execution died), or an earlier
    invocation of this claim, settled the channel: the sender answers the same again."""
    for recorded in FINAL_RESULTS:
        before = claimed_reminder(deployment, TOKEN, **{channel.result: recorded})

        answer = send(deployment, channel)

        expected = {k: v for k, v in recorded.items() if k not in ("token", "attempt")}
        assert answer == {"channel": channel.name, **expected}, recorded
        assert stored(deployment) == before, recorded
    assert provider_calls(deployment, channel) == 0


def test_the_sent_set_stops_a_time_already_sent_and_only_that(deployment: LocalDeployment, channel: Channel) -> None:
    """Re-planned (moved away and back) after the channel went out for this very time: the new plan
    has no result, but ``sent`` and ``delivered`` remember. A time in ``sent`` only (an attempt that
    died after its mark, or whose answer was lost) may have gone out: not sent again, and not said
    sent (issue 13). What went out for another time or channel does not count."""
    before = claimed_reminder(deployment, TOKEN, sent={channel.key}, delivered={channel.key})

    assert send(deployment, channel) == {"channel": channel.name, "status": "SENT", "reason": "AlreadySent"}
    assert stored(deployment) == before

    before = claimed_reminder(deployment, TOKEN, sent={channel.key})

    assert send(deployment, channel) == {"channel": channel.name, "status": "FAILED", "reason": "OutcomeUnknown"}
    assert stored(deployment) == before
    assert provider_calls(deployment, channel) == 0

    others = {sent_key(channel.name, APPOINTMENT_TIME - HOUR), other_channel(channel).key}
    claimed_reminder(deployment, TOKEN, sent=others)

    assert send(deployment, channel)["status"] == "SENT"
    assert stored(deployment)["sent"] == others | {channel.key}
    assert provider_calls(deployment, channel) == 1


# ---- rows 8 and 9: the provider's answer ----------------------------------------------------------


def test_a_permanent_refusal_is_failed_and_frees_the_time(deployment: LocalDeployment, channel: Channel) -> None:
    claimed_reminder(deployment, TOKEN)
    deployment.inject(channel.service, channel.operation, channel.refusal)

    answer = send(deployment, channel)

    assert answer == {"channel": channel.name, "status": "FAILED", "reason": channel.refusal}
    item = stored(deployment)
    assert item[channel.result] == {
        "status": "FAILED",
        "token": TOKEN,
        "attempt": item[channel.result]["attempt"],
        "reason": channel.refusal,
    }
    # Nothing went out: the time leaves `sent`. DynamoDB has no empty set ("DynamoDB does not support
    # empty sets": https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html),
    # so deleting its last element removes the attribute (moto does the same).
    assert "sent" not in item
    assert send(deployment, channel) == answer, "a retry answers from the record"
    assert provider_calls(deployment, channel) == 1 and channel.delivered(deployment) == []


def test_a_lost_answer_is_failed_and_never_resent(deployment: LocalDeployment, channel: Channel) -> None:
    """The provider took the message and its answer was lost: it went out, so the time stays in
    ``sent``; the channel is FAILED (its outcome unknown to us) and no later attempt sends it."""
    for sent, error in enumerate(["ReadTimeoutError", "ConnectionClosedError"], start=1):
        claimed_reminder(deployment, TOKEN)
        lose_answers(provider(deployment, channel), channel.operation, error=error)

        answer = send(deployment, channel)

        assert answer == {"channel": channel.name, "status": "FAILED", "reason": error}
        assert len(channel.delivered(deployment)) == sent, "the provider's client makes one attempt per invocation"
        item = stored(deployment)
        assert (item[channel.result]["status"], item[channel.result]["reason"]) == ("FAILED", error)
        assert item["sent"] == {channel.key}
        assert send(deployment, channel) == answer, "a retry of this claim answers from the record"
        assert "delivered" not in item, "not known to have gone out"
        # A later claim of a new plan for the same time (re-planned after a move and back): no
        # result, but the time is in `sent`: never sent again, and not said sent either.
        claimed_reminder(deployment, OTHER, sent=item["sent"])
        unknown = {"channel": channel.name, "status": "FAILED", "reason": "OutcomeUnknown"}
        assert send(deployment, channel, OTHER) == unknown
        assert provider_calls(deployment, channel) == sent


def test_a_transient_refusal_frees_the_mark_and_the_retry_sends_once(
    deployment: LocalDeployment, channel: Channel
) -> None:
    """Throttled, a 5xx, or no connection: nothing went out, so the mark and the time are taken back
    and the workflow's retry (a new invocation) sends."""
    faults = [channel.throttled, channel.unavailable, "EndpointConnectionError", "ConnectTimeoutError"]
    for sent, code in enumerate(faults, start=1):
        claimed_reminder(deployment, TOKEN)
        deployment.inject(channel.service, channel.operation, code, status=http_status(code))

        assert refused_retryably(deployment, channel) == code
        item = stored(deployment)
        assert channel.result not in item and "sent" not in item, code
        assert len(channel.delivered(deployment)) == sent - 1, code

        assert send(deployment, channel)["status"] == "SENT", "the workflow's retry sends"
        assert stored(deployment)["sent"] == {channel.key}
        assert len(channel.delivered(deployment)) == sent, code
    assert provider_calls(deployment, channel) == 2 * len(faults)


def test_the_outcome_write_failing_after_a_send_still_answers_sent(
    deployment: LocalDeployment, channel: Channel
) -> None:
    """Sent is sent: the answer stands (UpdateStatus records it), the mark stays SENDING, and the
    failure is logged."""
    claimed_reminder(deployment, TOKEN)
    while_in_flight(
        provider(deployment, channel),
        channel.operation,
        lambda: deployment.inject(
            "dynamodb", "UpdateItem", "InternalServerError", status=500, function=channel.function
        ),
    )

    answer = send(deployment, channel)

    assert answer == {"channel": channel.name, "status": "SENT", "messageId": answer["messageId"]}
    item = stored(deployment)
    assert item[channel.result]["status"] == "SENDING" and item["sent"] == {channel.key}
    error = {"level": "ERROR", "event": "mark_not_recorded", "reminderId": RID, "error": "InternalServerError"}
    assert error in logged(deployment, channel)
    assert len(channel.delivered(deployment)) == 1


# ---- row 8b and re-plans: the appointment changes while a message is on its way ------------------


def test_cancelled_while_in_flight_the_record_says_sent_and_the_other_channel_is_not_sent(
    deployment: LocalDeployment, channel: Channel
) -> None:
    """A message at the provider cannot be recalled: the cancel (row 2) wins over everything that has
    not started, and the record says what went out (row 8b)."""
    claimed = claim_by_the_processor(deployment)

    def cancel() -> None:
        put_appointment(deployment, appointment("a1", DAY, status="CANCELLED"))
        stream_run(deployment, "a1", 200, "cancelled")
        assert stored(deployment)["state"] == "CANCELLED"

    while_in_flight(provider(deployment, channel), channel.operation, cancel)

    answer = deliver(deployment, channel, claimed)
    other = other_channel(channel)
    other_answer = deliver(deployment, other, claimed)

    assert answer["status"] == "SENT"
    item = stored(deployment)
    assert (item["state"], item["reason"]) == ("SENT", "AppointmentCancelled")
    assert item[channel.result]["status"] == "SENT" and item["sent"] == {channel.key}
    assert not {"claimToken", "claimExpiresAt", "dueShard", "attemptAt"} & item.keys()
    assert other_answer == {"channel": other.name, "status": "SKIPPED", "reason": "ClaimLost"}
    assert len(channel.delivered(deployment)) == 1 and other.delivered(deployment) == []


def test_a_cancel_racing_a_send_that_failed_transiently_stays_cancelled(
    deployment: LocalDeployment, channel: Channel
) -> None:
    claimed = claim_by_the_processor(deployment)

    def cancel_then_lose_the_connection() -> None:
        put_appointment(deployment, appointment("a1", DAY, status="CANCELLED"))
        stream_run(deployment, "a1", 200, "cancelled")
        raise botocore_error("EndpointConnectionError")

    before_sending(provider(deployment, channel), channel.operation, cancel_then_lose_the_connection)

    with pytest.raises(FunctionError) as raised:
        deliver(deployment, channel, claimed)
    assert raised.value.error["errorType"] == "RetryableError"
    item = stored(deployment)
    assert (item["state"], item["reason"]) == ("CANCELLED", "AppointmentCancelled")
    assert channel.result not in item and "sent" not in item
    assert deliver(deployment, channel, claimed) == {
        "channel": channel.name,
        "status": "SKIPPED",
        "reason": "ClaimLost",
    }
    assert channel.delivered(deployment) == []


def test_moved_while_in_flight_and_moved_back_the_time_is_not_sent_again(
    deployment: LocalDeployment, channel: Channel
) -> None:
    """Sent for T1, moved to T2 while the provider call was in flight, moved back to T1 (issue 13,
    case 3): the re-plans clear the plan's results, but ``sent`` keeps T1, so nothing goes out twice."""
    claimed = claim_by_the_processor(deployment)

    def move_away() -> None:
        put_appointment(deployment, appointment("a1", 2 * DAY))
        assert stream_run(deployment, "a1", 200, "moved")["jobs"] == []

    while_in_flight(provider(deployment, channel), channel.operation, move_away)

    assert deliver(deployment, channel, claimed)["status"] == "SENT"
    # The outcome could not be written over a mark the re-plan removed; the provider call is in `sent`.
    item = stored(deployment)
    assert (item["state"], item["appointmentTime"]) == ("PENDING", NOW + 2 * DAY)
    assert channel.result not in item and item["sent"] == item["delivered"] == {channel.key}
    error = {
        "level": "ERROR",
        "event": "mark_not_recorded",
        "reminderId": RID,
        "error": "ConditionalCheckFailedException",
    }
    assert error in logged(deployment, channel)

    put_appointment(deployment, appointment("a1", DAY))
    (again,) = stream_run(deployment, "a1", 300, "moved-back")["jobs"]

    assert deliver(deployment, channel, again) == {"channel": channel.name, "status": "SENT", "reason": "AlreadySent"}
    assert len(channel.delivered(deployment)) == 1
    other = other_channel(channel)
    assert deliver(deployment, other, again)["status"] == "SENT", "the other channel never went out: it goes now"


# ---- before the mark: late jobs and errors while marking ----------------------------------------


def test_a_job_whose_appointment_has_started_sends_nothing(deployment: LocalDeployment, channel: Channel) -> None:
    """A late job (its execution ran long, or was retried): nothing to remind of. No mark either."""
    for started in (HOUR, 0):
        before = claimed_reminder(deployment, TOKEN, appointmentTime=NOW - started)

        answer = send(deployment, channel, appointment_time=NOW - started)

        assert answer == {"channel": channel.name, "status": "SKIPPED", "reason": "AppointmentStarted"}
        assert stored(deployment) == before
    assert [c for c in deployment.monitor.calls if c.function == channel.function] == []

    claimed_reminder(deployment, TOKEN, appointmentTime=NOW + 1)  # a second ahead: still in time
    assert send(deployment, channel, appointment_time=NOW + 1)["status"] == "SENT"
    assert stored(deployment)["sent"] == {sent_key(channel.name, NOW + 1)}


def test_an_error_while_marking_sends_nothing(deployment: LocalDeployment, channel: Channel) -> None:
    """Throttled, a 5xx or no connection while marking: retried by the workflow, whose retry sends.
    Refused for good (no permission): FAILED with the error's code. Neither calls the provider."""
    transient = [
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "InternalServerError",
        "EndpointConnectionError",
        "ConnectTimeoutError",
    ]
    for sent, error in enumerate(transient, start=1):
        before = claimed_reminder(deployment, TOKEN)
        deployment.inject("dynamodb", "UpdateItem", error, status=http_status(error), function=channel.function)

        assert refused_retryably(deployment, channel) == error
        assert stored(deployment) == before and provider_calls(deployment, channel) == sent - 1, error

        assert send(deployment, channel)["status"] == "SENT", "the workflow's retry sends"
        assert len(channel.delivered(deployment)) == sent, error

    before = claimed_reminder(deployment, TOKEN)
    deployment.inject("dynamodb", "UpdateItem", "AccessDeniedException", function=channel.function)

    assert send(deployment, channel) == {"channel": channel.name, "status": "FAILED", "reason": "AccessDeniedException"}
    assert stored(deployment) == before and provider_calls(deployment, channel) == len(transient)


def test_a_mark_whose_answers_are_all_lost_is_taken_back_and_retried(
    deployment: LocalDeployment, channel: Channel
) -> None:
    """Every attempt botocore makes at the mark loses its answer (the first one wrote it). Nothing was
    sent, so this is transient, not FAILED: the sender takes its mark back and raises RetryableError,
    and the workflow's retry marks and sends."""
    before = claimed_reminder(deployment, TOKEN)
    client = marks(deployment, channel)
    attempts = client.meta.config.retries["total_max_attempts"]
    lost = lose_answers(client, "UpdateItem", times=attempts)

    assert refused_retryably(deployment, channel) == "ReadTimeoutError"
    assert len(lost) == attempts
    assert stored(deployment) == before and provider_calls(deployment, channel) == 0

    assert send(deployment, channel)["status"] == "SENT"
    assert provider_calls(deployment, channel) == 1 and len(channel.delivered(deployment)) == 1


# ---- the template's copy ------------------------------------------------------------------------


def test_the_inlined_copy_keeps_its_marks_the_same(deploy: Callable[..., LocalDeployment], channel: Channel) -> None:
    deployment = deploy(inlined=True)
    claimed_reminder(deployment, TOKEN)
    lost = lose_answers(marks(deployment, channel), "UpdateItem")

    first = send(deployment, channel)
    assert send(deployment, channel) == first and first["status"] == "SENT"

    assert lost == [1]
    assert stored(deployment)["sent"] == {channel.key}
    assert provider_calls(deployment, channel) == 1 and len(channel.delivered(deployment)) == 1
