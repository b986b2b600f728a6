"""The channel mark: each channel of a reminder is sent at most once, whatever is retried, duplicated,
late or taken over. Shared by send_email.py and send_sms.py (the build bundles it into each).

Before calling the provider, the sender marks its channel on the reminder (``emailResult`` or
``smsResult``) with a conditional write: ``SENDING``, only while the claim is its own and only if the
channel has no mark yet. After the call it records the outcome there. This is the idea of
Powertools' idempotency record (``INPROGRESS`` before the work, ``COMPLETED`` after it) with one
deliberate difference: a ``SENDING`` mark left by an attempt that died is never retried, because a
reminder sent twice is worse than one reported ``FAILED`` (``OutcomeUnknown``).
"""

import os
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

from .common import RetryableError, error_code, is_transient, log

REMINDERS_TABLE = os.environ["REMINDERS_TABLE"]
# DynamoDB's client retries as usual: every write here is conditional, so repeating one is safe.
reminders = boto3.client("dynamodb", config=Config(connect_timeout=2, read_timeout=3, retries={"mode": "standard"}))


def answer(channel: str, status: str, reason: str | None = None, **fields: Any) -> dict[str, Any]:
    """The sender's output: ``{"channel", "status", "reason"?, "messageId"?}``."""
    return {"channel": channel, "status": status, **({"reason": reason} if reason else {}), **fields}


def mark(channel: str, reminder_id: str, token: str, result: dict[str, Any] | None = None, first: bool = False) -> None:
    """Set the channel's mark to ``result`` (``first``: only if it has none yet), or remove it.

    Only the claim holder writes: while ``claimToken`` is ours, the mark is the one we set.
    """
    attribute = f"{channel}Result"
    values: dict[str, Any] = {":t": {"S": token}}
    if result:
        recorded = {**result, "token": token}
        values[":m"] = {"M": {k: {"S": str(v)} for k, v in recorded.items() if k != "channel"}}
    reminders.update_item(
        TableName=REMINDERS_TABLE,
        Key={"reminderId": {"S": reminder_id}},
        ExpressionAttributeValues=values,
        UpdateExpression=f"SET {attribute} = :m" if result else f"REMOVE {attribute}",
        ConditionExpression="claimToken = :t" + (f" AND attribute_not_exists({attribute})" if first else ""),
        ReturnValuesOnConditionCheckFailure="ALL_OLD",
    )


def deliver(channel: str, reminder_id: str, token: str, send: Callable[[], str]) -> dict[str, Any]:
    """Mark the channel, call ``send`` (it returns the provider's message id), record the outcome."""
    try:
        mark(channel, reminder_id, token, {"status": "SENDING"}, first=True)
    except reminders.exceptions.ConditionalCheckFailedException as refused:
        # The reminder as it was (DynamoDB JSON); the stubs type it as a plain object.
        old: dict[str, Any] = refused.response.get("Item", {})  # type: ignore[assignment]
        prior = {k: v["S"] for k, v in old.get(f"{channel}Result", {"M": {}})["M"].items() if k != "token"}
        if old.get("claimToken") != {"S": token}:
            return answer(channel, "SKIPPED", "ClaimLost")
        if prior.get("status", "SENDING") == "SENDING":  # an attempt died mid-send: it may have sent
            return answer(channel, "FAILED", "OutcomeUnknown")
        # Final already, from this claim or an earlier one: not sent again.
        return answer(**{"channel": channel, **prior})
    try:
        result = answer(channel, "SENT", messageId=send())
    except Exception as error:
        # Nothing was sent (throttled, a 5xx, no connection made): the workflow's retry may send.
        # A lost answer (read timeout) may hide a sent message: recorded FAILED, never resent.
        if is_transient(error, idempotent=False):
            mark(channel, reminder_id, token)
            raise
        result = answer(channel, "FAILED", error_code(error))
    try:
        mark(channel, reminder_id, token, result)
    except Exception as error:  # sent is sent: the answer stands, the workflow records it
        log("ERROR", "mark_not_recorded", reminderId=reminder_id, error=error_code(error))
    return result


def deliver_message(
    channel: str,
    event: dict[str, Any],
    problem: Callable[[Any], dict[str, Any] | None],
    send: Callable[[Any], str],
) -> dict[str, Any]:
    """A sender's whole handler: ``problem`` says why a message cannot be sent (SKIPPED or FAILED),
    ``send`` sends it. A transient failure is raised for the workflow to retry; any other is the answer."""
    reminder_id, message = event["reminderId"], event.get("message")
    try:
        result = problem(message) or deliver(channel, reminder_id, event["claimToken"], lambda: send(message))
    except Exception as error:
        if is_transient(error, idempotent=False):
            raise RetryableError(error_code(error)) from None
        result = answer(channel, "FAILED", error_code(error))
    log("INFO", "delivery", reminderId=reminder_id, **result)
    return result
