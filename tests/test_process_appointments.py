"""ProcessAppointments on moto: planning from stream records, finding and claiming due reminders,
re-checking them against the current appointment, and rendering the jobs.

Every test runs the handler file through the local runner (the generated template deployed into
moto); the stream records are the ones the Pipe would deliver. The autouse ``logs`` fixture checks,
after each test, that everything the handler printed is JSON lines without personal data.
"""

from __future__ import annotations

import contextlib
import json
import threading
import types
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from tapstack.local import FunctionError, LocalDeployment
from tapstack.sources import handler_source
from tests.support import (
    DAY,
    HOUR,
    NOW,
    START,
    appointment,
    delete_appointment,
    put_appointment,
    reminder,
)

PROCESSOR = "AppointmentProcessorFunction"
LEASE = 1860
SCHEDULED_EVENT = {
    "version": "0",
    "id": "5e1b6b4c-0000-0000-0000-000000000000",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-03-02T09:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/AppointmentNotificationSchedule-dev"],
    "detail": {},
}
CONTINUATION = {"source": "tapstack.continuation", "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID": "arn:x"}
#: What the handler must never print: the fake addresses, phone numbers and names used here.
PERSONAL_DATA = ("@example.com", "+1555555", "Pat", "Example", "Zoë")


# ---- helpers -------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def logs(capsys: pytest.CaptureFixture[str]) -> Any:
    """``logs()``: every log record the handler printed so far (each line must be JSON).

    After the test, none of them may contain personal data.
    """
    seen: list[dict[str, Any]] = []

    def read() -> list[dict[str, Any]]:
        seen.extend(json.loads(line) for line in capsys.readouterr().out.splitlines())
        return seen

    yield read
    printed = json.dumps(read())
    for secret in PERSONAL_DATA:
        assert secret not in printed


def events(logs: Callable[[], list[dict[str, Any]]], name: str) -> list[dict[str, Any]]:
    return [record for record in logs() if record["event"] == name]


def stream_records(deployment: LocalDeployment) -> list[dict[str, Any]]:
    """The records written since the last read, as the Pipe would deliver them."""
    return [record for batch in deployment.pipe.batches() for record in batch]


def run_pipe(deployment: LocalDeployment) -> dict[str, Any]:
    return deployment.invoke(PROCESSOR, stream_records(deployment))


def run_schedule(deployment: LocalDeployment, event: dict[str, Any] = SCHEDULED_EVENT) -> dict[str, Any]:
    return deployment.invoke(PROCESSOR, event)


def book(deployment: LocalDeployment, appointment_id: str, starts_in: int, **fields: Any) -> dict[str, Any]:
    """Write the appointment and run the pipe over it."""
    put_appointment(deployment, appointment(appointment_id, starts_in, **fields))
    return run_pipe(deployment)


def state(deployment: LocalDeployment, reminder_id: str) -> tuple[str, str | None] | None:
    item = reminder(deployment, reminder_id)
    return None if item is None else (item["state"], item.get("reason"))


def shard(reminder_id: str) -> str:
    return str(zlib.crc32(reminder_id.encode()) % 8)


def module(deployment: LocalDeployment) -> types.ModuleType:
    """The processor's loaded module (its warm container)."""
    return deployment.functions[deployment.resources[PROCESSOR].ref].module


def set_attributes(deployment: LocalDeployment, reminder_id: str, expression: str, **values: Any) -> None:
    """Write on a reminder as the other functions would (``values`` are attribute values)."""
    names = {"ExpressionAttributeNames": {"#s": "state"}} if "#s" in expression else {}
    deployment.client("dynamodb").update_item(
        TableName=deployment.table_name("RemindersTable"),
        Key={"reminderId": {"S": reminder_id}},
        UpdateExpression=expression,
        ExpressionAttributeValues={f":{k}": v for k, v in values.items()},
        **names,
    )


def record_sent(deployment: LocalDeployment, reminder_id: str) -> None:
    """What the sender and the status updater leave behind after a successful delivery."""
    set_attributes(
        deployment,
        reminder_id,
        "SET #s = :s, emailResult = :r REMOVE dueShard, attemptAt",
        s={"S": "SENT"},
        r={"M": {"status": {"S": "SENT"}, "token": {"S": "t"}, "messageId": {"S": "m-1"}}},
    )


def job_ids(result: dict[str, Any]) -> list[str]:
    return sorted(job["reminderId"] for job in result["jobs"])


# ---- size ----------------------------------------------------------------------------------


def test_the_inlined_processor_fits_its_budget() -> None:
    assert len(handler_source("process_appointments")) <= 8500


# ---- planning from stream records ----------------------------------------------------------


def test_insert_plans_one_pending_reminder_per_offset(deploy: Callable[..., LocalDeployment]) -> None:
    deployment = deploy(ReminderOffsetsMinutes="1440,60")
    starts = NOW + 2 * DAY

    result = book(deployment, "a1", 2 * DAY)

    assert result == {"jobs": [], "more": False, "summary": {"pending": 2}}
    for offset in (1440, 60):
        reminder_id = f"a1#{offset}"
        assert reminder(deployment, reminder_id) == {
            "reminderId": reminder_id,
            "appointmentId": "a1",
            "offsetMinutes": offset,
            "appointmentTime": starts,
            "state": "PENDING",
            "dueAt": starts - 60 * offset,
            "dueShard": shard(reminder_id),
            "attemptAt": starts - 60 * offset,
            "expiresAt": starts + 90 * DAY,
            "updatedAt": NOW,
        }


def test_a_moved_appointment_is_planned_again_and_forgets_the_old_claim(
    clock: Any, deployment: LocalDeployment
) -> None:
    book(deployment, "a1", DAY + HOUR)
    clock.shift(HOUR)
    assert job_ids(run_schedule(deployment)) == ["a1#1440"]
    record = "SET emailResult = :e, smsResult = :e"
    set_attributes(deployment, "a1#1440", record, e={"M": {"status": {"S": "SENT"}, "token": {"S": "t"}}})

    result = book(deployment, "a1", 3 * DAY)

    assert result["jobs"] == []
    item = reminder(deployment, "a1#1440")
    assert item is not None
    assert (item["state"], item["appointmentTime"], item["dueAt"], item["attemptAt"]) == (
        "PENDING",
        NOW + 3 * DAY,
        NOW + 2 * DAY,
        NOW + 2 * DAY,
    )
    assert not {"claimToken", "claimExpiresAt", "emailResult", "smsResult", "reason"} & item.keys()


def test_a_change_that_does_not_concern_reminders_writes_nothing(
    clock: Any, deploy: Callable[..., LocalDeployment]
) -> None:
    deployment = deploy(ReminderOffsetsMinutes="1440,60")
    book(deployment, "a1", 2 * DAY)
    before = [reminder(deployment, f"a1#{m}") for m in (1440, 60)]
    clock.shift(600)
    deployment.monitor.calls.clear()

    result = book(deployment, "a1", 2 * DAY, customerName="Pat Q. Example", customerPhone="+15555550124")

    assert result == {"jobs": [], "more": False, "summary": {"unchanged": 2}}
    assert [reminder(deployment, f"a1#{m}") for m in (1440, 60)] == before
    writes = [c for c in deployment.monitor.calls if c.function == PROCESSOR and c.operation == "UpdateItem"]
    assert len(writes) == 2  # the two conditional upserts, whose conditions failed


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: put_appointment(d, appointment("a1", 2 * DAY, status="CANCELLED")), "AppointmentCancelled"),
        (lambda d: delete_appointment(d, "a1"), "AppointmentDeleted"),
        (lambda d: put_appointment(d, appointment("a1", 2 * DAY, appointmentTime="soon")), "InvalidAppointment"),
        (lambda d: put_appointment(d, appointment("a1", -HOUR)), "AppointmentPast"),
    ],
    ids=["cancelled", "deleted", "malformed", "moved-to-the-past"],
)
def test_pending_reminders_are_cancelled(
    deploy: Callable[..., LocalDeployment], change: Callable[[LocalDeployment], None], reason: str
) -> None:
    deployment = deploy(ReminderOffsetsMinutes="1440,60")
    book(deployment, "a1", 2 * DAY)

    change(deployment)
    result = run_pipe(deployment)

    assert result == {"jobs": [], "more": False, "summary": {"cancelled": 2}}
    for offset in (1440, 60):
        item = reminder(deployment, f"a1#{offset}")
        assert item is not None
        assert (item["state"], item["reason"]) == ("CANCELLED", reason)
        assert not {"dueShard", "attemptAt"} & item.keys()


def test_rebooking_a_cancelled_appointment_plans_it_again(deployment: LocalDeployment) -> None:
    book(deployment, "a1", 2 * DAY)
    book(deployment, "a1", 2 * DAY, status="CANCELLED")
    assert state(deployment, "a1#1440") == ("CANCELLED", "AppointmentCancelled")

    result = book(deployment, "a1", 2 * DAY, status="BOOKED")

    assert result["summary"] == {"pending": 1}
    item = reminder(deployment, "a1#1440")
    assert item is not None
    assert (item["state"], item["dueShard"], item["attemptAt"]) == ("PENDING", shard("a1#1440"), NOW + DAY)
    assert "reason" not in item


def test_batches_handled_out_of_order_still_end_right(deployment: LocalDeployment) -> None:
    put_appointment(deployment, appointment("a1", 2 * DAY))
    insert_a1 = stream_records(deployment)
    put_appointment(deployment, appointment("a1", 3 * DAY))
    move_a1 = stream_records(deployment)
    put_appointment(deployment, appointment("a2", 2 * DAY))
    insert_a2 = stream_records(deployment)
    delete_appointment(deployment, "a2")
    remove_a2 = stream_records(deployment)

    for batch in (move_a1, remove_a2, insert_a1, insert_a2):  # the later change first
        deployment.invoke(PROCESSOR, batch)

    item = reminder(deployment, "a1#1440")
    assert item is not None
    assert (item["state"], item["appointmentTime"]) == ("PENDING", NOW + 3 * DAY)
    assert reminder(deployment, "a2#1440") is None  # a late INSERT does not bring back a deleted booking


# ---- finding and claiming ------------------------------------------------------------------


@pytest.mark.parametrize("event", [SCHEDULED_EVENT, CONTINUATION], ids=["schedule", "continuation"])
def test_only_due_reminders_are_claimed(clock: Any, deployment: LocalDeployment, event: dict[str, Any]) -> None:
    book(deployment, "due", DAY + HOUR)
    book(deployment, "later", DAY + 2 * HOUR)
    clock.shift(HOUR)
    now = NOW + HOUR

    result = run_schedule(deployment, event)

    assert result["more"] is False and result["summary"] == {"sending": 1}
    [job] = result["jobs"]
    item = reminder(deployment, "due#1440")
    assert item is not None
    assert item["state"] == "SENDING" and item["claimToken"] == job["claimToken"]
    assert item["claimExpiresAt"] == item["attemptAt"] == now + LEASE and item["updatedAt"] == now
    assert len(job["claimToken"]) == 32 and int(job["claimToken"], 16) >= 0
    later = reminder(deployment, "later#1440")
    assert later is not None and (later["state"], later["updatedAt"]) == ("PENDING", NOW)


def test_a_job_has_everything_the_senders_need(clock: Any, deployment: LocalDeployment) -> None:
    book(deployment, "a1", DAY + HOUR, customerEmail="pat@example.com", customerPhone="+15555550123")
    clock.shift(HOUR)

    [job] = run_schedule(deployment)["jobs"]

    when = "Tuesday 3 March 2026 at 11:00 CET (Europe/Paris)"
    token = job.pop("claimToken")
    assert token == reminder(deployment, "a1#1440")["claimToken"]  # type: ignore[index]
    assert job == {
        "reminderId": "a1#1440",
        "localTime": when,
        "email": {
            "to": "pat@example.com",
            "subject": f"Reminder: your appointment on {when}",
            "text": f"Hello Pat Example,\n\nThis is a reminder of your appointment on {when}.\n",
        },
        "sms": {"to": "+15555550123", "text": f"This is a reminder of your appointment on {when}."},
    }
    assert len(job["sms"]["text"]) <= 160


def test_more_only_when_a_shard_has_more_and_the_batch_made_progress(clock: Any, deployment: LocalDeployment) -> None:
    # CLAIM_BATCH_SIZE is 100 and there are 8 shards, so one query reads at most 13 reminders of a
    # shard. 14 real appointments whose reminders all land in shard 0 are one more than that.
    ids = [f"m{i}" for i in range(400) if shard(f"m{i}#1440") == "0"][:14]
    for appointment_id in ids:
        put_appointment(deployment, appointment(appointment_id, DAY + 60))
    assert run_pipe(deployment)["summary"] == {"pending": 14}
    clock.shift(60)

    # Nothing could be claimed: no progress, so no continuation (a poison batch ends the chain).
    deployment.inject("dynamodb", "UpdateItem", "ProvisionedThroughputExceededException", times=13, function=PROCESSOR)
    stuck = run_schedule(deployment)
    assert (stuck["jobs"], stuck["more"], stuck["summary"]) == ([], False, {"error": 13})

    first = run_schedule(deployment, CONTINUATION)
    assert (len(first["jobs"]), first["more"]) == (13, True)
    second = run_schedule(deployment, CONTINUATION)
    assert (len(second["jobs"]), second["more"]) == (1, False)
    assert {job["reminderId"] for job in first["jobs"] + second["jobs"]} == {f"{i}#1440" for i in ids}
    assert run_schedule(deployment)["jobs"] == []


def test_two_runs_claiming_the_same_reminder_at_the_same_time_give_one_job(
    clock: Any, deployment: LocalDeployment
) -> None:
    book(deployment, "a1", DAY + HOUR)
    clock.shift(HOUR)
    # Both invocations have found the reminder before either writes its claim.
    both_found = threading.Barrier(2)

    def wait_for_the_other(**_: Any) -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            both_found.wait(timeout=5)

    module(deployment).dynamodb.meta.events.register("before-call.dynamodb.UpdateItem", wait_for_the_other)
    results: list[dict[str, Any]] = []
    threads = [threading.Thread(target=lambda: results.append(run_schedule(deployment))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not both_found.broken
    assert sorted(len(r["jobs"]) for r in results) == [0, 1]
    assert sorted(json.dumps(r["summary"]) for r in results) == ['{"sending": 1}', '{"unchanged": 1}']


def test_a_claimed_reminder_is_not_claimed_again(clock: Any, deploy: Callable[..., LocalDeployment]) -> None:
    deployment = deploy(ReminderOffsetsMinutes="1440,60")
    assert job_ids(book(deployment, "a1", 3 * HOUR)) == ["a1#1440"]  # claimed by the pipe run

    assert run_schedule(deployment)["jobs"] == []
    assert run_pipe(deployment)["jobs"] == []  # nothing new on the stream
    assert book(deployment, "a1", 3 * HOUR, customerName="Pat Q. Example")["jobs"] == []
    clock.shift(60)
    assert run_schedule(deployment)["jobs"] == []


def test_an_expired_claim_is_claimed_again_and_keeps_its_channel_results(
    clock: Any, deployment: LocalDeployment
) -> None:
    book(deployment, "a1", DAY + HOUR)
    clock.shift(HOUR)
    [first] = run_schedule(deployment)["jobs"]
    sent = {"M": {"status": {"S": "SENT"}, "token": {"S": first["claimToken"]}, "messageId": {"S": "m-1"}}}
    set_attributes(deployment, "a1#1440", "SET emailResult = :e", e=sent)

    clock.shift(LEASE - 1)
    assert run_schedule(deployment)["jobs"] == []  # the lease still runs
    clock.shift(1)
    [second] = run_schedule(deployment)["jobs"]

    assert second["claimToken"] != first["claimToken"]
    item = reminder(deployment, "a1#1440")
    assert item is not None
    assert (item["state"], item["claimToken"]) == ("SENDING", second["claimToken"])
    assert item["emailResult"] == {"status": "SENT", "token": first["claimToken"], "messageId": "m-1"}


# ---- re-checking at find time --------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d, c: put_appointment(d, appointment("a1", DAY + HOUR, status="CANCELLED")),
            ("CANCELLED", "AppointmentCancelled"),
        ),
        (lambda d, c: delete_appointment(d, "a1"), ("CANCELLED", "AppointmentDeleted")),
        (
            lambda d, c: put_appointment(d, appointment("a1", DAY + HOUR, status="WHATEVER")),
            ("CANCELLED", "InvalidAppointment"),
        ),
        (lambda d, c: c.shift(DAY), ("SKIPPED", "AppointmentStarted")),  # no run while it was due
        (lambda d, c: put_appointment(d, appointment("a1", 2 * DAY)), ("PENDING", None)),
    ],
    ids=["cancelled", "deleted", "malformed", "started", "moved-later"],
)
def test_a_due_reminder_is_checked_against_the_current_appointment(
    clock: Any,
    deployment: LocalDeployment,
    change: Callable[[LocalDeployment, Any], None],
    expected: tuple[str, str | None],
) -> None:
    book(deployment, "a1", DAY + HOUR)
    clock.shift(HOUR)
    change(deployment, clock)  # the change has not reached the pipe when the schedule runs

    result = run_schedule(deployment)

    assert result["jobs"] == []
    assert state(deployment, "a1#1440") == expected
    if expected[0] == "PENDING":  # planned again for the new time, so due a day later
        item = reminder(deployment, "a1#1440")
        assert item is not None
        assert (item["appointmentTime"], item["attemptAt"]) == (NOW + 2 * DAY, NOW + DAY)


def test_an_appointment_moved_into_its_reminder_window_is_claimed_for_the_new_time(
    clock: Any, deployment: LocalDeployment
) -> None:
    book(deployment, "a1", DAY + HOUR)
    clock.shift(HOUR)
    put_appointment(deployment, appointment("a1", 2 * HOUR))  # not through the pipe yet

    [job] = run_schedule(deployment)["jobs"]

    item = reminder(deployment, "a1#1440")
    assert item is not None
    assert (item["state"], item["appointmentTime"]) == ("SENDING", NOW + 2 * HOUR)
    assert job["email"]["subject"].endswith("Monday 2 March 2026 at 12:00 CET (Europe/Paris)")


def test_a_reminder_for_an_offset_no_longer_configured_is_cancelled(deploy: Callable[..., LocalDeployment]) -> None:
    deployment = deploy(ReminderOffsetsMinutes="60")
    put_appointment(deployment, appointment("a1", 3 * HOUR))
    starts = NOW + 3 * HOUR
    # Planned by an earlier version of the stack, which also reminded a day ahead.
    set_attributes(
        deployment,
        "a1#1440",
        "SET appointmentId = :a, offsetMinutes = :m, appointmentTime = :t, dueAt = :d, #s = :s, dueShard = :h,"
        " attemptAt = :d",
        a={"S": "a1"},
        m={"N": "1440"},
        t={"N": str(starts)},
        d={"N": str(starts - DAY)},
        s={"S": "PENDING"},
        h={"S": shard("a1#1440")},
    )

    result = run_schedule(deployment)

    assert result["jobs"] == [] and result["summary"] == {"cancelled": 1}
    assert state(deployment, "a1#1440") == ("CANCELLED", "OffsetRemoved")


# ---- short notice and several offsets ------------------------------------------------------


@pytest.mark.parametrize(
    ("starts_in", "jobs", "states"),
    [
        (3 * HOUR, ["a1#1440"], {"a1#1440": ("SENDING", None), "a1#60": ("PENDING", None)}),
        (30 * 60, ["a1#60"], {"a1#1440": ("SKIPPED", "Superseded"), "a1#60": ("SENDING", None)}),
        (-10 * 60, [], {"a1#1440": None, "a1#60": None}),
    ],
    ids=["3-hours-ahead", "30-minutes-ahead", "in-the-past"],
)
def test_a_short_notice_booking(
    deploy: Callable[..., LocalDeployment], starts_in: int, jobs: list[str], states: dict[str, Any]
) -> None:
    deployment = deploy(ReminderOffsetsMinutes="1440,60")

    result = book(deployment, "a1", starts_in)

    assert job_ids(result) == jobs
    assert {rid: state(deployment, rid) for rid in states} == states


def test_several_offsets_are_found_at_their_own_times(clock: Any, deploy: Callable[..., LocalDeployment]) -> None:
    deployment = deploy(ReminderOffsetsMinutes="1440,60")
    book(deployment, "a1", 2 * DAY)
    assert [reminder(deployment, f"a1#{m}")["dueAt"] for m in (1440, 60)] == [  # type: ignore[index]
        NOW + DAY,
        NOW + 2 * DAY - HOUR,
    ]

    clock.shift(DAY - 1)
    assert run_schedule(deployment)["jobs"] == []
    clock.shift(1)
    assert job_ids(run_schedule(deployment)) == ["a1#1440"]
    record_sent(deployment, "a1#1440")
    clock.shift(DAY - HOUR - 1)
    assert run_schedule(deployment)["jobs"] == []
    clock.shift(1)
    assert job_ids(run_schedule(deployment)) == ["a1#60"]
    assert state(deployment, "a1#1440") == ("SENT", None)


# ---- rendering -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "zone", "shown", "warning"),
    [
        (START, "Europe/Paris", "Tuesday 3 March 2026 at 10:00 CET (Europe/Paris)", None),
        (
            datetime(2026, 7, 14, 12, 0, tzinfo=UTC),
            "America/New_York",
            "Wednesday 15 July 2026 at 08:00 EDT (America/New_York)",
            None,
        ),
        (START, None, "Tuesday 3 March 2026 at 09:00 UTC", None),
        (START, "Mars/Olympus_Mons", "Tuesday 3 March 2026 at 09:00 UTC", "unknown_time_zone"),
        (START, 5, "Tuesday 3 March 2026 at 09:00 UTC", "unknown_time_zone"),
    ],
    ids=["paris", "new-york-summer-time", "no-zone", "unknown-zone", "zone-not-a-string"],
)
def test_the_time_is_shown_in_the_customers_zone(
    clock: Any, deployment: LocalDeployment, logs: Any, now: datetime, zone: Any, shown: str, warning: str | None
) -> None:
    clock.move_to(now)
    starts_in = int(now.timestamp()) - NOW + DAY

    [job] = book(deployment, "a1", starts_in, timeZone=zone)["jobs"]

    assert job["localTime"] == shown
    assert job["email"]["subject"] == f"Reminder: your appointment on {shown}"
    assert job["sms"]["text"] == f"This is a reminder of your appointment on {shown}."
    expected = [{"level": "WARNING", "event": warning, "appointmentId": "a1"}] if warning else []
    assert [r for r in logs() if r["level"] == "WARNING"] == expected


def test_without_a_zone_database_the_time_is_shown_in_utc(
    deployment: LocalDeployment, logs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import zoneinfo

    def no_zone(key: str) -> None:
        raise zoneinfo.ZoneInfoNotFoundError(f"No time zone found with key {key}")

    missing = types.SimpleNamespace(ZoneInfo=no_zone, available_timezones=set)
    monkeypatch.setattr(module(deployment), "zoneinfo", missing)

    [job] = book(deployment, "a1", DAY, timeZone="Europe/Paris")["jobs"]

    assert job["email"]["subject"].endswith("Tuesday 3 March 2026 at 09:00 UTC")
    assert events(logs, "time_zone_database_missing") == [
        {"level": "WARNING", "event": "time_zone_database_missing", "appointmentId": "a1"}
    ]


def test_the_name_is_cleaned_and_shortened(deployment: LocalDeployment) -> None:
    name = "<b>Zoë</b> & \x07Pat\n" + "x" * 80

    [job] = book(deployment, "a1", DAY, customerName=name)["jobs"]

    shown = "<b>Zoë</b> & Pat " + "x" * 43  # 60 characters, control characters dropped
    assert job["email"]["text"].startswith(f"Hello {shown},\n")
    assert set(job["email"]) == {"to", "subject", "text"}, "plain text only: nothing to escape"


@pytest.mark.parametrize(
    ("fields", "email", "sms"),
    [
        ({"notificationChannels": {"email"}}, "a1@example.com", None),
        ({"notificationChannels": {"sms"}}, None, "+15555550123"),
        ({"notificationChannels": {"email", "sms"}}, "a1@example.com", "+15555550123"),
        ({}, "a1@example.com", "+15555550123"),
        ({"customerEmail": None}, {"to": None}, "+15555550123"),
        ({"customerPhone": None, "notificationChannels": {"sms", "fax"}}, None, {"to": None}),
    ],
    ids=["email-only", "sms-only", "both", "absent-means-both", "no-email-address", "no-phone-number"],
)
def test_only_the_requested_channels_are_rendered(
    deployment: LocalDeployment, fields: dict[str, Any], email: Any, sms: Any
) -> None:
    [job] = book(deployment, "a1", DAY, **fields)["jobs"]

    def rendered_for(message: dict[str, Any] | None) -> Any:
        """None (not requested), {"to": None} (no address), or the address it was rendered for."""
        return message if message is None or message["to"] is None else message["to"]

    assert (rendered_for(job["email"]), rendered_for(job["sms"])) == (email, sms)


@pytest.mark.parametrize(
    "channels", [{"fax"}, [], ["email"], "email"], ids=["unknown-channel", "empty", "a-list", "a-string"]
)
def test_no_valid_channel_skips_the_reminder(deployment: LocalDeployment, channels: Any) -> None:
    result = book(deployment, "a1", DAY, notificationChannels=channels)

    assert result["jobs"] == []
    assert state(deployment, "a1#1440") == ("SKIPPED", "NoChannelRequested")


# ---- bad data and failures -----------------------------------------------------------------


def test_malformed_appointments_never_stop_the_batch(deployment: LocalDeployment, logs: Any) -> None:
    book(deployment, "was-good", 2 * DAY)
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
    for item in [appointment("good-now", DAY), *malformed.values(), odd_types, appointment("good-later", 2 * DAY)]:
        put_appointment(deployment, item)

    result = run_pipe(deployment)

    assert job_ids(result) == ["good-now#1440", "odd-types#1440"]
    assert state(deployment, "good-later#1440") == ("PENDING", None)
    assert state(deployment, "was-good#1440") == ("CANCELLED", "InvalidAppointment")
    for appointment_id in set(malformed) - {"was-good"}:
        assert reminder(deployment, f"{appointment_id}#1440") is None
    assert sorted(r["appointmentId"] for r in events(logs, "invalid_appointment")) == sorted(malformed)
    [odd] = [job for job in result["jobs"] if job["reminderId"] == "odd-types#1440"]
    assert (odd["email"], odd["sms"]) == ({"to": None}, {"to": None})
    assert [r["appointmentId"] for r in events(logs, "unknown_time_zone")] == ["odd-types"]


def test_a_failed_write_does_not_stop_the_others(clock: Any, deployment: LocalDeployment, logs: Any) -> None:
    for appointment_id in ("a1", "a2", "a3"):
        put_appointment(deployment, appointment(appointment_id, DAY + HOUR))
    deployment.inject("dynamodb", "UpdateItem", "ValidationException", function=PROCESSOR)
    planned = run_pipe(deployment)
    assert planned["summary"] == {"error": 1, "pending": 2}
    [failed] = events(logs, "reminder_failed")
    assert failed == {
        "level": "ERROR",
        "event": "reminder_failed",
        "reminderId": failed["reminderId"],
        "errorType": "ValidationException",
    }
    unplanned = failed["reminderId"]
    assert reminder(deployment, unplanned) is None
    book(deployment, unplanned.split("#")[0], DAY + HOUR, customerName="Pat Q. Example")  # the next change plans it
    clock.shift(HOUR)

    deployment.inject("dynamodb", "UpdateItem", "ProvisionedThroughputExceededException", function=PROCESSOR)
    result = run_schedule(deployment)

    assert len(result["jobs"]) == 2 and result["summary"] == {"error": 1, "sending": 2}
    [_, throttled] = events(logs, "reminder_failed")
    assert throttled["errorType"] == "ProvisionedThroughputExceededException"
    assert state(deployment, throttled["reminderId"]) == ("PENDING", None)
    assert job_ids(run_schedule(deployment)) == [throttled["reminderId"]]  # found again by the next run


@pytest.mark.parametrize(
    ("operation", "code"),
    [
        ("Query", "ProvisionedThroughputExceededException"),
        ("Query", "ThrottlingException"),
        ("Query", "InternalServerError"),
        ("BatchGetItem", "RequestLimitExceeded"),
        ("BatchGetItem", "ServiceUnavailable"),
    ],
)
def test_a_throttled_read_makes_the_invocation_retryable(
    clock: Any, deployment: LocalDeployment, operation: str, code: str
) -> None:
    book(deployment, "a1", DAY + HOUR)
    clock.shift(HOUR)
    deployment.inject("dynamodb", operation, code, function=PROCESSOR)

    with pytest.raises(FunctionError) as raised:
        run_schedule(deployment)

    assert raised.value.error["errorType"] == "RetryableError"
    assert state(deployment, "a1#1440") == ("PENDING", None)
    assert len(run_schedule(deployment)["jobs"]) == 1  # the workflow's retry


def test_a_permanent_read_failure_is_not_retried(deployment: LocalDeployment) -> None:
    deployment.inject("dynamodb", "Query", "AccessDeniedException", function=PROCESSOR)

    with pytest.raises(FunctionError) as raised:
        run_schedule(deployment)

    assert raised.value.error["errorType"] != "RetryableError"


def test_a_throttled_read_of_the_changed_appointments_is_retryable(deployment: LocalDeployment) -> None:
    put_appointment(deployment, appointment("a1", DAY))
    records = stream_records(deployment)
    deployment.inject("dynamodb", "BatchGetItem", "ProvisionedThroughputExceededException", function=PROCESSOR)

    with pytest.raises(FunctionError) as raised:
        deployment.invoke(PROCESSOR, records)

    assert raised.value.error["errorType"] == "RetryableError"
    assert len(deployment.invoke(PROCESSOR, records)["jobs"]) == 1


def test_appointments_left_unread_make_the_invocation_retryable(deployment: LocalDeployment) -> None:
    put_appointment(deployment, appointment("a1", DAY))
    records = stream_records(deployment)

    def unprocessed(parsed: dict[str, Any], **_: Any) -> None:
        # What BatchGetItem answers when it is throttled part-way: the keys it did not read.
        parsed["UnprocessedKeys"] = {"Appointments-dev": {"Keys": [{"appointmentId": {"S": "a1"}}]}}

    events = module(deployment).dynamodb.meta.events
    events.register("after-call.dynamodb.BatchGetItem", unprocessed)
    with pytest.raises(FunctionError) as raised:
        deployment.invoke(PROCESSOR, records)
    error = raised.value.error
    assert (error["errorType"], error["errorMessage"]) == ("RetryableError", "UnprocessedKeys")
    assert reminder(deployment, "a1#1440") is None, "nothing planned from a partial read"

    events.unregister("after-call.dynamodb.BatchGetItem", unprocessed)
    assert len(deployment.invoke(PROCESSOR, records)["jobs"]) == 1  # the workflow's retry


def test_the_inlined_code_plans_and_claims_the_same(deploy: Callable[..., LocalDeployment]) -> None:
    deployment = deploy(inlined=True, ReminderOffsetsMinutes="1440,60")

    result = book(deployment, "a1", 30 * 60)

    assert job_ids(result) == ["a1#60"]
    assert state(deployment, "a1#1440") == ("SKIPPED", "Superseded")
