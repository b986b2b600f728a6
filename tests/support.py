"""Test data and small helpers. Only obviously fake contact data: example.com, +1555555xxxx."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from boto3.dynamodb.types import TypeSerializer

from tapstack.local import LocalDeployment

SENDER = "reminders@example.com"
#: A Monday, 09:00 UTC.
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOW = int(START.timestamp())
HOUR = 3600
DAY = 86400
#: moto treats numbers ending in 99 as opted out of SMS.
OPTED_OUT_PHONE = "+15555550199"


def appointment(appointment_id: str, starts_in: int, **fields: Any) -> dict[str, Any]:
    """A booking as the booking app writes it, ``starts_in`` seconds after NOW."""
    item: dict[str, Any] = {
        "appointmentId": appointment_id,
        "appointmentTime": NOW + starts_in,
        "customerEmail": f"{appointment_id}@example.com",
        "customerPhone": "+15555550123",
        "customerName": "Pat Example",
        "timeZone": "Europe/Paris",
    }
    item.update(fields)
    return {k: v for k, v in item.items() if v is not None}


def put_appointment(deployment: LocalDeployment, item: dict[str, Any]) -> None:
    """Write the item as the booking app would (raw attribute values, any types)."""
    serializer = TypeSerializer()
    deployment.client("dynamodb").put_item(
        TableName=deployment.table_name("AppointmentsTable"),
        Item={k: serializer.serialize(v) for k, v in item.items()},
    )


def delete_appointment(deployment: LocalDeployment, appointment_id: str) -> None:
    deployment.client("dynamodb").delete_item(
        TableName=deployment.table_name("AppointmentsTable"), Key={"appointmentId": {"S": appointment_id}}
    )


def reminder(deployment: LocalDeployment, reminder_id: str) -> dict[str, Any] | None:
    return deployment.item("RemindersTable", {"reminderId": reminder_id})


def sent_emails(deployment: LocalDeployment) -> list[dict[str, Any]]:
    """Emails SES accepted (moto keeps them)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    backend = ses_backends[DEFAULT_ACCOUNT_ID][deployment.region]
    return [
        {"to": m.destinations["ToAddresses"], "subject": m.subject, "body": m.body, "source": m.source}
        for m in backend.sent_messages
    ]


def sent_sms(deployment: LocalDeployment) -> list[tuple[str, str]]:
    """(phone number, text) of every SMS SNS accepted."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sns.models import sns_backends

    return list(sns_backends[DEFAULT_ACCOUNT_ID][deployment.region].sms_messages.values())


def claimed_reminder(deployment: LocalDeployment, token: str | None, **fields: Any) -> dict[str, Any]:
    """Write reminder a1#1440 as the processor leaves it when it claims it (SENDING, in the due
    index, leased); ``fields`` add or replace attributes, None leaves one out."""
    item = {
        "reminderId": "a1#1440",
        "appointmentId": "a1",
        "offsetMinutes": 1440,
        "state": "SENDING",
        "claimToken": token,
        "claimExpiresAt": NOW + 1860,
        "dueShard": "3",
        "attemptAt": NOW + 1860,
        "appointmentTime": NOW + DAY,
        "dueAt": NOW,
        **fields,
    }
    item = {k: v for k, v in item.items() if v is not None}
    serializer = TypeSerializer()
    deployment.client("dynamodb").put_item(
        TableName=deployment.table_name("RemindersTable"), Item={k: serializer.serialize(v) for k, v in item.items()}
    )
    return item


#: Events as the functions receive them (tests/events/*.json).
EVENTS = Path(__file__).with_name("events")


def load_event(name: str) -> Any:
    """The event fixture ``tests/events/<name>.json``."""
    return json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))


def appointment_change(appointment_id: str, sequence: str | None, event_name: str = "MODIFY") -> dict[str, Any]:
    """One appointment change as the pipe's input template renders a stream record: the event name,
    the keys and the stream sequence number (None: a change without one, such as a backfill)."""
    change: dict[str, Any] = {"eventName": event_name, "keys": {"appointmentId": {"S": appointment_id}}}
    if sequence is not None:
        change["sequenceNumber"] = sequence
    return change


def processor_event(workflow_input: Any, execution: str, started: int, retry: int = 0) -> dict[str, Any]:
    """The processor's event as the workflow's ProcessAppointments state builds it: the execution's
    input (a list of changes, or the schedule's object), ``$$.Execution.Id``, ``$$.Execution.StartTime``
    (ISO 8601 with milliseconds, as the context object gives it) and ``$$.State.RetryCount``:
    https://docs.aws.amazon.com/step-functions/latest/dg/input-output-contextobject.html"""
    start = datetime.fromtimestamp(started, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"input": workflow_input, "execution": execution, "started": start, "retry": retry}
