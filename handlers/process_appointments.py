"""ProcessAppointments: plan reminders from appointment changes, or find the due ones; claim and render.

Input: a JSON array of DynamoDB stream records (the Pipe), or an object (the schedule's Scheduled
Event, or a continuation). Output: ``{"jobs": [...], "more": bool, "summary": {outcome: count}}``.
The contract (tables, decisions, job format) is handlers/README.md. Items are read and written as
plain attribute values: a wrong-typed attribute of an appointment reads as absent.
"""

import os
import time
import uuid
import zlib
import zoneinfo
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config

from .common import RetryableError, error_code, is_transient, log

APPOINTMENTS_TABLE = os.environ["APPOINTMENTS_TABLE"]
REMINDERS_TABLE = os.environ["REMINDERS_TABLE"]
DUE_INDEX = os.environ["DUE_INDEX"]
DUE_INDEX_SHARDS = int(os.environ["DUE_INDEX_SHARDS"])
# An offset 0 would only ever find its appointment started.
OFFSETS = sorted({int(minutes) for minutes in os.environ["REMINDER_OFFSETS_MINUTES"].split(",")} - {0})
CLAIM_BATCH_SIZE = int(os.environ["CLAIM_BATCH_SIZE"])
CLAIM_LEASE_SECONDS = int(os.environ["CLAIM_LEASE_SECONDS"])
RETENTION_SECONDS = int(os.environ["RETENTION_DAYS"]) * 86400

CHANNELS = ["email", "sms"]
BOOKED = {"S": "BOOKED"}
WEEKDAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
MONTHS = "January February March April May June July August September October November December".split()
# Open: PENDING, or SENDING under a lease that has run out (attemptAt is the lease's end while
# SENDING; final states have no attemptAt).
OPEN = "(#s = :p OR attemptAt <= :n)"
# Final states leave the due index.
FINAL = "reason = :r REMOVE dueShard, attemptAt"

dynamodb = boto3.client("dynamodb", config=Config(retries={"mode": "standard"}))


def text(item: dict[str, Any], name: str, limit: int | None = None) -> str | None:
    """The item's string attribute on one printable line, or None."""
    value = "".join(c for c in " ".join(item.get(name, {}).get("S", "").split()) if c.isprintable())
    return value[:limit].strip() or None


def parse(raw: dict[str, Any] | None) -> tuple[dict[str, Any] | None, str | None]:
    """(appointment, None) for a booked appointment; (None, reason) when it gets no reminder."""
    if raw is None:
        return None, "AppointmentDeleted"
    status = raw.get("status", BOOKED)
    start = float(raw.get("appointmentTime", {}).get("N", 0))
    if status == {"S": "CANCELLED"}:
        return None, "AppointmentCancelled"
    # The upper bound also rejects milliseconds (a date thousands of years ahead).
    if status != BOOKED or not 0 < start < 1e11:
        log("WARNING", "invalid_appointment", appointmentId=raw["appointmentId"]["S"])
        return None, "InvalidAppointment"
    channels = raw.get("notificationChannels", {"SS": CHANNELS}).get("SS", [])
    appointment = {
        "id": raw["appointmentId"]["S"],
        "time": int(start),
        "channels": [channel for channel in CHANNELS if channel in channels],
        # None when absent; "" (so: unknown) when not a string.
        "zone": raw.get("timeZone", {"S": None}).get("S", ""),
        "name": text(raw, "customerName", 60),
        "email": text(raw, "customerEmail"),
        "phone": text(raw, "customerPhone"),
    }
    return appointment, None


def local_time(appointment: dict[str, Any]) -> str:
    """The appointment's time in the customer's zone, with the zone named; UTC, labelled, when the
    zone is unknown (a UTC time is never presented as local)."""
    try:
        zone = UTC if appointment["zone"] is None else zoneinfo.ZoneInfo(appointment["zone"])
    except Exception:  # not found, a bad key, a directory: all unknown
        zone = UTC
        problem = "unknown_time_zone" if zoneinfo.available_timezones() else "time_zone_database_missing"
        log("WARNING", problem, appointmentId=appointment["id"])
    moment = datetime.fromtimestamp(appointment["time"], zone)
    label = "UTC" if zone is UTC else f"{moment.tzname()} ({appointment['zone']})"
    return (
        f"{WEEKDAYS[moment.weekday()]} {moment.day} {MONTHS[moment.month - 1]} {moment.year} at {moment:%H:%M} {label}"
    )


def render(appointment: dict[str, Any]) -> dict[str, Any]:
    """The job's localTime, email and sms (None when not requested, {"to": None} without an address)."""
    at = local_time(appointment)
    hello = f"Hello {appointment['name']}," if appointment["name"] else "Hello,"
    body = f"This is a reminder of your appointment on {at}."
    # Plain text only: it reads the same in every mail client and leaves nothing to escape.
    messages = {
        "email": {
            "to": appointment["email"],
            "subject": f"Reminder: your appointment on {at}",
            "text": f"{hello}\n\n{body}\n",
        },
        "sms": {"to": appointment["phone"], "text": body},
    }
    job: dict[str, Any] = {"localTime": at}
    for channel, message in messages.items():
        if channel not in appointment["channels"]:
            job[channel] = None
        else:
            job[channel] = message if message["to"] else {"to": None}
    return job


def decide(
    appointment: dict[str, Any] | None, why: str | None, offset: int, planned: int | None, now: int
) -> tuple[str | None, str | None]:
    """(state, reason) for an open reminder planned for ``planned`` (None: not yet); state None: plan it."""
    if offset not in OFFSETS:
        return "CANCELLED", "OffsetRemoved"
    if why or appointment is None:
        return "CANCELLED", why
    if appointment["time"] <= now:
        return ("SKIPPED", "AppointmentStarted") if planned else ("CANCELLED", "AppointmentPast")
    if planned is None or appointment["time"] != planned:
        return None, None
    if any(smaller < offset and planned - 60 * smaller <= now for smaller in OFFSETS):
        return "SKIPPED", "Superseded"
    if not appointment["channels"]:
        return "SKIPPED", "NoChannelRequested"
    return "SENDING", None


def call(method: Any, **params: Any) -> Any:
    """A call the whole batch depends on: a transient failure makes the invocation retryable."""
    try:
        return method(**params)
    except Exception as error:
        if is_transient(error, idempotent=True):
            raise RetryableError(error_code(error)) from None
        raise


def get_appointments(ids: set[str]) -> dict[str, dict[str, Any]]:
    """The current appointments by id (consistent reads)."""
    keys = [{"appointmentId": {"S": i}} for i in ids]
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(keys), 100):
        page = call(
            dynamodb.batch_get_item,
            RequestItems={APPOINTMENTS_TABLE: {"Keys": keys[start : start + 100], "ConsistentRead": True}},
        )
        if page.get("UnprocessedKeys"):  # throttled: the workflow's retry backs off
            raise RetryableError("UnprocessedKeys")
        found.update((item["appointmentId"]["S"], item) for item in page["Responses"].get(APPOINTMENTS_TABLE, []))
    return found


def find_due(now: int) -> tuple[list[tuple[str, int, int]], bool]:
    """The oldest due reminders of every shard (id, offset, planned time), and whether a shard has more."""
    due, more = [], False
    for shard in range(DUE_INDEX_SHARDS):
        page = call(
            dynamodb.query,
            TableName=REMINDERS_TABLE,
            IndexName=DUE_INDEX,
            KeyConditionExpression="dueShard = :h AND attemptAt <= :n",
            ExpressionAttributeValues={":h": {"S": str(shard)}, ":n": {"N": str(now)}},
            Limit=-(-CLAIM_BATCH_SIZE // DUE_INDEX_SHARDS),
        )
        due += [
            (item["appointmentId"]["S"], int(item["offsetMinutes"]["N"]), int(item["appointmentTime"]["N"]))
            for item in page["Items"]
        ]
        more |= "LastEvaluatedKey" in page
    return due, more


def update(reminder_id: str, now: int, state: str, expression: str, condition: str, **values: Any) -> str:
    """One conditional write of a reminder (its state, updatedAt and ``expression``); the outcome.

    Any other failure is raised: the handler logs it and goes on with the next reminder.
    """
    values.update(s=state, n=now)
    try:
        dynamodb.update_item(
            TableName=REMINDERS_TABLE,
            Key={"reminderId": {"S": reminder_id}},
            ExpressionAttributeNames={"#s": "state"},
            UpdateExpression="SET #s = :s, updatedAt = :n, " + expression,
            ConditionExpression=condition,
            ExpressionAttributeValues={
                f":{name}": {"S": value} if isinstance(value, str) else {"N": str(value)}
                for name, value in values.items()
                if value is not None
            },
        )
    except dynamodb.exceptions.ConditionalCheckFailedException:
        return "unchanged"
    log("INFO", "reminder_" + state.lower(), reminderId=reminder_id, reason=values.get("r"))
    return state.lower()


def settle(
    appointment_id: str,
    offset: int,
    planned: int | None,
    raw: dict[str, Any] | None,
    now: int,
    jobs: list[dict[str, Any]],
) -> str:
    """Decide about one reminder (``planned`` None: after a change) and write it; a claim becomes a job."""
    reminder_id = f"{appointment_id}#{offset}"
    appointment, why = parse(raw)
    state, reason = decide(appointment, why, offset, planned, now)
    condition = OPEN + " AND appointmentTime = :t" if planned else OPEN
    if state is None:  # new or moved: plan it for the appointment's time; decide at once when due
        assert appointment is not None
        start = appointment["time"]
        outcome = update(
            reminder_id,
            now,
            "PENDING",
            "appointmentId = :a, offsetMinutes = :m, appointmentTime = :t, dueAt = :d, dueShard = :h,"
            " attemptAt = :d, expiresAt = :x REMOVE claimToken, claimExpiresAt, emailResult, smsResult, reason",
            "attribute_not_exists(reminderId) OR appointmentTime <> :t OR #s = :c",
            a=appointment_id,
            m=offset,
            t=start,
            d=start - 60 * offset,
            h=str(zlib.crc32(reminder_id.encode()) % DUE_INDEX_SHARDS),
            x=start + RETENTION_SECONDS,
            c="CANCELLED",
        )
        if start - 60 * offset > now:
            return outcome
        return settle(appointment_id, offset, start, raw, now, jobs)
    if state != "SENDING":
        return update(reminder_id, now, state, FINAL, condition, r=reason, t=planned, p="PENDING")
    # Rendered before the claim. The claim keeps emailResult/smsResult: what an earlier claim sent.
    assert appointment is not None
    token = uuid.uuid4().hex
    job = {"reminderId": reminder_id, "claimToken": token, **render(appointment)}
    outcome = update(
        reminder_id,
        now,
        state,
        "claimToken = :k, claimExpiresAt = :e, attemptAt = :e",
        condition,
        k=token,
        e=now + CLAIM_LEASE_SECONDS,
        t=planned,
        p="PENDING",
    )
    if outcome == "sending":
        jobs.append(job)
    return outcome


def handler(event: Any, context: Any) -> dict[str, Any]:
    now, summary, more = int(time.time()), Counter[str](), False
    jobs: list[dict[str, Any]] = []
    if isinstance(event, list):  # stream records: plan every offset of each changed appointment
        changed = {record["dynamodb"]["Keys"]["appointmentId"]["S"]: 1 for record in event}
        due: list[tuple[str, int, int | None]] = [(aid, offset, None) for aid in changed for offset in OFFSETS]
    else:
        found, more = find_due(now)
        due = list(found)
    appointments = get_appointments({appointment_id for appointment_id, _, _ in due})
    for appointment_id, offset, planned in due:
        try:
            summary[settle(appointment_id, offset, planned, appointments.get(appointment_id), now, jobs)] += 1
        except Exception as error:  # a failed write, or any surprise: never stops the batch
            log("ERROR", "reminder_failed", reminderId=f"{appointment_id}#{offset}", errorType=error_code(error))
            summary["error"] += 1
    # Only a batch that moved something on continues: a reminder that keeps failing ends the chain.
    more = more and bool(summary.keys() - {"unchanged", "error"})
    log("INFO", "batch_done", jobs=len(jobs), more=more, **summary)
    return {"jobs": jobs, "more": more, "summary": summary}
