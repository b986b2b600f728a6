"""SendEmail: deliver one rendered reminder email through SES, at most once.

Contract: handlers/README.md (SendEmail / SendSMS). Input
``{"reminderId", "claimToken", "appointmentTime", "message"}``
with the message ``{"to", "subject", "text"}`` or null; output
``{"channel": "email", "status": "SENT"|"SKIPPED"|"FAILED", "messageId"?, "reason"?}``.
The at-most-once mechanism is channel_marks.py, shared with send_sms.py.
"""

import os
import re
from typing import Any

import boto3
from botocore.config import Config

from .channel_marks import answer, deliver_message

CHANNEL = "email"
SENDER_EMAIL = os.environ["SENDER_EMAIL"]
# One attempt per invocation: botocore retrying a request that may have reached SES could send twice.
# In botocore's Config, retries "max_attempts" counts the retries after the first attempt;
# "total_max_attempts" counts every attempt, 1 meaning never retried:
# https://botocore.amazonaws.com/v1/documentation/api/latest/reference/config.html
ses = boto3.client("ses", config=Config(connect_timeout=2, read_timeout=10, retries={"total_max_attempts": 1}))
# Sane, not RFC 5322: catches what SES would refuse anyway, before a mark is written.
EMAIL_ADDRESS = re.compile(r"[\w.%+'-]+@(?:[\w-]+\.)+\w{2,}")


def problem(message: dict[str, str] | None) -> dict[str, Any] | None:
    """Why this message cannot be sent (a SKIPPED or FAILED answer), or None."""
    if message is None:
        return answer(CHANNEL, "SKIPPED", "ChannelNotRequested")
    if not message.get("to"):
        return answer(CHANNEL, "SKIPPED", "NoAddress")
    if not EMAIL_ADDRESS.fullmatch(str(message["to"])):
        return answer(CHANNEL, "FAILED", "InvalidAddress")
    return None


def send(message: dict[str, str]) -> str:
    """Send the email; SES's message id."""
    subject, text = ({"Data": message[part], "Charset": "UTF-8"} for part in ("subject", "text"))
    response = ses.send_email(
        Source=SENDER_EMAIL,
        Destination={"ToAddresses": [message["to"]]},
        Message={"Subject": subject, "Body": {"Text": text}},  # type: ignore[typeddict-item]
    )
    return response["MessageId"]


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return deliver_message(CHANNEL, event, context, problem, send)
