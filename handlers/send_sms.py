"""SendSMS: deliver one rendered reminder SMS through SNS, at most once.

Contract: handlers/README.md (SendEmail / SendSMS). Input
``{"reminderId", "claimToken", "appointmentTime", "message"}``
with the message ``{"to", "text"}`` or null; output
``{"channel": "sms", "status": "SENT"|"SKIPPED"|"FAILED", "messageId"?, "reason"?}``.
The at-most-once mechanism is channel_marks.py, shared with send_email.py.
"""

import re
from typing import Any

import boto3
from botocore.config import Config

from .channel_marks import answer, deliver_message

CHANNEL = "sms"
# One attempt per invocation: botocore retrying a request that may have reached SNS could send twice.
# In botocore's Config, retries "max_attempts" counts the retries after the first attempt;
# "total_max_attempts" counts every attempt, 1 meaning never retried:
# https://botocore.amazonaws.com/v1/documentation/api/latest/reference/config.html
sns = boto3.client("sns", config=Config(connect_timeout=2, read_timeout=10, retries={"total_max_attempts": 1}))
E164 = re.compile(r"\+[1-9]\d{6,14}")


def problem(message: dict[str, str] | None) -> dict[str, Any] | None:
    """Why this message cannot be sent (a SKIPPED or FAILED answer), or None."""
    if message is None:
        return answer(CHANNEL, "SKIPPED", "ChannelNotRequested")
    if not message.get("to"):
        return answer(CHANNEL, "SKIPPED", "NoAddress")
    if not E164.fullmatch(str(message["to"])):
        return answer(CHANNEL, "FAILED", "InvalidPhoneNumber")
    if sns.check_if_phone_number_is_opted_out(phoneNumber=message["to"])["isOptedOut"]:
        return answer(CHANNEL, "SKIPPED", "OptedOut")  # SNS would not deliver it: say so, not SENT
    return None


def send(message: dict[str, str]) -> str:
    """Send the SMS; SNS's message id."""
    kind = {"DataType": "String", "StringValue": "Transactional"}  # a reminder is not marketing
    response = sns.publish(
        PhoneNumber=message["to"],
        Message=message["text"],
        MessageAttributes={"AWS.SNS.SMS.SMSType": kind},  # type: ignore[dict-item]
    )
    return response["MessageId"]


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return deliver_message(CHANNEL, event, context, problem, send)
