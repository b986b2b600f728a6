"""ProcessAppointments on moto, against its contract (handlers/README.md): the transitions of a
reminder that the processor makes (rows 1-6 of "The protocol" table), each with the condition that
refuses it; the versions that order the changes of an appointment; the claim and its lease; failures
on the stream and the schedule paths; the payload limit; and the jobs it renders.

Every test runs the handler file through the local runner (the generated template deployed into
moto) with the event the workflow gives it: ``{"input", "execution", "started", "retry"}``, where
``input`` is a list of keys-only changes (the pipe) or the schedule's object. Records are written
and read on moto; a record the processor must find in a given state (one a sender or the status
updater left) is written as that function writes it. The autouse ``logs`` fixture checks, after
each test, that everything the handler printed is JSON lines without personal data.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
import types
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError

from tapstack.local import FunctionError, LocalDeployment
from tapstack.timing import CLAIM_LEASE_SECONDS
from tests.support import (
    DAY,
    HOUR,
    NOW,
    appointment,
    appointment_change,
    delete_appointment,
    load_event,
    processor_event,
    put_appointment,
    reminder,
)

PROCESSOR = "AppointmentProcessorFunction"
LEASE = CLAIM_LEASE_SECONDS
#: Execution ids as ``$$.Execution.Id`` gives them.
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:NotificationWorkflow-dev:run-1"
OTHER_EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:NotificationWorkflow-dev:run-2"
#: What the handler must never print: the fake addresses, phone numbers and names used here.
PERSONAL_DATA = ("@example.com", "+1555555", "Pat", "Example", "Zoë")
#: What a final write (rows 2-5) removes: the reminder leaves the due index and has no claim.
INDEX_AND_CLAIM = ("dueShard", "attemptAt", "claimToken", "claimExpiresAt")


# ---- helpers -------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def logs(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """``logs()``: every line the handler printed so far (each must be JSON).

    After the test, none of them may contain personal data.
    """
    seen: list[dict[str, Any]] = []

    def read() -> list[dict[str, Any]]:
        seen.extend(json.loads(line) for line in capsys.readouterr().out.splitlines())
        return seen

    yield read
    printed = json.dumps(read(), ensure_ascii=False)
    for secret in PERSONAL_DATA:
        assert secret not in printed


def events(logs: Callable[[], list[dict[str, Any]]], name: str) -> list[dict[str, Any]]:
    return [line for line in logs() if line.get("event") == name]


def now() -> int:
    """The (frozen) clock's time, as the handler reads it."""
    return int(time.time())


def claim_token(execution: str) -> str:
    """An execution's claim token, as the contract defines it: the first 32 hex digits of SHA-256
    of the execution's id."""
    return hashlib.sha256(execution.encode()).hexdigest()[:32]


def version(sequence: str) -> str:
    """A change's version as a reminder stores it: its sequence number zero-padded to 40 digits."""
    return sequence.zfill(40)


def shard(reminder_id: str) -> str:
    return str(zlib.crc32(reminder_id.encode()) % 8)


def module(deployment: LocalDeployment) -> types.ModuleType:
    """The processor's loaded module (its warm container)."""
    return deployment.functions[deployment.resources[PROCESSOR].ref].module


def run_changes(
    deployment: LocalDeployment,
    *changes: dict[str, Any],
    execution: str = EXECUTION,
    started: int | None = None,
    retry: int = 0,
) -> Any:
    """Invoke the processor as an execution started by the pipe with these changes does."""
    event = processor_event(list(changes), execution, now() if started is None else started, retry)
    return deployment.invoke(PROCESSOR, event)


def run_schedule(
    deployment: LocalDeployment,
    execution: str = EXECUTION,
    started: int | None = None,
    retry: int = 0,
    trigger: str = "scheduled_event",
) -> Any:
    """Invoke the processor as an execution started by the schedule (or a continuation) does."""
    event = processor_event(load_event(trigger), execution, now() if started is None else started, retry)
    return deployment.invoke(PROCESSOR, event)


def change(appointment_id: str, sequence: str | None) -> dict[str, Any]:
    """A MODIFY of the appointment (the processor reads the current item whatever the event name)."""
    return appointment_change(appointment_id, sequence)


def book(deployment: LocalDeployment, appointment_id: str, starts_in: int, sequence: str = "100", **fields: Any) -> Any:
    """The booking app writes the appointment; its change (an INSERT) reaches the processor."""
    put_appointment(deployment, appointment(appointment_id, starts_in, **fields))
    return run_changes(deployment, appointment_change(appointment_id, sequence, "INSERT"))


def planned(reminder_id: str, starts: int, sequence: str | None, **fields: Any) -> dict[str, Any]:
    """Reminder ``reminder_id`` as row 1 leaves it now: PENDING for an appointment at ``starts``, in
    the due index at its due time (now, for a booking made inside the offset's window). ``fields``
    add or replace attributes (None leaves one out)."""
    appointment_id, _, offset = reminder_id.rpartition("#")
    due = max(starts - 60 * int(offset), now())
    item = {
        "reminderId": reminder_id,
        "appointmentId": appointment_id,
        "offsetMinutes": int(offset),
        "appointmentTime": starts,
        "state": "PENDING",
        "dueAt": due,
        "dueShard": shard(reminder_id),
        "attemptAt": due,
        "expiresAt": starts + 90 * DAY,
        "version": version(sequence) if sequence else None,
        "updatedAt": now(),
        **fields,
    }
    return {name: value for name, value in item.items() if value is not None}


def claimed(before: dict[str, Any], execution: str, started: int) -> dict[str, Any]:
    """``before`` as row 6 leaves it now: SENDING under the execution's claim until its lease ends."""
    lease_end = started + LEASE
    claim = {"claimToken": claim_token(execution), "claimExpiresAt": lease_end, "attemptAt": lease_end}
    return {**before, "state": "SENDING", **claim, "updatedAt": now()}


def finalized(before: dict[str, Any], state: str, reason: str, **fields: Any) -> dict[str, Any]:
    """``before`` as a final write (rows 2-5) leaves it now: out of the due index, without a claim."""
    kept = {name: value for name, value in before.items() if name not in INDEX_AND_CLAIM}
    return {**kept, "state": state, "reason": reason, "updatedAt": now(), **fields}


def put_reminder(deployment: LocalDeployment, item: dict[str, Any]) -> dict[str, Any]:
    """Write a reminder as another function (or an earlier run) left it."""
    serializer = TypeSerializer()
    deployment.client("dynamodb").put_item(
        TableName=deployment.table_name("RemindersTable"),
        Item={name: serializer.serialize(value) for name, value in item.items()},
    )
    return item


def stored(deployment: LocalDeployment, reminder_id: str) -> dict[str, Any]:
    """The reminder's record, which must exist."""
    item = reminder(deployment, reminder_id)
    assert item is not None, f"{reminder_id} has no record"
    return item


def result(status: str, execution: str = OTHER_EXECUTION, **fields: Any) -> dict[str, Any]:
    """A channel's result as a sender records it under ``execution``'s claim."""
    return {"status": status, "token": claim_token(execution), **fields}


def job_ids(answer: dict[str, Any]) -> list[str]:
    return sorted(job["reminderId"] for job in answer["jobs"])


@contextlib.contextmanager
def between_read_and_write(deployment: LocalDeployment, action: Callable[[], None]) -> Iterator[None]:
    """Run ``action`` once, right after the processor has read the appointments (BatchGetItem) and
    before it writes anything: something that happens between a run's read and its writes."""
    done = threading.Event()

    def interleave(**_: Any) -> None:
        if not done.is_set():
            done.set()  # first: ``action`` may run the processor again
            action()

    handlers = module(deployment).dynamodb.meta.events
    handlers.register("after-call.dynamodb.BatchGetItem", interleave)
    try:
        yield
    finally:
        handlers.unregister("after-call.dynamodb.BatchGetItem", interleave)
    assert done.is_set(), "the processor never read the appointments"


def fail_writes_of(deployment: LocalDeployment, reminder_id: str, code: str, times: int = 1) -> None:
    """The processor's next ``times`` writes of ``reminder_id`` fail as DynamoDB answers ``code``
    (``deployment.inject`` fails the next calls, whichever reminder they write)."""
    left = [times]

    def refuse(params: dict[str, Any], **_: Any) -> None:
        if params.get("Key") == {"reminderId": {"S": reminder_id}} and left[0] > 0:
            left[0] -= 1
            answer = {"Error": {"Code": code, "Message": "injected"}, "ResponseMetadata": {"HTTPStatusCode": 400}}
            raise ClientError(answer, "UpdateItem")

    module(deployment).dynamodb.meta.events.register("before-parameter-build.dynamodb.UpdateItem", refuse)


def ids_on_shard(shard_number: int, count: int, prefix: str = "m") -> list[str]:
    """``count`` appointment ids whose 1440-minute reminders land on one shard of the due index."""
    ids = (f"{prefix}{i}" for i in range(10_000))
    return [i for i in ids if shard(f"{i}#1440") == str(shard_number)][:count]


# ---- the event: keys-only changes from the pipe --------------------------------------------


def test_the_pipe_hands_over_keys_only_changes_that_the_processor_plans_from(deployment: LocalDeployment) -> None:
    fixture = load_event("pipe_changes")
    put_appointment(deployment, appointment("a1", 2 * DAY))
    put_appointment(deployment, appointment("a1", 3 * DAY))
    [batch] = deployment.pipe.batches()

    changes = json.loads(deployment.pipe.target_input(batch))

    # What the pipe's input template makes of the stream records: the shape of the fixture and of
    # appointment_change(), nothing of the item itself. Sequence numbers have 21 to 40 digits:
    # https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_StreamRecord.html
    assert [c["eventName"] for c in changes] == ["INSERT", "MODIFY"]
    for rendered, example in zip(changes, fixture, strict=False):
        assert rendered == appointment_change("a1", rendered["sequenceNumber"], rendered["eventName"])
        assert rendered.keys() == example.keys()
        assert rendered["sequenceNumber"].isdigit() and 21 <= len(rendered["sequenceNumber"]) <= 40
    newest = changes[-1]["sequenceNumber"]
    assert deployment.invoke(PROCESSOR, processor_event(changes, EXECUTION, NOW))["summary"] == {"pending": 1}
    assert reminder(deployment, "a1#1440") == planned("a1#1440", NOW + 3 * DAY, newest)

    delete_appointment(deployment, "a1")
    [batch] = deployment.pipe.batches()
    [removed] = json.loads(deployment.pipe.target_input(batch))
    assert removed == appointment_change("a1", removed["sequenceNumber"], "REMOVE")
    assert version(removed["sequenceNumber"]) > version(newest)
    assert deployment.invoke(PROCESSOR, processor_event([removed], EXECUTION, NOW))["summary"] == {"cancelled": 1}
    deleted = finalized(planned("a1#1440", NOW + 3 * DAY, newest), "CANCELLED", "AppointmentDeleted")
    assert reminder(deployment, "a1#1440") == {**deleted, "version": version(removed["sequenceNumber"])}


# ---- row 1: plan (and re-plan) -------------------------------------------------------------


def test_a_booking_is_planned_once_per_offset_with_its_newest_change_as_version(
    deploy: Callable[..., LocalDeployment],
) -> None:
    deployment = deploy(ReminderOffsetsMinutes="1440,60")
    put_appointment(deployment, appointment("a1", 2 * DAY))
    # One batch with three changes of a1, out of order, their numbers of different lengths: the
    # newest (largest) number is the version, compared as numbers, not as text.
    newest = "1000000000000000000002"
    batch = [
        appointment_change("a1", "999999999999999999999", "INSERT"),
        appointment_change("a1", newest),
        appointment_change("a1", "1000000000000000000001"),
    ]

    answer = run_changes(deployment, *batch)

    assert answer == {"jobs": [], "more": False, "summary": {"pending": 2}}
    for offset in (1440, 60):
        assert reminder(deployment, f"a1#{offset}") == planned(f"a1#{offset}", NOW + 2 * DAY, newest)
    writes = [call for call in deployment.monitor.calls if call.operation == "UpdateItem"]
    assert len(writes) == 2, "one write per reminder, not per change"


@pytest.mark.parametrize(
    "earlier",
    [
        {  # claimed by a live execution, one channel sent, the other being sent, deferred once before
            "state": "SENDING",
            "claimToken": claim_token(OTHER_EXECUTION),
            "claimExpiresAt": NOW + 300,
            "attemptAt": NOW + 300,
            "emailResult": result("SENT", messageId="m-1"),
            "smsResult": result("SENDING", attempt="req-1", until=NOW + 20),
            "deferrals": 1,
            "deferReason": "ThrottlingException",
        },
        {  # final: sent by email, the phone number refused
            "state": "SENT",
            "dueShard": None,
            "attemptAt": None,
            "emailResult": result("SENT", messageId="m-1"),
            "smsResult": result("FAILED", reason="InvalidPhoneNumber"),
        },
    ],
    ids=["live-claim", "final"],
)
def test_a_move_plans_the_reminder_again_forgetting_the_old_plan_but_not_what_was_sent(
    deployment: LocalDeployment, earlier: dict[str, Any]
) -> None:
    first = NOW + DAY - 60
    put_reminder(deployment, planned("a1#1440", first, "100", sent={f"email@{first}"}, **earlier))
    put_appointment(deployment, appointment("a1", 3 * DAY))

    answer = run_changes(deployment, change("a1", "200"))

    assert answer == {"jobs": [], "more": False, "summary": {"pending": 1}}
    # Claim, results, reason and deferrals belong to the old plan; `sent` stays, so that a move
    # back to the first time never sends again what went out for it.
    assert reminder(deployment, "a1#1440") == planned("a1#1440", NOW + 3 * DAY, "200", sent={f"email@{first}"})


def test_a_cancelled_reminder_is_planned_again_when_the_appointment_is_booked_again(
    deployment: LocalDeployment,
) -> None:
    book(deployment, "a1", 2 * DAY, sequence="100")
    put_appointment(deployment, appointment("a1", 2 * DAY, status="CANCELLED"))
    run_changes(deployment, change("a1", "200"))
    assert stored(deployment, "a1#1440")["state"] == "CANCELLED"

    put_appointment(deployment, appointment("a1", 2 * DAY, status="BOOKED"))
    answer = run_changes(deployment, change("a1", "300"))

    assert answer["summary"] == {"pending": 1}
    assert reminder(deployment, "a1#1440") == planned("a1#1440", NOW + 2 * DAY, "300")


def test_a_change_that_keeps_the_time_only_moves_the_version_on(clock: Any, deployment: LocalDeployment) -> None:
    # Row 1b, whatever the state: pending, claimed by another execution's live claim, final. The
    # last two are due, so the run also tries to claim them (row 6) and is refused: a final record
    # is not claimed, another execution's live claim is not taken.
    starts = {"pending": NOW + 2 * DAY, "claimed": NOW + DAY - 60, "sent": NOW + DAY - 60}
    before = {
        "pending": put_reminder(deployment, planned("pending#1440", starts["pending"], "100")),
        "claimed": put_reminder(
            deployment,
            claimed(planned("claimed#1440", starts["claimed"], "100"), OTHER_EXECUTION, NOW),
        ),
        "sent": put_reminder(  # as the status updater leaves it (row 10)
            deployment,
            planned(
                "sent#1440",
                starts["sent"],
                "100",
                state="SENT",
                dueShard=None,
                attemptAt=None,
                emailResult=result("SENT", messageId="m-1"),
                smsResult=result("SENT", messageId="m-2"),
            ),
        ),
    }
    for name, starts_at in starts.items():  # the customer's name changed, nothing else
        put_appointment(deployment, appointment(name, starts_at - NOW, customerName="Pat Q. Example"))
    clock.shift(60)

    answer = run_changes(deployment, *(change(name, "200") for name in before))

    assert answer == {"jobs": [], "more": False, "summary": {"unchanged": 3}}
    for name, item in before.items():
        expected = {**item, "version": version("200"), "updatedAt": now()}
        assert reminder(deployment, f"{name}#1440") == expected, name

    # An older change (delivered late) moves nothing, not even the version back.
    clock.shift(60)
    moved_on = {name: reminder(deployment, f"{name}#1440") for name in before}
    assert run_changes(deployment, *(change(name, "150") for name in before))["summary"] == {"unchanged": 3}
    assert {name: reminder(deployment, f"{name}#1440") for name in before} == moved_on


# ---- rows 2 and 2b: cancel from the stream -------------------------------------------------


#: How the booking app can take an appointment away, and the reason a cancelled reminder gives.
TAKEN_AWAY: dict[str, tuple[Callable[[LocalDeployment, str], None], str]] = {
    "cancelled": (lambda d, a: put_appointment(d, appointment(a, DAY, status="CANCELLED")), "AppointmentCancelled"),
    "deleted": (delete_appointment, "AppointmentDeleted"),
    "malformed": (lambda d, a: put_appointment(d, appointment(a, DAY, appointmentTime="soon")), "InvalidAppointment"),
    "moved-to-the-past": (lambda d, a: put_appointment(d, appointment(a, -HOUR)), "AppointmentPast"),
}


def test_a_cancel_ends_a_pending_reminder_and_takes_a_live_claim_away(deployment: LocalDeployment) -> None:
    before = {}
    for how in TAKEN_AWAY:
        before[f"{how}-pending"] = put_reminder(deployment, planned(f"{how}-pending#1440", NOW + 2 * DAY, "100"))
        # Claimed by a live execution whose email is being sent (not sent yet): its senders find
        # the claim gone and send nothing more (ClaimLost); the mark stays for row 8b.
        being_sent = planned(
            f"{how}-claimed#1440", NOW + DAY - 60, "100", emailResult=result("SENDING", attempt="r", until=NOW)
        )
        before[f"{how}-claimed"] = put_reminder(deployment, claimed(being_sent, OTHER_EXECUTION, NOW))
    for appointment_id in before:
        take_away, _ = TAKEN_AWAY[appointment_id.rpartition("-")[0]]
        take_away(deployment, appointment_id)

    answer = run_changes(deployment, *(change(appointment_id, "200") for appointment_id in before))

    assert answer == {"jobs": [], "more": False, "summary": {"cancelled": 8}}
    for appointment_id, item in before.items():
        _, reason = TAKEN_AWAY[appointment_id.rpartition("-")[0]]
        expected = finalized(item, "CANCELLED", reason, version=version("200"))
        assert reminder(deployment, f"{appointment_id}#1440") == expected, appointment_id


def test_a_cancel_after_a_channel_went_out_records_the_reminder_sent(deployment: LocalDeployment) -> None:
    before = {
        "claimed": claimed(  # its email went out, its SMS is still being sent
            planned(
                "claimed#1440",
                NOW + DAY - 60,
                "100",
                emailResult=result("SENT", messageId="m-1"),
                smsResult=result("SENDING", attempt="r", until=NOW + 20),
            ),
            OTHER_EXECUTION,
            NOW,
        ),
        "deferred": planned(  # its email went out, its SMS was put off
            "deferred#1440",
            NOW + DAY + 60,
            "100",
            attemptAt=NOW + 60,
            emailResult=result("SENT", messageId="m-2"),
            deferrals=1,
            deferReason="ThrottlingException",
        ),
    }
    for appointment_id, item in before.items():
        put_reminder(deployment, item)
        put_appointment(deployment, appointment(appointment_id, DAY, status="CANCELLED"))

    answer = run_changes(deployment, *(change(appointment_id, "200") for appointment_id in before))

    assert answer["summary"] == {"sent": 2}
    for appointment_id, item in before.items():
        expected = finalized(item, "SENT", "AppointmentCancelled", version=version("200"))
        assert reminder(deployment, f"{appointment_id}#1440") == expected


def test_a_final_reminder_is_not_cancelled(clock: Any, deployment: LocalDeployment) -> None:
    final = {
        "sent": {"state": "SENT", "emailResult": result("SENT", messageId="m-1")},
        "failed": {"state": "FAILED", "reason": "NotSentBeforeAppointment", "deferrals": 3},
        "skipped": {"state": "SKIPPED", "reason": "Superseded"},
    }
    before = {
        name: put_reminder(
            deployment, planned(f"{name}#1440", NOW + DAY - 60, "100", dueShard=None, attemptAt=None, **fields)
        )
        for name, fields in final.items()
    }
    for name in final:
        put_appointment(deployment, appointment(name, DAY, status="CANCELLED"))
    clock.shift(60)

    answer = run_changes(deployment, *(change(name, "200") for name in final))

    assert answer["summary"] == {"unchanged": 3}
    for name, item in before.items():  # the record says what happened; only the version moves on
        assert reminder(deployment, f"{name}#1440") == {**item, "version": version("200"), "updatedAt": now()}


# ---- versions: an older change never undoes a newer one ------------------------------------
#
# A run reads the current appointment, so an older change delivered late decides from the current
# item. The risk is two runs that overlap: with a Standard workflow the pipe starts executions
# asynchronously (FIRE_AND_FORGET: https://docs.aws.amazon.com/eventbridge/latest/pipes-reference/API_PipeTargetStateMachineParameters.html),
# so they do not wait for each other. The older change's run reads the appointment, the newer
# change is written and planned, then the older run writes what it decided from what it read.


def test_an_older_run_does_not_undo_a_cancel(deployment: LocalDeployment) -> None:
    book(deployment, "a1", 2 * DAY, sequence="100")
    put_appointment(deployment, appointment("a1", 2 * DAY, customerName="Pat Q. Example"))

    def cancelled_meanwhile() -> None:
        put_appointment(deployment, appointment("a1", 2 * DAY, status="CANCELLED"))
        assert run_changes(deployment, change("a1", "200"), execution=OTHER_EXECUTION)["summary"] == {"cancelled": 1}

    with between_read_and_write(deployment, cancelled_meanwhile):
        older = run_changes(deployment, change("a1", "150"))  # read the booking as it was

    assert older["summary"] == {"unchanged": 1}
    cancelled = finalized(planned("a1#1440", NOW + 2 * DAY, "200"), "CANCELLED", "AppointmentCancelled")
    assert reminder(deployment, "a1#1440") == cancelled


def test_an_older_run_does_not_revert_a_move(deployment: LocalDeployment) -> None:
    book(deployment, "a1", 2 * DAY, sequence="100")
    put_appointment(deployment, appointment("a1", 2 * DAY, customerName="Pat Q. Example"))

    def moved_meanwhile() -> None:
        put_appointment(deployment, appointment("a1", 3 * DAY))
        assert run_changes(deployment, change("a1", "200"), execution=OTHER_EXECUTION)["summary"] == {"pending": 1}

    with between_read_and_write(deployment, moved_meanwhile):
        older = run_changes(deployment, change("a1", "150"))  # read the first time

    assert older["summary"] == {"unchanged": 1}
    assert reminder(deployment, "a1#1440") == planned("a1#1440", NOW + 3 * DAY, "200")


def test_an_older_cancel_does_not_undo_a_booking_made_again(deployment: LocalDeployment) -> None:
    book(deployment, "a1", 2 * DAY, sequence="100")
    put_appointment(deployment, appointment("a1", 2 * DAY, status="CANCELLED"))

    def booked_again_meanwhile() -> None:
        put_appointment(deployment, appointment("a1", 2 * DAY, status="BOOKED"))
        assert run_changes(deployment, change("a1", "200"), execution=OTHER_EXECUTION)["summary"] == {"unchanged": 1}

    with between_read_and_write(deployment, booked_again_meanwhile):
        older = run_changes(deployment, change("a1", "150"))  # read the cancellation

    assert older["summary"] == {"unchanged": 1}
    assert reminder(deployment, "a1#1440") == planned("a1#1440", NOW + 2 * DAY, "200")


def test_an_older_run_does_not_plan_again_a_final_reminder_whose_appointment_was_cancelled(
    deployment: LocalDeployment,
) -> None:
    first = NOW + DAY - 60
    sent = put_reminder(
        deployment,
        planned("a1#1440", first, "100", state="SENT", dueShard=None, attemptAt=None, sent={f"email@{first}"}),
    )
    put_appointment(deployment, appointment("a1", 3 * DAY))  # moved: change 150

    def cancelled_meanwhile() -> None:  # change 200: a final record is not cancelled, it takes the version
        put_appointment(deployment, appointment("a1", 3 * DAY, status="CANCELLED"))
        assert run_changes(deployment, change("a1", "200"), execution=OTHER_EXECUTION)["summary"] == {"unchanged": 1}

    with between_read_and_write(deployment, cancelled_meanwhile):
        older = run_changes(deployment, change("a1", "150"))  # read the move, which would plan it again

    assert older["summary"] == {"unchanged": 1}
    assert reminder(deployment, "a1#1440") == {**sent, "version": version("200")}


def test_a_change_without_a_sequence_number_only_creates_missing_plans(deployment: LocalDeployment) -> None:
    # A backfill (a change that no stream numbered) cannot be ordered against the changes that
    # were: it plans what has no plan yet and leaves every existing record alone.
    put_appointment(deployment, appointment("new", 2 * DAY))
    book(deployment, "moved", 2 * DAY, sequence="100")
    book(deployment, "cancelled", 2 * DAY, sequence="100")
    before = {name: reminder(deployment, f"{name}#1440") for name in ("moved", "cancelled")}
    put_appointment(deployment, appointment("moved", 3 * DAY))
    put_appointment(deployment, appointment("cancelled", 2 * DAY, status="CANCELLED"))

    answer = run_changes(deployment, *(change(name, None) for name in ("new", "moved", "cancelled")))

    assert answer["summary"] == {"pending": 1, "unchanged": 2}
    assert reminder(deployment, "new#1440") == planned("new#1440", NOW + 2 * DAY, None)
    assert {name: reminder(deployment, f"{name}#1440") for name in before} == before


# ---- row 6: the claim, its token and its lease ---------------------------------------------


def test_a_due_reminder_is_claimed_by_the_execution_until_its_lease_ends(
    clock: Any, deployment: LocalDeployment
) -> None:
    book(deployment, "due", DAY + HOUR)
    book(deployment, "later", DAY + 2 * HOUR)
    clock.shift(HOUR)
    before = {name: stored(deployment, f"{name}#1440") for name in ("due", "later")}
    started = now() - 42  # the execution started a little before its processor ran

    answer = run_schedule(deployment, started=started)

    assert answer["more"] is False and answer["summary"] == {"sending": 1}
    [job] = answer["jobs"]
    # The token is the execution's, and the lease runs from the execution's start, not from now.
    assert (job["reminderId"], job["claimToken"]) == ("due#1440", claim_token(EXECUTION))
    assert reminder(deployment, "due#1440") == claimed(before["due"], EXECUTION, started)
    assert reminder(deployment, "later#1440") == before["later"]


def test_an_expired_claim_is_taken_over_and_keeps_what_its_channels_did(
    clock: Any, deployment: LocalDeployment
) -> None:
    book(deployment, "a1", DAY + HOUR)
    clock.shift(HOUR)
    [first] = run_schedule(deployment, execution=OTHER_EXECUTION)["jobs"]
    # The first execution sent the email, then died before recording the outcome.
    item = stored(deployment, "a1#1440")
    went_out = {"emailResult": result("SENT", messageId="m-1"), "sent": {f"email@{item['appointmentTime']}"}}
    item = put_reminder(deployment, {**item, **went_out})

    clock.shift(LEASE - 1)
    assert run_schedule(deployment)["jobs"] == [], "the lease still runs"
    clock.shift(1)
    [second] = run_schedule(deployment)["jobs"]

    assert (first["claimToken"], second["claimToken"]) == (claim_token(OTHER_EXECUTION), claim_token(EXECUTION))
    assert reminder(deployment, "a1#1440") == claimed(item, EXECUTION, now())


def test_a_retried_schedule_run_takes_back_what_its_execution_claimed(clock: Any, deployment: LocalDeployment) -> None:
    for name, due_in in (("a1", 60), ("a2", 60), ("a3", 90)):
        book(deployment, name, DAY + due_in)
    clock.shift(60)
    started = now() - 5
    first = run_schedule(deployment, started=started)
    assert job_ids(first) == ["a1#1440", "a2#1440"]
    # Its answer is lost (the invocation timed out after its writes): Step Functions retries the
    # task, with the same Execution.Id and Execution.StartTime and a State.RetryCount above 0
    # (https://docs.aws.amazon.com/step-functions/latest/dg/input-output-contextobject.html).
    clock.shift(30)

    retried = run_schedule(deployment, started=started, retry=1)

    assert job_ids(retried) == ["a1#1440", "a2#1440", "a3#1440"]  # its own claims, and what fell due since
    assert [job for job in retried["jobs"] if job["reminderId"] != "a3#1440"] == first["jobs"]
    for name in ("a1", "a2", "a3"):
        item = stored(deployment, f"{name}#1440")
        assert (item["claimToken"], item["claimExpiresAt"]) == (claim_token(EXECUTION), started + LEASE)
    # Another execution, retried or not, gets none of them while the lease runs.
    for retry in (0, 1):
        assert run_schedule(deployment, execution=OTHER_EXECUTION, retry=retry)["jobs"] == []


def test_a_stream_run_run_again_takes_back_its_own_claim_and_no_other_execution_gets_it(
    deployment: LocalDeployment,
) -> None:
    put_appointment(deployment, appointment("a1", 3 * HOUR))  # inside the 1440-minute window
    batch = appointment_change("a1", "100", "INSERT")
    first = run_changes(deployment, batch)
    assert job_ids(first) == ["a1#1440"]

    assert run_changes(deployment, batch, retry=1) == first  # the workflow's retry of the same execution
    assert run_changes(deployment, batch, execution=OTHER_EXECUTION) == {
        "jobs": [],
        "more": False,
        "summary": {"unchanged": 1},
    }
    assert stored(deployment, "a1#1440")["claimToken"] == claim_token(EXECUTION)


def test_two_runs_claiming_the_same_reminder_at_the_same_time_give_one_job(
    clock: Any, deployment: LocalDeployment
) -> None:
    book(deployment, "a1", DAY + HOUR)
    clock.shift(HOUR)
    # Both invocations have found the reminder and read its appointment before either claims it.
    both_found = threading.Barrier(2)

    def wait_for_the_other(**_: Any) -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            both_found.wait(timeout=5)

    module(deployment).dynamodb.meta.events.register("before-call.dynamodb.UpdateItem", wait_for_the_other)
    answers: list[dict[str, Any]] = []
    threads = [
        threading.Thread(target=lambda e=execution: answers.append(run_schedule(deployment, execution=e)))
        for execution in (EXECUTION, OTHER_EXECUTION)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not both_found.broken
    assert sorted(len(answer["jobs"]) for answer in answers) == [0, 1]
    assert sorted(json.dumps(answer["summary"]) for answer in answers) == ['{"sending": 1}', '{"unchanged": 1}']
    [job] = [job for answer in answers for job in answer["jobs"]]
    assert stored(deployment, "a1#1440")["claimToken"] == job["claimToken"]


@pytest.mark.parametrize(
    "appointment_status",
    ["BOOKED", "CANCELLED"],
    ids=["claim", "cancel"],
)
def test_a_decision_is_not_written_over_a_plan_made_after_it_was_read(
    clock: Any, deployment: LocalDeployment, appointment_status: str
) -> None:
    book(deployment, "a1", DAY + HOUR, sequence="100")
    clock.shift(HOUR)
    put_appointment(deployment, appointment("a1", DAY + HOUR, status=appointment_status))  # what the run reads
    # While the run decides, the appointment is booked for another time and its change planned:
    # row 1's write, due at once (a short-notice time), so open like the record the run found.
    replanned = planned("a1#1440", now() + 2 * HOUR, "200")

    with between_read_and_write(deployment, lambda: put_reminder(deployment, replanned)):
        answer = run_schedule(deployment)

    # A claim or a cancel of the old plan is refused: its condition names the appointment time.
    assert answer == {"jobs": [], "more": False, "summary": {"unchanged": 1}}
    assert reminder(deployment, "a1#1440") == replanned


# ---- rows 3, 4 and 5: a due reminder checked against its appointment -----------------------


def test_a_due_reminder_of_an_appointment_that_is_no_longer_booked_is_cancelled(
    clock: Any, deployment: LocalDeployment
) -> None:
    taken_away = {how: TAKEN_AWAY[how] for how in ("cancelled", "deleted", "malformed")}
    for how in taken_away:
        book(deployment, how, DAY + HOUR)
    clock.shift(HOUR)
    before = {how: stored(deployment, f"{how}#1440") for how in taken_away}
    for how, (take_away, _) in taken_away.items():
        take_away(deployment, how)  # its change has not reached the processor yet

    answer = run_schedule(deployment)

    assert answer == {"jobs": [], "more": False, "summary": {"cancelled": 3}}
    for how, (_, reason) in taken_away.items():
        assert reminder(deployment, f"{how}#1440") == finalized(before[how], "CANCELLED", reason), how


def test_a_due_reminder_whose_appointment_moved_is_left_to_the_moves_own_change(
    clock: Any, deployment: LocalDeployment
) -> None:
    book(deployment, "a1", DAY + HOUR, sequence="100")
    clock.shift(HOUR)
    before = reminder(deployment, "a1#1440")
    put_appointment(deployment, appointment("a1", 3 * HOUR))  # earlier, inside the reminder's window

    assert run_schedule(deployment) == {"jobs": [], "more": False, "summary": {"unchanged": 1}}
    assert reminder(deployment, "a1#1440") == before

    # The move's change plans it for the new time and, being due, claims it at once.
    [job] = run_changes(deployment, change("a1", "200"))["jobs"]
    assert job["appointmentTime"] == NOW + 3 * HOUR
    assert job["localTime"] == "Monday 2 March 2026 at 13:00 CET (Europe/Paris)"
    moved = planned("a1#1440", NOW + 3 * HOUR, "200")
    assert reminder(deployment, "a1#1440") == claimed(moved, EXECUTION, now())


def test_a_due_reminder_of_an_offset_no_longer_configured_is_cancelled(
    deploy: Callable[..., LocalDeployment],
) -> None:
    deployment = deploy(ReminderOffsetsMinutes="60")
    put_appointment(deployment, appointment("a1", 3 * HOUR))
    # Planned by an earlier configuration of the stack, which also reminded a day ahead.
    before = put_reminder(deployment, planned("a1#1440", NOW + 3 * HOUR, "100"))

    answer = run_schedule(deployment)

    assert answer == {"jobs": [], "more": False, "summary": {"cancelled": 1}}
    assert reminder(deployment, "a1#1440") == finalized(before, "CANCELLED", "OffsetRemoved")


def test_a_reminder_whose_appointment_started_failed_if_it_was_tried_and_was_skipped_if_not(
    clock: Any, deployment: LocalDeployment
) -> None:
    starts = NOW + DAY + 60
    lease_end = NOW + 30  # of an execution that died
    tried = {
        "never": {},
        "deferred": {"attemptAt": starts - 30, "deferrals": 2, "deferReason": "ThrottlingException"},
        "attempted": {
            "state": "SENDING",
            "claimToken": claim_token(OTHER_EXECUTION),
            "claimExpiresAt": lease_end,
            "attemptAt": lease_end,
            "emailResult": result("SENDING", attempt="r", until=NOW + 10),
            "smsResult": result("FAILED", reason="InvalidPhoneNumber"),
        },
        "one-sent": {
            "state": "SENDING",
            "claimToken": claim_token(OTHER_EXECUTION),
            "claimExpiresAt": lease_end,
            "attemptAt": lease_end,
            "emailResult": result("SENT", messageId="m-1"),
            "sent": {f"email@{starts}"},
        },
    }
    before = {
        name: put_reminder(deployment, planned(f"{name}#1440", starts, "100", **fields))
        for name, fields in tried.items()
    }
    for name in tried:
        put_appointment(deployment, appointment(name, DAY + 60))
    clock.shift(DAY + 120)  # no run found them before the appointment started

    answer = run_schedule(deployment)

    assert answer == {"jobs": [], "more": False, "summary": {"skipped": 1, "failed": 2, "sent": 1}}
    outcomes = {
        "never": ("SKIPPED", "AppointmentStarted"),
        "deferred": ("FAILED", "NotSentBeforeAppointment"),
        "attempted": ("FAILED", "NotSentBeforeAppointment"),
        "one-sent": ("SENT", "NotSentBeforeAppointment"),  # what went out is never called otherwise
    }
    for name, (state, reason) in outcomes.items():
        assert reminder(deployment, f"{name}#1440") == finalized(before[name], state, reason), name


def test_only_the_smallest_due_offset_is_sent(clock: Any, deploy: Callable[..., LocalDeployment]) -> None:
    deployment = deploy(ReminderOffsetsMinutes="1440,60")
    book(deployment, "a1", 2 * DAY)
    before = {offset: stored(deployment, f"a1#{offset}") for offset in (1440, 60)}
    clock.shift(2 * DAY - 30 * 60)  # both due: no run found the first in its time

    answer = run_schedule(deployment)

    assert job_ids(answer) == ["a1#60"] and answer["summary"] == {"skipped": 1, "sending": 1}
    assert reminder(deployment, "a1#1440") == finalized(before[1440], "SKIPPED", "Superseded")
    assert reminder(deployment, "a1#60") == claimed(before[60], EXECUTION, now())


def test_a_short_notice_booking_is_settled_at_once(deploy: Callable[..., LocalDeployment]) -> None:
    deployment = deploy(ReminderOffsetsMinutes="1440,60")
    starts_in = {"3-hours-ahead": 3 * HOUR, "30-minutes-ahead": 30 * 60, "in-the-past": -10 * 60}
    for name, seconds in starts_in.items():
        put_appointment(deployment, appointment(name, seconds))

    answer = run_changes(deployment, *(appointment_change(name, "100", "INSERT") for name in starts_in))

    assert job_ids(answer) == ["3-hours-ahead#1440", "30-minutes-ahead#60"]
    states = {}
    for name in starts_in:
        for offset in (1440, 60):
            item = reminder(deployment, f"{name}#{offset}")
            states[f"{name}#{offset}"] = None if item is None else (item["state"], item.get("reason"))
    assert states == {
        "3-hours-ahead#1440": ("SENDING", None),
        "3-hours-ahead#60": ("PENDING", None),  # due in two hours
        "30-minutes-ahead#1440": ("SKIPPED", "Superseded"),
        "30-minutes-ahead#60": ("SENDING", None),
        # Nothing to send; the change is recorded (a closed record with its version), so that a
        # run of an older change, which read the appointment still ahead, cannot plan it after.
        "in-the-past#1440": ("CANCELLED", "AppointmentPast"),
        "in-the-past#60": ("CANCELLED", "AppointmentPast"),
    }


def test_a_reminder_without_a_requested_channel_is_skipped(deployment: LocalDeployment) -> None:
    channels: dict[str, Any] = {"unknown": {"fax"}, "empty-list": [], "a-list": ["email"], "a-string": "email"}
    for name, requested in channels.items():
        put_appointment(deployment, appointment(name, DAY, notificationChannels=requested))

    answer = run_changes(deployment, *(appointment_change(name, "100", "INSERT") for name in channels))

    assert answer == {"jobs": [], "more": False, "summary": {"skipped": 4}}
    for name in channels:
        expected = finalized(planned(f"{name}#1440", NOW + DAY, "100"), "SKIPPED", "NoChannelRequested")
        assert reminder(deployment, f"{name}#1440") == expected, name


# ---- the stream path: no change is dropped -------------------------------------------------


def assert_failed_retryably(raised: pytest.ExceptionInfo[FunctionError], code: str, logs: Any) -> None:
    """The invocation failed with RetryableError, which the workflow retries; past its retries the
    pipe retries the batch, then dead-letters it with an alarm. Never logged and forgotten."""
    assert (raised.value.error["errorType"], raised.value.error["errorMessage"]) == ("RetryableError", code)
    assert [line["errorType"] for line in events(logs, "reminder_failed")] == [code]


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "InternalServerError"])
def test_a_plan_write_that_fails_transiently_fails_the_stream_run_retryably(
    deployment: LocalDeployment, logs: Any, code: str
) -> None:
    put_appointment(deployment, appointment("a1", 2 * DAY))
    deployment.inject("dynamodb", "UpdateItem", code, function=PROCESSOR)

    with pytest.raises(FunctionError) as raised:
        run_changes(deployment, change("a1", "100"))

    assert_failed_retryably(raised, code, logs)
    assert reminder(deployment, "a1#1440") is None
    run_changes(deployment, change("a1", "100"))  # the retry
    assert reminder(deployment, "a1#1440") == planned("a1#1440", NOW + 2 * DAY, "100")


# ThrottlingException: nothing was written. ReadTimeoutError: the answer was lost, and the write
# may have been done; a conditional write repeats safely, so both are worth another try.
@pytest.mark.parametrize("code", ["ThrottlingException", "ReadTimeoutError"])
def test_a_cancel_write_that_fails_transiently_fails_the_stream_run_retryably(
    deployment: LocalDeployment, logs: Any, code: str
) -> None:
    book(deployment, "a1", 2 * DAY, sequence="100")
    before = stored(deployment, "a1#1440")
    delete_appointment(deployment, "a1")
    deployment.inject("dynamodb", "UpdateItem", code, function=PROCESSOR)

    with pytest.raises(FunctionError) as raised:
        run_changes(deployment, change("a1", "200"))

    assert_failed_retryably(raised, code, logs)
    assert reminder(deployment, "a1#1440") == before
    run_changes(deployment, change("a1", "200"))  # the retry
    assert reminder(deployment, "a1#1440") == finalized(
        before, "CANCELLED", "AppointmentDeleted", version=version("200")
    )


def test_a_permanent_write_failure_fails_the_stream_run_too(deployment: LocalDeployment, logs: Any) -> None:
    put_appointment(deployment, appointment("a1", 2 * DAY))
    deployment.inject("dynamodb", "UpdateItem", "ValidationException", function=PROCESSOR)

    with pytest.raises(FunctionError) as raised:
        run_changes(deployment, change("a1", "100"))

    # Not retried by the workflow (it is not RetryableError), but not swallowed either: the
    # execution fails, so the pipe retries the batch and at last dead-letters it, with an alarm.
    assert raised.value.error["errorType"] == "ClientError"
    assert "ValidationException" in raised.value.error["errorMessage"]
    assert events(logs, "reminder_failed") == [
        {"level": "ERROR", "event": "reminder_failed", "reminderId": "a1#1440", "errorType": "ValidationException"}
    ]
    assert reminder(deployment, "a1#1440") is None
    assert run_changes(deployment, change("a1", "100"))["summary"] == {"pending": 1}


def test_a_batch_run_again_after_a_failure_plans_each_reminder_once(deployment: LocalDeployment, logs: Any) -> None:
    names = ("a1", "a2", "a3")
    for name in names:
        put_appointment(deployment, appointment(name, 2 * DAY))
    batch = [appointment_change(name, "100", "INSERT") for name in names]
    fail_writes_of(deployment, "a2#1440", "ProvisionedThroughputExceededException")

    with pytest.raises(FunctionError):
        run_changes(deployment, *batch)
    assert [reminder(deployment, f"{name}#1440") is not None for name in names] == [True, False, False]

    assert run_changes(deployment, *batch)["summary"] == {"unchanged": 1, "pending": 2}
    assert sorted(line["reminderId"] for line in events(logs, "reminder_pending")) == [f"{n}#1440" for n in names]
    for name in names:
        assert reminder(deployment, f"{name}#1440") == planned(f"{name}#1440", NOW + 2 * DAY, "100")


@pytest.mark.parametrize(
    ("path", "operation", "code", "retryable"),
    [
        ("stream", "BatchGetItem", "ProvisionedThroughputExceededException", True),
        ("schedule", "Query", "ThrottlingException", True),
        ("schedule", "BatchGetItem", "InternalServerError", True),
        ("schedule", "Query", "AccessDeniedException", False),
    ],
)
def test_a_failed_read_fails_the_run(
    clock: Any, deployment: LocalDeployment, path: str, operation: str, code: str, retryable: bool
) -> None:
    book(deployment, "a1", DAY + 60)
    clock.shift(60)
    before = reminder(deployment, "a1#1440")
    deployment.inject("dynamodb", operation, code, function=PROCESSOR)

    def run() -> Any:
        return run_changes(deployment, change("a1", "200")) if path == "stream" else run_schedule(deployment)

    with pytest.raises(FunctionError) as raised:
        run()

    assert (raised.value.error["errorType"] == "RetryableError") is retryable
    assert reminder(deployment, "a1#1440") == before, "nothing decided from a read that failed"
    assert job_ids(run()) == ["a1#1440"]  # the workflow's retry, or the next run


def test_appointments_left_unread_make_the_run_retryable(deployment: LocalDeployment) -> None:
    put_appointment(deployment, appointment("a1", DAY))

    def unprocessed(parsed: dict[str, Any], **_: Any) -> None:
        # What BatchGetItem answers when it is throttled part-way: the keys it did not read.
        # https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html
        parsed["UnprocessedKeys"] = {"Appointments-dev": {"Keys": [{"appointmentId": {"S": "a1"}}]}}

    handlers = module(deployment).dynamodb.meta.events
    handlers.register("after-call.dynamodb.BatchGetItem", unprocessed)
    with pytest.raises(FunctionError) as raised:
        run_changes(deployment, change("a1", "100"))
    assert (raised.value.error["errorType"], raised.value.error["errorMessage"]) == (
        "RetryableError",
        "UnprocessedKeys",
    )
    assert reminder(deployment, "a1#1440") is None, "nothing planned from a partial read"

    handlers.unregister("after-call.dynamodb.BatchGetItem", unprocessed)
    assert job_ids(run_changes(deployment, change("a1", "100"))) == ["a1#1440"]


# ---- the schedule path: one bad reminder, lateness, more -----------------------------------


def test_one_bad_reminder_is_logged_and_left_due_and_the_others_are_settled(
    clock: Any, deployment: LocalDeployment, logs: Any
) -> None:
    names = ("fine", "throttled", "refused", "malformed")
    for name in names:
        book(deployment, name, DAY + 60)
    clock.shift(60)
    before = {name: stored(deployment, f"{name}#1440") for name in names}
    fail_writes_of(deployment, "throttled#1440", "ProvisionedThroughputExceededException")
    fail_writes_of(deployment, "refused#1440", "ValidationException")
    put_appointment(deployment, appointment("malformed", DAY + 60, appointmentTime="tomorrow"))

    answer = run_schedule(deployment)

    assert job_ids(answer) == ["fine#1440"]
    assert answer["summary"] == {"sending": 1, "error": 2, "cancelled": 1}
    assert sorted((line["reminderId"], line["errorType"]) for line in events(logs, "reminder_failed")) == [
        ("refused#1440", "ValidationException"),
        ("throttled#1440", "ProvisionedThroughputExceededException"),
    ]
    assert events(logs, "invalid_appointment") == [
        {"level": "WARNING", "event": "invalid_appointment", "appointmentId": "malformed"}
    ]
    assert reminder(deployment, "malformed#1440") == finalized(before["malformed"], "CANCELLED", "InvalidAppointment")
    for name in ("throttled", "refused"):  # left due, as they were: the next run finds them
        assert reminder(deployment, f"{name}#1440") == before[name]
    assert job_ids(run_schedule(deployment, execution=OTHER_EXECUTION)) == ["refused#1440", "throttled#1440"]


def test_a_reminder_record_that_cannot_be_read_is_one_failure_and_never_stops_the_others(
    clock: Any, deployment: LocalDeployment, logs: Any
) -> None:
    # Records the processor did not write as it writes them today: edited by hand, or left by an
    # older version of the stack. Each is the oldest of its shard, so every run finds it first.
    for name in ("fine", "no-due-time", "offset-as-text"):
        book(deployment, name, DAY + 60)
    broken = {
        "no-due-time": {**stored(deployment, "no-due-time#1440"), "dueAt": None},
        "offset-as-text": {**stored(deployment, "offset-as-text#1440"), "offsetMinutes": "1440"},
    }
    for item in broken.values():
        put_reminder(deployment, {name: value for name, value in item.items() if value is not None})
    clock.shift(120)

    answer = run_schedule(deployment)

    assert job_ids(answer) == ["fine#1440"] and answer["summary"] == {"sending": 1, "error": 2}
    assert sorted(line["reminderId"] for line in events(logs, "reminder_failed")) == [
        "no-due-time#1440",
        "offset-as-text#1440",
    ]
    assert [line["OverdueSeconds"] for line in logs() if "OverdueSeconds" in line] == [60], "lateness is reported"


def test_the_overdue_metric_is_how_long_ago_the_oldest_reminder_found_was_due(
    clock: Any, deployment: LocalDeployment, logs: Any
) -> None:
    namespace = deployment.functions[deployment.resources[PROCESSOR].ref].environment["METRICS_NAMESPACE"]

    def metric_lines() -> list[dict[str, Any]]:
        return [line for line in logs() if "OverdueSeconds" in line]

    def metric(overdue: int) -> dict[str, Any]:
        # One CloudWatch embedded-metric-format line, no dimensions:
        # https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
        directive = {
            "Namespace": namespace,
            "Dimensions": [[]],
            "Metrics": [{"Name": "OverdueSeconds", "Unit": "Seconds"}],
        }
        return {"_aws": {"Timestamp": now() * 1000, "CloudWatchMetrics": [directive]}, "OverdueSeconds": overdue}

    run_schedule(deployment)
    assert metric_lines() == [metric(0)], "nothing due: 0, so that the alarm has a value to compare"

    book(deployment, "first", DAY + 60)
    book(deployment, "second", DAY + 200)
    assert metric_lines() == [metric(0)], "the stream path reports no lateness"
    clock.shift(500)
    run_schedule(deployment)
    assert metric_lines()[1:] == [metric(500 - 60)]


def test_more_only_when_a_shard_has_more_and_the_batch_made_progress(clock: Any, deployment: LocalDeployment) -> None:
    # CLAIM_BATCH_SIZE 40 over 8 shards: a query reads at most 5 reminders of a shard (its Limit),
    # and then answers a LastEvaluatedKey: https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Query.html
    # Six appointments whose reminders all land on shard 0 are one more than that.
    per_shard = -(-module(deployment).CLAIM_BATCH_SIZE // 8)
    ids = ids_on_shard(0, per_shard + 1)
    for appointment_id in ids:
        put_appointment(deployment, appointment(appointment_id, DAY + 60))
    assert run_changes(deployment, *(change(i, "100") for i in ids))["summary"] == {"pending": per_shard + 1}
    clock.shift(60)

    # Nothing could be claimed: no progress, so no continuation (a poison batch ends the chain).
    deployment.inject("dynamodb", "UpdateItem", "ThrottlingException", times=per_shard, function=PROCESSOR)
    stuck = run_schedule(deployment)
    assert (stuck["jobs"], stuck["more"], stuck["summary"]) == ([], False, {"error": per_shard})

    first = run_schedule(deployment, trigger="continuation")
    assert (len(first["jobs"]), first["more"]) == (per_shard, True)
    second = run_schedule(deployment, trigger="continuation")
    assert (len(second["jobs"]), second["more"]) == (1, False)
    assert sorted(job["reminderId"] for job in first["jobs"] + second["jobs"]) == sorted(f"{i}#1440" for i in ids)
    assert run_schedule(deployment, execution=OTHER_EXECUTION)["jobs"] == []


def test_the_jobs_of_one_run_stay_under_the_payload_limit(clock: Any, deployment: LocalDeployment) -> None:
    # 40 due reminders (a full batch: 5 on each shard) whose jobs are as large as valid values make
    # them: an appointment id near DynamoDB's 2,048-byte key limit (the reminder id adds 5 bytes;
    # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html), whose
    # non-ASCII letters JSON escapes to 6 bytes each, and a name of 60 characters outside the BMP
    # (12 bytes each). About 7.6 KB a job: 40 of them would be 305 KB, over Step Functions' 256 KiB
    # between states (https://docs.aws.amazon.com/step-functions/latest/apireference/API_StateExitedEventDetails.html);
    # 26 fit under the processor's 200,000 bytes.
    long_id = "é" * 1015
    ids = [appointment_id for s in range(8) for appointment_id in ids_on_shard(s, 5, prefix=long_id)]
    email = "pat." + "x" * (254 - len("pat.@example.com")) + "@example.com"
    for appointment_id in ids:
        assert len(f"{appointment_id}#1440".encode()) <= 2048
        put_appointment(
            deployment,
            appointment(appointment_id, DAY + 60, customerName="\U0001f600" * 60, customerEmail=email),
        )
    assert run_changes(deployment, *(change(i, "100") for i in ids))["summary"] == {"pending": 40}
    clock.shift(60)

    first = run_schedule(deployment)

    jobs = json.dumps(first["jobs"])
    assert 150_000 < len(jobs) < 200_000, "as many jobs as fit under the limit"
    assert len(json.dumps(first).encode()) < 256 * 1024
    assert first["more"] is True and first["summary"] == {
        "sending": len(first["jobs"]),
        "unchanged": 40 - len(first["jobs"]),
    }
    left = set(ids) - {job["reminderId"].removesuffix("#1440") for job in first["jobs"]}
    for appointment_id in left:  # left due for the next execution
        item = reminder(deployment, f"{appointment_id}#1440")
        assert item is not None and (item["state"], item["attemptAt"]) == ("PENDING", item["dueAt"])
    second = run_schedule(deployment, execution=OTHER_EXECUTION, trigger="continuation")
    assert {job["reminderId"].removesuffix("#1440") for job in second["jobs"]} == left


# ---- the job: what the senders are given -----------------------------------------------------


def test_a_job_has_everything_the_senders_need(clock: Any, deployment: LocalDeployment) -> None:
    book(deployment, "a1", DAY + HOUR, customerEmail="pat@example.com", customerPhone="+15555550123")
    clock.shift(HOUR)

    [job] = run_schedule(deployment)["jobs"]

    when = "Tuesday 3 March 2026 at 11:00 CET (Europe/Paris)"
    assert job == {
        "reminderId": "a1#1440",
        "claimToken": claim_token(EXECUTION),
        "appointmentTime": NOW + DAY + HOUR,
        "deferrals": 0,
        "localTime": when,
        "email": {
            "to": "pat@example.com",
            "subject": f"Reminder: your appointment on {when}",
            "text": f"Hello Pat Example,\n\nThis is a reminder of your appointment on {when}.\n",
        },
        "sms": {"to": "+15555550123", "text": f"This is a reminder of your appointment on {when}."},
    }
    assert len(job["sms"]["text"]) <= 160, "one SMS"


def test_a_deferred_reminder_claimed_again_carries_its_deferrals(clock: Any, deployment: LocalDeployment) -> None:
    book(deployment, "a1", DAY + HOUR)
    # The status updater put it off twice (row 11): the email went out, the SMS was refused.
    put_off = {"attemptAt": NOW + 2 * HOUR, "deferrals": 2, "deferReason": "ThrottlingException"}
    put_reminder(deployment, {**stored(deployment, "a1#1440"), **put_off, "emailResult": result("SENT")})
    clock.shift(2 * HOUR)

    [job] = run_schedule(deployment)["jobs"]

    assert job["deferrals"] == 2, "the status updater's next backoff follows from it"
    assert stored(deployment, "a1#1440")["emailResult"] == result("SENT")


def test_a_deferred_reminder_claimed_from_the_stream_carries_its_deferrals(
    clock: Any, deployment: LocalDeployment
) -> None:
    book(deployment, "a1", DAY + HOUR, sequence="100")
    put_off = {"attemptAt": NOW + 2 * HOUR, "deferrals": 2, "deferReason": "ThrottlingException"}
    put_reminder(deployment, {**stored(deployment, "a1#1440"), **put_off, "emailResult": result("SENT")})
    clock.shift(2 * HOUR)
    # The customer's name changes once the wait is over, before a schedule run found the reminder:
    # the change's run claims it (row 6), and its job must say how often it was put off.
    put_appointment(deployment, appointment("a1", DAY + HOUR, customerName="Pat Q. Example"))

    [job] = run_changes(deployment, change("a1", "200"))["jobs"]

    assert job["deferrals"] == 2


def test_the_time_is_shown_in_the_customers_zone(clock: Any, deployment: LocalDeployment, logs: Any) -> None:
    # Booked for tomorrow 09:00 UTC, reminded at once (inside the 1440-minute window).
    zones: dict[str, Any] = {
        "paris": ("Europe/Paris", "Tuesday 3 March 2026 at 10:00 CET (Europe/Paris)"),
        "no-zone": (None, "Tuesday 3 March 2026 at 09:00 UTC"),
        "unknown-zone": ("Mars/Olympus_Mons", "Tuesday 3 March 2026 at 09:00 UTC"),
        "not-a-string": (5, "Tuesday 3 March 2026 at 09:00 UTC"),
        "a-path": ("../../etc/passwd", "Tuesday 3 March 2026 at 09:00 UTC"),
    }
    for name, (zone, _) in zones.items():
        put_appointment(deployment, appointment(name, DAY, timeZone=zone))
    shown = {job["reminderId"]: job for job in run_changes(deployment, *(change(n, "100") for n in zones))["jobs"]}
    # Summer time: booked in March for 15 July 12:00 UTC, reminded on the 14th.
    july = int(datetime(2026, 7, 15, 12, 0, tzinfo=UTC).timestamp())
    book(deployment, "new-york", july - NOW, timeZone="America/New_York")
    clock.move_to(datetime(2026, 7, 14, 12, 0, tzinfo=UTC))
    shown |= {job["reminderId"]: job for job in run_schedule(deployment)["jobs"]}
    zones["new-york"] = ("America/New_York", "Wednesday 15 July 2026 at 08:00 EDT (America/New_York)")

    assert {rid.removesuffix("#1440"): job["localTime"] for rid, job in shown.items()} == {
        name: text for name, (_, text) in zones.items()
    }
    for job in shown.values():
        assert job["email"]["subject"] == f"Reminder: your appointment on {job['localTime']}"
        assert job["sms"]["text"] == f"This is a reminder of your appointment on {job['localTime']}."
    assert sorted(line["appointmentId"] for line in logs() if line.get("level") == "WARNING") == [
        "a-path",
        "not-a-string",
        "unknown-zone",
    ]
    assert {line["event"] for line in logs() if line.get("level") == "WARNING"} == {"unknown_time_zone"}


def test_without_a_zone_database_the_time_is_shown_in_utc(
    deployment: LocalDeployment, logs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import zoneinfo

    def no_zone(key: str) -> None:
        raise zoneinfo.ZoneInfoNotFoundError(f"No time zone found with key {key}")

    missing = types.SimpleNamespace(ZoneInfo=no_zone, available_timezones=set)
    monkeypatch.setattr(module(deployment), "zoneinfo", missing)

    [job] = book(deployment, "a1", DAY, timeZone="Europe/Paris")["jobs"]

    assert job["localTime"] == "Tuesday 3 March 2026 at 09:00 UTC"
    assert events(logs, "time_zone_database_missing") == [
        {"level": "WARNING", "event": "time_zone_database_missing", "appointmentId": "a1"}
    ]


def test_only_the_requested_channels_are_rendered(deployment: LocalDeployment) -> None:
    cases: dict[str, tuple[dict[str, Any], Any, Any]] = {
        "email-only": ({"notificationChannels": {"email"}}, "email-only@example.com", None),
        "sms-only": ({"notificationChannels": {"sms"}}, None, "+15555550123"),
        "both": ({"notificationChannels": {"email", "sms"}}, "both@example.com", "+15555550123"),
        "absent-means-both": ({}, "absent-means-both@example.com", "+15555550123"),
        "no-email-address": ({"customerEmail": None}, {"to": None}, "+15555550123"),
        "no-phone-number": ({"customerPhone": None, "notificationChannels": {"sms", "fax"}}, None, {"to": None}),
    }
    for name, (fields, _, _) in cases.items():
        put_appointment(deployment, appointment(name, DAY, **fields))

    jobs = run_changes(deployment, *(change(name, "100") for name in cases))["jobs"]

    def rendered_for(message: dict[str, Any] | None) -> Any:
        """None (not requested), {"to": None} (no address), or the address it was rendered for."""
        return message if message is None or message["to"] is None else message["to"]

    assert {
        job["reminderId"].removesuffix("#1440"): (rendered_for(job["email"]), rendered_for(job["sms"])) for job in jobs
    } == {name: (email, sms) for name, (_, email, sms) in cases.items()}


def test_what_comes_from_the_appointment_is_bounded_and_on_one_printable_line(deployment: LocalDeployment) -> None:
    longest_email = "pat." + "x" * (254 - len("pat.@example.com")) + "@example.com"  # 254: RFC 5321's longest path
    names = {
        "long": ("<b>Zoë</b> & \x07Pat\n" + "x" * 80, "<b>Zoë</b> & Pat " + "x" * 43),  # 60 characters
        "spoofed": ("\u202ePat Example\u200b", "Pat Example"),  # bidirectional override, zero-width space
        "control-only": ("\x00\x07\t\n", None),
        "multi-line": ("Pat\r\nExample\tJr", "Pat Example Jr"),
    }
    for appointment_id, (name, _) in names.items():
        put_appointment(deployment, appointment(appointment_id, DAY, customerName=name, customerEmail=longest_email))

    jobs = {
        job["reminderId"].removesuffix("#1440"): job
        for job in run_changes(deployment, *(change(i, "100") for i in names))["jobs"]
    }

    for appointment_id, (_, shown) in names.items():
        greeting = f"Hello {shown}," if shown else "Hello,"
        assert jobs[appointment_id]["email"]["text"].startswith(f"{greeting}\n\n"), appointment_id
        assert jobs[appointment_id]["email"]["to"] == longest_email
    assert set(jobs["long"]["email"]) == {"to", "subject", "text"}, "plain text only: nothing to escape"


def test_an_address_too_long_to_be_valid_is_not_cut_into_someone_elses(deployment: LocalDeployment) -> None:
    # An E.164 number has at most 15 digits (https://docs.aws.amazon.com/sns/latest/dg/sms_publish-to-phone.html)
    # and an email address at most 254 characters (RFC 5321, 4.5.3.1.3: a path of 256 with its angle
    # brackets). Cut to those bounds, a longer value becomes a valid-looking address: someone else's,
    # who would read the customer's name and appointment. The channel then has no address.
    too_long = {
        "phone": {"customerPhone": "+1555555012345678"},  # 16 digits: the first 15 are a valid number
        "email": {"customerEmail": "p" * 243 + "@example.com"},  # 255: the first 254 end in "@example.co"
    }
    for appointment_id, fields in too_long.items():
        put_appointment(deployment, appointment(appointment_id, DAY, **fields))

    jobs = {job["reminderId"]: job for job in run_changes(deployment, *(change(i, "100") for i in too_long))["jobs"]}

    assert (jobs["phone#1440"]["sms"], jobs["phone#1440"]["email"]["to"]) == ({"to": None}, "phone@example.com")
    assert (jobs["email#1440"]["email"], jobs["email#1440"]["sms"]["to"]) == ({"to": None}, "+15555550123")


def test_malformed_appointments_never_stop_the_batch(deployment: LocalDeployment, logs: Any) -> None:
    book(deployment, "was-good", 2 * DAY, sequence="100")
    malformed = {
        "no-time": appointment("no-time", DAY, appointmentTime=None),
        "time-as-text": appointment("time-as-text", DAY, appointmentTime=str(NOW + DAY)),
        "milliseconds": appointment("milliseconds", DAY, appointmentTime=(NOW + DAY) * 1000),
        "odd-status": appointment("odd-status", DAY, status="WHATEVER"),
        "was-good": appointment("was-good", 2 * DAY, appointmentTime=[NOW + 2 * DAY]),
    }
    odd_types = appointment(
        "odd-types",
        DAY,
        customerName=5,
        customerEmail=["a@example.com"],
        customerPhone=15555550123,
        timeZone={"zone": "Europe/Paris"},
    )
    items = [appointment("good-now", DAY), *malformed.values(), odd_types, appointment("good-later", 2 * DAY)]
    for item in items:
        put_appointment(deployment, item)

    answer = run_changes(deployment, *(change(item["appointmentId"], "200") for item in items))

    assert job_ids(answer) == ["good-now#1440", "odd-types#1440"]
    assert answer["summary"] == {"sending": 2, "pending": 1, "cancelled": 5}
    assert reminder(deployment, "good-later#1440") == planned("good-later#1440", NOW + 2 * DAY, "200")
    # Each is closed with its change's version, the one never planned too: a run of an older change
    # that read it still valid cannot plan it after this one.
    for appointment_id in malformed:
        record = stored(deployment, f"{appointment_id}#1440")
        assert (record["state"], record["reason"], record["version"]) == (
            "CANCELLED",
            "InvalidAppointment",
            "200".zfill(40),
        )
    assert sorted(r["appointmentId"] for r in events(logs, "invalid_appointment")) == sorted(malformed)
    [odd] = [job for job in answer["jobs"] if job["reminderId"] == "odd-types#1440"]
    assert (odd["email"], odd["sms"]) == ({"to": None}, {"to": None}), "a wrong-typed attribute reads as absent"
    assert [r["appointmentId"] for r in events(logs, "unknown_time_zone")] == ["odd-types"]


# ---- the inlined code --------------------------------------------------------------------------


@pytest.mark.parametrize("inlined", [False, True], ids=["file", "inlined"])
def test_the_inlined_processor_does_what_the_file_does(
    clock: Any, deploy: Callable[..., LocalDeployment], logs: Any, inlined: bool
) -> None:
    deployment = deploy(inlined=inlined, ReminderOffsetsMinutes="1440,60")

    short_notice = book(deployment, "soon", 30 * 60)
    book(deployment, "later", DAY + 60)
    clock.shift(120)
    due = run_schedule(deployment)
    put_appointment(deployment, appointment("soon", 30 * 60, status="CANCELLED"))
    cancelled = run_changes(deployment, change("soon", "200"))

    assert (short_notice["summary"], job_ids(short_notice)) == ({"skipped": 1, "sending": 1}, ["soon#60"])
    assert (due["summary"], job_ids(due)) == ({"sending": 1}, ["later#1440"])
    assert due["jobs"][0]["localTime"] == "Tuesday 3 March 2026 at 10:01 CET (Europe/Paris)"
    assert cancelled["summary"] == {"cancelled": 1, "unchanged": 1}
    states = {rid: stored(deployment, rid)["state"] for rid in ("soon#60", "soon#1440", "later#1440", "later#60")}
    assert states == {"soon#60": "CANCELLED", "soon#1440": "SKIPPED", "later#1440": "SENDING", "later#60": "PENDING"}
    assert [line["OverdueSeconds"] for line in logs() if "OverdueSeconds" in line] == [60]
