"""The claim protocol as a state machine of actors, checked after every step (Hypothesis).

The actors are the booking app (book, move, cancel, delete, re-book), the stream (delivering
changes in order, out of order, or twice), the schedule, the workflow's steps (each sender, the
status updater) in any interleaving, crashes (a run that stops after any step, a sender that dies
after its mark), retries (a step run again, the processor retried within its execution), and the
clock (a lease running out, an appointment starting). The invariants are the promises of
DESIGN.md, "Reminder semantics":

1. at most once per appointment time, offset and channel;
2. nothing for a cancelled, deleted, moved or past appointment, once the system has seen the change;
3. nothing lost: after everything has settled, every booked appointment's reminders are planned
   for its time, or settled as the rules say;
4. a record that tells the truth: SENT when (and only when) something went out for its time.

Used by tests/test_protocol_properties.py (a bounded run in CI) and benchmarks/explore_protocol.py
(a long one). One deployment serves every example: ``reset`` empties it between them.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tapstack.local import LocalDeployment
from tests.protocol import SCHEDULED, SENDERS, Run, Workflow, after_call, change
from tests.support import DAY, HOUR, START, delete_appointment, put_appointment

APPOINTMENTS = ("a1", "a2")
OFFSETS = (1440, 60)
#: When an appointment starts, from now: some with reminders due at once, some later, some past.
STARTS = (-HOUR, 30 * 60, 2 * HOUR, 23 * HOUR, 25 * HOUR, 3 * DAY)
#: How far the clock moves: a moment, a schedule period, a lease, an hour, a day.
STEPS = (30, 120, 361, HOUR, DAY)


class Crash(BaseException):
    """A Lambda invocation that dies (not an exception its handler could catch)."""


@dataclass
class Booking:
    time: int
    booked: bool = True
    channels: tuple[str, ...] = ("email", "sms")


@dataclass
class InFlight:
    run: Run
    steps: dict[str, list[str]] = field(default_factory=dict)  # reminderId → steps left, in order


@dataclass
class Send:
    reminder_id: str
    time: int
    channel: str


class World:
    """What the machine drives and remembers, on one deployment."""

    def __init__(self, deployment: LocalDeployment, clock: Any) -> None:
        self.deployment = deployment
        self.clock = clock
        self.flow = Workflow(deployment)
        #: What every example so far did: the actors' steps, sends, crashes... (for the long run's report).
        self.totals: Counter[str] = Counter()
        self.sends: list[Send] = []
        self.reset()

    def count(self, what: str) -> None:
        self.totals[what] += 1

    def reset(self) -> None:
        self.totals["sends"] += len(self.sends)
        deployment = self.deployment
        for suffix in ("AppointmentsTable", "RemindersTable"):
            name = deployment.table_name(suffix)
            key = "appointmentId" if suffix == "AppointmentsTable" else "reminderId"
            for item in deployment.client("dynamodb").scan(TableName=name, ConsistentRead=True)["Items"]:
                deployment.client("dynamodb").delete_item(TableName=name, Key={key: item[key]})
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.ses.models import ses_backends
        from moto.sns.models import sns_backends

        ses_backends[DEFAULT_ACCOUNT_ID][deployment.region].sent_messages.clear()
        sns_backends[DEFAULT_ACCOUNT_ID][deployment.region].sms_messages.clear()
        self.clock.move_to(START)
        monitor = deployment.monitor
        monitor.calls.clear(), monitor.invocations.clear(), monitor.logs.clear()
        self.bookings: dict[str, Booking] = {}
        self.sequence = itertools.count(1)
        self.pending: list[dict[str, Any]] = []
        #: What the system has seen of each appointment: its state when a stream run last read it.
        self.seen: dict[str, Booking | None] = {}
        self.processed: dict[str, int] = {}  # the newest change of each appointment a run processed
        self.in_flight: list[InFlight] = []
        self.sends: list[Send] = []
        self.violations: list[str] = []

    @property
    def now(self) -> int:
        return int(time.time())  # the frozen clock the handlers read too

    # ---- the booking app --------------------------------------------------------------------------

    def write(self, appointment_id: str, booking: Booking | None) -> None:
        if booking is None:
            delete_appointment(self.deployment, appointment_id)
            event = "REMOVE"
        else:
            item = {
                "appointmentId": appointment_id,
                "appointmentTime": booking.time,
                "status": "BOOKED" if booking.booked else "CANCELLED",
                "customerEmail": f"{appointment_id}@example.com",
                "customerPhone": "+15555550123",
                "notificationChannels": set(booking.channels),
            }
            put_appointment(self.deployment, item)
            event = "MODIFY" if appointment_id in self.bookings else "INSERT"
        self.pending.append(change(appointment_id, event, next(self.sequence)))
        if booking is None:
            self.bookings.pop(appointment_id, None)
        else:
            self.bookings[appointment_id] = booking

    # ---- runs -------------------------------------------------------------------------------------

    def start(self, run: Run) -> None:
        """A run's processor; what it read of each changed appointment is now seen."""
        self.process(run)
        if run.jobs:  # a run that claimed nothing is over
            self.in_flight.append(InFlight(run, {job["reminderId"]: ["email", "sms", "update"] for job in run.jobs}))

    def process(self, run: Run, retry: int = 0) -> None:
        """The processor's invocation. The system has seen what a run read of an appointment when
        the run carries its newest change so far (a run of an older change applies nothing: its
        version is refused)."""
        newest: dict[str, int] = {}
        for c in run.source if isinstance(run.source, list) else []:
            appointment_id = c["keys"]["appointmentId"]["S"]
            newest[appointment_id] = max(newest.get(appointment_id, 0), int(c["sequenceNumber"]))
        snapshot = {a: self.copy(a) for a, sequence in newest.items() if sequence >= self.processed.get(a, 0)}
        self.flow.process(run, retry)
        self.seen.update(snapshot)
        for appointment_id in snapshot:
            self.processed[appointment_id] = newest[appointment_id]

    def retry(self, flight: InFlight) -> None:
        """The workflow retries the processor within the same execution (its answer was lost)."""
        self.process(flight.run, retry=1)  # its answer replaces the lost one: the run goes on with it
        flight.steps = {
            job["reminderId"]: flight.steps.get(job["reminderId"], ["email", "sms", "update"])
            for job in flight.run.jobs
        }

    def copy(self, appointment_id: str) -> Booking | None:
        booking = self.bookings.get(appointment_id)
        return None if booking is None else Booking(booking.time, booking.booked, booking.channels)

    def step(self, flight: InFlight, reminder_id: str, crash: str | None = None) -> None:
        """The job's next step: a sender (possibly dying after its mark, or after the provider
        accepted), or the status updater."""
        job = next(job for job in flight.run.jobs if job["reminderId"] == reminder_id)
        kind = flight.steps[reminder_id].pop(0)
        if kind == "update":
            self.flow.update(flight.run, job)
            return
        self.send(flight.run, job, kind, crash)

    def send(self, run: Run, job: dict[str, Any], channel: str, crash: str | None = None) -> None:
        provider = {"email": "SendEmail", "sms": "Publish"}[channel]
        before = self.provider_calls(channel)
        try:
            if crash == "after-mark":
                with after_call(self.deployment, SENDERS[channel], "UpdateItem", self.die):
                    self.flow.send(run, job, channel)
            elif crash == "after-send":
                with after_call(self.deployment, SENDERS[channel], provider, self.die):
                    self.flow.send(run, job, channel)
            else:
                self.flow.send(run, job, channel)
        except Crash:
            # The invocation died (Lambda.Unknown); past the workflow's retries, its Catch reports it.
            self.caught(run, job, channel, "Lambda.Unknown")
        except Exception as error:
            if "RetryableError" not in str(error):
                raise
            self.caught(run, job, channel, "RetryableError")
        for _ in range(self.provider_calls(channel) - before):
            self.record_send(job, channel)

    @staticmethod
    def caught(run: Run, job: dict[str, Any], channel: str, error: str) -> None:
        answer = {"channel": channel, "status": "ERROR", "reason": error}
        run.results.setdefault(job["reminderId"], {}).setdefault(channel, []).append(answer)

    @staticmethod
    def die() -> None:
        raise Crash

    def provider_calls(self, channel: str) -> int:
        operation = {"email": "SendEmail", "sms": "Publish"}[channel]
        return sum(
            1
            for call in self.deployment.monitor.calls
            if call.function == SENDERS[channel] and call.operation == operation
        )

    def record_send(self, job: dict[str, Any], channel: str) -> None:
        reminder_id, time = job["reminderId"], job["appointmentTime"]
        self.sends.append(Send(reminder_id, time, channel))
        appointment_id = reminder_id.rpartition("#")[0]
        seen = self.seen.get(appointment_id, "never")
        if self.now >= time:
            self.violations.append(f"{reminder_id} {channel} sent at or after its appointment started")
        if seen is None or (isinstance(seen, Booking) and (not seen.booked or seen.time != time)):
            self.violations.append(f"{reminder_id} {channel} sent for {time} though the system had seen {seen}")

    # ---- checks -----------------------------------------------------------------------------------

    def reminders(self) -> dict[str, dict[str, Any]]:
        from boto3.dynamodb.types import TypeDeserializer

        deserialize = TypeDeserializer().deserialize
        table = self.deployment.table_name("RemindersTable")
        items = self.deployment.client("dynamodb").scan(TableName=table, ConsistentRead=True)["Items"]
        return {item["reminderId"]["S"]: {k: deserialize(v) for k, v in item.items()} for item in items}

    def at_most_once(self) -> list[str]:
        counts = Counter((s.reminder_id, s.time, s.channel) for s in self.sends)
        return [f"{key} sent {n} times" for key, n in counts.items() if n > 1]

    def truthful(self) -> list[str]:
        wrong = []
        went_out = {(s.reminder_id, s.time) for s in self.sends}
        for reminder_id, record in self.reminders().items():
            time = record.get("appointmentTime")
            if time is None or record.get("state") in ("PENDING", "SENDING"):
                continue
            if record["state"] == "SENT" and (reminder_id, time) not in went_out:
                wrong.append(f"{reminder_id} says SENT for {time}, nothing went out")
            # A channel still SENDING (its attempt died, or is on its way) or answered OutcomeUnknown
            # says what the system knows: the message may have gone out.
            results = [record.get(f"{c}Result", {}) for c in SENDERS]
            unknown = any(r.get("status") == "SENDING" or r.get("reason") == "OutcomeUnknown" for r in results)
            if record["state"] != "SENT" and (reminder_id, time) in went_out and not unknown:
                wrong.append(f"{reminder_id} says {record['state']} ({record.get('reason')}) though it went out")
        return wrong

    def settle(self) -> list[str]:
        """Everything the system still owes, done: every change delivered (in order), every run in
        flight dropped (its claims lapse), the schedule run until nothing is due. Then: what is
        lost?"""
        if self.pending:
            self.start(Run(self.pending))
            self.pending = []
            self.finish_all()
        self.in_flight.clear()
        self.clock.shift(361)
        for _ in range(10):
            run = Run(SCHEDULED)
            self.start(run)
            self.finish_all()
            if not run.jobs:
                break
        lost = []
        records = self.reminders()
        for appointment_id, booking in self.bookings.items():
            for offset in OFFSETS:
                record = records.get(f"{appointment_id}#{offset}")
                due = booking.time - 60 * offset
                if not booking.booked or booking.time <= self.now:
                    if record and record["state"] in ("PENDING", "SENDING"):
                        lost.append(f"{appointment_id}#{offset} open though the appointment is not ahead")
                elif due > self.now:
                    if not record or (record["state"], record["appointmentTime"]) != ("PENDING", booking.time):
                        lost.append(f"{appointment_id}#{offset} not planned for {booking.time}: {record}")
                elif (
                    not record or record["state"] in ("PENDING", "SENDING") or record["appointmentTime"] != booking.time
                ):
                    lost.append(f"{appointment_id}#{offset} due and not settled for {booking.time}: {record}")
        return lost

    def finish_all(self) -> None:
        for flight in list(self.in_flight):
            for reminder_id, steps in flight.steps.items():
                while steps:
                    self.step(flight, reminder_id)
        self.in_flight.clear()


def machine(world: World) -> type[RuleBasedStateMachine]:
    """The state machine class for one world (Hypothesis makes a new instance per example)."""

    class Protocol(RuleBasedStateMachine):
        @initialize()
        def fresh(self) -> None:
            world.reset()
            world.count("interleavings")

        @rule(
            appointment_id=st.sampled_from(APPOINTMENTS),
            starts=st.sampled_from(STARTS),
            sms=st.booleans(),
            delivered=st.booleans(),
        )
        def book(self, appointment_id: str, starts: int, sms: bool, delivered: bool) -> None:
            world.count("book")
            channels = ("email", "sms") if sms else ("email",)
            world.write(appointment_id, Booking(world.now + starts, True, channels))
            self.deliver_at_once(delivered)

        def deliver_at_once(self, delivered: bool) -> None:
            """Most changes reach the workflow within seconds: this one now, in a run of its own."""
            if delivered:
                world.count("stream run, at once")
                world.start(Run([world.pending.pop()]))

        @precondition(lambda self: bool(world.bookings))
        @rule(data=st.data(), starts=st.sampled_from(STARTS), delivered=st.booleans())
        def move(self, data: st.DataObject, starts: int, delivered: bool) -> None:
            world.count("move")
            appointment_id = data.draw(st.sampled_from(sorted(world.bookings)))
            booking = world.bookings[appointment_id]
            world.write(appointment_id, Booking(world.now + starts, booking.booked, booking.channels))
            self.deliver_at_once(delivered)

        @precondition(lambda self: bool(world.bookings))
        @rule(data=st.data(), delete=st.booleans(), delivered=st.booleans())
        def cancel(self, data: st.DataObject, delete: bool, delivered: bool) -> None:
            world.count("delete" if delete else "cancel")
            appointment_id = data.draw(st.sampled_from(sorted(world.bookings)))
            booking = world.bookings[appointment_id]
            world.write(appointment_id, None if delete else Booking(booking.time, False, booking.channels))
            self.deliver_at_once(delivered)

        @precondition(lambda self: bool(world.pending))
        @rule(data=st.data(), order=st.sampled_from(["in order", "newest first", "twice"]))
        def stream(self, data: st.DataObject, order: str) -> None:
            world.count(f"stream run, {order}")
            count = data.draw(st.integers(1, len(world.pending)))
            batch, world.pending = world.pending[:count], world.pending[count:]
            if order == "newest first":
                batch = batch[::-1]
            elif order == "twice":
                world.pending = batch + world.pending  # delivered now, and again later
            world.start(Run(batch))

        @rule()
        def schedule(self) -> None:
            world.count("schedule run")
            world.start(Run(SCHEDULED))

        @precondition(lambda self: any(any(steps for steps in f.steps.values()) for f in world.in_flight))
        @rule(data=st.data(), crash=st.sampled_from([None, None, None, None, "after-mark", "after-send"]))
        def step(self, data: st.DataObject, crash: str | None) -> None:
            """One step of a run: the next step of one of its jobs (a sender, or the status updater)."""
            flights = [f for f in world.in_flight if any(f.steps.values())]
            flight = data.draw(st.sampled_from(flights))
            reminder_id = data.draw(st.sampled_from(sorted(r for r, steps in flight.steps.items() if steps)))
            crash = crash if flight.steps[reminder_id][0] != "update" else None
            world.count(f"step, crashing {crash}" if crash else "step")
            world.step(flight, reminder_id, crash)

        @precondition(lambda self: any(any(steps for steps in f.steps.values()) for f in world.in_flight))
        @rule(data=st.data())
        def run_on(self, data: st.DataObject) -> None:
            """A run goes on: every remaining step of its jobs, in order."""
            flight = data.draw(st.sampled_from([f for f in world.in_flight if any(f.steps.values())]))
            world.count("run went on")
            for reminder_id, steps in flight.steps.items():
                while steps:
                    world.step(flight, reminder_id)

        @precondition(lambda self: bool(world.in_flight))
        @rule(data=st.data(), what=st.sampled_from(["sender", "sender", "processor", "death"]))
        def retry_or_die(self, data: st.DataObject, what: str) -> None:
            """The workflow retries a task (a sender again; the processor within its execution, its
            first answer lost), or the execution dies (none of its remaining steps happen)."""
            flight = data.draw(st.sampled_from(world.in_flight))
            done = [(r, c) for r, steps in flight.steps.items() for c in SENDERS if c not in steps]
            if what == "sender" and done:
                world.count("sender retried")
                reminder_id, channel = data.draw(st.sampled_from(done))
                job = next(job for job in flight.run.jobs if job["reminderId"] == reminder_id)
                world.send(flight.run, job, channel)
            elif what == "processor":
                world.count("processor retried")
                world.retry(flight)
            elif what == "death":
                world.count("execution died")
                world.in_flight.remove(flight)

        @rule(seconds=st.sampled_from(STEPS))
        def advance(self, seconds: int) -> None:
            world.count("clock advanced")
            world.clock.shift(seconds)

        @invariant()
        def promises(self) -> None:
            found = world.violations + world.at_most_once() + world.truthful()
            assert not found, "\n".join(found)

        def teardown(self) -> None:
            lost = world.settle()
            found = lost + world.violations + world.at_most_once() + world.truthful()
            assert not found, "\n".join(found)

    return Protocol
