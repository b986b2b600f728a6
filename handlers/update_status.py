"""UpdateStatus: record a delivered reminder's outcome and announce it, without personal data.

Contract: handlers/README.md (UpdateStatus). Input ``{"reminderId", "claimToken",
"delivery": [channel results]}``; output ``{"reminderId", "state", "recorded"}``.
The record is conditional on the claim: a re-planned or re-claimed reminder records and publishes
nothing. Retrying is safe: the same claim records the same outcome again (and announces it again).
"""

import json
import os
import re
import time

import boto3
from botocore.config import Config

TABLE, TOPIC, NAMESPACE = os.environ["REMINDERS_TABLE"], os.environ["TOPIC_ARN"], os.environ["METRICS_NAMESPACE"]
AWS = Config(connect_timeout=2, read_timeout=3, retries={"mode": "standard"})
DDB, SNS = boto3.client("dynamodb", config=AWS), boto3.client("sns", config=AWS)
# Worth another try: throttling (KMS's too), 5xx codes and connection and timeout errors (as in send_email.py).
TRANSIENT = re.compile(r"Thrott|TooMany|RequestLimit|ThroughputExc|Internal|Unavailable|Connect|Timeout")
METRICS = {"SENT": "RemindersSent", "FAILED": "RemindersFailed", "SKIPPED": "RemindersSkipped"}


class RetryableError(Exception):
    pass  # a failure worth another try: Step Functions retries it by this name


def log(level, event, **fields):
    """One JSON line of ids, outcome and error codes: never contact data or message text."""
    print(json.dumps({"level": level, "event": event, **fields}))


def state_of(delivery):
    """SENT when a channel was sent, else FAILED when one failed, else SKIPPED (nothing attempted)."""
    statuses = {d["status"] for d in delivery}
    return next((s for s in ("SENT", "FAILED") if s in statuses), "SKIPPED")


def record(ddb, event, state):
    """The state and each channel's result, in one write conditional on the claim; the reminder leaves
    the due index. False when the claim is gone (re-planned or re-claimed): nothing is recorded."""
    tok, now = event["claimToken"], str(int(time.time()))
    results = {f":{d['channel']}": {"M": {k: {"S": str(v)} for k, v in {**d, "token": tok}.items() if k != "channel"}}
               for d in event["delivery"]}
    try:
        ddb.update_item(
            TableName=TABLE, Key={"reminderId": {"S": event["reminderId"]}}, ConditionExpression="claimToken = :t",
            UpdateExpression="SET #s = :s, updatedAt = :u" + "".join(f", {r[1:]}Result = {r}" for r in results)
            + " REMOVE dueShard, attemptAt", ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues={**results, ":t": {"S": tok}, ":s": {"S": state}, ":u": {"N": now}})
    except ddb.exceptions.ConditionalCheckFailedException:
        return False
    return True


def announce(sns, event, state):
    """The delivery event on the topic (ids, state and the channel results, which hold no contact data),
    then one CloudWatch embedded-metric-format line: a count of 0 or 1 per outcome, no dimensions."""
    appointment, _, offset = event["reminderId"].rpartition("#")
    fields = {"reminderId": event["reminderId"], "appointmentId": appointment, "offsetMinutes": int(offset)}
    sns.publish(TopicArn=TOPIC, Message=json.dumps({**fields, "delivery": event["delivery"], "state": state}),
                MessageAttributes={"state": {"DataType": "String", "StringValue": state}})
    metrics = [{"Name": n} for n in METRICS.values()]  # a count has no unit
    emf = {"Timestamp": int(time.time() * 1000),
           "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": [[]], "Metrics": metrics}]}
    counts = {n: int(s == state) for s, n in METRICS.items()}
    print(json.dumps({"_aws": emf, **counts, "reminderId": event["reminderId"], "state": state}))


def handler(event, context):
    rid, state = event["reminderId"], state_of(event["delivery"])
    try:
        recorded = record(DDB, event, state)
        if recorded:
            announce(SNS, event, state)
    except Exception as err:  # re-raised unless transient
        reason = (getattr(err, "response", None) or {}).get("Error", {}).get("Code") or type(err).__name__
        if not TRANSIENT.search(reason):
            raise
        raise RetryableError(reason) from None
    log("INFO", "outcome", reminderId=rid, state=state, recorded=recorded)
    return {"reminderId": rid, "state": state, "recorded": recorded}
