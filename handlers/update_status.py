"""UpdateStatus: record a delivered reminder's outcome, or defer what was refused transiently.

Contract: handlers/README.md (UpdateStatus). Input ``{"reminderId", "claimToken", "appointmentTime",
"deferrals", "delivery": [channel results]}``; output ``{"reminderId", "state", "recorded"}``.
Every write is conditional on the claim being this job's: a cancelled, moved, finished or re-claimed
reminder records and announces nothing. Retrying is safe: a retry whose write is refused because an
earlier invocation of the same job recorded the outcome announces it (at least once).
"""

import json
import os
import re
import time
from typing import Any

import boto3
from botocore.config import Config

from .common import RetryableError, conditional_update, emit_metrics, error_code, is_transient, log

REMINDERS_TABLE = os.environ["REMINDERS_TABLE"]
TOPIC_ARN = os.environ["TOPIC_ARN"]
METRICS_NAMESPACE = os.environ["METRICS_NAMESPACE"]
AWS = Config(connect_timeout=1, read_timeout=2, retries={"mode": "standard", "total_max_attempts": 2})
dynamodb = boto3.client("dynamodb", config=AWS)
sns = boto3.client("sns", config=AWS)
#: A sender that still failed after the workflow's retries (the workflow reports ``ERROR`` and the
#: error's name) was refused transiently, or Lambda could not run it, or it ran out of time: nothing
#: was sent that its channel mark does not know about, so the channel is deferred, not failed.
DEFERRABLE = re.compile(r"RetryableError|Lambda\.|States\.Timeout")
#: The first deferral waits a minute, each next one twice as long, up to 15 minutes.
FIRST_BACKOFF_SECONDS, LONGEST_BACKOFF_SECONDS = 60, 900
#: The embedded-metric-format count each outcome adds to.
METRICS = {
    "SENT": "RemindersSent",
    "FAILED": "RemindersFailed",
    "SKIPPED": "RemindersSkipped",
    "DEFERRED": "RemindersDeferred",
}


def classify(delivery: list[dict[str, str]]) -> list[dict[str, str]]:
    """Each channel's result, an ``ERROR`` from the workflow turned into ``DEFERRED`` or ``FAILED``,
    its reason the provider's error code when the sender named one."""
    results = []
    for result in delivery:
        if result["status"] == "ERROR":
            reason = result.get("reason", "")
            status = "DEFERRED" if DEFERRABLE.match(reason) else "FAILED"
            result = {"channel": result["channel"], "status": status, "reason": provider_code(reason, result)}
        results.append(result)
    return results


def provider_code(error: str, result: dict[str, str], /) -> str:
    """The provider's error code a sender's ``RetryableError("Throttling")`` carries, else the
    error's name. For a Lambda task, Step Functions' ``Error`` is the function's ``errorType`` and
    ``Cause`` the function's error as JSON (``{"errorMessage": ..., "errorType": ...}``); a timeout's
    or Lambda's own cause is plain text
    (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html). The cause is
    never kept: it may hold a stack trace."""
    if error != "RetryableError":
        return error
    try:
        message = json.loads(result.get("cause", ""))["errorMessage"]
    except (ValueError, TypeError, KeyError):
        return error
    return message[:64] if isinstance(message, str) and message else error


def state_of(results: list[dict[str, str]]) -> str:
    """DEFERRED when a channel must be tried again; else SENT when a channel was sent, FAILED when
    one failed, SKIPPED when none could be attempted."""
    statuses = {result["status"] for result in results}
    return next((state for state in ("DEFERRED", "SENT", "FAILED") if state in statuses), "SKIPPED")


def retry_at(now: int, deferrals: int, appointment_time: int, /) -> int:
    """When a deferred reminder is tried again: a minute after its first deferral, twice as long after
    each next one, up to 15 minutes; but never past the last schedule run before the appointment
    (a minute before it), so that a provider that recovers in time still gets the reminder out."""
    backoff = min(FIRST_BACKOFF_SECONDS << (deferrals - 1), LONGEST_BACKOFF_SECONDS)  # 60 s times 2 to the n-1
    last_chance = max(now + FIRST_BACKOFF_SECONDS, appointment_time - FIRST_BACKOFF_SECONDS)
    return min(now + backoff, last_chance)


def record(event: dict[str, Any], results: list[dict[str, str]], /) -> tuple[str, list[dict[str, str]]] | None:
    """One write, conditional on the claim: a final state leaves the due index; a deferral returns
    the reminder to it, later, keeping what was already recorded of the other channels.

    Sent is sent: when this job's sender answered without asking the record (a late job, a channel
    no longer requested), a channel the record holds as SENT (an earlier claim of this plan sent it)
    keeps that result, and one that ``delivered`` says went out for this time (an earlier plan's)
    is SENT AlreadySent; the outcome is then made again with them.

    The outcome as recorded (state, results), or None when the claim is no longer this job's
    (nothing is recorded)."""
    state = state_of(results)
    now = int(time.time())
    values: dict[str, Any] = {"t": event["claimToken"], "sending": "SENDING", "at": event["appointmentTime"], "u": now}
    updates = ["updatedAt = :u"]
    delivered: set[str] = set()
    for result in results:
        if result["status"] != "DEFERRED":  # a deferred channel keeps its mark, if it has one
            channel = result["channel"]
            values[channel] = {"M": {k: {"S": str(v)} for k, v in {**result, "token": event["claimToken"]}.items()}}
            updates.append(f"{channel}Result = :{channel}")
        if result["status"] == "SENT":  # as its sender does, should the sender's own write have failed
            delivered.add(f"{result['channel']}@{event['appointmentTime']}")
    if state == "DEFERRED":
        deferrals = int(event.get("deferrals", 0)) + 1
        why = next(result.get("reason", "") for result in results if result["status"] == "DEFERRED")
        values.update(p="PENDING", a=retry_at(now, deferrals, int(event["appointmentTime"])), n=deferrals, r=why)
        updates += ["#s = :p", "attemptAt = :a", "deferrals = :n", "deferReason = :r"]
        removed = "claimToken, claimExpiresAt"
    else:
        values["s"] = state
        updates.append("#s = :s")
        removed = "claimToken, claimExpiresAt, dueShard, attemptAt"
    added = ""
    if delivered:
        values["d"] = delivered
        added = " ADD delivered :d"
    unsent = [result["channel"] for result in results if result["status"] not in ("SENT", "DEFERRED")]
    condition = "claimToken = :t AND #s = :sending AND appointmentTime = :at"
    if unsent:  # sent is sent, by this plan or an earlier one for this time: never recorded over
        values["sent"] = "SENT"
        for channel in unsent:
            values[f"{channel}At"] = f"{channel}@{event['appointmentTime']}"
            condition += f" AND NOT {channel}Result.#st = :sent AND NOT contains(delivered, :{channel}At)"
    written, old = conditional_update(
        dynamodb,
        REMINDERS_TABLE,
        {"reminderId": {"S": event["reminderId"]}},
        f"SET {', '.join(updates)} REMOVE {removed}{added}",
        condition,
        {"#s": "state", "#st": "status"},
        **values,
    )
    if written or recorded_before(old, event, state, results):
        return state, results
    claimed = (old.get("claimToken"), old.get("state")) == ({"S": event["claimToken"]}, {"S": "SENDING"})
    sent = {channel: sent_before(old, channel, event["appointmentTime"]) for channel in unsent}
    if not (claimed and any(sent.values())):
        return None
    # Made again with what the record holds for each channel sent: each time leaves at least one
    # channel fewer to guard, so it ends.
    return record(event, [sent.get(r["channel"]) or r for r in results])


def sent_before(item: dict[str, Any], channel: str, appointment_time: int) -> dict[str, str] | None:
    """The channel's result SENT the record holds, as its sender would have answered it; or, when the
    ledger says an earlier plan's went out for this time, what its sender answers then (AlreadySent)."""
    stored = item.get(f"{channel}Result", {}).get("M", {})
    if stored.get("status") == {"S": "SENT"}:
        return {"channel": channel, **{k: v["S"] for k, v in stored.items() if k in ("status", "reason", "messageId")}}
    if f"{channel}@{appointment_time}" in item.get("delivered", {}).get("SS", []):
        return {"channel": channel, "status": "SENT", "reason": "AlreadySent"}
    return None


def recorded_before(old: dict[str, Any], event: dict[str, Any], state: str, results: list[dict[str, str]], /) -> bool:
    """Whether a refused write finds this job's own outcome: an earlier invocation of the job wrote it
    and its answer, or the publish after it, was lost. The claim is gone, the state and the deferral
    count are what the job wrote, and each channel it recorded carries the job's token. Then the
    retry announces it; any other record is not the job's to announce."""
    done = {"S": "PENDING" if state == "DEFERRED" else state}
    planned = {"N": str(event["appointmentTime"])}
    if "claimToken" in old or old.get("state") != done or old.get("appointmentTime") != planned:
        return False
    if state == "DEFERRED" and old.get("deferrals") != {"N": str(int(event.get("deferrals", 0)) + 1)}:
        return False
    token = {"S": event["claimToken"]}
    written = [result["channel"] for result in results if result["status"] != "DEFERRED"]
    return all(old.get(f"{channel}Result", {}).get("M", {}).get("token") == token for channel in written)


def announce(event: dict[str, Any], state: str, results: list[dict[str, str]], /) -> None:
    """A final outcome goes to the topic (ids, state and the channel results, which hold no contact
    data); every outcome is one CloudWatch embedded-metric-format line: a count of 0 or 1 each."""
    if state != "DEFERRED":
        appointment_id, _, offset = event["reminderId"].rpartition("#")
        fields = {"reminderId": event["reminderId"], "appointmentId": appointment_id, "offsetMinutes": int(offset)}
        sns.publish(
            TopicArn=TOPIC_ARN,
            Message=json.dumps({**fields, "delivery": results, "state": state}),
            MessageAttributes={"state": {"DataType": "String", "StringValue": state}},
        )
    counts = {name: int(outcome == state) for outcome, name in METRICS.items()}  # a count has no unit
    emit_metrics(METRICS_NAMESPACE, counts, reminderId=event["reminderId"], state=state)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    reminder_id = event["reminderId"]
    results = classify(event["delivery"])
    state = state_of(results)
    try:
        outcome = record(event, results)
        if outcome:
            state, results = outcome
            announce(event, state, results)
    except Exception as error:
        # Every write is conditional and the event says the same again, so any transient failure,
        # a lost answer included, is worth a retry; anything else fails the task.
        if not is_transient(error, idempotent=True):
            raise
        raise RetryableError(error_code(error)) from None
    log("INFO", "outcome", reminderId=reminder_id, state=state, recorded=bool(outcome))
    return {"reminderId": reminder_id, "state": state, "recorded": bool(outcome)}
