"""The channel mark: a reminder's channel reaches its provider at most once per appointment time,
whatever is retried, duplicated, late, taken over, cancelled or re-planned. Shared by send_email.py
and send_sms.py (the build bundles it into each).

Before calling the provider, the sender marks its channel on the reminder with one conditional write:
``<channel>Result`` (``emailResult``, ``smsResult``) becomes ``SENDING`` with this invocation's id
(``attempt``) and the moment it gives up (``until``), and ``<channel>@<appointmentTime>`` joins the
reminder's ``sent`` set, which outlives re-plans. The write succeeds only while the claim is this
job's (token, ``SENDING``, same appointment time), the channel has no result in this plan and was
never sent for this appointment time. After the call the sender records the outcome over its own
mark, whatever became of the claim meanwhile: sent is sent.

This is Powertools' idempotency record (``INPROGRESS`` with an expiry before the work,
``COMPLETED`` after it) with one deliberate difference: a ``SENDING`` mark whose attempt died is
never retried, because a reminder sent twice is worse than one reported ``FAILED``
(``OutcomeUnknown``). A mark whose attempt may still be running answers "retry later".
"""

import contextlib
import os
import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

from .common import RetryableError, conditional_update, error_code, is_transient, log

REMINDERS_TABLE = os.environ["REMINDERS_TABLE"]
# Every write here is conditional, so botocore may repeat one; an attempt that recognises its own
# mark on a repeated write goes ahead (the first write's answer was lost, not the write).
reminders = boto3.client(
    "dynamodb", config=Config(connect_timeout=1, read_timeout=2, retries={"mode": "standard", "total_max_attempts": 2})
)
NAMES = {"#s": "state", "#r": "result", "#a": "attempt"}


#: The provider's client: one attempt per invocation, since botocore retrying a request that may
#: have reached the provider could send twice ("total_max_attempts" counts every attempt, 1 meaning
#: never retried; "max_attempts" would count the retries after the first:
#: https://botocore.amazonaws.com/v1/documentation/api/latest/reference/config.html); short
#: timeouts, within the function's own.
PROVIDER = Config(connect_timeout=1, read_timeout=4, retries={"total_max_attempts": 1})


def answer(channel: str, status: str, reason: str | None = None, **fields: Any) -> dict[str, Any]:
    """The sender's output: ``{"channel", "status", "reason"?, "messageId"?}``."""
    return {"channel": channel, "status": status, **({"reason": reason} if reason else {}), **fields}


def stored(values: dict[str, Any]) -> dict[str, Any]:
    """A result as a DynamoDB map of strings."""
    return {"M": {name: {"S": str(value)} for name, value in values.items() if name != "channel"}}


def plain(item: dict[str, Any], name: str) -> dict[str, str]:
    """A map attribute of strings read back, or {}."""
    return {key: value["S"] for key, value in item.get(name, {}).get("M", {}).items()}


def write(
    job: dict[str, Any], channel: str, expression: str, condition: str, /, **values: Any
) -> tuple[bool, dict[str, Any]]:
    """One conditional write of the job's reminder; ``#r`` is the channel's result."""
    names = {**NAMES, "#r": f"{channel}Result"}
    key = {"reminderId": {"S": job["reminderId"]}}
    return conditional_update(reminders, REMINDERS_TABLE, key, expression, condition, names, **values)


def begin(channel: str, job: dict[str, Any], attempt: str, until: float) -> dict[str, Any] | None:
    """Mark the channel before sending. None: go ahead and send; otherwise the answer instead."""
    key = f"{channel}@{job['appointmentTime']}"
    try:
        written, old = write(
            job,
            channel,
            "SET #r = :m ADD sent :k",
            "claimToken = :t AND #s = :sending AND appointmentTime = :at"
            " AND attribute_not_exists(#r) AND NOT contains(sent, :key)",
            m=stored({"status": "SENDING", "token": job["claimToken"], "attempt": attempt, "until": until}),
            k={key},
            key=key,
            t=job["claimToken"],
            sending="SENDING",
            at=job["appointmentTime"],
        )
    except Exception as error:
        if is_transient(error, idempotent=True):
            take_back(channel, job, attempt)
        raise
    return None if written else refusal(channel, job, attempt, old, key)


def take_back(channel: str, job: dict[str, Any], attempt: str) -> None:
    """After a mark write that failed transiently: it may have been written with every answer lost.
    Nothing was sent, so remove it if it is there, for the workflow's retry to mark and send. If it
    is not there, or DynamoDB cannot be reached, the retry finds out (a mark left behind is waited
    for until its ``until``, then answered OutcomeUnknown)."""
    with contextlib.suppress(Exception):
        withdraw(channel, job, attempt)


def refusal(channel: str, job: dict[str, Any], attempt: str, old: dict[str, Any], key: str) -> dict[str, Any] | None:
    """Why the mark was refused, as the sender's answer (None: the mark is this attempt's own)."""
    result = plain(old, f"{channel}Result")
    if result.get("attempt") == attempt:
        return None  # our own write, repeated by botocore after its answer was lost: go ahead
    claimed = (old.get("claimToken"), old.get("state"), old.get("appointmentTime"))
    if claimed != ({"S": job["claimToken"]}, {"S": "SENDING"}, {"N": str(job["appointmentTime"])}):
        return answer(channel, "SKIPPED", "ClaimLost")  # cancelled, moved, finished or taken over
    if result.get("status") == "SENDING":
        if float(result.get("until", 0)) > time.time():
            raise RetryableError("SendInProgress")  # another attempt may still be sending
        return answer(channel, "FAILED", "OutcomeUnknown")  # it died mid-send: it may have sent
    if result:  # final already, from this claim or an earlier one of this plan: not sent again
        return answer(channel, result["status"], result.get("reason"), **_message_id(result))
    if key in old.get("delivered", {}).get("SS", []):
        return answer(channel, "SENT", "AlreadySent")  # for this appointment time, by an earlier plan
    if key in old.get("sent", {}).get("SS", []):
        # An earlier plan's attempt for this time may have sent it (it died after its mark, or its
        # answer was lost): never sent again, and not said sent either.
        return answer(channel, "FAILED", "OutcomeUnknown")
    return answer(channel, "SKIPPED", "ClaimLost")


def _message_id(result: dict[str, str]) -> dict[str, str]:
    return {"messageId": result["messageId"]} if "messageId" in result else {}


def finish(channel: str, job: dict[str, Any], attempt: str, result: dict[str, Any], went_out: bool) -> None:
    """Record the outcome over this attempt's own mark, whatever became of the claim: sent is sent.
    A message the provider accepted adds the appointment time to ``delivered``; one that did not go
    out, and cannot have, takes it out of ``sent``."""
    key = {f"{channel}@{job['appointmentTime']}"}
    values: dict[str, Any] = {"m": stored({**result, "token": job["claimToken"], "attempt": attempt}), "a": attempt}
    sent = result["status"] == "SENT"
    if sent:
        values |= {"k": key, "c": "CANCELLED"}
        written, old = write(job, channel, "SET #r = :m ADD delivered :k", "#r.#a = :a AND #s <> :c", **values)
        if not written and old.get("state") == {"S": "CANCELLED"}:
            # Cancelled while the message was on its way (row 8b): the record says SENT in the same
            # write as the result, so that no attempt dying in between leaves it saying CANCELLED.
            expression = "SET #r = :m, #s = :s ADD delivered :k"
            written = write(job, channel, expression, "#r.#a = :a AND #s = :c", s="SENT", **values)[0]
    elif went_out:  # its answer was lost: it may have gone out, and its time stays in sent
        written = write(job, channel, "SET #r = :m", "#r.#a = :a", **values)[0]
    else:
        written = write(job, channel, "SET #r = :m DELETE sent :k", "#r.#a = :a", k=key, **values)[0]
    if not written:  # the mark is gone: the reminder was re-planned meanwhile (its time stays in sent)
        log("ERROR", "mark_not_recorded", reminderId=job["reminderId"], error="ConditionalCheckFailedException")
        if sent:  # went out all the same: a plan for this time again must know it
            write(job, channel, "ADD delivered :k", "attribute_exists(reminderId)", k=key)


def withdraw(channel: str, job: dict[str, Any], attempt: str) -> None:
    """Nothing was sent: remove this attempt's mark, so that a retry may send."""
    write(job, channel, "REMOVE #r DELETE sent :k", "#r.#a = :a", a=attempt, k={f"{channel}@{job['appointmentTime']}"})


def deliver(channel: str, job: dict[str, Any], context: Any, send: Callable[[], str]) -> dict[str, Any]:
    """Mark the channel, call ``send`` (it returns the provider's message id), record the outcome."""
    attempt = context.aws_request_id
    until = time.time() + context.get_remaining_time_in_millis() / 1000
    refused = begin(channel, job, attempt, until)
    if refused:
        return refused
    try:
        result = answer(channel, "SENT", messageId=send())
    except Exception as error:
        if is_transient(error, idempotent=False):  # throttled, a 5xx, no connection: nothing went out
            withdraw(channel, job, attempt)
            raise
        # A refusal sent nothing; a lost answer (read timeout) may hide a sent message: never resent.
        result = answer(channel, "FAILED", error_code(error))
        finish(channel, job, attempt, result, went_out=is_transient(error, idempotent=True))
        return result
    try:
        finish(channel, job, attempt, result, went_out=True)
    except Exception as error:  # sent is sent: the answer stands, and UpdateStatus records it
        log("ERROR", "mark_not_recorded", reminderId=job["reminderId"], error=error_code(error))
    return result


def deliver_message(
    channel: str,
    event: dict[str, Any],
    context: Any,
    problem: Callable[[Any], dict[str, Any] | None],
    send: Callable[[Any], str],
) -> dict[str, Any]:
    """A sender's whole handler. ``problem`` says why a message with an address cannot be sent
    (SKIPPED or FAILED);
    ``send`` sends it. A transient failure is raised for the workflow to retry; any other is the answer."""
    message = event.get("message")
    try:
        if time.time() >= event["appointmentTime"]:
            result = answer(channel, "SKIPPED", "AppointmentStarted")  # a late job: nothing to remind of
        elif message is None:
            result = answer(channel, "SKIPPED", "ChannelNotRequested")
        elif not message.get("to"):
            result = answer(channel, "SKIPPED", "NoAddress")
        else:
            result = problem(message) or deliver(channel, event, context, lambda: send(message))
    except RetryableError:
        raise
    except Exception as error:
        # What reaches here sent nothing: the opt-out check (a read), a conditional write of the mark
        # or the outcome, or a provider error that ``deliver`` found transient. Repeating it cannot
        # send twice, so a lost answer is worth another try as much as throttling is.
        if is_transient(error, idempotent=True):
            raise RetryableError(error_code(error)) from None
        result = answer(channel, "FAILED", error_code(error))
    log("INFO", "delivery", reminderId=event["reminderId"], **result)
    return result
