"""The claim protocol under the interleavings that once broke it (issue 13), each forced step by step.

Every test drives the real handlers on the local runner (``tests.protocol``): it runs a workflow's
steps itself, in the order that matters, pauses an invocation between two of its AWS calls, crashes
a run by not calling its next step, and checks the promise: at most once per appointment time,
offset and channel; nothing for a cancelled, deleted, moved or past appointment; a record that tells
the truth. The state table these rows follow is in handlers/README.md.
"""

from __future__ import annotations

from typing import Any

import pytest

from tapstack.local import LocalDeployment
from tapstack.timing import CLAIM_LEASE_SECONDS
from tests.protocol import PROCESSOR, SCHEDULED, SENDERS, Crash, Run, Workflow, after_call, change, die
from tests.support import DAY, HOUR, NOW, appointment, delete_appointment, put_appointment, reminder

RID = "a1#1440"


@pytest.fixture
def flow(deployment: LocalDeployment) -> Workflow:
    return Workflow(deployment)


def book(flow: Workflow, starts_in: int, sequence: int, **fields: Any) -> None:
    """The booking app writes a1, and the stream run for that change completes."""
    put_appointment(flow.deployment, appointment("a1", starts_in, **fields))
    flow.complete(Run([change("a1", "MODIFY" if sequence > 1 else "INSERT", sequence)]))


def cancel(flow: Workflow, starts_in: int, sequence: int) -> None:
    put_appointment(flow.deployment, appointment("a1", starts_in, status="CANCELLED"))
    flow.complete(Run([change("a1", "MODIFY", sequence)]))


def claimed(flow: Workflow) -> Run:
    """A schedule run that claimed a1#1440 and has done nothing else yet."""
    run = Run(SCHEDULED)
    flow.process(run)
    assert [job["reminderId"] for job in run.jobs] == [RID]
    return run


# ---- 1. a cancel during a live claim -----------------------------------------------------------


def test_1_a_cancel_takes_a_live_claim_away_and_nothing_is_sent(flow: Workflow, clock: Any) -> None:
    book(flow, DAY + HOUR, 1)
    clock.shift(HOUR)
    run = claimed(flow)
    cancel(flow, DAY, 2)  # the stream run decides CANCELLED while the claim is live
    assert reminder(flow.deployment, RID)["state"] == "CANCELLED"
    (job,) = run.jobs
    for channel in SENDERS:
        assert flow.send(run, job, channel) == {"channel": channel, "status": "SKIPPED", "reason": "ClaimLost"}
    assert flow.update(run, job)["recorded"] is False
    assert flow.emails() == [] and flow.texts() == []
    assert reminder(flow.deployment, RID)["state"] == "CANCELLED"


def test_1_a_cancel_while_the_email_is_on_its_way_stops_the_sms_and_records_what_went_out(
    flow: Workflow, clock: Any
) -> None:
    book(flow, DAY + HOUR, 1)
    clock.shift(HOUR)
    run = claimed(flow)
    (job,) = run.jobs
    # The email's provider call has gone out when the cancel is decided; it cannot be recalled.
    with after_call(flow.deployment, SENDERS["email"], "SendEmail", lambda: cancel(flow, DAY, 2)) as ran:
        assert flow.send(run, job, "email")["status"] == "SENT"
    assert ran == [1]
    assert flow.send(run, job, "sms")["reason"] == "ClaimLost"
    record = reminder(flow.deployment, RID)
    assert (record["state"], record["reason"]) == ("SENT", "AppointmentCancelled"), "the record says it went out"
    assert len(flow.emails()) == 1 and flow.texts() == []


@pytest.mark.parametrize("dies_after", [2, 3])
def test_1_a_sender_that_dies_while_recording_over_a_cancel_leaves_no_record_that_says_cancelled_and_sent(
    flow: Workflow, clock: Any, dies_after: int
) -> None:
    """The cancel is decided while the email is on its way; the sender then dies after its second or
    third write (its result refused on the cancelled record, then the result and SENT in one). Before
    the fix, the result and the record's SENT were two writes, and a sender dying between them left
    a record that said CANCELLED with its email SENT."""
    book(flow, DAY + HOUR, 1)
    clock.shift(HOUR)
    run = claimed(flow)
    (job,) = run.jobs
    with (
        after_call(flow.deployment, SENDERS["email"], "SendEmail", lambda: cancel(flow, DAY, 2)),
        after_call(flow.deployment, SENDERS["email"], "UpdateItem", die, nth=dies_after),
        pytest.raises(Crash),
    ):
        flow.send(run, job, "email")
    assert flow.send(run, job, "email")["reason"] == "ClaimLost", "the workflow's retry sends nothing"
    record = reminder(flow.deployment, RID)
    said = (record["state"], record["reason"], record["emailResult"]["status"])
    if dies_after == 2:
        assert said == ("CANCELLED", "AppointmentCancelled", "SENDING"), "it may have gone out: it says no more"
    else:
        assert said == ("SENT", "AppointmentCancelled", "SENT"), "the record says it went out"
    assert len(flow.emails()) == 1 and flow.texts() == []


# ---- 2. a final record refuses its old claim token -----------------------------------------------


@pytest.mark.parametrize("finish", ["cancelled", "skipped", "sent"])
def test_2_a_redriven_iteration_with_an_old_token_sends_and_records_nothing(
    flow: Workflow, clock: Any, finish: str
) -> None:
    book(flow, DAY + HOUR, 1)
    clock.shift(HOUR)
    run = claimed(flow)
    (job,) = run.jobs
    if finish == "cancelled":
        cancel(flow, DAY, 2)
    elif finish == "skipped":
        clock.shift(CLAIM_LEASE_SECONDS + 1)  # the claim lapses; the appointment starts; another run skips it
        clock.shift(DAY)
        flow.complete(Run(SCHEDULED))
    else:
        flow.deliver(run)
    before = reminder(flow.deployment, RID)
    sent = (len(flow.emails()), len(flow.texts()))
    redriven = Run(SCHEDULED)  # a redrive re-runs the unfinished iteration with the same job
    for channel in SENDERS:
        assert flow.send(redriven, job, channel)["status"] in ("SKIPPED", "SENT")
    assert flow.update(redriven, job)["recorded"] is False
    assert (len(flow.emails()), len(flow.texts())) == sent
    assert reminder(flow.deployment, RID) == before


# ---- 3. twice for the same time, or a wrong final state ----------------------------------------


def test_3_moved_and_moved_back_is_not_reminded_twice_for_the_same_time(flow: Workflow, clock: Any) -> None:
    book(flow, DAY - HOUR, 1)  # short notice: reminded at once for T1
    assert len(flow.emails()) == 1 and len(flow.texts()) == 1
    book(flow, 3 * DAY, 2)  # moved to T2: re-planned
    assert reminder(flow.deployment, RID)["state"] == "PENDING"
    book(flow, DAY - HOUR, 3)  # moved back to T1: due at once, but already sent for T1
    assert len(flow.emails()) == 1 and len(flow.texts()) == 1
    record = reminder(flow.deployment, RID)
    assert record["state"] == "SENT" and record["emailResult"]["reason"] == "AlreadySent"


def test_3_a_claim_that_sent_and_died_then_a_cancel_then_a_rebooking_sends_nothing_again(
    flow: Workflow, clock: Any
) -> None:
    book(flow, DAY + HOUR, 1)
    clock.shift(HOUR)
    run = claimed(flow)
    (job,) = run.jobs
    flow.send(run, job, "email")  # sent; the run dies before the SMS and before recording
    cancel(flow, DAY, 2)
    record = reminder(flow.deployment, RID)
    assert (record["state"], record["reason"]) == ("SENT", "AppointmentCancelled"), "the email went out: it says so"
    book(flow, DAY + HOUR, 3)  # re-booked at the same time, and due: this reminder went out already
    assert len(flow.emails()) == 1, "not twice for the same time"
    assert flow.texts() == [], "the reminder for this time is settled: it was sent (by email)"
    assert reminder(flow.deployment, RID)["state"] == "SENT"


def test_3_sent_moved_away_and_back_then_cancelled_before_a_new_claim_says_sent(flow: Workflow, clock: Any) -> None:
    """The re-plan for T1 has no channel result, only the ``sent`` ledger says the reminder for T1
    went out (by the first plan): the cancel's final write must read it and record SENT, not
    CANCELLED (row 2c through the ledger: ``went_out`` in process_appointments.py)."""
    book(flow, DAY - HOUR, 1)  # short notice: reminded at once for T1
    assert len(flow.emails()) == 1 and len(flow.texts()) == 1
    book(flow, 3 * DAY, 2)  # moved to T2: re-planned, the results gone, the ledger kept
    put_appointment(flow.deployment, appointment("a1", DAY - HOUR))  # moved back to T1: due at once
    back = Run([change("a1", "MODIFY", 3)])
    with after_call(flow.deployment, PROCESSOR, "UpdateItem", die), pytest.raises(Crash):
        flow.process(back)  # re-planned for T1, then the invocation dies before it claims
    record = reminder(flow.deployment, RID)
    assert (record["state"], "emailResult" in record, "smsResult" in record) == ("PENDING", False, False)
    cancel(flow, DAY - HOUR, 4)
    flow.complete(Run(back.source, execution=back.execution, started=back.started))  # the workflow's retry
    record = reminder(flow.deployment, RID)
    assert (record["state"], record["reason"]) == ("SENT", "AppointmentCancelled"), "it went out for T1: it says so"
    assert len(flow.emails()) == 1 and len(flow.texts()) == 1, "nothing more"


# ---- 4. late or lost -------------------------------------------------------------------------------


def test_4_a_retried_processor_takes_back_its_own_claims_another_execution_does_not(flow: Workflow, clock: Any) -> None:
    book(flow, DAY + HOUR, 1)
    clock.shift(HOUR)
    run = claimed(flow)  # its invocation wrote the claim, then timed out: the answer was lost
    other = Run(SCHEDULED)
    assert flow.process(other)["jobs"] == [], "another execution does not take a live claim"
    assert flow.process(run, retry=1)["jobs"][0]["reminderId"] == RID, "the retry takes it back at once"
    (job,) = run.jobs
    for channel in SENDERS:
        flow.send(run, job, channel)
    assert flow.update(run, job)["recorded"] is True
    assert len(flow.emails()) == 1 and reminder(flow.deployment, RID)["state"] == "SENT"


def test_4_a_short_notice_stream_run_retried_after_its_claims_sends_at_once(flow: Workflow) -> None:
    put_appointment(flow.deployment, appointment("a1", DAY - HOUR))
    run = Run([change("a1", "INSERT", 1)])
    flow.process(run)  # planned and claimed, then the invocation timed out
    flow.process(run, retry=1)
    assert [job["reminderId"] for job in run.jobs] == [RID]


def test_4_a_mark_whose_answer_was_lost_is_recognised_and_the_message_sent_once(
    flow: Workflow, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    book(flow, DAY + HOUR, 1)
    clock.shift(HOUR)
    run = claimed(flow)
    (job,) = run.jobs
    module = flow.deployment.functions[flow.deployment.resources[SENDERS["email"]].ref].module
    marks = module.deliver_message.__globals__  # channel_marks, bundled with the sender
    client = marks["reminders"]
    write = client.update_item
    repeated = []

    def lost_answer(**params: Any) -> Any:
        """The first mark is written, its answer lost: botocore sends the same write again."""
        answer = write(**params)
        if not repeated and "ADD sent" in params["UpdateExpression"]:
            repeated.append(params)
            return write(**params)  # refused by its own condition: the mark is there already
        return answer

    monkeypatch.setattr(client, "update_item", lost_answer)
    assert flow.send(run, job, "email")["status"] == "SENT"
    assert repeated and len(flow.emails()) == 1


def test_5_a_sender_retried_while_its_first_attempt_still_sends_waits_and_never_says_failed(
    flow: Workflow, clock: Any
) -> None:
    book(flow, DAY + HOUR, 1)
    clock.shift(HOUR)
    run = claimed(flow)
    (job,) = run.jobs
    second: list[Any] = []

    def retried_meanwhile() -> None:
        try:
            flow.send(run, job, "email")
        except Exception as error:  # noqa: BLE001 - the answer is the error
            second.append(error)

    # The first attempt has marked the channel and is between its mark and SES's answer when the
    # workflow's retry of the same task starts.
    with after_call(flow.deployment, SENDERS["email"], "UpdateItem", retried_meanwhile):
        first = flow.send(run, job, "email")
    (error,) = second
    assert "SendInProgress" in str(error), "the retry is told to wait, not FAILED"
    assert first["status"] == "SENT" and len(flow.emails()) == 1
    assert flow.send(run, job, "email")["status"] == "SENT", "a later retry answers from the mark"
    assert len(flow.emails()) == 1


# ---- 5. risks ------------------------------------------------------------------------------------


def test_5_an_older_stream_run_that_writes_last_does_not_undo_a_newer_cancel(flow: Workflow) -> None:
    put_appointment(flow.deployment, appointment("a1", 3 * DAY))
    older = Run([change("a1", "INSERT", 1)])

    def the_booking_app_cancels_and_its_run_completes() -> None:
        cancel(flow, 3 * DAY, 2)

    # The older run read the booked appointment; before it writes its plan, the cancel's run
    # (a newer change) completes.
    with after_call(flow.deployment, PROCESSOR, "BatchGetItem", the_booking_app_cancels_and_its_run_completes):
        flow.process(older)
    record = reminder(flow.deployment, RID)
    assert record["state"] == "CANCELLED", "the older change's plan was refused by its version"


def test_5_an_older_move_that_writes_last_does_not_revert_a_newer_one(flow: Workflow) -> None:
    book(flow, 3 * DAY, 1)
    put_appointment(flow.deployment, appointment("a1", 4 * DAY))
    older = Run([change("a1", "MODIFY", 2)])

    def moved_again_and_planned() -> None:
        book(flow, 5 * DAY, 3)

    with after_call(flow.deployment, PROCESSOR, "BatchGetItem", moved_again_and_planned):
        flow.process(older)
    assert reminder(flow.deployment, RID)["appointmentTime"] == flow_now(flow) + 5 * DAY


def test_5_a_late_retry_of_an_older_deferral_does_not_take_a_newer_one_for_its_own(flow: Workflow, clock: Any) -> None:
    """Both channels still throttled: run 1 defers a1#1440 (deferrals 1); after the backoff run 2
    claims it and defers it again (deferrals 2). Then the workflow's retry of run 1's status updater
    arrives (its first answer was lost): the record is a deferral for the same time, without a claim,
    and no channel result carries a token. Only the deferral count says it is not run 1's: nothing
    is recorded or announced again (no second RemindersDeferred line)."""
    book(flow, DAY + HOUR, 1)
    clock.shift(HOUR)
    throttled = [{"channel": channel, "status": "ERROR", "reason": "RetryableError"} for channel in SENDERS]
    first = claimed(flow)
    (older,) = first.jobs
    assert flow.update(first, older, throttled)["recorded"] is True
    clock.shift(60)  # the first deferral's backoff
    second = claimed(flow)
    (newer,) = second.jobs
    assert newer["deferrals"] == 1
    assert flow.update(second, newer, throttled)["recorded"] is True
    assert reminder(flow.deployment, RID)["deferrals"] == 2
    assert flow.update(first, older, throttled) == {"reminderId": RID, "state": "DEFERRED", "recorded": False}


def test_5_a_job_that_arrives_after_the_appointment_started_sends_nothing(flow: Workflow, clock: Any) -> None:
    book(flow, DAY + HOUR, 1)
    clock.shift(HOUR)
    run = claimed(flow)
    (job,) = run.jobs
    clock.shift(DAY + 1)
    for channel in SENDERS:
        assert flow.send(run, job, channel)["reason"] == "AppointmentStarted"
    assert flow.emails() == [] and flow.texts() == []


# ---- the conditions the suite once missed ---------------------------------------------------------


def test_a_reminder_moved_between_the_processors_read_and_its_claim_is_not_claimed_for_the_old_time(
    flow: Workflow, clock: Any
) -> None:
    book(flow, DAY + HOUR, 1)
    clock.shift(HOUR)
    run = Run(SCHEDULED)

    def moved_and_replanned() -> None:
        book(flow, 3 * DAY, 2)

    # The schedule run read the appointment at its old time; the move is planned before it claims.
    with after_call(flow.deployment, PROCESSOR, "BatchGetItem", moved_and_replanned):
        flow.process(run)
    assert run.jobs == [], "the claim is conditional on the time it decided on"
    record = reminder(flow.deployment, RID)
    assert (record["state"], record["appointmentTime"]) == ("PENDING", flow_now(flow) + 3 * DAY)


def test_a_final_decision_is_conditional_on_the_time_it_was_made_for(flow: Workflow, clock: Any) -> None:
    """A reminder found due after its appointment started would be SKIPPED; the appointment moves
    (and is re-planned) between the read and the write: the SKIPPED write is refused."""
    book(flow, DAY + HOUR, 1)
    clock.shift(DAY + 2 * HOUR)  # the appointment has started; nobody reminded it (the system was down)
    run = Run(SCHEDULED)

    def moved_and_replanned() -> None:
        book(flow, 3 * DAY, 2)

    with after_call(flow.deployment, PROCESSOR, "BatchGetItem", moved_and_replanned):
        flow.process(run)
    assert reminder(flow.deployment, RID)["state"] == "PENDING"


#: A schedule run's decisions (rows 3-6 of handlers/README.md), each with what makes it: the
#: booking's fields, how far the clock moves from START, what the booking app does before the
#: run (no stream run for it), and where the appointment moves while the run is paused: a time
#: whose 1440-minute reminder is due too (and whose 60-minute one is not), so that the re-plan
#: leaves a1#1440 open: only the decision's ``appointmentTime`` condition can refuse its write.
DECISIONS = {
    "claim": ({}, HOUR, None, DAY + HOUR // 2),
    "cancelled": ({}, HOUR, "cancel", DAY + HOUR // 2),
    "deleted": ({}, HOUR, "delete", DAY + HOUR // 2),
    "started": ({}, DAY + 2 * HOUR, None, DAY + 4 * HOUR),
    "superseded": ({}, DAY + HOUR // 2, None, DAY + 5 * HOUR // 2),
    "no-channel": ({"notificationChannels": []}, HOUR, None, DAY + HOUR // 2),
}


@pytest.mark.parametrize(("fields", "shift", "before", "moved_to"), DECISIONS.values(), ids=DECISIONS)
def test_a_decision_made_for_a_time_does_not_land_on_a_replan_for_another_that_is_due_too(
    deploy: Any, clock: Any, fields: dict[str, Any], shift: int, before: str | None, moved_to: int
) -> None:
    """Issue 13 (a): the claim's write, and each final-state write of a schedule run, is conditional
    on the appointment time it decided for. The appointment moves (and is re-planned) between the
    run's read and its write, to a time at which a1#1440 is open as well: without that condition the
    stale claim (a job with the old time) or the stale final state (the new time's reminder lost)
    would land. The test_a_... tests above move it to a time not yet due, where the open condition
    alone refuses the write. Two offsets, so that a smaller one can supersede a1#1440."""
    flow = Workflow(deploy(ReminderOffsetsMinutes="1440,60"))
    book(flow, DAY + HOUR, 1, **fields)
    clock.shift(shift)
    if before == "cancel":
        put_appointment(flow.deployment, appointment("a1", DAY + HOUR, status="CANCELLED"))
    elif before == "delete":
        delete_appointment(flow.deployment, "a1")
    schedule = Run(SCHEDULED)
    move = Run([change("a1", "MODIFY", 2), change("a1", "MODIFY", 3)])

    def moved_and_its_processor_dies_before_claiming() -> None:
        """The move's stream run re-plans a1#60 (not due), then a1#1440 (due), and dies before it
        claims a1#1440 (its retry claims it later): the new plan is open while the schedule run writes."""
        put_appointment(flow.deployment, appointment("a1", moved_to))
        with after_call(flow.deployment, PROCESSOR, "UpdateItem", die, nth=2), pytest.raises(Crash):
            flow.process(move)
        record = reminder(flow.deployment, RID)
        replanned = (record["state"], record["appointmentTime"], "claimToken" in record)
        assert replanned == ("PENDING", NOW + moved_to, False)

    with after_call(flow.deployment, PROCESSOR, "BatchGetItem", moved_and_its_processor_dies_before_claiming) as ran:
        flow.process(schedule)
    assert ran == [1]
    assert schedule.jobs == [], "no claim for the time the run decided on"
    record = reminder(flow.deployment, RID)
    assert (record["state"], record["appointmentTime"]) == ("PENDING", NOW + moved_to), "the new time's plan stands"

    flow.process(move, retry=1)  # the workflow's retry of the move's processor claims it
    flow.deliver(move)
    assert flow.emails() == ["a1@example.com"], "reminded once, for the new time"
    assert reminder(flow.deployment, RID)["state"] == "SENT"


def flow_now(flow: Workflow) -> int:
    """The START the appointments were booked from (the support module's NOW)."""
    from tests.support import NOW

    return NOW


# ---- found by exploring (fixed): a schedule run's final write carried no version; the ledger -------


def test_a_schedule_run_s_stale_cancel_does_not_undo_a_rebooking_at_the_same_time(flow: Workflow, clock: Any) -> None:
    book(flow, DAY + HOUR, 1)
    clock.shift(HOUR)  # a1#1440 is due
    put_appointment(flow.deployment, appointment("a1", DAY + HOUR, status="CANCELLED"))  # change 2, on its way
    schedule = Run(SCHEDULED)
    rebooking = Run([change("a1", "MODIFY", 2), change("a1", "MODIFY", 3)])

    def rebooked_and_its_processor_dies_before_claiming() -> None:
        """The booking app books a1 again at the same time (change 3). The stream run of both
        changes records change 3 on the reminder (its plan for that time stands: row 1b), then its
        invocation times out before it claims the reminder; the workflow retries it a moment later."""
        put_appointment(flow.deployment, appointment("a1", DAY + HOUR))
        with after_call(flow.deployment, PROCESSOR, "UpdateItem", die, nth=2), pytest.raises(Crash):
            flow.process(rebooking)
        assert reminder(flow.deployment, RID)["state"] == "PENDING"

    # The schedule run read a1 cancelled; before it writes CANCELLED, the re-booking happens.
    with after_call(flow.deployment, PROCESSOR, "BatchGetItem", rebooked_and_its_processor_dies_before_claiming) as ran:
        flow.process(schedule)
    assert ran == [1]
    flow.process(rebooking, retry=1)  # the workflow's retry of the re-booking's processor
    flow.deliver(rebooking)
    clock.shift(CLAIM_LEASE_SECONDS + 1)
    flow.complete(Run(SCHEDULED))
    record = reminder(flow.deployment, RID)
    assert (record["state"], record.get("reason")) != ("CANCELLED", "AppointmentCancelled"), "a1 is booked"
    assert len(flow.emails()) == 1, "the re-booked appointment is reminded: nothing lost"


def test_an_attempt_that_died_after_its_mark_is_not_said_sent_after_a_replan(flow: Workflow, clock: Any) -> None:
    book(flow, DAY + HOUR, 1, notificationChannels={"email"})
    clock.shift(HOUR)
    run = claimed(flow)
    (job,) = run.jobs
    # The email's sender dies after its mark, before SES is called: nothing went out.
    with after_call(flow.deployment, SENDERS["email"], "UpdateItem", die), pytest.raises(Crash):
        flow.send(run, job, "email")
    cancel(flow, DAY + HOUR, 2)
    book(flow, DAY + HOUR, 3, notificationChannels={"email"})  # booked again for the same time: due at once
    assert flow.emails() == [], "never sent twice: the mark may hide a message that went out"
    record = reminder(flow.deployment, RID)
    assert record["state"] != "SENT", f"nothing went out, the record says {record['emailResult']}"


def sent_for_t1_and_cancelled_by_a_processor_that_dies_before_its_correction(flow: Workflow) -> Run:
    """a1 reminded at once for T1, moved to T2, moved back to T1 (re-planned, open: its processor dies
    before it claims), then cancelled (change 4): that run's processor writes CANCELLED, which the
    ledger contradicts, and dies before its correction to SENT. The cancel's run, for its retry."""
    book(flow, DAY - HOUR, 1)  # short notice: reminded at once for T1
    book(flow, 3 * DAY, 2)  # moved to T2: re-planned, the ledger kept
    put_appointment(flow.deployment, appointment("a1", DAY - HOUR))  # moved back to T1: open, due at once
    with after_call(flow.deployment, PROCESSOR, "UpdateItem", die), pytest.raises(Crash):
        flow.process(Run([change("a1", "MODIFY", 3)]))  # re-planned for T1, then dies before it claims
    put_appointment(flow.deployment, appointment("a1", DAY - HOUR, status="CANCELLED"))
    cancelled = Run([change("a1", "MODIFY", 4)])
    with after_call(flow.deployment, PROCESSOR, "UpdateItem", die), pytest.raises(Crash):
        flow.process(cancelled)
    assert reminder(flow.deployment, RID)["state"] == "CANCELLED"
    return cancelled


def test_a_final_decision_whose_processor_dies_before_its_correction_says_sent_after_the_retry(
    flow: Workflow, clock: Any
) -> None:
    """Found by the long run (seed 202): a final decision on a reminder that went out for its time
    is two writes (the final state, then the correction to SENT: row 2c). The processor dies between
    them; the workflow's retry finds the record final already, and must still make it tell the truth."""
    cancelled = sent_for_t1_and_cancelled_by_a_processor_that_dies_before_its_correction(flow)
    flow.process(cancelled, retry=1)  # the workflow's retry
    record = reminder(flow.deployment, RID)
    assert (record["state"], record["reason"]) == ("SENT", "AppointmentCancelled"), "it went out for T1: it says so"
    assert len(flow.emails()) == 1 and len(flow.texts()) == 1, "nothing more"


def test_a_newer_change_that_corrects_a_final_record_is_recorded_so_no_older_one_undoes_it(
    flow: Workflow, clock: Any
) -> None:
    sent_for_t1_and_cancelled_by_a_processor_that_dies_before_its_correction(flow)
    put_appointment(flow.deployment, appointment("a1", 3 * DAY))  # then moved to T2 (change 5)
    older = Run([change("a1", "MODIFY", 5)])

    def deleted_and_its_run_completes() -> None:
        """Change 6 deletes a1; its run finds the reminder final, and corrects it to SENT (row 2c)."""
        delete_appointment(flow.deployment, "a1")
        flow.complete(Run([change("a1", "REMOVE", 6)]))
        assert reminder(flow.deployment, RID)["state"] == "SENT"

    # Change 5's run read a1 at T2; before it writes its plan, change 6's run completes.
    with after_call(flow.deployment, PROCESSOR, "BatchGetItem", deleted_and_its_run_completes) as ran:
        flow.process(older)
    assert ran == [1]
    record = reminder(flow.deployment, RID)
    assert (record["state"], record["version"]) == ("SENT", "6".zfill(40)), "the older change's plan was refused"
    assert len(flow.emails()) == 1 and len(flow.texts()) == 1, "nothing more"


def test_a_second_claim_whose_senders_run_late_does_not_undo_what_the_first_sent(flow: Workflow, clock: Any) -> None:
    """Found by the long run (seed 303): the first claim's email went out, then its execution died.
    The second claim of the same plan, made minutes before the appointment, runs its senders once
    it has started: they answer AppointmentStarted without asking the record, and the status
    updater recorded that over the email the first claim sent (the record said SKIPPED)."""
    put_appointment(flow.deployment, appointment("a1", 10 * 60))  # in ten minutes: its reminder is due at once
    first = Run([change("a1", "INSERT", 1)])
    flow.process(first)
    (job,) = first.jobs
    flow.send(first, job, "email")  # sent; then the execution dies
    clock.shift(CLAIM_LEASE_SECONDS + 1)  # its claim lapses
    second = Run(SCHEDULED)
    flow.process(second)  # claimed again, four minutes before the appointment
    assert [job["reminderId"] for job in second.jobs] == [RID]
    clock.shift(4 * 60)  # a slow execution: its senders run once the appointment has started
    flow.deliver(second)
    record = reminder(flow.deployment, RID)
    assert (record["state"], record["emailResult"]["status"]) == ("SENT", "SENT"), "the email went out: it says so"
    assert len(flow.emails()) == 1 and flow.texts() == []


def test_a_late_job_for_a_time_an_earlier_plan_sent_does_not_say_skipped(flow: Workflow, clock: Any) -> None:
    """Found by the long run (seed 606, 20 steps): sent for T1, moved to T2, moved back to T1 and
    claimed again at once (the results gone with the re-plan; ``delivered`` says T1 went out); that
    job's senders run once the appointment has started and answer AppointmentStarted without asking
    the record. The record must not say SKIPPED for a time that went out."""
    book(flow, 10 * 60, 1)  # in ten minutes: reminded at once for T1
    book(flow, 3 * DAY, 2)  # moved to T2: re-planned
    put_appointment(flow.deployment, appointment("a1", 10 * 60))
    back = Run([change("a1", "MODIFY", 3)])
    flow.process(back)  # moved back to T1: re-planned and claimed at once
    assert [job["reminderId"] for job in back.jobs] == [RID]
    clock.shift(11 * 60)  # a slow execution: its senders run once the appointment has started
    flow.deliver(back)
    record = reminder(flow.deployment, RID)
    assert (record["state"], record["emailResult"]["status"]) == ("SENT", "SENT"), "T1's reminder went out"
    assert len(flow.emails()) == 1 and len(flow.texts()) == 1, "nothing more"


def an_uncertain_email_replanned_for_the_same_time(flow: Workflow, clock: Any) -> None:
    """Found by the long run on the final code (seed 606, 20 steps). The email goes out while a1 is
    being cancelled and its sender dies before recording it: the record says CANCELLED with the
    email's mark SENDING (it may have gone out). a1 is booked again at the same time: the re-plan
    clears the results (only ``sent`` keeps email@T), and the reminder is claimed at once."""
    book(flow, DAY + HOUR, 1)
    clock.shift(HOUR)
    run = claimed(flow)
    (job,) = run.jobs
    with (
        after_call(flow.deployment, SENDERS["email"], "SendEmail", lambda: cancel(flow, DAY + HOUR, 2)),
        after_call(flow.deployment, SENDERS["email"], "UpdateItem", die, nth=2),
        pytest.raises(Crash),
    ):
        flow.send(run, job, "email")
    assert reminder(flow.deployment, RID)["emailResult"]["status"] == "SENDING", "it may have gone out"
    put_appointment(flow.deployment, appointment("a1", DAY + HOUR))  # booked again at the same time
    flow.process(Run([change("a1", "MODIFY", 3)]))
    assert "emailResult" not in reminder(flow.deployment, RID), "the re-plan cleared the mark"


def assert_the_email_may_have_gone_out(flow: Workflow) -> None:
    record = reminder(flow.deployment, RID)
    assert record["state"] == "CANCELLED"
    assert record.get("emailResult") == {"status": "FAILED", "reason": "OutcomeUnknown"}, "it may have gone out"
    assert len(flow.emails()) == 1, "sent once, never again"


def test_a_send_whose_outcome_is_unknown_stays_visible_after_a_same_time_replan_and_a_cancel(
    flow: Workflow, clock: Any
) -> None:
    """Cancelled again before the new claim's senders run: the final decision says what the
    cleared mark said, the email FAILED with an unknown outcome (row 2d)."""
    an_uncertain_email_replanned_for_the_same_time(flow, clock)
    cancel(flow, DAY + HOUR, 4)
    assert_the_email_may_have_gone_out(flow)


def test_a_final_decision_whose_processor_dies_before_it_shows_an_unknown_outcome_shows_it_on_the_retry(
    flow: Workflow, clock: Any
) -> None:
    """The cancel's processor dies between its final write and the write that shows the unknown
    outcome: the workflow's retry finds the record final already, and shows it (row 2d)."""
    an_uncertain_email_replanned_for_the_same_time(flow, clock)
    put_appointment(flow.deployment, appointment("a1", DAY + HOUR, status="CANCELLED"))
    cancelled = Run([change("a1", "MODIFY", 4)])
    with after_call(flow.deployment, PROCESSOR, "UpdateItem", die), pytest.raises(Crash):
        flow.process(cancelled)
    assert "emailResult" not in reminder(flow.deployment, RID), "the processor died before showing it"
    flow.process(cancelled, retry=1)  # the workflow's retry
    assert_the_email_may_have_gone_out(flow)
