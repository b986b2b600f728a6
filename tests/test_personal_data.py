"""No personal data in logs: customers' emails, phone numbers and names stay out of everything the
system writes for operators.

The scenarios give every appointment its own distinctive fake contact data and take the paths where a
handler is most tempted to log it: deliveries, provider faults whose messages quote the address,
malformed input, time-zone fallbacks, opted-out and invalid numbers, cancellations, a lease expiry.
Then none of the contact data may appear in
- what the functions printed (their CloudWatch logs, ``monitor.logs``),
- the errors the functions raised (the Lambda runtime writes an unhandled error to the function's log),
- this process's stdout/stderr and Python logging during the run,
- the delivery events published to the NotificationTopic (read through a subscribed SQS queue).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tapstack.local import LocalDeployment
from tapstack.timing import CLAIM_LEASE_SECONDS
from tests.support import (
    DAY,
    HOUR,
    NOW,
    appointment,
    delete_appointment,
    processor_event,
    put_appointment,
    reminder,
    sent_emails,
    sent_sms,
)


@dataclass(frozen=True)
class Customer:
    """Obviously fake contact data, distinct per appointment: pat.0042@example.com, +15555550042,
    Camille Example-0042. (moto treats numbers ending in 99 as opted out.)"""

    number: int

    @property
    def email(self) -> str:
        return f"pat.{self.number:04}@example.com"

    @property
    def phone(self) -> str:
        return f"+1555555{self.number:04}"

    @property
    def name(self) -> str:
        return f"Camille Example-{self.number:04}"

    def fields(self, **overrides: Any) -> dict[str, Any]:
        return {"customerEmail": self.email, "customerPhone": self.phone, "customerName": self.name, **overrides}

    def tokens(self) -> list[str]:
        """What would give the customer away, also when only part of it is logged."""
        local_part = self.email.split("@")[0]
        return [self.email, local_part, self.phone[2:], self.name, self.name.split()[1]]


def personal_data(sinks: dict[str, list[str]], customers: list[Customer]) -> list[str]:
    """Every (sink, token, line) where a customer's contact data shows up."""
    tokens = sorted({t for c in customers for t in c.tokens()} | {"Camille"}, key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(t) for t in tokens), re.IGNORECASE)
    return [
        f"{sink}: {match.group(0)!r} in {line[:300]!r}"
        for sink, lines in sinks.items()
        for line in lines
        for match in [pattern.search(line)]
        if match
    ]


class Watch:
    """The sinks of one deployment: its functions' logs and errors, and the topic's delivery events."""

    def __init__(self, stack: LocalDeployment) -> None:
        self.stack = stack
        sqs, sns = stack.client("sqs"), stack.client("sns")
        self.queue = sqs.create_queue(QueueName="delivery-events-watch")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(
            TopicArn=stack.resources["NotificationTopic"].ref,
            Protocol="sqs",
            Endpoint=arn,
            Attributes={"RawMessageDelivery": "true"},
        )
        self.events: list[str] = []

    def drain(self) -> list[str]:
        sqs = self.stack.client("sqs")
        while True:
            messages = sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return self.events
            for message in messages:
                self.events.append(message["Body"])
                sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"])

    def sinks(self, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> dict[str, list[str]]:
        self.stack.wait()  # every execution has ended: nothing more will be written
        captured, monitor = capsys.readouterr(), self.stack.monitor
        return {
            "function log": [f"{function}: {line}" for function, line in monitor.logs],
            "function error": [f"{i.function}: {json.dumps(i.error)}" for i in monitor.invocations if i.error],
            "stdout": captured.out.splitlines(),
            "stderr": captured.err.splitlines(),
            "python logging": [f"{r.name} {r.levelname}: {r.getMessage()}" for r in caplog.records],
            "NotificationTopic": self.drain(),
        }


def run(stack: LocalDeployment) -> None:
    stack.run_pipe()
    stack.wait()
    stack.run_schedule()
    stack.wait()


def book(stack: LocalDeployment, customer: Customer, starts_in: int, **overrides: Any) -> str:
    appointment_id = f"appt-{customer.number:04}"
    put_appointment(stack, appointment(appointment_id, starts_in, **customer.fields(**overrides)))
    return appointment_id


def state(stack: LocalDeployment, appointment_id: str) -> dict[str, Any]:
    record = reminder(stack, f"{appointment_id}#1440")
    assert record is not None, appointment_id
    return record


def scenarios(stack: LocalDeployment, clock: Any) -> list[Customer]:
    """The representative run; returns every customer whose data it used."""
    c = {n: Customer(n) for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 20, 99)}
    # Deliveries, now (short notice) and by the schedule; fallbacks; bad addresses; malformed items.
    soon = book(stack, c[1], DAY - HOUR)
    later = book(stack, c[2], DAY + HOUR)
    mars = book(stack, c[3], DAY - HOUR, timeZone="Mars/Olympus_Mons")  # unknown zone: UTC, a warning
    zoneless = book(stack, c[4], DAY - HOUR, timeZone=None)
    bad_email = book(stack, c[5], DAY - HOUR, customerEmail="pat.0005.example.com")
    bad_phone = book(stack, c[6], DAY - HOUR, customerPhone="15555550006")  # not E.164
    book(stack, c[7], DAY - HOUR, appointmentTime="tomorrow")
    put_appointment(stack, {"appointmentId": "appt-0008", **c[8].fields()})  # no time at all
    cancelled = book(stack, c[9], DAY + HOUR)
    deleted = book(stack, c[10], DAY + HOUR)
    email_only = book(stack, c[11], DAY - HOUR, customerPhone=None)
    sms_only = book(stack, c[12], DAY - HOUR, customerEmail=None, notificationChannels={"sms"})
    opted_out = book(stack, c[99], DAY - HOUR)
    moved = book(stack, c[16], DAY + HOUR)
    died = book(stack, c[20], DAY + HOUR)
    run(stack)
    assert state(stack, soon)["state"] == "SENT" and state(stack, later)["state"] == "PENDING"
    assert "UTC" in next(e["body"] for e in sent_emails(stack) if e["to"] == [c[3].email])
    assert state(stack, bad_email)["emailResult"]["reason"] == "InvalidAddress"
    assert state(stack, bad_phone)["smsResult"]["reason"] == "InvalidPhoneNumber"
    assert state(stack, opted_out)["smsResult"]["reason"] == "OptedOut"
    assert {state(stack, i)["state"] for i in (mars, zoneless, email_only, sms_only)} == {"SENT"}

    # Provider faults whose messages quote the customer's address, as SES and SNS do.
    stack.inject(
        "ses",
        "SendEmail",
        "MessageRejected",
        message=f"Email address is not verified. The following identities failed the check: {c[13].email}",
    )
    rejected = book(stack, c[13], DAY - HOUR)
    run(stack)
    stack.inject("ses", "SendEmail", "Throttling", times=2, message=f"Maximum sending rate exceeded for {c[14].email}")
    stack.inject(
        "sns",
        "Publish",
        "InvalidParameter",
        function="SmsSenderFunction",
        message=f"Invalid parameter: PhoneNumber Reason: {c[14].phone} is not valid to publish to",
    )
    throttled = book(stack, c[14], DAY - HOUR)
    run(stack)
    assert state(stack, rejected)["emailResult"]["reason"] == "MessageRejected"
    assert state(stack, throttled)["emailResult"]["status"] == "SENT"
    assert state(stack, throttled)["smsResult"]["reason"] == "InvalidParameter"

    # Malformed input straight to the functions: a stream record without keys, a message without text.
    stack.start_execution(
        [
            {
                "eventName": "INSERT",
                "dynamodb": {"NewImage": {"customerEmail": {"S": c[15].email}, "customerName": {"S": c[15].name}}},
            }
        ]
    )
    stack.wait()
    for function in ("EmailSenderFunction", "SmsSenderFunction"):
        stack.invoke(
            function,
            {
                "reminderId": "appt-0017#1440",
                "claimToken": "0" * 32,
                "appointmentTime": NOW + DAY,
                "message": {"to": c[17].email if "Email" in function else c[17].phone},
            },
        )
    stack.invoke(
        "StatusUpdaterFunction",
        {
            "reminderId": "appt-0018#1440",
            "claimToken": "0" * 32,
            "appointmentTime": NOW + DAY,
            "deferrals": 0,
            "delivery": [{"channel": "email", "status": "SENT"}],
        },
    )

    # Cancellations and a move.
    put_appointment(stack, appointment(cancelled, DAY + HOUR, **c[9].fields(status="CANCELLED")))
    delete_appointment(stack, deleted)
    book(stack, c[16], 2 * DAY)
    run(stack)
    assert state(stack, cancelled)["state"] == "CANCELLED" and state(stack, deleted)["state"] == "CANCELLED"
    assert state(stack, moved)["state"] == "PENDING"

    # Claims whose execution died: re-claimed and sent after the lease.
    clock.shift(HOUR)
    claimed = stack.invoke("AppointmentProcessorFunction", processor_event({"source": "tapstack.continuation"}))
    assert {job["reminderId"] for job in claimed["jobs"]} == {f"{later}#1440", f"{died}#1440"}
    run(stack)
    assert state(stack, died)["state"] == "SENDING"
    clock.shift(CLAIM_LEASE_SECONDS + 1)
    run(stack)
    assert state(stack, died)["state"] == "SENT" and state(stack, later)["state"] == "SENT"
    assert state(stack, moved)["state"] == "PENDING"
    assert len(sent_sms(stack)) >= 8
    return list(c.values())


def test_no_contact_data_in_logs_errors_output_or_delivery_events(
    deploy: Callable[..., LocalDeployment],
    clock: Any,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    stack = deploy(inlined=True)
    watch = Watch(stack)
    customers = scenarios(stack, clock)
    sinks = watch.sinks(capsys, caplog)
    assert sinks["function log"] and sinks["NotificationTopic"], "the scenarios logged and announced something"
    assert any('"unknown_time_zone"' in line for line in sinks["function log"])
    found = personal_data(sinks, customers)
    assert not found, "contact data where operators read:\n" + "\n".join(found)


def test_the_workflow_logs_errors_only_and_never_execution_data(template_text: str) -> None:
    from tapstack.local import load_template

    machines = [
        r for r in load_template(template_text)["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"
    ]
    assert machines
    for machine in machines:
        logging_configuration = machine["Properties"]["LoggingConfiguration"]
        assert logging_configuration["Level"] == "ERROR"
        assert logging_configuration["IncludeExecutionData"] is False


#: Ways a careless handler could leak the address it sends to; each must be caught.
LEAKS = {
    "function log": "print('sending to', event['message']['to'])",
    "python logging": "import logging; logging.getLogger('careless').warning('sending to %s', event['message']['to'])",
    "stdout": "import sys; sys.stdout.write('sending to ' + event['message']['to'] + '\\n')",
    "function error": "raise ValueError('cannot send to ' + event['message']['to'])",
}


@pytest.mark.parametrize(
    ("sink", "function"),
    [
        ("function log", "EmailSenderFunction"),
        ("python logging", "SmsSenderFunction"),
        ("stdout", "EmailSenderFunction"),
        ("function error", "SmsSenderFunction"),
    ],
)
def test_the_detector_catches_a_handler_that_logs_contact_data(
    deploy: Callable[..., LocalDeployment],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    sink: str,
    function: str,
) -> None:
    caplog.set_level(logging.INFO)
    stack = deploy(inlined=True)
    watch = Watch(stack)
    careless = stack.functions[stack.resources[function].ref]
    careless.source += (
        "\n_handler = handler\n"
        "def handler(event, context):\n"
        "    if (event.get('message') or {}).get('to'):\n"
        f"        {LEAKS[sink]}\n"
        "    return _handler(event, context)\n"
    )
    careless._module = None  # the next invocation loads the careless code (a cold start)
    customer = Customer(42)
    book(stack, customer, DAY - HOUR)
    stack.run_pipe()
    found = personal_data(watch.sinks(capsys, caplog), [customer])
    assert any(f.startswith(f"{sink}: ") for f in found), found
