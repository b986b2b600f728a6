"""SendEmail: deliver one rendered reminder email through SES, at most once.

Contract: handlers/README.md (SendEmail / SendSMS). Input
``{"reminderId", "claimToken", "appointmentTime", "message"}``
with the message ``{"to", "subject", "text", "html"?}`` or null; output
``{"channel": "email", "status": "SENT"|"SKIPPED"|"FAILED", "messageId"?, "reason"?}``.
The at-most-once mechanism is channel_marks.py, shared with send_sms.py.
"""

import os
import re
from email.utils import formataddr
from typing import Any

import boto3

from .channel_marks import PROVIDER, answer, deliver_message

CHANNEL = "email"
SENDER_EMAIL = os.environ["SENDER_EMAIL"]
#: The From header: the display name (without control characters, which could end the header) and
#: the address. formataddr quotes a name that needs it and writes one that is not ASCII as an
#: RFC 2047 encoded-word, which SES requires of a "friendly from" name:
#: https://docs.aws.amazon.com/ses/latest/APIReference/API_SendEmail.html (Source).
SOURCE = formataddr(("".join(c for c in os.environ.get("SENDER_NAME", "") if c.isprintable()).strip(), SENDER_EMAIL))
#: Where the customer's replies go; the sender's address when empty. SendEmail's ReplyToAddresses:
#: "If the recipient replies to the message, each reply-to address receives the reply"
#: (https://docs.aws.amazon.com/ses/latest/APIReference/API_SendEmail.html). IAM controls the "From",
#: recipient and "Return-Path" addresses, not the Reply-To
#: (https://docs.aws.amazon.com/ses/latest/dg/control-user-access.html): the grant stays on the
#: sender identity.
REPLY_TO = os.environ.get("REPLY_TO_EMAIL")
ses = boto3.client("ses", config=PROVIDER)
# Sane, not RFC 5322: catches what SES would refuse anyway, before a mark is written.
EMAIL_ADDRESS = re.compile(r"[\w.%+'-]+@(?:[\w-]+\.)+\w{2,}")


def problem(message: dict[str, str]) -> dict[str, Any] | None:
    """Why this message cannot be sent (a SKIPPED or FAILED answer), or None."""
    if not EMAIL_ADDRESS.fullmatch(str(message["to"])):
        return answer(CHANNEL, "FAILED", "InvalidAddress")
    return None


def email_request(message: dict[str, str]) -> dict[str, Any]:
    """SES's SendEmail request for the message. With an HTML part, the body has both parts and SES
    sends a multipart/alternative email (a body "can specify text, HTML, or both":
    https://docs.aws.amazon.com/ses/latest/APIReference/API_Body.html)."""
    body = {"Text": {"Data": message["text"], "Charset": "UTF-8"}}
    if message.get("html"):
        body["Html"] = {"Data": message["html"], "Charset": "UTF-8"}
    request = {
        "Source": SOURCE,
        "Destination": {"ToAddresses": [message["to"]]},
        "Message": {"Subject": {"Data": message["subject"], "Charset": "UTF-8"}, "Body": body},
    }
    if REPLY_TO:
        request["ReplyToAddresses"] = [REPLY_TO]
    return request


def send(message: dict[str, str]) -> str:
    """Send the email; SES's message id."""
    response = ses.send_email(**email_request(message))
    return response["MessageId"]


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return deliver_message(CHANNEL, event, context, problem, send)
