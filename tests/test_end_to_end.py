"""End to end on the local runner: the generated template's workflow, triggers and inlined handlers."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from tapstack.local import LocalDeployment
from tapstack.timing import CLAIM_LEASE_SECONDS
from tests.support import (
    DAY,
    HOUR,
    SENDER,
    appointment,
    delete_appointment,
    processor_event,
    put_appointment,
    reminder,
    sent_emails,
    sent_sms,
)


def run(deployment: LocalDeployment) -> list[dict[str, Any]]:
    """One round as AWS would do it: the pipe delivers what changed, then the schedule fires."""
    deployment.run_pipe()
    deployment.wait()
    deployment.run_schedule()
    return deployment.wait()


def emails_to(deployment: LocalDeployment) -> Counter[str]:
    return Counter(address for email in sent_emails(deployment) for address in email["to"])


def assert_all_succeeded(deployment: LocalDeployment) -> None:
    executions = deployment.wait()
    assert executions and {e["status"] for e in executions} == {"SUCCEEDED"}


@pytest.fixture
def stack(deploy: Any) -> LocalDeployment:
    """The template exactly as generated, handlers as inlined."""
    return deploy(inlined=True)


def test_a_due_reminder_goes_out_once_by_email_and_sms(stack: LocalDeployment, clock: Any) -> None:
    put_appointment(stack, appointment("a1", DAY + HOUR))
    run(stack)
    assert sent_emails(stack) == [] and sent_sms(stack) == []
    assert reminder(stack, "a1#1440")["state"] == "PENDING"

    clock.shift(HOUR)
    run(stack)
    (email,) = sent_emails(stack)
    assert email["to"] == ["a1@example.com"] and email["source"] == SENDER
    assert "Tuesday 3 March 2026 at 11:00 CET (Europe/Paris)" in email["body"]
    ((phone, text),) = sent_sms(stack)
    assert phone == "+15555550123" and "11:00 CET" in text
    record = reminder(stack, "a1#1440")
    assert record["state"] == "SENT"
    assert record["emailResult"]["status"] == "SENT" and record["smsResult"]["status"] == "SENT"
    assert "dueShard" not in record and "attemptAt" not in record

    run(stack)
    clock.shift(10 * 60)
    run(stack)
    assert len(sent_emails(stack)) == 1 and len(sent_sms(stack)) == 1
    assert_all_succeeded(stack)


def test_nothing_for_future_past_cancelled_or_deleted_appointments(stack: LocalDeployment, clock: Any) -> None:
    put_appointment(stack, appointment("future", 3 * DAY))
    put_appointment(stack, appointment("past", -HOUR))
    put_appointment(stack, appointment("cancelled", DAY + HOUR))
    put_appointment(stack, appointment("deleted", DAY + HOUR))
    run(stack)
    put_appointment(stack, appointment("cancelled", DAY + HOUR, status="CANCELLED"))
    delete_appointment(stack, "deleted")
    clock.shift(2 * HOUR)
    run(stack)
    assert sent_emails(stack) == [] and sent_sms(stack) == []
    assert reminder(stack, "cancelled#1440")["state"] == "CANCELLED"
    assert reminder(stack, "deleted#1440")["state"] == "CANCELLED"
    # Never planned, and recorded cancelled with its change's version: no older change can plan it.
    past = reminder(stack, "past#1440")
    assert (past["state"], past["reason"]) == ("CANCELLED", "AppointmentPast") and "dueShard" not in past
    assert reminder(stack, "future#1440")["state"] == "PENDING"
    assert_all_succeeded(stack)


def test_a_moved_appointment_is_reminded_only_for_its_new_time(stack: LocalDeployment, clock: Any) -> None:
    put_appointment(stack, appointment("moved", DAY + HOUR))
    run(stack)
    put_appointment(stack, appointment("moved", 2 * DAY))
    clock.shift(2 * HOUR)  # the old reminder time has passed
    run(stack)
    assert sent_emails(stack) == []
    clock.shift(DAY)  # now 24 h before the new time
    run(stack)
    (email,) = sent_emails(stack)
    assert "Wednesday 4 March 2026 at 10:00" in email["body"]


def test_two_offsets_two_reminders_at_the_right_times(deploy: Any, clock: Any) -> None:
    stack = deploy(inlined=True, ReminderOffsetsMinutes="1440,60")
    put_appointment(stack, appointment("a1", DAY + 2 * HOUR))
    run(stack)
    clock.shift(HOUR)
    run(stack)
    assert len(sent_emails(stack)) == 0
    clock.shift(HOUR)  # 24 h before
    run(stack)
    assert len(sent_emails(stack)) == 1 and reminder(stack, "a1#1440")["state"] == "SENT"
    clock.shift(DAY - 2 * HOUR)  # 2 h before
    run(stack)
    assert len(sent_emails(stack)) == 1
    clock.shift(HOUR)  # 1 h before
    run(stack)
    assert len(sent_emails(stack)) == 2 and len(sent_sms(stack)) == 2
    assert reminder(stack, "a1#60")["state"] == "SENT"


def test_a_short_notice_booking_is_reminded_at_once(deploy: Any) -> None:
    stack = deploy(inlined=True, ReminderOffsetsMinutes="1440,60")
    put_appointment(stack, appointment("soon", 30 * 60))
    stack.run_pipe()
    stack.wait()  # the pipe's own execution sends it; no schedule run needed
    assert len(sent_emails(stack)) == 1 and len(sent_sms(stack)) == 1
    assert reminder(stack, "soon#60")["state"] == "SENT"
    assert reminder(stack, "soon#1440")["state"] == "SKIPPED"
    assert reminder(stack, "soon#1440")["reason"] == "Superseded"


def test_overlapping_pipe_and_schedule_runs_send_each_reminder_once(stack: LocalDeployment, clock: Any) -> None:
    ids = [f"o{n:02}" for n in range(50)]
    for appointment_id in ids:
        put_appointment(stack, appointment(appointment_id, DAY + HOUR))
    run(stack)
    clock.shift(HOUR)
    for appointment_id in ids:  # the booking app touches every booking: 50 stream records
        put_appointment(stack, appointment(appointment_id, DAY, customerName="Pat Changed"))
    started = stack.pipe.poll()
    started += [stack.run_schedule(), stack.run_schedule()]
    assert len(started) == 7  # five pipe batches of ten, two schedule runs, all at once
    assert_all_succeeded(stack)
    assert emails_to(stack) == Counter({f"{i}@example.com": 1 for i in ids})
    assert len(sent_sms(stack)) == 50
    assert {reminder(stack, f"{i}#1440")["state"] for i in ids} == {"SENT"}


def test_throttled_email_is_retried_then_sent(stack: LocalDeployment, clock: Any) -> None:
    put_appointment(stack, appointment("a1", DAY - HOUR))
    stack.inject("ses", "SendEmail", "Throttling", times=2, message="Maximum sending rate exceeded.")
    stack.run_pipe()
    assert_all_succeeded(stack)
    assert len(sent_emails(stack)) == 1
    attempts = [c for c in stack.monitor.calls if c.operation == "SendEmail"]
    assert len(attempts) == 3
    assert reminder(stack, "a1#1440")["state"] == "SENT"


def test_permanent_email_rejection_is_recorded_and_sms_still_sent(stack: LocalDeployment) -> None:
    put_appointment(stack, appointment("a1", DAY - HOUR))
    stack.inject("ses", "SendEmail", "MessageRejected", times=5, message="Email address is not verified.")
    stack.run_pipe()
    assert_all_succeeded(stack)
    assert [c.operation for c in stack.monitor.calls].count("SendEmail") == 1, "a permanent error is not retried"
    record = reminder(stack, "a1#1440")
    assert record["emailResult"]["status"] == "FAILED" and record["emailResult"]["reason"] == "MessageRejected"
    assert record["smsResult"]["status"] == "SENT"
    assert record["state"] == "SENT"
    assert len(sent_sms(stack)) == 1


def test_invalid_phone_is_failed_with_a_reason(stack: LocalDeployment) -> None:
    put_appointment(stack, appointment("a1", DAY - HOUR, customerPhone="555-0123"))
    stack.run_pipe()
    assert_all_succeeded(stack)
    record = reminder(stack, "a1#1440")
    assert (record["smsResult"]["status"], record["smsResult"]["reason"]) == ("FAILED", "InvalidPhoneNumber")
    assert record["state"] == "SENT"  # the email went out
    assert sent_sms(stack) == []


def test_a_malformed_appointment_does_not_stop_the_good_ones(stack: LocalDeployment) -> None:
    put_appointment(stack, appointment("good1", DAY - HOUR))
    put_appointment(stack, {"appointmentId": "no-time", "customerEmail": "no-time@example.com"})
    put_appointment(stack, appointment("text-time", DAY - HOUR, appointmentTime="tomorrow"))
    put_appointment(stack, appointment("good2", DAY - 2 * HOUR))
    stack.run_pipe()
    assert_all_succeeded(stack)
    assert emails_to(stack) == Counter({"good1@example.com": 1, "good2@example.com": 1})


def test_a_claim_whose_execution_died_is_sent_once_after_the_lease(stack: LocalDeployment, clock: Any) -> None:
    put_appointment(stack, appointment("a1", DAY + HOUR))
    run(stack)
    clock.shift(HOUR)
    # An execution claims the reminder and dies before delivering it.
    claimed = stack.invoke("AppointmentProcessorFunction", processor_event({"source": "tapstack.continuation"}))
    assert [job["reminderId"] for job in claimed["jobs"]] == ["a1#1440"]
    run(stack)
    assert sent_emails(stack) == [], "the claim is still leased"
    clock.shift(CLAIM_LEASE_SECONDS + 1)
    run(stack)
    run(stack)
    assert len(sent_emails(stack)) == 1 and len(sent_sms(stack)) == 1
    assert reminder(stack, "a1#1440")["state"] == "SENT"


def test_a_delivery_event_without_personal_data_is_published(stack: LocalDeployment) -> None:
    sqs, sns = stack.client("sqs"), stack.client("sns")
    queue = sqs.create_queue(QueueName="delivery-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = stack.resources["NotificationTopic"].ref
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    put_appointment(stack, appointment("a1", DAY - HOUR))
    stack.run_pipe()
    assert_all_succeeded(stack)
    (message,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    event = json.loads(message["Body"])
    assert event["reminderId"] == "a1#1440" and event["state"] == "SENT"
    assert "example.com" not in message["Body"] and "+1555" not in message["Body"]
