"""ProcessAppointments: plan reminders from appointment changes, or find the due ones; claim and render.

Input: a JSON array of DynamoDB stream records (the Pipe), or an object (the schedule's Scheduled
Event, or a continuation). Output: ``{"jobs": [...], "more": bool, "summary": {outcome: count}}``.
The contract (tables, decisions, job format) is handlers/README.md. Items are read and written as
plain attribute values: a wrong-typed attribute of an appointment reads as absent.
"""

import json
import os
import time
import uuid
import zlib
import zoneinfo
from collections import Counter
from datetime import UTC, datetime

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

ENV = os.environ
APPOINTMENTS_TABLE, REMINDERS_TABLE, DUE_INDEX = ENV["APPOINTMENTS_TABLE"], ENV["REMINDERS_TABLE"], ENV["DUE_INDEX"]
DUE_INDEX_SHARDS = int(ENV["DUE_INDEX_SHARDS"])
# An offset 0 would only ever find its appointment started.
OFFSETS = sorted({int(m) for m in ENV["REMINDER_OFFSETS_MINUTES"].split(",")} - {0})
CLAIM_BATCH_SIZE = int(ENV["CLAIM_BATCH_SIZE"])
CLAIM_LEASE_SECONDS = int(ENV["CLAIM_LEASE_SECONDS"])
RETENTION_SECONDS = int(ENV["RETENTION_DAYS"]) * 86400

CHANNELS = ["email", "sms"]
BOOKED = {"S": "BOOKED"}
# Throttling (ProvisionedThroughputExceeded, RequestLimitExceeded, Throttling) and server errors.
TRANSIENT = ("Exceeded", "Throttl", "Internal", "Unavailable")
WEEKDAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
MONTHS = "January February March April May June July August September October November December".split()
# Open: PENDING, or SENDING under a lease that has run out (attemptAt is the lease's end while
# SENDING; final states have no attemptAt).
OPEN = "(#s = :p OR attemptAt <= :n)"
# Final states leave the due index.
FINAL = "reason = :r REMOVE dueShard, attemptAt"

dynamodb = boto3.client("dynamodb", config=Config(retries={"mode": "standard"}))


# The invocation failed transiently; the workflow retries it (every write is conditional).
class RetryableError(Exception):
    pass


def log(level, event, **fields):
    print(json.dumps({"level": level, "event": event, **fields}))


def error_type(error):
    return error.response["Error"]["Code"] if isinstance(error, ClientError) else type(error).__name__


def text(item, name, limit=None):
    """The item's string attribute on one printable line, or None."""
    value = "".join(c for c in " ".join(item.get(name, {}).get("S", "").split()) if c.isprintable())
    return value[:limit].strip() or None


def parse(raw):
    """(appointment, None) for a booked appointment; (None, reason) when it gets no reminder."""
    if raw is None:
        return None, "AppointmentDeleted"
    status, t = raw.get("status", BOOKED), float(raw.get("appointmentTime", {}).get("N", 0))
    if status == {"S": "CANCELLED"}:
        return None, "AppointmentCancelled"
    # The upper bound also rejects milliseconds (a date thousands of years ahead).
    if status != BOOKED or not 0 < t < 1e11:
        log("WARNING", "invalid_appointment", appointmentId=raw["appointmentId"]["S"])
        return None, "InvalidAppointment"
    channels = raw.get("notificationChannels", {"SS": CHANNELS}).get("SS", [])
    # zone: None when absent, "" (so: unknown) when not a string.
    return {"id": raw["appointmentId"]["S"], "time": int(t), "channels": [c for c in CHANNELS if c in channels],
            "zone": raw.get("timeZone", {"S": None}).get("S", ""), "name": text(raw, "customerName", 60),
            "email": text(raw, "customerEmail"), "phone": text(raw, "customerPhone")}, None


def render(a):
    """The job's localTime, email and sms (None when not requested, {"to": None} without an address)."""
    try:
        tz = UTC if a["zone"] is None else zoneinfo.ZoneInfo(a["zone"])
    except Exception:  # not found, a bad key, a directory: all unknown
        tz = UTC
        log("WARNING", "unknown_time_zone" if zoneinfo.available_timezones() else "time_zone_database_missing",
            appointmentId=a["id"])
    t = datetime.fromtimestamp(a["time"], tz)
    at = f"{WEEKDAYS[t.weekday()]} {t.day} {MONTHS[t.month - 1]} {t.year} at {t:%H:%M} " + (
        "UTC" if tz is UTC else f"{t.tzname()} ({a['zone']})")
    hello = f"Hello {a['name']}," if a["name"] else "Hello,"
    body = f"This is a reminder of your appointment on {at}."
    # Plain text only: it reads the same in every mail client and leaves nothing to escape.
    messages = {
        "email": {"to": a["email"], "subject": f"Reminder: your appointment on {at}", "text": f"{hello}\n\n{body}\n"},
        "sms": {"to": a["phone"], "text": body},
    }
    return {"localTime": at,
            **{c: (m if m["to"] else {"to": None}) if c in a["channels"] else None for c, m in messages.items()}}


def decide(a, why, offset, planned, now):
    """(state, reason) for an open reminder planned for ``planned`` (None: not yet); state None: plan it."""
    if offset not in OFFSETS:
        return "CANCELLED", "OffsetRemoved"
    if why:
        return "CANCELLED", why
    if a["time"] <= now:
        return ("SKIPPED", "AppointmentStarted") if planned else ("CANCELLED", "AppointmentPast")
    if a["time"] != planned:
        return None, None
    if any(m < offset and planned - 60 * m <= now for m in OFFSETS):
        return "SKIPPED", "Superseded"
    if not a["channels"]:
        return "SKIPPED", "NoChannelRequested"
    return "SENDING", None


def call(method, **params):
    """A call the whole batch depends on: a transient failure makes the invocation retryable."""
    try:
        return method(**params)
    except (ClientError, BotoCoreError) as error:
        if isinstance(error, BotoCoreError) or any(w in error_type(error) for w in TRANSIENT):
            raise RetryableError(error_type(error)) from None
        raise


def get_appointments(client, ids):
    """The current appointments by id (consistent reads)."""
    keys, found = [{"appointmentId": {"S": i}} for i in ids], {}
    for i in range(0, len(keys), 100):
        page = call(client.batch_get_item,
                    RequestItems={APPOINTMENTS_TABLE: {"Keys": keys[i:i + 100], "ConsistentRead": True}})
        if page.get("UnprocessedKeys"):  # throttled: the workflow's retry backs off
            raise RetryableError("UnprocessedKeys")
        found.update((x["appointmentId"]["S"], x) for x in page["Responses"].get(APPOINTMENTS_TABLE, []))
    return found


def find_due(client, now):
    """The oldest due reminders of every shard (id, offset, planned time), and whether a shard has more."""
    due, more = [], False
    for shard in range(DUE_INDEX_SHARDS):
        page = call(client.query, TableName=REMINDERS_TABLE, IndexName=DUE_INDEX,
                    KeyConditionExpression="dueShard = :h AND attemptAt <= :n",
                    ExpressionAttributeValues={":h": {"S": str(shard)}, ":n": {"N": str(now)}},
                    Limit=-(-CLAIM_BATCH_SIZE // DUE_INDEX_SHARDS))
        due += [(r["appointmentId"]["S"], int(r["offsetMinutes"]["N"]), int(r["appointmentTime"]["N"]))
                for r in page["Items"]]
        more |= "LastEvaluatedKey" in page
    return due, more


def update(client, rid, now, state, expression, condition, **values):
    """One conditional write of a reminder (its state, updatedAt and ``expression``); the outcome.

    Any other failure is raised: the handler logs it and goes on with the next reminder.
    """
    values.update(s=state, n=now)
    try:
        client.update_item(
            TableName=REMINDERS_TABLE, Key={"reminderId": {"S": rid}}, ExpressionAttributeNames={"#s": "state"},
            UpdateExpression="SET #s = :s, updatedAt = :n, " + expression, ConditionExpression=condition,
            ExpressionAttributeValues={f":{k}": {"S": v} if isinstance(v, str) else {"N": str(v)}
                                       for k, v in values.items() if v is not None})
    except client.exceptions.ConditionalCheckFailedException:
        return "unchanged"
    log("INFO", "reminder_" + state.lower(), reminderId=rid, reason=values.get("r"))
    return state.lower()


def settle(client, aid, offset, planned, raw, now, jobs):
    """Decide about one reminder (``planned`` None: after a change) and write it; a claim becomes a job."""
    rid, (a, why) = f"{aid}#{offset}", parse(raw)
    state, reason = decide(a, why, offset, planned, now)
    condition = OPEN + " AND appointmentTime = :t" if planned else OPEN
    if state is None:  # new or moved: plan it for the appointment's time; decide at once when due
        t = a["time"]
        outcome = update(
            client, rid, now, "PENDING",
            "appointmentId = :a, offsetMinutes = :m, appointmentTime = :t, dueAt = :d, dueShard = :h, attemptAt = :d,"
            " expiresAt = :x REMOVE claimToken, claimExpiresAt, emailResult, smsResult, reason",
            "attribute_not_exists(reminderId) OR appointmentTime <> :t OR #s = :c", a=aid, m=offset, t=t,
            d=t - 60 * offset, h=str(zlib.crc32(rid.encode()) % DUE_INDEX_SHARDS), x=t + RETENTION_SECONDS,
            c="CANCELLED")
        return outcome if t - 60 * offset > now else settle(client, aid, offset, t, raw, now, jobs)
    if state != "SENDING":
        return update(client, rid, now, state, FINAL, condition, r=reason, t=planned, p="PENDING")
    # Rendered before the claim. The claim keeps emailResult/smsResult: what an earlier claim sent.
    token = uuid.uuid4().hex
    job = {"reminderId": rid, "claimToken": token, **render(a)}
    outcome = update(client, rid, now, state, "claimToken = :k, claimExpiresAt = :e, attemptAt = :e", condition,
                     k=token, e=now + CLAIM_LEASE_SECONDS, t=planned, p="PENDING")
    if outcome == "sending":
        jobs.append(job)
    return outcome


def handler(event, context):
    now, jobs, summary, more = int(time.time()), [], Counter(), False
    if isinstance(event, list):
        due = [(aid, m, None) for aid in {r["dynamodb"]["Keys"]["appointmentId"]["S"]: 1 for r in event}
               for m in OFFSETS]
    else:
        due, more = find_due(dynamodb, now)
    items = get_appointments(dynamodb, {d[0] for d in due})
    for aid, offset, planned in due:
        try:
            summary[settle(dynamodb, aid, offset, planned, items.get(aid), now, jobs)] += 1
        except Exception as error:  # a failed write, or any surprise: never stops the batch
            log("ERROR", "reminder_failed", reminderId=f"{aid}#{offset}", errorType=error_type(error))
            summary["error"] += 1
    # Only a batch that moved something on continues: a reminder that keeps failing ends the chain.
    more = more and bool(summary.keys() - {"unchanged", "error"})
    log("INFO", "batch_done", jobs=len(jobs), more=more, **summary)
    return {"jobs": jobs, "more": more, "summary": summary}
