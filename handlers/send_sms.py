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

from .channel_marks import PROVIDER, answer, deliver_message

CHANNEL = "sms"
sns = boto3.client("sns", config=PROVIDER)
E164 = re.compile(r"\+[1-9]\d{6,14}")


def problem(message: dict[str, str]) -> dict[str, Any] | None:
    """Why this message cannot be sent (a SKIPPED or FAILED answer), or None."""
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
