"""Test data and small helpers. Only obviously fake contact data: example.com, +1555555xxxx."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import botocore.exceptions
from boto3.dynamodb.types import TypeSerializer

from tapstack.local import LocalDeployment
from tapstack.sources import constant_renames

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


def stored(deployment: LocalDeployment, reminder_id: str = "a1#1440") -> dict[str, Any]:
    """The reminder as stored: it must be there."""
    item = reminder(deployment, reminder_id)
    assert item is not None
    return item


def calls(deployment: LocalDeployment, service: str, operation: str) -> list[dict[str, Any]]:
    """The parameters of every ``operation`` call the functions made to ``service``, in order."""
    return [c.params for c in deployment.monitor.calls if (c.service, c.operation) == (service, operation)]


def logged(deployment: LocalDeployment, function: str) -> list[dict[str, Any]]:
    """The function's log lines (each one JSON object)."""
    return [json.loads(line) for name, line in deployment.monitor.logs if name == function]


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


def processor_event(
    workflow_input: Any, execution: str = "manual", started: int | None = None, retry: int = 0
) -> dict[str, Any]:
    """The processor's event as the workflow's ProcessAppointments state builds it: the execution's
    input (a list of changes, or the schedule's object), ``$$.Execution.Id``, ``$$.Execution.StartTime``
    (ISO 8601 with milliseconds, as the context object gives it; default now) and ``$$.State.RetryCount``.
    An ``execution`` that is not an ARN names an Express execution of the dev stack:
    https://docs.aws.amazon.com/step-functions/latest/dg/input-output-contextobject.html"""
    if not execution.startswith("arn:"):
        execution = f"arn:aws:states:us-east-1:123456789012:express:NotificationWorkflow-dev:{execution}"
    started = int(time.time()) if started is None else started
    start = datetime.fromtimestamp(started, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"input": workflow_input, "execution": execution, "started": start, "retry": retry}


# ---- the jobs of a claimed reminder, and forced interleavings -----------------------------------

#: The appointment time of reminder a1#1440 as ``claimed_reminder`` writes it (due now).
APPOINTMENT_TIME = NOW + DAY
PROCESSOR = "AppointmentProcessorFunction"


def job(token: str, appointment_time: int = APPOINTMENT_TIME, **fields: Any) -> dict[str, Any]:
    """What a Map iteration passes its tasks for reminder a1#1440: the senders add ``message``, the
    status updater ``deferrals`` and ``delivery`` (handlers/README.md)."""
    return {"reminderId": "a1#1440", "claimToken": token, "appointmentTime": appointment_time, **fields}


def sent_key(channel: str, appointment_time: int = APPOINTMENT_TIME) -> str:
    """A provider call's entry in the reminder's ``sent`` set: ``<channel>@<appointmentTime>``."""
    return f"{channel}@{appointment_time}"


def function_global(deployment: LocalDeployment, logical_id: str, name: str) -> Any:
    """A module-level name of a deployed function's code (a client, a function): the handler module's
    own, or that of a sibling module it imports from (a function run from its file loads its siblings
    as separate modules; the inlined copy is one module, where a constant or client has its short
    name from ``constant_renames``)."""
    module = deployment.functions[deployment.resources[logical_id].ref].module
    namespaces = [vars(module)] + [
        value.__globals__ for value in vars(module).values() if hasattr(value, "__globals__")
    ]
    for namespace in namespaces:
        for candidate in (name, constant_renames().get(name)):
            if candidate in namespace:
                return namespace[candidate]
    raise KeyError(f"{logical_id} has no module-level {name}")


def _operation_hook(
    client: Any, operation: str, *, answered: bool, action: Callable[[], object], times: int
) -> list[int]:
    """Run ``action`` on each of the next ``times`` attempts of ``operation`` by ``client``: before the
    request leaves (``answered=False``; raising fails the attempt as a network error would), or once
    the service has handled it and before its answer is back (``answered=True``; raising loses the
    answer). botocore's retry mode then decides, as against AWS, whether to repeat the request.
    Returns the attempt numbers it acted on."""
    service = client.meta.service_model.service_id.hyphenize()
    acted: list[int] = []

    def hook(event_name: str, **_: Any) -> None:
        if event_name != f"before-send.{service}.{operation}" or len(acted) >= times:
            return
        acted.append(len(acted) + 1)
        action()

    if answered:
        # Handlers of the bare event run after those of the operation's own event, and "last" after
        # moto's, which answers the request: this hook runs once the service has done its work.
        client.meta.events.register_last("before-send", hook)
    else:
        client.meta.events.register_first(f"before-send.{service}.{operation}", hook)
    return acted


def before_sending(client: Any, operation: str, action: Callable[[], object], *, times: int = 1) -> list[int]:
    """Run ``action`` as the next ``times`` requests of ``operation`` are about to leave (nothing has
    reached the service yet); an exception it raises fails the attempt, as no connection would."""
    return _operation_hook(client, operation, answered=False, action=action, times=times)


def while_in_flight(client: Any, operation: str, action: Callable[[], object], *, times: int = 1) -> list[int]:
    """Run ``action`` while the next ``times`` calls of ``operation`` are in flight: the service has
    done the work (a message accepted, a write applied) and its answer is not back yet."""
    return _operation_hook(client, operation, answered=True, action=action, times=times)


def lose_answers(client: Any, operation: str, *, times: int = 1, error: str = "ReadTimeoutError") -> list[int]:
    """The next ``times`` attempts of ``operation`` reach the service, which does the work, and their
    answers are lost (``ReadTimeoutError`` or ``ConnectionClosedError``, as botocore reports them).
    botocore's legacy and standard retry modes retry both ("General socket/connection errors"), up to
    the client's attempts: https://docs.aws.amazon.com/boto3/latest/guide/retries.html"""

    def lose() -> None:
        raise getattr(botocore.exceptions, error)(endpoint_url="https://local.invalid/")

    return while_in_flight(client, operation, lose, times=times)


def stream_run(deployment: LocalDeployment, appointment_id: str, sequence: int, execution: str) -> dict[str, Any]:
    """ProcessAppointments as a pipe-started execution runs it for one change of the appointment
    (keys only, with the change's stream sequence number): plans, re-plans or cancels its reminders
    and claims what is due at once. Returns its output (``jobs``)."""
    change = appointment_change(appointment_id, str(sequence))
    output: dict[str, Any] = deployment.invoke(PROCESSOR, processor_event([change], execution))
    return output
