"""SendEmail: deliver one rendered reminder email through SES, at most once per channel.

Contract: handlers/README.md (SendEmail / SendSMS). Input ``{"reminderId", "claimToken", "message"}``
with the message ``{"to", "subject", "text"}`` or null; output
``{"channel": "email", "status": "SENT"|"SKIPPED"|"FAILED", "messageId"?, "reason"?}``.

From ``TRANSIENT`` to ``deliver`` this is the same mechanism, line for line, as send_sms.py (each
inlined handler must stand alone): the channel is marked on the reminder (``emailResult``) with a
conditional write before SES is called, so that a retried, duplicated or late invocation never
sends a second time.
"""

import json
import os
import re

import boto3
from botocore.config import Config

TABLE, SENDER = os.environ["REMINDERS_TABLE"], os.environ["SENDER_EMAIL"]
CHANNEL, MARK = "email", "emailResult"
DDB = boto3.client("dynamodb", config=Config(connect_timeout=2, read_timeout=3, retries={"mode": "standard"}))
# One attempt per invocation: botocore retrying a request that may have reached SES could send twice.
PROVIDER = boto3.client("ses", config=Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 1}))
# Worth another try, because nothing was sent: throttling (KMS's too), 5xx answers, no connection made.
# A read timeout or a connection lost while waiting is not: the message may be out (FAILED, never resent).
TRANSIENT = re.compile(r"Thrott|TooMany|RequestLimit|ThroughputExc|Internal|Unavailable|EndpointConn|ConnectTimeout")


class RetryableError(Exception):
    pass  # Step Functions retries it by this name


def log(level, event, **fields):
    """One JSON line of ids, channel, outcome and error codes: never contact data or message text."""
    print(json.dumps({"level": level, "event": event, **fields}))


def code(error):
    return (getattr(error, "response", None) or {}).get("Error", {}).get("Code") or type(error).__name__


def answer(status, reason=None, **fields):
    return {"channel": CHANNEL, "status": status, **({"reason": reason} if reason else {}), **fields}


def mark(reminder_id, token, result=None, first=False):
    """Set the channel's mark to ``result`` (``first``: only if it has none yet), or remove it.

    Only the claim holder writes: while ``claimToken`` is ours, the mark is the one we set.
    """
    values = {":t": {"S": token}}
    if result:
        values[":m"] = {"M": {k: {"S": str(v)} for k, v in {**result, "token": token}.items() if k != "channel"}}
    DDB.update_item(
        TableName=TABLE, Key={"reminderId": {"S": reminder_id}}, ExpressionAttributeValues=values,
        UpdateExpression=f"SET {MARK} = :m" if result else f"REMOVE {MARK}",
        ConditionExpression="claimToken = :t" + (f" AND attribute_not_exists({MARK})" if first else ""),
        ReturnValuesOnConditionCheckFailure="ALL_OLD")


def deliver(reminder_id, token, send):
    """Mark the channel, call ``send`` (returns the provider's message id), record the outcome."""
    try:
        mark(reminder_id, token, {"status": "SENDING"}, first=True)
    except DDB.exceptions.ConditionalCheckFailedException as refused:
        # The stubs type the refused item as object; it is the reminder as it was (DynamoDB JSON).
        old = refused.response.get("Item", {})
        prior = {k: v["S"] for k, v in old.get(MARK, {"M": {}})["M"].items() if k != "token"}  # type: ignore[attr-defined]
        if old.get("claimToken") != {"S": token}:  # type: ignore[attr-defined]
            return answer("SKIPPED", "ClaimLost")
        if prior.get("status", "SENDING") == "SENDING":  # an attempt died mid-send: it may have sent
            return answer("FAILED", "OutcomeUnknown")
        return answer(**prior)  # final already, from this claim or an earlier one: not sent again
    try:
        result = answer("SENT", messageId=send())
    except Exception as error:
        if TRANSIENT.search(code(error)):
            mark(reminder_id, token)  # nothing was sent: the retry may send
            raise
        result = answer("FAILED", code(error))
    try:
        mark(reminder_id, token, result)
    except Exception as error:  # sent is sent: the answer stands, the workflow records it
        log("ERROR", "mark_not_recorded", reminderId=reminder_id, error=code(error))
    return result


def problem(message):
    """Why this message cannot be sent (a SKIPPED or FAILED answer), or None."""
    if message is None:
        return answer("SKIPPED", "ChannelNotRequested")
    if not message.get("to"):
        return answer("SKIPPED", "NoAddress")
    if not re.fullmatch(r"[\w.%+'-]+@(?:[\w-]+\.)+\w{2,}", str(message["to"])):  # sane, not RFC 5322
        return answer("FAILED", "InvalidAddress")


def send(message):
    subject, text = ({"Data": message[k], "Charset": "UTF-8"} for k in ("subject", "text"))
    return PROVIDER.send_email(Source=SENDER, Destination={"ToAddresses": [message["to"]]},
                               Message={"Subject": subject, "Body": {"Text": text}})["MessageId"]  # type: ignore[typeddict-item]


def handler(event, context):
    reminder_id, message = event["reminderId"], event.get("message")
    try:
        result = problem(message) or deliver(reminder_id, event["claimToken"], lambda: send(message))
    except Exception as error:  # a transient one is retried; any other is the answer
        if TRANSIENT.search(code(error)):
            raise RetryableError(code(error)) from None
        result = answer("FAILED", code(error))
    log("INFO", "delivery", reminderId=reminder_id, **result)
    return result
