"""UpdateStatus: record a delivered reminder's outcome and announce it, without personal data.

Contract: handlers/README.md (UpdateStatus). Input ``{"reminderId", "claimToken",
"delivery": [channel results]}``; output ``{"reminderId", "state", "recorded"}``.
The record is conditional on the claim: a re-planned or re-claimed reminder records and publishes
nothing. Retrying is safe: the same claim records the same outcome again (and announces it again).
"""

import json
import os
import time
from typing import Any

import boto3
from botocore.config import Config

from .common import RetryableError, error_code, is_transient, log

REMINDERS_TABLE = os.environ["REMINDERS_TABLE"]
TOPIC_ARN = os.environ["TOPIC_ARN"]
METRICS_NAMESPACE = os.environ["METRICS_NAMESPACE"]
AWS = Config(connect_timeout=2, read_timeout=3, retries={"mode": "standard"})
dynamodb = boto3.client("dynamodb", config=AWS)
sns = boto3.client("sns", config=AWS)
#: The embedded-metric-format count each recorded state adds to.
METRICS = {"SENT": "RemindersSent", "FAILED": "RemindersFailed", "SKIPPED": "RemindersSkipped"}


def state_of(delivery: list[dict[str, str]]) -> str:
    """SENT when a channel was sent, else FAILED when one failed, else SKIPPED (nothing attempted)."""
    statuses = {result["status"] for result in delivery}
    return next((state for state in ("SENT", "FAILED") if state in statuses), "SKIPPED")


def record(event: dict[str, Any], state: str) -> bool:
    """The state and each channel's result, in one write conditional on the claim; the reminder leaves
    the due index. False when the claim is gone (re-planned or re-claimed): nothing is recorded."""
    token, now = event["claimToken"], str(int(time.time()))
    results = {
        f":{result['channel']}": {
            "M": {k: {"S": str(v)} for k, v in {**result, "token": token}.items() if k != "channel"}
        }
        for result in event["delivery"]
    }
    channel_updates = "".join(f", {name[1:]}Result = {name}" for name in results)
    try:
        dynamodb.update_item(
            TableName=REMINDERS_TABLE,
            Key={"reminderId": {"S": event["reminderId"]}},
            ConditionExpression="claimToken = :t",
            UpdateExpression=f"SET #s = :s, updatedAt = :u{channel_updates} REMOVE dueShard, attemptAt",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues={**results, ":t": {"S": token}, ":s": {"S": state}, ":u": {"N": now}},
        )
    except dynamodb.exceptions.ConditionalCheckFailedException:
        return False
    return True


def announce(event: dict[str, Any], state: str) -> None:
    """The delivery event on the topic (ids, state and the channel results, which hold no contact data),
    then one CloudWatch embedded-metric-format line: a count of 0 or 1 per outcome, no dimensions."""
    appointment_id, _, offset = event["reminderId"].rpartition("#")
    fields = {"reminderId": event["reminderId"], "appointmentId": appointment_id, "offsetMinutes": int(offset)}
    sns.publish(
        TopicArn=TOPIC_ARN,
        Message=json.dumps({**fields, "delivery": event["delivery"], "state": state}),
        MessageAttributes={"state": {"DataType": "String", "StringValue": state}},
    )
    metrics = [{"Name": name} for name in METRICS.values()]  # a count has no unit
    emf = {
        "Timestamp": int(time.time() * 1000),
        "CloudWatchMetrics": [{"Namespace": METRICS_NAMESPACE, "Dimensions": [[]], "Metrics": metrics}],
    }
    counts = {name: int(recorded == state) for recorded, name in METRICS.items()}
    print(json.dumps({"_aws": emf, **counts, "reminderId": event["reminderId"], "state": state}))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    reminder_id, state = event["reminderId"], state_of(event["delivery"])
    try:
        recorded = record(event, state)
        if recorded:
            announce(event, state)
    except Exception as error:
        # The write is conditional and the event says the same again, so any transient failure,
        # a lost answer included, is worth a retry; anything else fails the task.
        if not is_transient(error, idempotent=True):
            raise
        raise RetryableError(error_code(error)) from None
    log("INFO", "outcome", reminderId=reminder_id, state=state, recorded=recorded)
    return {"reminderId": reminder_id, "state": state, "recorded": recorded}
