"""ProcessAppointments: plan reminders from appointment changes, or find the due ones; claim and render.

Input (from the workflow): ``{"input": ..., "execution": <execution id>, "started": <its start time>,
"retry": <the task's retry count>}`` where ``input`` is a list of changes from the pipe
(``{"eventName", "keys": {"appointmentId": {"S": ...}}, "sequenceNumber"}``), or an object (the
schedule's Scheduled Event, a continuation): find due reminders. Output: ``{"jobs": [...], "more":
bool, "summary": {outcome: count}}``. The contract, with every transition of a reminder and its
condition, is handlers/README.md. Items are read and written as plain attribute values: a
wrong-typed attribute of an appointment reads as absent.
"""

import hashlib
import json
import os
import time
import zlib
import zoneinfo
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config

from .common import RetryableError, conditional_update, emit_metrics, error_code, is_transient, log
from .messages import (
    TemplateError,
    describe_time,
    fit_sms,
    parse_template,
    render_template,
    resolve_locale,
    sms_segments,
)

APPOINTMENTS_TABLE = os.environ["APPOINTMENTS_TABLE"]
REMINDERS_TABLE = os.environ["REMINDERS_TABLE"]
DUE_INDEX = os.environ["DUE_INDEX"]
DUE_INDEX_SHARDS = int(os.environ["DUE_INDEX_SHARDS"])
# An offset 0 would only ever find its appointment started.
OFFSETS = sorted({int(minutes) for minutes in os.environ["REMINDER_OFFSETS_MINUTES"].split(",")} - {0})
CLAIM_BATCH_SIZE = int(os.environ["CLAIM_BATCH_SIZE"])
CLAIM_LEASE_SECONDS = int(os.environ["CLAIM_LEASE_SECONDS"])
RETENTION_SECONDS = int(os.environ["RETENTION_DAYS"]) * 86400
METRICS_NAMESPACE = os.environ["METRICS_NAMESPACE"]
#: The jobs of one execution stay under this many bytes of JSON: Step Functions passes at most
#: 256 KiB between states, and the Map's input holds them all.
JOBS_PAYLOAD_LIMIT = 200_000

CHANNELS = ["email", "sms"]
BOOKED = {"S": "BOOKED"}
# Open for a decision: due (PENDING) or claimed by a run whose lease has run out (SENDING). Only
# open reminders have attemptAt: it is the due time while PENDING, the lease's end while SENDING.
OPEN = "attemptAt <= :now"
NAMES = {"#s": "state", "#st": "status"}
#: The condition of what follows a final decision (rows 2c, 2d): the record is still final in the
#: decided state (``:f``), for the same time.
STILL_FINAL = "#s = :f AND appointmentTime = :t"

dynamodb = boto3.client("dynamodb", config=Config(retries={"mode": "standard"}))  # 3 attempts in all

#: The parts of a message, in the order render() takes them, each with its words when its template
#: is empty or malformed: today's English reminder. The email's HTML part has none: without a
#: template the email is plain text only.
REMINDER = "This is a reminder of your appointment on {when}."
BUILT_IN_TEMPLATES = {
    "EMAIL_SUBJECT": "Reminder: your appointment on {when}",
    "EMAIL_TEXT": "Hello {customerName},\n\n" + REMINDER + "\n",
    "SMS_TEXT": REMINDER,
    "EMAIL_HTML": "",
}
#: A value from the appointment is cut to this many characters, and each rendered part of a message
#: to MESSAGE_LIMIT: even a template that repeats a placeholder a thousand times makes a job of at
#: most 3 parts of 5,000 characters, each at most 12 bytes of JSON (an escaped surrogate pair), so
#: a single job always fits JOBS_PAYLOAD_LIMIT.
VALUE_LIMIT = 200
MESSAGE_LIMIT = 5000


def load_templates(raw: Any, language: str, /) -> dict[str, str]:
    """One language's templates from the environment's values (``raw``: the stack parameters' for
    the default set, ``language`` ""): a ``\\n`` (backslash, n) is a line break, since a stack
    parameter is one line. An empty template is the built-in one; so is a malformed one, with a
    warning: a typo in a stack parameter must never stop the reminders."""
    templates = {}
    for part, built_in in BUILT_IN_TEMPLATES.items():
        template = raw.get(part, "").replace("\\n", "\n")
        try:
            parse_template(template)
        except TemplateError as error:
            log("WARNING", "invalid_template", template=part, language=language, error=str(error))
            template = ""
        templates[part] = template or built_in
    return templates


#: The templates by language ("" for the default set, the stack parameters; the library's sets of
#: other languages, as JSON, in LANGUAGE_TEMPLATES), checked once per container.
TEMPLATES = {
    language: load_templates(raw, language)
    for language, raw in {"": os.environ, **json.loads(os.environ.get("LANGUAGE_TEMPLATES", "{}"))}.items()
}


#: The locale of an appointment without a known one of its own (British English, as the reminders
#: always read, when the setting is not a supported locale: a warning says so).
DEFAULT_LOCALE = resolve_locale(os.environ.get("DEFAULT_LOCALE")) or ""
if not DEFAULT_LOCALE:
    log("WARNING", "unknown_default_locale")
    DEFAULT_LOCALE = "en-GB"
SMS_MAX_SEGMENTS = int(os.environ["SMS_MAX_SEGMENTS"])


class Run:
    """One invocation: its clock, and the claim it makes. The claim token is the execution's, so a
    retried invocation of the same execution recognises (and takes back) its own claims; the lease
    runs from the execution's start, so every claim of an execution ends at the same moment."""

    def __init__(self, event: dict[str, Any]) -> None:
        self.now = int(time.time())
        self.token = hashlib.sha256(event["execution"].encode()).hexdigest()[:32]
        started = datetime.fromisoformat(event["started"].replace("Z", "+00:00"))
        self.lease_end = int(started.timestamp()) + CLAIM_LEASE_SECONDS
        self.retried = int(event.get("retry", 0)) > 0
        self.jobs: list[dict[str, Any]] = []
        self.payload = 0
        self.full = False
        self.summary = Counter[str]()


def text(item: dict[str, Any], name: str, limit: int, cut: bool = True) -> str | None:
    """The item's string attribute on one printable line, at most ``limit`` characters, or None.
    A longer value is cut to ``limit``, or is None when ``cut`` is false (an address: cut, it could
    be someone else's)."""
    value = "".join(c for c in " ".join(item.get(name, {}).get("S", "").split()) if c.isprintable())
    if len(value) > limit and not cut:
        return None
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
        # Bounded, so that a batch of jobs stays far below Step Functions' payload limit. No valid
        # address is longer than its bound: 254 characters for an email (RFC 5321, 4.5.3.1.3), "+"
        # and 15 digits for E.164 (https://docs.aws.amazon.com/sns/latest/dg/sms_publish-to-phone.html).
        "name": text(raw, "customerName", 60),
        "email": text(raw, "customerEmail", 254, cut=False),
        "phone": text(raw, "customerPhone", 16, cut=False),
        "locale": text(raw, "locale", 35),
        # Every string or number attribute, for the templates (any other type reads as empty).
        "values": {name: (value.get("S") or value.get("N") or "")[:VALUE_LIMIT] for name, value in raw.items()},
    }
    return appointment, None


def local_time(appointment: dict[str, Any]) -> tuple[datetime, str]:
    """The appointment's time in the customer's zone, and the zone's label; UTC, labelled, when the
    zone is unknown (a UTC time is never presented as local)."""
    try:
        zone = UTC if appointment["zone"] is None else zoneinfo.ZoneInfo(appointment["zone"])
    except Exception:  # not found, a bad key, a directory: all unknown
        zone = UTC
        problem = "unknown_time_zone" if zoneinfo.available_timezones() else "time_zone_database_missing"
        log("WARNING", problem, appointmentId=appointment["id"])
    moment = datetime.fromtimestamp(appointment["time"], zone)
    return moment, "UTC" if zone is UTC else f"{moment.tzname()} ({appointment['zone']})"


def render(appointment: dict[str, Any]) -> dict[str, Any]:
    """The job's localTime, email and sms (None when not requested, {"to": None} without an address),
    in the appointment's locale (else the default one, with a warning when it is unknown) and with
    its language's templates (else the default set). The SMS is cut to SMS_MAX_SEGMENTS."""
    locale = resolve_locale(appointment["locale"])
    if appointment["locale"] and not locale:
        log("WARNING", "unknown_locale", appointmentId=appointment["id"])
    locale = locale or DEFAULT_LOCALE
    templates = TEMPLATES.get(locale[:2], TEMPLATES[""])
    # The computed placeholders over the attributes of the same name (the customer's name bounded).
    values = {
        **appointment["values"],
        "customerName": appointment["name"],
        **describe_time(*local_time(appointment), locale),
    }
    subject, body, sms, html = (
        render_template(templates[part], values, html=part == "EMAIL_HTML")[:MESSAGE_LIMIT]
        for part in BUILT_IN_TEMPLATES
    )
    email = {"to": appointment["email"], "subject": " ".join(subject.split()), "text": body}  # a subject is one line
    messages = {
        "email": {**email, "html": html} if html else email,
        "sms": {"to": appointment["phone"], "text": fit_sms(sms, SMS_MAX_SEGMENTS)},
    }
    job: dict[str, Any] = {"localTime": values["when"]}
    for channel, message in messages.items():
        if channel not in appointment["channels"]:
            job[channel] = None
        else:
            job[channel] = message if message["to"] else {"to": None}
    return job


def call(method: Any, **params: Any) -> Any:
    """A read the whole batch depends on: a transient failure makes the invocation retryable."""
    try:
        return method(**params)
    except Exception as error:
        if is_transient(error, idempotent=True):
            raise RetryableError(error_code(error)) from None
        raise


def get_appointments(ids: set[str]) -> dict[str, dict[str, Any]]:
    """The current appointments by id (consistent reads)."""
    keys = [{"appointmentId": {"S": i}} for i in sorted(ids)]
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


def find_due(run: Run) -> tuple[list[dict[str, Any]], bool]:
    """The oldest due reminders of every shard, and whether a shard has more. A retried invocation
    first takes back what its execution already claimed (its lease ends at ``run.lease_end``)."""
    due, more = [], False
    for shard in range(DUE_INDEX_SHARDS):
        queries = [("attemptAt <= :n", run.now)]
        if run.retried:
            queries.insert(0, ("attemptAt = :n", run.lease_end))
        for condition, moment in queries:
            page = call(
                dynamodb.query,
                TableName=REMINDERS_TABLE,
                IndexName=DUE_INDEX,
                KeyConditionExpression=f"dueShard = :h AND {condition}",
                ExpressionAttributeValues={":h": {"S": str(shard)}, ":n": {"N": str(moment)}},
                Limit=-(-CLAIM_BATCH_SIZE // DUE_INDEX_SHARDS),
            )
            own = condition.startswith("attemptAt =")
            due += [item for item in page["Items"] if not own or item.get("claimToken") == {"S": run.token}]
            more |= not own and "LastEvaluatedKey" in page
    return due, more


def write(reminder_id: str, expression: str, condition: str, /, **values: Any) -> tuple[bool, dict[str, Any]]:
    """One conditional write of a reminder, ``updatedAt`` too: (written, the item as written or as it was)."""
    key = {"reminderId": {"S": reminder_id}}
    expression = f"SET updatedAt = :u, {expression}"
    return conditional_update(
        dynamodb, REMINDERS_TABLE, key, expression, condition, NAMES, u=int(time.time()), **values
    )


def went_out(item: dict[str, Any]) -> bool:
    """Whether a reminder went out for the time the record is planned for: a channel of this plan
    was sent, or an earlier plan's was (``delivered``, kept across re-plans, holds the time of each
    channel a provider accepted). A send still in flight, or one that died after its mark, is in
    ``sent`` only: it may not have gone out, so it does not count (its sender, or the next one,
    records what became of it: rows 8b and 7)."""
    ledger = set(item.get("delivered", {}).get("SS", []))
    at = item.get("appointmentTime", {}).get("N")
    for channel in CHANNELS:
        result = item.get(f"{channel}Result", {}).get("M")
        if (result or {}).get("status") == {"S": "SENT"} or (not result and f"{channel}@{at}" in ledger):
            return True
    return False


def show_unknown(reminder_id: str, item: dict[str, Any], /) -> None:
    """A final record says which of its channels may have gone out for its time with no result to
    say so: an earlier plan's attempt for this time died after its mark, and a re-plan for the same
    time cleared that mark (only ``sent`` keeps it). Each is FAILED (OutcomeUnknown), as its sender
    would answer (row 2d)."""
    at = item.get("appointmentTime", {}).get("N")
    unknown = set(item.get("sent", {}).get("SS", [])) - set(item.get("delivered", {}).get("SS", []))
    for channel in CHANNELS:
        result = f"{channel}Result"
        if f"{channel}@{at}" in unknown and result not in item:
            outcome = {"M": {"status": {"S": "FAILED"}, "reason": {"S": "OutcomeUnknown"}}}
            condition = f"{STILL_FINAL} AND attribute_not_exists({result})"
            write(reminder_id, f"{result} = :m", condition, m=outcome, f=item["state"], t=item["appointmentTime"])


def finalize(reminder_id: str, state: str, reason: str, condition: str, also: str = "", /, **values: Any) -> str:
    """Make an open reminder final (it leaves the due index, its claim is gone) under ``condition``;
    SENT instead when it went out for its time (``went_out``: an earlier claim's send, one that
    finished while the appointment was being cancelled, or an earlier plan's for the same time).
    ``also``: more to SET. The outcome."""
    done = f"#s = :s, reason = :r{also} REMOVE dueShard, attemptAt, claimToken, claimExpiresAt"
    nothing_sent = " AND NOT (emailResult.#st = :sent OR smsResult.#st = :sent)"
    written, item = write(reminder_id, done, condition + nothing_sent, s=state, r=reason, sent="SENT", **values)
    final, out = item.get("state") == {"S": state}, went_out(item)
    if final and not out:
        show_unknown(reminder_id, item)
    if written and not out:
        log("INFO", f"reminder_{state.lower()}", reminderId=reminder_id, reason=reason)
        return state.lower()
    if not written and out and write(reminder_id, done, condition, s="SENT", r=reason, **values)[0]:
        log("INFO", "reminder_sent", reminderId=reminder_id, reason=reason)
        return "sent"
    # Final in this state though it went out for its time: written so just now (an earlier plan's
    # send), or by an attempt of this decision that died before this correction (row 2c).
    if final and out and write(reminder_id, "#s = :s", STILL_FINAL, s="SENT", f=state, t=item["appointmentTime"])[0]:
        log("INFO", "reminder_sent", reminderId=reminder_id, reason=reason)
        return "sent"
    return state.lower() if written else "unchanged"


def version_of(change: dict[str, Any]) -> str | None:
    """The change's order among the changes of its appointment: its stream sequence number, as a
    fixed-width string that DynamoDB compares in order (None: a change without one, e.g. a backfill)."""
    number = change.get("sequenceNumber")
    return str(number).zfill(40) if number else None


def plan(run: Run, appointment_id: str, offset: int, raw: dict[str, Any] | None, version: str | None) -> str:
    """After a change of the appointment: plan, re-plan or cancel its reminder for ``offset``, never
    over a newer change's decision; then settle it at once when it is already due."""
    reminder_id = f"{appointment_id}#{offset}"
    appointment, why = parse(raw)
    newer = "(attribute_not_exists(version) OR version < :v)" if version else "attribute_not_exists(reminderId)"
    stamp = {"v": version} if version else {}
    if appointment is None or appointment["time"] <= run.now:
        # Cancelled, deleted, invalid or past: an open reminder is cancelled, a live claim included
        # (its senders then find the claim gone); one never planned is recorded cancelled too, with
        # this change's version, so that an older change read before it cannot plan it after it.
        reason = why or "AppointmentPast"
        condition = f"(attribute_not_exists(reminderId) OR #s IN (:p, :sending)) AND {newer}"
        identity = ", appointmentId = :a, offsetMinutes = :m, expiresAt = if_not_exists(expiresAt, :x)"
        outcome = finalize(
            reminder_id,
            "CANCELLED",
            reason,
            condition,
            identity + (", version = :v" if version else ""),
            p="PENDING",
            sending="SENDING",
            a=appointment_id,
            m=offset,
            x=run.now + RETENTION_SECONDS,
            **stamp,
        )
        if outcome != "cancelled" and version:  # final already: record the change, so no older one undoes it
            write(reminder_id, "version = :v", f"attribute_exists(reminderId) AND {newer}", **stamp)
        return outcome
    start = appointment["time"]
    # Due an offset before the appointment, or now for a booking made inside that window: the
    # lateness metric measures from when the reminder could first have gone out.
    due = max(start - 60 * offset, run.now)
    written, old = write(
        reminder_id,
        "#s = :p, appointmentId = :a, offsetMinutes = :m, appointmentTime = :t, dueAt = :d, dueShard = :h,"
        " attemptAt = :d, expiresAt = :x"
        + (", version = :v" if version else "")
        + " REMOVE claimToken, claimExpiresAt, emailResult, smsResult, reason, deferrals, deferReason",
        f"(attribute_not_exists(reminderId) OR appointmentTime <> :t OR #s = :c) AND {newer}",
        p="PENDING",
        a=appointment_id,
        m=offset,
        t=start,
        d=due,
        h=str(zlib.crc32(reminder_id.encode()) % DUE_INDEX_SHARDS),
        x=start + RETENTION_SECONDS,
        c="CANCELLED",
        **stamp,
    )
    current = old.get("version", {}).get("S")  # the item as written, or as it was when refused
    if written:
        log("INFO", "reminder_pending", reminderId=reminder_id)
    elif version and (current or "") < version:
        # Planned for this time already: record the change, so that no older one undoes it.
        write(reminder_id, "version = :v", f"attribute_exists(reminderId) AND {newer}", **stamp)
        current = version
    if due > run.now:
        return "pending" if written else "unchanged"
    record = {
        "reminderId": reminder_id,
        "offsetMinutes": offset,
        "appointmentTime": start,
        # A plan just written starts afresh; a refused one is the record as it is (ALL_OLD on a failed
        # condition: https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateItem.html),
        # whose deferrals set the status updater's next backoff should this run claim it.
        "deferrals": int(old.get("deferrals", {"N": 0})["N"]) if old else 0,
        "tried": False,
        "version": current,
    }
    return settle(run, record, raw)


def settle(run: Run, record: dict[str, Any], raw: dict[str, Any] | None) -> str:
    """Decide about an open, due reminder given its current appointment, and write the decision:
    final, re-planned, or claimed (a claim becomes a job). Every write is conditional on the reminder
    still being open and planned for the time decided on."""
    reminder_id, offset, planned = record["reminderId"], record["offsetMinutes"], record["appointmentTime"]
    appointment, why = parse(raw)
    # The decision stands only on the record it was made from: still open, planned for the same time,
    # and at the same version. A newer change applied meanwhile (a cancel then a re-booking at the
    # same time moves only the version) refuses a decision made from an older read of the appointment.
    version = record["version"]
    still = f"{OPEN} AND appointmentTime = :t AND " + ("version = :v" if version else "attribute_not_exists(version)")
    stamp = {"now": run.now, "t": planned, **({"v": version} if version else {})}
    if offset not in OFFSETS or appointment is None:
        return finalize(reminder_id, "CANCELLED", why or "OffsetRemoved", still, **stamp)
    if appointment["time"] != planned:
        # Moved, and its change not planned yet: that change, from the stream, re-plans it.
        return "unchanged"
    if planned <= run.now:
        # A reminder that was tried (deferred, or a channel attempted) and could not go out in time
        # failed; one that was never tried was skipped.
        state, reason = ("FAILED", "NotSentBeforeAppointment") if record["tried"] else ("SKIPPED", "AppointmentStarted")
        return finalize(reminder_id, state, reason, still, **stamp)
    if any(smaller < offset and planned - 60 * smaller <= run.now for smaller in OFFSETS):
        return finalize(reminder_id, "SKIPPED", "Superseded", still, **stamp)
    if not appointment["channels"]:
        return finalize(reminder_id, "SKIPPED", "NoChannelRequested", still, **stamp)
    job = {
        "reminderId": reminder_id,
        "claimToken": run.token,
        "appointmentTime": planned,
        "deferrals": record["deferrals"],
        **render(appointment),
    }
    size = len(json.dumps(job))
    if run.payload + size > JOBS_PAYLOAD_LIMIT:
        run.full = True  # left due: the next execution takes it
        return "unchanged"
    written, _ = write(
        reminder_id,
        "#s = :s, claimToken = :k, claimExpiresAt = :e, attemptAt = :e",
        f"({OPEN} OR claimToken = :k) AND appointmentTime = :t",
        s="SENDING",
        k=run.token,
        e=run.lease_end,
        now=run.now,
        t=planned,
    )
    if not written:
        return "unchanged"
    log("INFO", "reminder_sending", reminderId=reminder_id)
    if (job["sms"] or {}).get("text"):
        # What the SMS will cost, never its text: one embedded-metric line per SMS.
        encoding, segments = sms_segments(job["sms"]["text"])
        emit_metrics(METRICS_NAMESPACE, {"SmsSegments": segments}, "Count", reminderId=reminder_id, encoding=encoding)
    run.jobs.append(job)
    run.payload += size
    return "sending"


def record_of(item: dict[str, Any]) -> dict[str, Any]:
    """What the decision needs of a reminder found in the due index."""
    return {
        "reminderId": item["reminderId"]["S"],
        "offsetMinutes": int(item["offsetMinutes"]["N"]),
        "appointmentTime": int(item["appointmentTime"]["N"]),
        "dueAt": int(item["dueAt"]["N"]),
        "deferrals": int(item.get("deferrals", {"N": 0})["N"]),
        "tried": "deferrals" in item or any(f"{channel}Result" in item for channel in CHANNELS),
        "version": item.get("version", {}).get("S"),
    }


def plan_changes(run: Run, changes: list[dict[str, Any]]) -> None:
    """Plan every offset of each changed appointment from its current item. A failure is not isolated:
    the invocation fails (retryably when transient), the workflow retries it, and past its retries the
    pipe retries the batch, then dead-letters it with an alarm. Planning is idempotent."""
    versions: dict[str, str | None] = {}
    for change in changes:  # the newest change of each appointment in the batch decides
        appointment_id = change["keys"]["appointmentId"]["S"]
        version = version_of(change)
        if appointment_id not in versions or (version or "") > (versions[appointment_id] or ""):
            versions[appointment_id] = version
    appointments = get_appointments(set(versions))
    for appointment_id, version in versions.items():
        for offset in OFFSETS:
            try:
                run.summary[plan(run, appointment_id, offset, appointments.get(appointment_id), version)] += 1
            except Exception as error:
                log("ERROR", "reminder_failed", reminderId=f"{appointment_id}#{offset}", errorType=error_code(error))
                if is_transient(error, idempotent=True):
                    raise RetryableError(error_code(error)) from None
                raise


def settle_due(run: Run) -> bool:
    """Settle the due reminders; one that fails is logged and left due, never stopping the others.
    Reports how late the oldest one is (the metric the lateness alarm watches). Whether more are due."""
    items, more = find_due(run)
    appointments = get_appointments({item["reminderId"]["S"].rpartition("#")[0] for item in items})
    due_times = []
    for item in items:
        reminder_id = item["reminderId"]["S"]
        # Reading the record is part of the one reminder too: a record edited by hand, or left by
        # an older version, is the oldest of its shard and would otherwise stop every run.
        try:
            record = record_of(item)
            due_times.append(record["dueAt"])
            run.summary[settle(run, record, appointments.get(reminder_id.rpartition("#")[0]))] += 1
        except Exception as error:
            log("ERROR", "reminder_failed", reminderId=reminder_id, errorType=error_code(error))
            run.summary["error"] += 1
    overdue = max((run.now - due for due in due_times), default=0)
    emit_metrics(METRICS_NAMESPACE, {"OverdueSeconds": overdue}, "Seconds")
    # Only a batch that moved something on continues: a reminder that keeps failing ends the chain.
    return (more or run.full) and bool(run.summary.keys() - {"unchanged", "error"})


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    run = Run(event)
    if isinstance(event["input"], list):
        plan_changes(run, event["input"])
        more = False
    else:
        more = settle_due(run)
    log("INFO", "batch_done", jobs=len(run.jobs), more=more, **run.summary)
    return {"jobs": run.jobs, "more": more, "summary": run.summary}
