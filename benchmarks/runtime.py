"""Issue 10's measurements: what a reminder costs with Express and with Standard, what an idle month
costs, how late reminders go out at the default schedule, and the fault runs.

Each run deploys the template (Express: the bytes ``python build.py`` writes; Standard: the same
stack built with ``ReminderProps(workflow_type="STANDARD")``) on the local runner, on a clock frozen
at ``START`` that the run moves a minute at a time, firing the schedule each minute as
``rate(1 minute)`` does in AWS. ``benchmarks/pricing.py`` turns the counts into dollars and holds
every price and assumption; benchmarks/README.md explains the method.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from benchmarks import pricing
from benchmarks import run as base

DAY, MINUTE = 86400, 60
CHANNELS = ("email", "sms")
SENDERS = {"email": "EmailSenderFunction", "sms": "SmsSenderFunction"}
PROCESSOR = "AppointmentProcessorFunction"
UPDATER = "StatusUpdaterFunction"


# ---- deployments ----------------------------------------------------------------------------------


def template_of(workflow_type: str) -> str:
    if workflow_type == "EXPRESS":
        return base.template_text()  # exactly what build.py writes
    from tapstack import ReminderProps, build_template
    from tapstack.render import to_yaml

    return to_yaml(build_template(ReminderProps(workflow_type=workflow_type)))


@dataclass
class Stack:
    deployment: Any
    clock: Any
    meter: pricing.Meter
    workflow_type: str

    def minute(self) -> None:
        """One minute of the default schedule: the clock moves on, the pipe delivers what changed,
        the schedule fires; each until every execution has ended."""
        self.clock.shift(MINUTE)
        self.deployment.run_pipe()
        base.wait_all(self.deployment)
        self.deployment.run_schedule()
        base.wait_all(self.deployment)

    @property
    def memory_mb(self) -> dict[str, int]:
        return {
            logical_id: int(resource.properties.get("MemorySize", 128))
            for logical_id, resource in self.deployment.resources.items()
            if resource.type == "AWS::Lambda::Function"
        }


@contextlib.contextmanager
def stack(workflow_type: str = "EXPRESS", **parameters: str) -> Iterator[Stack]:
    import time_machine

    from tapstack.local import LocalDeployment

    base.quiet_moto()
    values = {"SenderEmail": base.SENDER, **parameters}
    with (
        time_machine.travel(base.START, tick=False) as clock,
        LocalDeployment(template_of(workflow_type), values, echo_logs=False) as deployment,
        pricing.Meter(deployment) as meter,
    ):
        assert deployment.state_machine_type == workflow_type
        yield Stack(deployment, clock, meter, workflow_type)


def phone(number: int) -> str:
    return base.phone(number)


def book(deployment: Any, number: int, starts_at: int, channels: tuple[str, ...] = CHANNELS) -> dict[str, Any]:
    """Appointment ``appt-NNNNNN`` as the booking app writes it; returns the item."""
    from boto3.dynamodb.types import TypeSerializer

    appointment_id = f"appt-{number:06d}"
    item: dict[str, Any] = {
        "appointmentId": appointment_id,
        "appointmentTime": starts_at,
        "customerEmail": f"{appointment_id}@example.com",
        "customerPhone": phone(number),
        "customerName": "Pat Example",
        "timeZone": "Europe/Paris",
    }
    if channels != CHANNELS:
        item["notificationChannels"] = set(channels)
    serializer = TypeSerializer()
    deployment.client("dynamodb").put_item(
        TableName=deployment.table_name("AppointmentsTable"),
        Item={k: serializer.serialize(v) for k, v in item.items()},
    )
    return item


# ---- what one window of a run cost ------------------------------------------------------------------


@dataclass
class ExecutionCost:
    arn: str
    status: str
    transitions: int
    jobs: int
    duration_ms: float  # modelled critical path
    memory_mb: float
    billed_ms: int
    billed_mb: int
    gb_seconds: float
    chain_next: str | None
    item_starts: dict[tuple[str, str], float]  # (reminder, token) -> ms after the execution started
    processor_ms: float


@dataclass
class Orchestration:
    """Everything a window of a run did, and what it costs."""

    executions: list[ExecutionCost]
    invocations: list[pricing.Invocation]
    capacity: pricing.Capacity
    memory_mb: dict[str, int]

    @property
    def transitions(self) -> int:
        return sum(e.transitions for e in self.executions)

    @property
    def delivered(self) -> int:
        """Reminders whose outcome UpdateStatus recorded (final or deferred)."""
        return sum(
            1 for i in self.invocations if i.function.endswith(UPDATER) and i.result and i.result.get("recorded")
        )

    def usd(self, workflow_type: str) -> dict[str, float]:
        requests, duration = pricing.lambda_cost(self.invocations, self.memory_mb)
        costs = {
            "lambda requests": requests,
            "lambda duration": duration,
            "dynamodb": pricing.dynamodb_cost(self.capacity),
        }
        if workflow_type == "EXPRESS":
            sfn_requests, sfn_duration = pricing.express_cost(
                len(self.executions), sum(e.gb_seconds for e in self.executions)
            )
            costs.update({"step functions requests": sfn_requests, "step functions duration": sfn_duration})
        else:
            costs["step functions transitions"] = pricing.standard_cost(self.transitions)
        return costs

    def summary(self, workflow_type: str) -> dict[str, Any]:
        wru, rru = self.capacity.total()
        return {
            "executions": len(self.executions),
            "failed_executions": sum(1 for e in self.executions if e.status != "SUCCEEDED"),
            "transitions": self.transitions,
            "invocations": dict(Counter(i.function for i in self.invocations)),
            "delivered": self.delivered,
            "wru": wru,
            "rru": rru,
            "capacity": {"wru": dict(self.capacity.wru), "rru": dict(self.capacity.rru)},
            "express_billed_ms": [e.billed_ms for e in self.executions],
            "express_billed_mb": [e.billed_mb for e in self.executions],
            "lambda_billed_ms": {
                f: statistics.mean([i.billed_ms for i in self.invocations if i.function == f] or [0])
                for f in sorted({i.function for i in self.invocations})
            },
            "lambda_cpu_ms": {
                f: statistics.mean([i.cpu_ms for i in self.invocations if i.function == f] or [0])
                for f in sorted({i.function for i in self.invocations})
            },
            "usd": self.usd(workflow_type),
        }


def orchestration(run: Stack, window: pricing.Window) -> Orchestration:
    deployment = run.deployment
    definition = json.loads(
        deployment.client("stepfunctions").describe_state_machine(stateMachineArn=deployment.state_machine_arn)[
            "definition"
        ]
    )
    slots = int(definition["States"]["SendReminders"]["MaxConcurrency"])
    per_item = base.item_states(deployment)
    groups = pricing.by_execution(window.invocations)
    costs = []
    with run.meter.paused():
        for execution in window.executions:
            stats = base.execution_stats(deployment, execution, per_item)
            chain_next = next_in_chain(deployment, execution["executionArn"])
            costs.append(
                execution_cost(
                    execution, stats, groups.get(execution["executionArn"], []), definition, slots, chain_next
                )
            )
    return Orchestration(costs, window.invocations, window.capacity, run.memory_mb)


def execution_cost(
    execution: dict[str, Any],
    stats: Any,
    invocations: list[pricing.Invocation],
    definition: dict[str, Any],
    slots: int,
    chain_next: str | None,
) -> ExecutionCost:
    """The modelled critical path of one execution: the processor (retries included), its jobs on
    the Map's slots (each: the slower sender, then UpdateStatus), and the states around them."""
    overhead = pricing.STATE_OVERHEAD_MS
    processor = [i for i in invocations if i.function.endswith(PROCESSOR)]
    processor_ms = sum(i.modelled_ms for i in processor) + overhead * len(processor)
    answered = next((i.result for i in reversed(processor) if isinstance(i.result, dict)), {"jobs": []})
    jobs = [(job["reminderId"], job["claimToken"]) for job in answered.get("jobs", [])]
    spent: Counter[tuple[str, str, str]] = Counter()
    for invocation in invocations:
        event = invocation.event if isinstance(invocation.event, dict) else {}
        if "reminderId" in event:
            role = next((c for c, f in SENDERS.items() if invocation.function.endswith(f)), "status")
            spent[(event["reminderId"], event["claimToken"], role)] += invocation.modelled_ms + overhead
    items = [max(spent[(r, t, "email")], spent[(r, t, "sms")]) + spent[(r, t, "status")] + overhead for r, t in jobs]
    starts, map_ms = pricing.list_schedule(items, slots)
    continuation = pricing.CALL_LATENCY_MS["stepfunctions"] if chain_next else 0.0
    duration = processor_ms + overhead + map_ms + 2 * overhead + continuation
    memory = (
        pricing.EXPRESS_BASE_MB
        + len(json.dumps(definition)) / 1024 / 1024
        + stats.largest_payload * 2 * len(jobs) / 1024 / 1024
    )
    billed_ms, billed_mb, gb_seconds = pricing.billed_express(duration, memory)
    item_starts = {job: processor_ms + overhead + start for job, start in zip(jobs, starts, strict=True)}
    return ExecutionCost(
        execution["executionArn"],
        execution["status"],
        stats.transitions,
        len(jobs),
        duration,
        memory,
        billed_ms,
        billed_mb,
        gb_seconds,
        chain_next,
        item_starts,
        processor_ms,
    )


def next_in_chain(deployment: Any, arn: str) -> str | None:
    """The execution this one started with ContinueInNewExecution, if any."""
    for event in base.history(deployment, arn):
        details = event.get("taskSucceededEventDetails") or {}
        if details.get("resourceType") == "states" and "output" in details:
            started = json.loads(details["output"]).get("ExecutionArn")
            if started:
                return str(started)
    return None


# ---- 5. cost per million reminders, and lateness at the default schedule ----------------------------


def bench_cost(workflow_type: str, reminders: int, spread_minutes: int, singles: int) -> dict[str, Any]:
    """``reminders`` bookings through the pipe (its batches), each due at a scattered second over
    ``spread_minutes``; then the schedule, every minute, until all are sent. Also ``singles``
    bookings that each reach the pipe alone (a quiet hour: one booking per batch), and one empty
    schedule run (the idle cost that every minute pays anyway)."""
    result: dict[str, Any] = {"workflow_type": workflow_type, "reminders": reminders, "spread_minutes": spread_minutes}
    with stack(workflow_type) as run:
        deployment = run.deployment
        base.progress(f"cost {workflow_type}: {reminders:,} bookings through the pipe")
        due = {}
        for number in range(reminders):
            due_at = base.NOW + 1 + (number * 7919) % (spread_minutes * MINUTE - 1)
            item = book(deployment, number, due_at + DAY)
            due[f"{item['appointmentId']}#1440"] = due_at
        mark = run.meter.mark()
        deployment.run_pipe()
        base.wait_all(deployment)
        planning = orchestration(run, run.meter.since(mark))
        result["planning"] = planning.summary(workflow_type)
        result["pipe_batches"] = len(planning.executions)

        base.progress(f"cost {workflow_type}: {singles} bookings, one per pipe batch")
        mark = run.meter.mark()
        for number in range(reminders, reminders + singles):
            book(deployment, number, base.NOW + 30 * DAY)
            deployment.run_pipe()
            base.wait_all(deployment)
        result["singles"] = orchestration(run, run.meter.since(mark)).summary(workflow_type)
        result["singles_count"] = singles

        base.progress(f"cost {workflow_type}: the schedule every minute for {spread_minutes + 1} minutes")
        mark = run.meter.mark()
        ticks: list[pricing.Window] = []
        for _ in range(spread_minutes + 1):
            tick_mark = run.meter.mark()
            run.minute()
            ticks.append(run.meter.since(tick_mark))
        delivery = orchestration(run, run.meter.since(mark))
        result["delivery"] = delivery.summary(workflow_type)
        result["ticks"] = len(ticks)
        result["lateness"] = lateness(run, due, ticks)
        with run.meter.paused():
            result["states"] = dict(base.reminder_states(deployment, [r.split("#")[0] for r in due]))

        mark = run.meter.mark()
        deployment.run_schedule()
        base.wait_all(deployment)
        idle = orchestration(run, run.meter.since(mark))
        result["idle_run"] = idle.summary(workflow_type)
        result["idle_log_bytes"] = idle_log_bytes(deployment)
    return result


def lateness(run: Stack, due: dict[str, int], ticks: list[pricing.Window]) -> dict[str, Any]:
    """For every reminder and channel: from its due time to the sender's call to the provider.
    ``virtual``: on the runner's clock (the minute whose schedule run sent it); ``modelled``: plus
    where its send falls in that minute's chain of executions, at the modelled durations."""
    sent: dict[str, dict[str, float]] = {c: {} for c in CHANNELS}
    modelled: dict[str, dict[str, float]] = {c: {} for c in CHANNELS}
    for window in ticks:
        costs = orchestration(run, window).executions
        offsets = chain_offsets(costs)
        for cost in costs:
            for invocation in window.invocations:
                event = invocation.event if isinstance(invocation.event, dict) else {}
                channel = next((c for c, f in SENDERS.items() if invocation.function.endswith(f)), None)
                job = (event.get("reminderId", ""), event.get("claimToken", ""))
                if channel is None or job not in cost.item_starts:
                    continue
                if (invocation.result or {}).get("status") != "SENT" or job[0] in sent[channel]:
                    continue
                sent[channel][job[0]] = invocation.at - due[job[0]]
                modelled[channel][job[0]] = sent[channel][job[0]] + (offsets[cost.arn] + cost.item_starts[job]) / 1000
    return {
        channel: {
            "sent": len(sent[channel]),
            "missing": len(set(due) - set(sent[channel])),
            "virtual": percentiles(list(sent[channel].values())),
            "modelled": percentiles(list(modelled[channel].values())),
        }
        for channel in CHANNELS
    }


def chain_offsets(costs: list[ExecutionCost]) -> dict[str, float]:
    """ms from the minute's first execution to each execution of its chain (continuations start
    when the one before them ends)."""
    started = {c.chain_next for c in costs if c.chain_next}
    by_arn = {c.arn: c for c in costs}
    offsets: dict[str, float] = {}
    for head in (c for c in costs if c.arn not in started):
        elapsed, cost = 0.0, head
        while cost is not None:
            offsets[cost.arn] = elapsed
            elapsed += cost.duration_ms
            cost = by_arn.get(cost.chain_next or "")
    return offsets


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"max": float("nan"), "p50": float("nan"), "p99": float("nan"), "min": float("nan")}
    ordered = sorted(values)
    return {
        "min": ordered[0],
        "p50": statistics.median(ordered),
        "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "max": ordered[-1],
    }


def idle_log_bytes(deployment: Any) -> int:
    """Bytes the processor printed in its last invocation: the idle run's log lines (CloudWatch
    Logs ingests them, the metric line included)."""
    processor = deployment.logical_id("AWS::Lambda::Function", PROCESSOR)
    lines = [line for function, line in deployment.monitor.logs if function == processor]
    last_batch = max(i for i, line in enumerate(lines) if '"batch_done"' in line)
    first = max((i for i, line in enumerate(lines[:last_batch]) if '"batch_done"' in line), default=-1) + 1
    return sum(len(line.encode()) + 1 for line in lines[first : last_batch + 1])


def bench_burst(reminders: int) -> dict[str, Any]:
    """``reminders`` due in the same second: one schedule run and its chain of continuations."""
    with stack("EXPRESS") as run:
        deployment = run.deployment
        base.progress(f"burst: {reminders:,} reminders due in the same second")
        due = {}
        for number in range(reminders):
            item = book(deployment, number, base.NOW + 30 + DAY)
            due[f"{item['appointmentId']}#1440"] = base.NOW + 30
        deployment.run_pipe()
        base.wait_all(deployment)
        tick_mark = run.meter.mark()
        run.minute()
        window = run.meter.since(tick_mark)
        return {"reminders": reminders, "executions": len(window.executions), "lateness": lateness(run, due, [window])}


# ---- 6. fault runs ----------------------------------------------------------------------------------


def customers(count: int) -> list[tuple[str, ...]]:
    """Which channels each customer asks for: most both, a tenth email only, a tenth SMS only."""
    return [("email",) if n % 10 == 3 else ("sms",) if n % 10 == 7 else CHANNELS for n in range(count)]


def bench_provider_outage(channel: str, appointments: int, outage_minutes: int) -> dict[str, Any]:
    """The provider of ``channel`` refuses every send for ``outage_minutes`` while ``appointments``
    reminders fall due over those minutes; the schedule runs every minute until every reminder is
    final (or an hour after the outage)."""
    from tapstack.local.faults import ses_refusing, sns_refusing, tally

    with stack("EXPRESS") as run:
        deployment = run.deployment
        wanted, due = {"email": set(), "sms": set()}, {}
        for number, channels in enumerate(customers(appointments)):
            due_at = base.NOW + 1 + (number * 7919) % (outage_minutes * MINUTE - 1)
            item = book(deployment, number, due_at + DAY, channels)
            due[f"{item['appointmentId']}#1440"] = due_at
            for c in channels:
                wanted[c].add(item["customerEmail"] if c == "email" else item["customerPhone"])
        deployment.run_pipe()
        base.wait_all(deployment)
        base.progress(f"faults: {'SES' if channel == 'email' else 'SNS'} refusing for {outage_minutes} minutes")
        outage = (ses_refusing if channel == "email" else sns_refusing)(deployment, seconds=outage_minutes * MINUTE)
        minutes = until_final(run, due, outage_minutes + 60)
        with run.meter.paused():
            result = fault_counts(run, tally(deployment, wanted), due)
        sent = first_sent(deployment, SENDERS[channel])
        assert outage.end is not None
        result.update(
            minutes=minutes,
            refused=outage.refused,
            recovered_after=max(sent.values()) - outage.end if sent else None,
            late=percentiles([at - due[r] for r, at in sent.items()]),
        )
        return result


def bench_table_throttling(bookings: int, rate: float) -> dict[str, Any]:
    """``bookings`` short-notice bookings (due at once: planned, claimed and sent by the pipe's own
    runs) reach the pipe while the Reminders table throttles ``rate`` of every function's writes;
    then the table recovers, the dead letters (if any) are replayed, and the schedule runs every
    minute until every reminder is final."""
    from tapstack.local.faults import DYNAMODB_THROTTLING, replay_dead_letters, tally, throttle

    with stack("EXPRESS") as run:
        deployment = run.deployment
        wanted, due = {"email": set(), "sms": set()}, {}
        for number, channels in enumerate(customers(bookings)):
            item = book(deployment, number, base.NOW + DAY - 3600, channels)
            due[f"{item['appointmentId']}#1440"] = base.NOW
            for c in channels:
                wanted[c].add(item["customerEmail"] if c == "email" else item["customerPhone"])
        base.progress(
            f"faults: the Reminders table throttling {rate:.0%} of writes while {bookings} bookings are planned"
        )
        throttling = throttle(deployment, "dynamodb", "UpdateItem", DYNAMODB_THROTTLING, rate=rate, seed=10)
        started = time.time()
        deployment.run_pipe()
        base.wait_all(deployment)
        throttling.lift()
        executions = Counter(e["status"] for e in deployment.executions())
        dead_letters = len(deployment.pipe.dead_letters)
        replayed = replay_dead_letters(deployment)
        base.wait_all(deployment)
        minutes = until_final(run, due, 30)
        with run.meter.paused():
            result = fault_counts(run, tally(deployment, wanted), due)
        last = max(
            (at for f in SENDERS.values() for at in first_sent(deployment, f).values()),
            default=started,
        )
        pipe = deployment.pipe.logical_id
        result.update(
            minutes=minutes,
            refused=throttling.refused,
            seen=throttling.seen,
            pipe_attempts=sum(
                1 for c in deployment.monitor.calls if c.function == pipe and c.operation == "StartSyncExecution"
            ),
            planning_executions=dict(executions),
            dead_letters=dead_letters,
            replayed=len(replayed),
            recovered_after=last - started,
        )
        return result


def until_final(run: Stack, due: dict[str, int], limit: int) -> int:
    """Minutes of the schedule until every reminder is final (SENT, FAILED, SKIPPED, CANCELLED)."""
    for minute in range(1, limit + 1):
        run.minute()
        with run.meter.paused():
            states = base.reminder_states(run.deployment, [r.split("#")[0] for r in due])
        if not states.keys() & {"PENDING", "SENDING", "missing"}:
            return minute
    return limit


def first_sent(deployment: Any, sender: str) -> dict[str, float]:
    """When a sender first answered SENT for each reminder (later answers come from its mark)."""
    sent: dict[str, float] = {}
    for invocation in deployment.monitor.invocations:
        if invocation.function.endswith(sender) and (invocation.result or {}).get("status") == "SENT":
            sent.setdefault(invocation.event["reminderId"], invocation.at)
    return sent


def fault_counts(run: Stack, result: Any, due: dict[str, int]) -> dict[str, Any]:
    """What a fault run left: per channel, the addresses that got exactly one message, none, or
    more; the records' states and deferrals; failed executions, dead letters, and the largest
    lateness the processor reported (the metric of LateRemindersAlarm)."""
    deployment = run.deployment
    processor = deployment.logical_id("AWS::Lambda::Function", PROCESSOR)
    overdue = [
        json.loads(line)["OverdueSeconds"]
        for f, line in deployment.monitor.logs
        if f == processor and "OverdueSeconds" in line
    ]
    return {
        "reminders": len(due),
        "channels": {
            c: {
                "expected": len(result.expected[c]),
                "once": result.exactly_once(c),
                "missing": len(result.missing(c)),
                "duplicated": len(result.duplicated(c)),
                "unexpected": len(result.unexpected(c)),
            }
            for c in CHANNELS
        },
        "states": dict(result.states),
        "reasons": dict(result.reasons),
        "deferrals": result.deferrals,
        "deferred_reminders": result.deferred_reminders,
        "most_deferrals": max((int(r.get("deferrals", 0)) for r in result.records), default=0),
        "defer_reasons": dict(result.defer_reasons),
        "failed_executions": sum(1 for e in deployment.executions() if e["status"] != "SUCCEEDED"),
        "dead_letters": len(deployment.pipe.dead_letters),
        "max_overdue_seconds": max(overdue, default=0),
    }


# ---- the parts, as run.py calls them -----------------------------------------------------------------


def run_cost(quick: bool) -> dict[str, Any]:
    reminders = 100 if quick else 1000
    spread = 10 if quick else 120
    singles = 10 if quick else 50
    return {
        "express": bench_cost("EXPRESS", reminders, spread, singles),
        "standard": bench_cost("STANDARD", reminders, spread, singles),
        "burst": bench_burst(reminders),
    }


def run_faults(quick: bool) -> dict[str, Any]:
    appointments = 20 if quick else 100
    outage = 3 if quick else 10
    return {
        "ses": bench_provider_outage("email", appointments, outage),
        "sns": bench_provider_outage("sms", appointments, outage),
        "table": bench_table_throttling(appointments, rate=0.3),
    }


# ---- the table's rows ---------------------------------------------------------------------------------


def usd(value: float) -> str:
    return f"${value:,.4f}" if value < 1 else f"${value:,.2f}"


def per_million(total: float, count: int) -> float:
    return total / count * 1_000_000 if count else float("nan")


def rows_cost(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    for key, label in (("express", "Express"), ("standard", "Standard")):
        r = results[key]
        delivery, idle, planning, singles = r["delivery"], r["idle_run"], r["planning"], r["singles"]
        reminders, batch = r["reminders"], r["reminders"] // max(1, r["pipe_batches"])
        # What the reminders added to the schedule runs that every minute makes anyway (the idle month).
        marginal = {k: delivery["usd"][k] - r["ticks"] * idle["usd"][k] for k in delivery["usd"]}
        sfn = [k for k in delivery["usd"] if k.startswith("step functions")]
        delivered = per_million(sum(marginal[k] for k in sfn), reminders)
        planned = per_million(sum(planning["usd"][k] for k in sfn), reminders)
        alone = per_million(sum(singles["usd"][k] for k in sfn), r["singles_count"])
        lambda_usd = sum(marginal[k] + planning["usd"][k] for k in ("lambda requests", "lambda duration"))
        rows += [
            (
                f"{label}: delivery: reminders / executions / billed transitions",
                f"{delivery['delivered']:,} / {delivery['executions']} / {delivery['transitions']:,}",
                "",
            ),
            (
                f"{label}: delivery: invocations email / sms / status / processor",
                " / ".join(str(delivery["invocations"].get(f, 0)) for f in (*SENDERS.values(), UPDATER, PROCESSOR)),
                "",
            ),
            (
                f"{label}: planning: bookings / pipe batches / executions failed",
                f"{reminders:,} / {r['pipe_batches']} / {planning['failed_executions']}",
                "",
            ),
            (
                f"{label}: Step Functions per million reminders (delivery + planning in batches of {batch})",
                usd(delivered + planned),
                "<= $1" if key == "express" else "",
            ),
            (
                f"{label}:   delivery / planning in batches of {batch} / planning one booking per batch",
                f"{usd(delivered)} / {usd(planned)} / {usd(alone)}",
                "",
            ),
            (
                f"{label}: Lambda per million reminders (delivery + planning)",
                usd(per_million(lambda_usd, reminders)),
                "",
            ),
            (
                f"{label}: DynamoDB per million reminders: WRU, RRU per reminder; cost",
                f"{(delivery['wru'] - r['ticks'] * idle['wru'] + planning['wru']) / reminders:.1f}, "
                f"{(delivery['rru'] - r['ticks'] * idle['rru'] + planning['rru']) / reminders:.2f}; "
                + usd(per_million(marginal["dynamodb"] + planning["usd"]["dynamodb"], reminders)),
                "",
            ),
            (
                f"{label}: orchestration per million reminders (Step Functions + Lambda + DynamoDB)",
                usd(per_million(sum(marginal.values()) + sum(planning["usd"].values()), reminders)),
                "",
            ),
        ]
        if key == "express":
            rows += [
                (
                    "Express: billed per execution (median): delivery / planning",
                    f"{statistics.median(delivery['express_billed_ms']):.0f} ms x "
                    f"{statistics.median(delivery['express_billed_mb']):.0f} MB / "
                    f"{statistics.median(planning['express_billed_ms']):.0f} ms x "
                    f"{statistics.median(planning['express_billed_mb']):.0f} MB",
                    "",
                ),
                (
                    "Lambda modelled ms (mean): email / sms / status / processor",
                    " / ".join(
                        f"{delivery['lambda_billed_ms'].get(f, 0):.0f}" for f in (*SENDERS.values(), UPDATER, PROCESSOR)
                    ),
                    "",
                ),
            ]
    return rows


def rows_idle(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    month = pricing.SCHEDULE_RUNS_PER_MONTH
    for key, label in (("express", "Express"), ("standard", "Standard")):
        r = results[key]
        idle = r["idle_run"]
        per_run = sum(idle["usd"].values())
        metric = pricing.PRICES["cloudwatch_metric"].usd
        logs = r["idle_log_bytes"] * month / 1e9 * pricing.PRICES["cloudwatch_logs_gb"].usd
        free_transitions = 4000 * pricing.PRICES["standard_transition"].usd if key == "standard" else 0.0
        total = per_run * month + metric + logs - free_transitions
        rows += [
            (
                f"{label} idle run: executions / transitions / invocations / RRU",
                f"{idle['executions']} / {idle['transitions']} / {sum(idle['invocations'].values())}"
                f" / {idle['rru']:.1f}",
                "",
            ),
            (
                f"{label} idle month ({month:,} runs): runs / OverdueSeconds metric / its logs",
                f"{usd(per_run * month)} / {usd(metric)} / {usd(logs)}"
                + (f" (4,000 free transitions: -{usd(free_transitions)})" if free_transitions else ""),
                "",
            ),
            (f"{label} idle month, total", usd(total), "< $1"),
        ]
    return rows


def rows_lateness(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for key, label in (("express", "Express"), ("standard", "Standard")):
        r = results[key]
        for channel in CHANNELS:
            late = r["lateness"][channel]
            rows.append(
                (
                    f"{label}, {r['reminders']:,} due over {r['spread_minutes']} min, {channel}:"
                    " max / p50 / p99 (virtual clock)",
                    seconds(late["virtual"]) + f" ({late['sent']:,} sent, {late['missing']} missing)",
                    "< 60 s each",
                )
            )
        rows.append(
            (
                f"{label}: with the modelled time inside the run: max / p50 / p99 (email, sms)",
                "; ".join(seconds(r["lateness"][c]["modelled"]) for c in CHANNELS),
                "",
            )
        )
    burst = results["burst"]
    rows.append(
        (
            f"{burst['reminders']:,} due in the same second: executions in the chain; max (virtual / modelled)",
            f"{burst['executions']}; "
            + "; ".join(
                f"{c} {burst['lateness'][c]['virtual']['max']:.0f} s / {burst['lateness'][c]['modelled']['max']:.1f} s"
                for c in CHANNELS
            ),
            "< 60 s each",
        )
    )
    return rows


def seconds(p: dict[str, float]) -> str:
    return f"{p['max']:.1f} / {p['p50']:.1f} / {p['p99']:.1f} s"


def rows_faults(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    labels = {
        "ses": "SES refusing (Throttling)",
        "sns": "SNS refusing SMS (ThrottlingException)",
        "table": "Reminders table throttling 30% of writes while planning",
    }
    for key, label in labels.items():
        r = results[key]
        for channel in CHANNELS:
            c = r["channels"][channel]
            rows.append(
                (
                    f"{label}: {channel}: expected / exactly once / missing / twice",
                    f"{c['expected']} / {c['once']} / {c['missing']} / {c['duplicated']}"
                    + (f" (+{c['unexpected']} unasked)" if c["unexpected"] else ""),
                    "each once",
                )
            )
        rows.append(
            (
                f"{label}: FAILED / deferrals (reminders, most on one) / dead letters",
                f"{r['states'].get('FAILED', 0)} / {r['deferrals']}"
                f" ({r['deferred_reminders']}, {r['most_deferrals']}) / {r['dead_letters']}",
                "0 FAILED",
            )
        )
        if key == "table":
            rows.append(
                (
                    f"{label}: writes refused / pipe attempts / planning runs / replayed",
                    f"{r['refused']} of {r['seen']} / {r['pipe_attempts']} / "
                    + ", ".join(f"{k} {v}" for k, v in sorted(r["planning_executions"].items()))
                    + f" / {r['replayed']}",
                    "",
                )
            )
            rows.append(
                (
                    f"{label}: last message after the table recovered; schedule minutes",
                    f"{r['recovered_after']:.0f} s; {r['minutes']}",
                    "",
                )
            )
        else:
            rows.append(
                (
                    f"{label}: refusals; last message after the provider recovered; lateness max / p50",
                    f"{r['refused']}; {r['recovered_after']:.0f} s; {r['late']['max']:.0f} / {r['late']['p50']:.0f} s",
                    "",
                )
            )
        rows.append(
            (
                f"{label}: largest OverdueSeconds reported (LateRemindersAlarm at 900)",
                f"{r['max_overdue_seconds']}",
                "",
            )
        )
    return rows


def assumptions() -> str:
    prices = "\n".join(
        f"  {name}: ${price.usd:.10g} per {price.per} ({price.source})" for name, price in pricing.PRICES.items()
    )
    notes = "\n".join(f"- {a}" for a in pricing.ASSUMPTIONS)
    return f"Prices ({pricing.PRICE_REGION}, read {pricing.PRICE_DATE}):\n{prices}\nAssumptions:\n{notes}"


PARTS: dict[str, Callable[[bool], dict[str, Any]]] = {"cost": run_cost, "faults": run_faults}
