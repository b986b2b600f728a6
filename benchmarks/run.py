#!/usr/bin/env python3
"""Benchmarks of the appointment-reminder stack, run on the local runner (moto, in-process).

    .venv/bin/python benchmarks/run.py            # everything, full sizes (about 40 minutes on 2 busy cores)
    .venv/bin/python benchmarks/run.py --quick    # small sizes, for development (about 3 minutes)
    .venv/bin/python benchmarks/run.py --only reads,build --appointments 20000
    .venv/bin/python benchmarks/run.py --only cost,faults   # issue 10's figures (benchmarks/runtime.py)

Prints one table (stdout) and progress (stderr). Nothing here passes or fails: the goals are shown
next to the numbers for context. benchmarks/README.md explains the method.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SENDER = "reminders@example.com"
#: A Monday, 09:00 UTC (the tests' start).
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOW = int(START.timestamp())
DAY = 86400
OFFSET_MINUTES = 1440
PROCESSOR = "AppointmentProcessorFunction"
#: Step Functions quotas the scale benchmark is compared with.
PAYLOAD_QUOTA = 256 * 1024
HISTORY_QUOTA = 25_000
#: Fake numbers only: +1555555xxxx, never ending in 99 (moto treats those as opted out).
PHONE_SUFFIXES = [n for n in range(10_000) if n % 100 != 99]

_T0 = time.monotonic()


def progress(message: str) -> None:
    print(f"[{time.monotonic() - _T0:6.1f}s] {message}", file=sys.stderr, flush=True)


# ---- the local runner, and what the benchmarks need from moto ---------------------------------


def quiet_moto() -> None:
    logging.getLogger("moto").setLevel(logging.CRITICAL)


_TEMPLATE: str | None = None
RENDER_FIRST_CALL: float | None = None


def template_text() -> str:
    """The template exactly as ``python build.py`` writes it (``tapstack.cli.render``)."""
    global _TEMPLATE, RENDER_FIRST_CALL
    if _TEMPLATE is None:
        from tapstack.cli import render

        started = time.perf_counter()
        _TEMPLATE = render("yaml")
        RENDER_FIRST_CALL = time.perf_counter() - started
    return _TEMPLATE


@contextmanager
def deployed() -> Iterator[Any]:
    """The template deployed into moto on a clock frozen at START."""
    import time_machine

    from tapstack.local import LocalDeployment

    quiet_moto()
    with (
        time_machine.travel(START, tick=False),
        LocalDeployment(template_text(), {"SenderEmail": SENDER}, echo_logs=False) as deployment,
    ):
        offsets = deployment.parameters.get("ReminderOffsetsMinutes")
        if offsets != str(OFFSET_MINUTES):
            raise SystemExit(f"the benchmarks plan one offset of {OFFSET_MINUTES} minutes; the template has {offsets}")
        yield deployment


def wait_all(deployment: Any, timeout: float = 3600) -> list[dict[str, Any]]:
    """Like ``LocalDeployment.wait`` but polling every 0.25 s: polling every 20 ms costs the
    executions (threads of this process) a noticeable share of the interpreter."""
    deadline = time.monotonic() + timeout
    while True:
        executions: list[dict[str, Any]] = deployment.executions()
        if all(e["status"] != "RUNNING" for e in executions):
            return executions
        if time.monotonic() > deadline:
            raise TimeoutError(f"executions still running after {timeout} s")
        time.sleep(0.25)


def backend_table(deployment: Any, suffix: str) -> Any:
    from moto.dynamodb.models import dynamodb_backends

    from tapstack.local.deployment import ACCOUNT_ID as DEFAULT_ACCOUNT_ID  # moto's default account

    return dynamodb_backends[DEFAULT_ACCOUNT_ID][deployment.region].get_table(deployment.table_name(suffix))


def phone(number: int) -> str:
    return f"+1555555{PHONE_SUFFIXES[number % len(PHONE_SUFFIXES)]:04d}"


def populate(deployment: Any, total: int, due: int) -> list[str]:
    """``total`` booked appointments and their PENDING reminder (offset 1440), planned exactly as
    the processor plans them; ``due`` of them (spread evenly through the ids) due within the last
    ten minutes, the others due over the next seven days. Written through moto's backend (200k
    boto3 writes would take minutes); the Appointments table's stream is off while writing, as if
    the pipe had already delivered those changes. Returns the ids of the due appointments."""
    from tapstack.storage import DUE_INDEX_SHARDS

    retention = int(deployment.parameters["ReminderRetentionDays"]) * DAY
    appointments, reminders = (
        backend_table(deployment, "AppointmentsTable"),
        backend_table(deployment, "RemindersTable"),
    )
    step = max(1, total // max(due, 1))
    due_numbers = set(range(0, step * due, step))
    stream, appointments.stream_shard = appointments.stream_shard, None
    due_ids = []
    try:
        for number in range(total):
            appointment_id = f"appt-{number:06d}"
            if number in due_numbers:
                due_at = NOW - (number * 7919) % 600
                due_ids.append(appointment_id)
            else:
                due_at = NOW + 60 + (number * 104_729) % (7 * DAY)
            at = due_at + 60 * OFFSET_MINUTES
            appointments.put_item(
                {
                    "appointmentId": {"S": appointment_id},
                    "appointmentTime": {"N": str(at)},
                    "customerEmail": {"S": f"{appointment_id}@example.com"},
                    "customerPhone": {"S": phone(number)},
                    "customerName": {"S": "Pat Example"},
                    "timeZone": {"S": "Europe/Paris"},
                }
            )
            reminder_id = f"{appointment_id}#{OFFSET_MINUTES}"
            reminders.put_item(
                {
                    "reminderId": {"S": reminder_id},
                    "appointmentId": {"S": appointment_id},
                    "offsetMinutes": {"N": str(OFFSET_MINUTES)},
                    "appointmentTime": {"N": str(at)},
                    "dueAt": {"N": str(due_at)},
                    "state": {"S": "PENDING"},
                    "dueShard": {"S": str(zlib.crc32(reminder_id.encode()) % DUE_INDEX_SHARDS)},
                    "attemptAt": {"N": str(due_at)},
                    "expiresAt": {"N": str(at + retention)},
                    "updatedAt": {"N": str(min(due_at, NOW) - DAY)},
                }
            )
    finally:
        appointments.stream_shard = stream
    return due_ids


def due_left(deployment: Any) -> int:
    """Reminders the due index holds with attemptAt <= now (read from moto's backend: not counted)."""
    now = int(time.time())
    return sum(
        1
        for item in backend_table(deployment, "RemindersTable").all_items()
        if "dueShard" in item.attrs and "attemptAt" in item.attrs and float(item.attrs["attemptAt"].value) <= now
    )


def reminder_states(deployment: Any, ids: list[str]) -> Counter[str]:
    table = backend_table(deployment, "RemindersTable")
    from moto.dynamodb.models.dynamo_type import DynamoType

    states: Counter[str] = Counter()
    for appointment_id in ids:
        item = table.get_item(DynamoType({"S": f"{appointment_id}#{OFFSET_MINUTES}"}))
        states[item.attrs["state"].value if item else "missing"] += 1
    return states


# ---- what the executions did ---------------------------------------------------------------------


def item_states(deployment: Any) -> set[str]:
    """Names of the states that run once per reminder (inside the Map's ItemProcessor)."""
    definition = deployment.template["Resources"][
        deployment.logical_id("AWS::StepFunctions::StateMachine", "NotificationWorkflow")
    ]
    definition = definition["Properties"]["Definition"]
    names: set[str] = set()

    def walk(states: dict[str, Any], inside: bool) -> None:
        for name, state in states.items():
            if inside:
                names.add(name)
            processor = state.get("ItemProcessor") or state.get("Iterator")
            if processor:
                walk(processor["States"], True)
            for branch in state.get("Branches", []):
                walk(branch["States"], inside)

    walk(definition["States"], False)
    return names


@dataclass
class ExecutionStats:
    arn: str
    status: str
    events: int = 0
    transitions: int = 0  # *StateEntered events plus retries
    item_transitions: int = 0  # of those, in states that run per reminder
    retries: int = 0
    largest_payload: int = 0
    largest_payload_at: str = ""


def history(deployment: Any, arn: str) -> list[dict[str, Any]]:
    pages = deployment.client("stepfunctions").get_paginator("get_execution_history").paginate(executionArn=arn)
    return [event for page in pages for event in page["events"]]


def execution_stats(deployment: Any, execution: dict[str, Any], per_item: set[str]) -> ExecutionStats:
    events = history(deployment, execution["executionArn"])
    stats = ExecutionStats(execution["executionArn"], execution["status"], events=len(events))
    by_id = {event["id"]: event for event in events}
    entered_name = {
        event["id"]: event["stateEnteredEventDetails"].get("name", "?")
        for event in events
        if event["type"].endswith("StateEntered") and "stateEnteredEventDetails" in event
    }

    def entry_of(event: dict[str, Any] | None) -> int | None:
        """The StateEntered event of the state this event belongs to (following previousEventId)."""
        hops = 0
        while event is not None and event["id"] not in entered_name and hops < 10_000:
            event, hops = by_id.get(event.get("previousEventId")), hops + 1
        return None if event is None else event["id"]

    scheduled: Counter[int] = Counter()
    for event in events:
        details = next((v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)), {})
        for key in ("input", "output", "parameters"):
            value = details.get(key)
            if isinstance(value, str) and len(value.encode()) > stats.largest_payload:
                entry = entry_of(event)
                stats.largest_payload = len(value.encode())
                stats.largest_payload_at = f"{event['type']}.{key}" + (
                    f" of {entered_name[entry]}" if entry is not None else ""
                )
        if event["type"] in ("TaskScheduled", "LambdaFunctionScheduled"):
            entry = entry_of(event)
            if entry is not None:
                scheduled[entry] += 1
    for entered, name in entered_name.items():
        retries = max(0, scheduled[entered] - 1)
        stats.retries += retries
        stats.transitions += 1 + retries
        if name in per_item:
            stats.item_transitions += 1 + retries
    return stats


@dataclass
class Window:
    """Everything between two marks: executions started, invocations, the processor's reads."""

    executions: list[ExecutionStats] = field(default_factory=list)
    invocations: Counter[str] = field(default_factory=Counter)
    claimed: int = 0
    reads: Counter[str] = field(default_factory=Counter)  # items read by operation (processor only)
    calls: Counter[str] = field(default_factory=Counter)  # calls by operation (processor only)
    seconds: float = 0.0

    @property
    def transitions(self) -> int:
        return sum(e.transitions for e in self.executions)

    @property
    def item_transitions(self) -> int:
        return sum(e.item_transitions for e in self.executions)

    @property
    def delivered(self) -> int:
        return self.invocations["StatusUpdaterFunction"]

    @property
    def failed(self) -> int:
        return sum(1 for e in self.executions if e.status != "SUCCEEDED")


class Mark:
    def __init__(self, deployment: Any) -> None:
        self.deployment = deployment
        self.executions = {e["executionArn"] for e in deployment.executions()}
        self.invocations = len(deployment.monitor.invocations)
        self.calls = len(deployment.monitor.calls)
        self.started = time.perf_counter()

    def window(self, seconds: float | None = None) -> Window:
        deployment = self.deployment
        per_item = item_states(deployment)
        window = Window(seconds=time.perf_counter() - self.started if seconds is None else seconds)
        new = [e for e in deployment.executions() if e["executionArn"] not in self.executions]
        window.executions = [execution_stats(deployment, e, per_item) for e in new]
        for invocation in deployment.monitor.invocations[self.invocations :]:
            name = invocation.function
            window.invocations[name] += 1
            if name.endswith(PROCESSOR) and isinstance(invocation.result, dict):
                window.claimed += len(invocation.result.get("jobs", []))
        for call in deployment.monitor.calls[self.calls :]:
            if call.function.endswith(PROCESSOR):
                window.calls[call.operation] += 1
                window.reads[call.operation] += call.items_read
        return window


def run_until_idle(deployment: Any, limit: int = 100) -> int:
    """Schedule runs until nothing is due (each run's continuations included); the number of runs."""
    runs = 0
    while runs < limit:
        deployment.run_schedule()
        runs += 1
        wait_all(deployment)
        if due_left(deployment) == 0:
            break
    return runs


# ---- 1. reads per due reminder ---------------------------------------------------------------------


def bench_reads(appointments: int) -> dict[str, Any]:
    due = max(1, appointments // 100)
    result: dict[str, Any] = {"appointments": appointments, "due": due}
    with deployed() as deployment:
        progress(f"reads: populating {appointments:,} appointments and reminders ({due:,} due)")
        started = time.perf_counter()
        due_ids = populate(deployment, appointments, due)
        result["populate_seconds"] = time.perf_counter() - started
        progress(f"reads: populated in {result['populate_seconds']:.1f} s; schedule runs until nothing is due")
        mark = Mark(deployment)
        result["schedule_runs"] = run_until_idle(deployment)
        seconds = time.perf_counter() - mark.started
        window = mark.window(seconds)
        result["window"] = window_summary(window)
        result["states"] = dict(reminder_states(deployment, due_ids))
        result["emails"], result["sms"] = len(sent_emails(deployment)), len(sent_sms(deployment))
        progress(
            f"reads: {window.claimed:,} claimed in {len(window.executions)} executions, {seconds:.1f} s;"
            " measuring a Scan of the Reminders table for comparison"
        )
        result["scan"] = scan_finder_reads(deployment)
        progress("reads: done")
    return result


def scan_finder_reads(deployment: Any) -> dict[str, Any]:
    """What a Scan-based finder reads per run: a paginated Scan of the Reminders table for
    PENDING reminders with dueAt <= now, its ScannedCount summed (measured, not computed)."""
    client = deployment.client("dynamodb")
    scanned, pages, started = 0, 0, time.perf_counter()
    kwargs: dict[str, Any] = {}
    while True:
        page = client.scan(
            TableName=deployment.table_name("RemindersTable"),
            Select="COUNT",
            FilterExpression="#s = :p AND dueAt <= :n",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues={":p": {"S": "PENDING"}, ":n": {"N": str(int(time.time()))}},
            **kwargs,
        )
        scanned, pages = scanned + page["ScannedCount"], pages + 1
        if "LastEvaluatedKey" not in page:
            break
        kwargs = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
    return {"scanned": scanned, "pages": pages, "seconds": time.perf_counter() - started}


def window_summary(window: Window) -> dict[str, Any]:
    data: dict[str, Any] = {
        "invocations": dict(window.invocations),
        "claimed": window.claimed,
        "reads": dict(window.reads),
        "calls": dict(window.calls),
        "seconds": window.seconds,
    }
    data.update(
        transitions=window.transitions,
        item_transitions=window.item_transitions,
        delivered=window.delivered,
        failed=window.failed,
        execution_count=len(window.executions),
    )
    data["executions"] = [asdict(e) for e in window.executions]
    return data


def sent_emails(deployment: Any) -> list[list[str]]:
    from moto.ses.models import ses_backends

    from tapstack.local.deployment import ACCOUNT_ID as DEFAULT_ACCOUNT_ID  # moto's default account

    return [m.destinations["ToAddresses"] for m in ses_backends[DEFAULT_ACCOUNT_ID][deployment.region].sent_messages]


def sent_sms(deployment: Any) -> list[str]:
    from moto.sns.models import sns_backends

    from tapstack.local.deployment import ACCOUNT_ID as DEFAULT_ACCOUNT_ID  # moto's default account

    return [number for number, _ in sns_backends[DEFAULT_ACCOUNT_ID][deployment.region].sms_messages.values()]


# ---- 2. invocations and transitions per reminder -----------------------------------------------------


def bench_transitions(batch: int) -> dict[str, Any]:
    """``batch`` due reminders among 100x as many appointments; then one schedule run with nothing due."""
    result: dict[str, Any] = {"batch": batch}
    with deployed() as deployment:
        progress(f"transitions: {batch} due among {100 * batch:,}")
        populate(deployment, 100 * batch, batch)
        mark = Mark(deployment)
        result["schedule_runs"] = run_until_idle(deployment)
        result["window"] = window_summary(mark.window())
        progress("transitions: one schedule run with nothing due")
        mark = Mark(deployment)
        deployment.run_schedule()
        wait_all(deployment)
        result["empty"] = window_summary(mark.window())
    return result


# ---- 3. one schedule run with many due reminders ----------------------------------------------------


def bench_scale(due: int) -> dict[str, Any]:
    result: dict[str, Any] = {"due": due}
    with deployed() as deployment:
        progress(f"scale: {due:,} due reminders, one schedule run")
        ids = populate(deployment, due, due)
        mark = Mark(deployment)
        deployment.run_schedule()
        wait_all(deployment)
        seconds = time.perf_counter() - mark.started
        progress(f"scale: chain done in {seconds:.1f} s; reading the execution histories")
        window = mark.window(seconds)
        result["window"] = window_summary(window)
        emails = Counter(address for to in sent_emails(deployment) for address in to)
        sms = Counter(sent_sms(deployment))
        expected_emails = {f"{i}@example.com" for i in ids}
        expected_sms = {phone(int(i.rsplit("-", 1)[1])) for i in ids}
        result["email"] = delivery_check(emails, expected_emails)
        result["sms"] = delivery_check(sms, expected_sms)
        result["states"] = dict(reminder_states(deployment, ids))
        result["due_left"] = due_left(deployment)
        result["answers"], result["provider_calls"], result["missing"] = diagnose(deployment, mark, ids, sms)
        progress("scale: done")
    return result


def diagnose(
    deployment: Any, mark: Mark, ids: list[str], sms: Counter[str]
) -> tuple[dict[str, dict[str, int]], dict[str, int], list[dict[str, Any]]]:
    """Where a message went missing, if one did: what the senders answered, how often they called
    the provider, and the records of (up to five) reminders whose number got no SMS."""
    answers: dict[str, Counter[str]] = {"email": Counter(), "sms": Counter()}
    for invocation in deployment.monitor.invocations[mark.invocations :]:
        channel = {"EmailSenderFunction": "email", "SmsSenderFunction": "sms"}.get(invocation.function)
        if channel:
            answer = invocation.result or {}
            outcome = " ".join(filter(None, [answer.get("status"), answer.get("reason")]))
            answers[channel][outcome or f"error {(invocation.error or {}).get('errorType')}"] += 1
    calls = Counter(
        "SendEmail" if c.operation in ("SendEmail", "SendRawEmail") else "Publish to a number"
        for c in deployment.monitor.calls[mark.calls :]
        if c.operation in ("SendEmail", "SendRawEmail") or (c.operation == "Publish" and "PhoneNumber" in c.params)
    )
    missing: list[dict[str, Any]] = []
    for appointment_id in ids:
        if sms[phone(int(appointment_id.rsplit("-", 1)[1]))] == 0 and len(missing) < 5:
            record = deployment.item("RemindersTable", {"reminderId": f"{appointment_id}#{OFFSET_MINUTES}"}) or {}
            missing.append(
                {k: record.get(k) for k in ("reminderId", "state", "emailResult", "smsResult", "claimToken")}
            )
    return {k: dict(v) for k, v in answers.items()}, dict(calls), missing


def delivery_check(sent: Counter[str], expected: set[str]) -> dict[str, int]:
    return {
        "messages": sum(sent.values()),
        "once": sum(1 for address in expected if sent[address] == 1),
        "missing": sum(1 for address in expected if sent[address] == 0),
        "duplicated": sum(1 for address in expected if sent[address] > 1),
        "unexpected": sum(count for address, count in sent.items() if address not in expected),
    }


# ---- 4. build.py -------------------------------------------------------------------------------------


def bench_build(runs: int) -> dict[str, Any]:
    """``python build.py --output <tmp>`` as a child process, ``runs`` times: wall time and peak RSS
    of each child (``os.wait4``); then ``tapstack.cli.render()`` and the default build's outputs
    (template + docs/workflow.md, nothing written) in this process."""
    walls, peaks = [], []
    with tempfile.TemporaryDirectory() as directory:
        output = Path(directory) / "TapStack.yml"
        command = [sys.executable, str(ROOT / "build.py"), "--output", str(output)]
        for number in range(runs):
            started = time.perf_counter()
            child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            _, status, usage = os.wait4(child.pid, 0)
            walls.append(time.perf_counter() - started)
            child.returncode = os.waitstatus_to_exitcode(status)
            error = child.stderr.read().decode() if child.stderr else ""
            if child.stderr:
                child.stderr.close()
            if child.returncode != 0:
                raise SystemExit(f"build.py failed ({child.returncode}): {error}")
            peaks.append(usage.ru_maxrss / 1024)  # KiB on Linux
            progress(f"build: run {number + 1}/{runs}: {walls[-1]:.3f} s, {peaks[-1]:.1f} MiB")
        size = output.stat().st_size
    template_text()  # the first render in this process (imports already done by then are few)
    from tapstack.cli import build_parser, outputs, render

    render_times = []
    for _ in range(5):
        started = time.perf_counter()
        render("yaml")
        render_times.append(time.perf_counter() - started)
    default_times = []
    arguments = build_parser().parse_args([])
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        for _ in range(3):
            started = time.perf_counter()
            outputs(arguments)
            default_times.append(time.perf_counter() - started)
    finally:
        os.chdir(cwd)
    return {
        "runs": runs,
        "walls": walls,
        "peaks_mib": peaks,
        "bytes": size,
        "render_first": RENDER_FIRST_CALL,
        "render_warm": statistics.median(render_times),
        "default_outputs_warm": statistics.median(default_times),
    }


# ---- the table -------------------------------------------------------------------------------------


def per(value: float, count: int) -> str:
    return f"{value / count:.3f}" if count else "n/a"


def rows_reads(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    w = r["window"]
    claimed = w["claimed"]
    query, batch_get = w["reads"].get("Query", 0), w["reads"].get("BatchGetItem", 0)
    total = sum(w["reads"].values())
    scan = r["scan"]["scanned"]
    return [
        ("appointments / reminders in the tables", f"{r['appointments']:,} / {r['appointments']:,}", ""),
        ("due now (1 %)", f"{r['due']:,}", ""),
        ("schedule runs / executions (with continuations)", f"{r['schedule_runs']} / {w['execution_count']}", ""),
        ("reminders claimed / sent (state SENT)", f"{claimed:,} / {r['states'].get('SENT', 0):,}", ""),
        ("DueIndex Query calls / items read (ScannedCount)", f"{w['calls'].get('Query', 0)} / {query:,}", ""),
        ("due-index items read per due reminder", per(query, claimed), "<= 1.1"),
        ("BatchGetItem items read (appointment re-check)", f"{batch_get:,}", ""),
        ("all items read per due reminder (index + re-check)", per(total, claimed), ""),
        ("Scan-based finder, items read per run (measured Scan)", f"{scan:,}", ""),
        ("Scan-based finder, items read per due reminder", per(scan, r["due"]), "(for comparison)"),
        ("wall time of the schedule runs (local runner)", f"{w['seconds']:.1f} s", ""),
    ]


def rows_transitions(label: str, w: dict[str, Any]) -> list[tuple[str, str, str]]:
    delivered = w["delivered"]
    executions = w["execution_count"]
    inv = w["invocations"]
    total_inv = sum(inv.values())
    fixed = w["transitions"] - w["item_transitions"]
    return [
        (f"{label}: reminders delivered / executions", f"{delivered:,} / {executions}", ""),
        (f"{label}: billed transitions per reminder (amortised)", per(w["transitions"], delivered), "<= 4"),
        (f"{label}:   of which per-reminder states", per(w["item_transitions"], delivered), ""),
        (
            f"{label}:   of which per-execution states (total {fixed}, {per(fixed, executions)} each)",
            per(fixed, delivered),
            "",
        ),
        (f"{label}: retries", str(sum(e["retries"] for e in w["executions"])), ""),
        (f"{label}: Lambda invocations per reminder (amortised)", per(total_inv, delivered), "<= 3"),
        (
            f"{label}:   email / sms / status / processor per reminder",
            " / ".join(
                per(inv.get(f, 0), delivered)
                for f in ("EmailSenderFunction", "SmsSenderFunction", "StatusUpdaterFunction", PROCESSOR)
            ),
            "",
        ),
    ]


def rows_empty(w: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        ("empty schedule run: executions", str(w["execution_count"]), ""),
        ("empty schedule run: billed transitions", str(w["transitions"]), ""),
        ("empty schedule run: Lambda invocations", str(sum(w["invocations"].values())), ""),
        (
            "empty schedule run: processor DynamoDB calls / items read",
            f"{', '.join(f'{n} {op}' for op, n in sorted(w['calls'].items())) or 'none'} / {sum(w['reads'].values())}",
            "",
        ),
    ]


def rows_scale(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    w = r["window"]
    executions = w["executions"]
    biggest = max(executions, key=lambda e: e["largest_payload"]) if executions else None
    longest = max((e["events"] for e in executions), default=0)
    email, sms = r["email"], r["sms"]
    return [
        ("due reminders, one schedule run", f"{r['due']:,}", ""),
        ("executions in the chain (failed)", f"{len(executions)} ({w['failed']})", ""),
        (
            "emails: sent / exactly once / missing / duplicated",
            f"{email['messages']:,} / {email['once']:,} / {email['missing']} / {email['duplicated']}",
            "each once",
        ),
        (
            "SMS: sent / exactly once / missing / duplicated",
            f"{sms['messages']:,} / {sms['once']:,} / {sms['missing']} / {sms['duplicated']}",
            "each once",
        ),
        ("reminder states", ", ".join(f"{k} {v:,}" for k, v in sorted(r["states"].items())), ""),
        (
            "senders' answers: email / sms",
            " / ".join(", ".join(f"{k} {v:,}" for k, v in sorted(r["answers"][c].items())) for c in ("email", "sms")),
            "",
        ),
        (
            "provider calls: SendEmail / Publish to a number",
            f"{r['provider_calls'].get('SendEmail', 0):,} / {r['provider_calls'].get('Publish to a number', 0):,}",
            "",
        ),
        (
            "largest state payload (bytes)",
            f"{biggest['largest_payload']:,} in {biggest['largest_payload_at']}" if biggest else "n/a",
            f"< {PAYLOAD_QUOTA:,}",
        ),
        ("largest history of one execution (events)", f"{longest:,}", f"< {HISTORY_QUOTA:,}"),
        ("billed transitions per reminder (amortised)", per(w["transitions"], w["delivered"]), ""),
        ("wall time, schedule run to last execution (local runner)", f"{w['seconds']:.1f} s", ""),
    ]


def rows_build(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (
            f"python build.py --output <tmp>: median wall time ({r['runs']} runs)",
            f"{statistics.median(r['walls']):.3f} s (min {min(r['walls']):.3f}, max {max(r['walls']):.3f})",
            "< 0.5 s",
        ),
        (
            "python build.py: peak RSS (median; max)",
            f"{statistics.median(r['peaks_mib']):.1f} MiB; {max(r['peaks_mib']):.1f} MiB",
            "< 80 MiB",
        ),
        ("template size", f"{r['bytes']:,} bytes", ""),
        (
            "tapstack.cli.render() in-process: first call / warm median",
            f"{r['render_first']:.3f} s / {r['render_warm']:.3f} s",
            "",
        ),
        ("default build outputs in-process (template + docs, not written)", f"{r['default_outputs_warm']:.3f} s", ""),
    ]


def print_table(sections: list[tuple[str, list[tuple[str, str, str]]]]) -> None:
    rows = [row for _, section in sections for row in section]
    if not rows:
        return
    widths = [max(len(row[i]) for row in [*rows, ("metric", "value", "goal")]) for i in range(3)]
    line = "  ".join("-" * w for w in widths)
    print("  ".join(h.ljust(w) for h, w in zip(("metric", "value", "goal"), widths, strict=True)).rstrip())
    for title, section in sections:
        print(line)
        print(title)
        for row in section:
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print(line)


NOTE = """\
Method: the generated template (tapstack.cli.render, the bytes build.py writes) deployed on moto by
tapstack.local.LocalDeployment, handlers as inlined, clock frozen at {start}. Tables are filled through
moto's backend (no stream records), reminders planned as the processor plans them (offset 1440).
Items read = the processor's DynamoDB reads (Query ScannedCount, BatchGetItem items), from
monitor.calls. Billed transitions = *StateEntered events + retries in get_execution_history;
per-reminder states are those inside the Map's ItemProcessor. Invocations from monitor.invocations.
Payload = largest input/output/parameters string of any history event. Wall times are the local
runner's (moto, one interpreter), not AWS's; the scale run {parallel}."""


# ---- main ------------------------------------------------------------------------------------------

PARTS = ("build", "reads", "transitions", "scale", "cost", "faults")
#: Issue 10's parts (benchmarks/runtime.py): they run in this process, after the others.
RUNTIME_PARTS = ("cost", "faults")


def run_part(part: str, args: argparse.Namespace) -> dict[str, Any]:
    if part == "build":
        return bench_build(args.build_runs)
    if part == "reads":
        return bench_reads(args.appointments)
    if part == "transitions":
        return bench_transitions(args.batch)
    if part == "scale":
        return bench_scale(args.scale)
    if part in RUNTIME_PARTS:
        from benchmarks import runtime

        return runtime.PARTS[part](args.quick)
    raise ValueError(part)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (development)")
    parser.add_argument(
        "--appointments",
        type=int,
        default=None,
        help="appointments (and reminders) for the reads benchmark; 1 %% are due (default 100000)",
    )
    parser.add_argument(
        "--batch", type=int, default=None, help="due reminders of the small transitions run (default 100)"
    )
    parser.add_argument("--scale", type=int, default=None, help="due reminders of the scale run (default 5000)")
    parser.add_argument("--build-runs", type=int, default=None, help="build.py runs (default 7)")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts of {','.join(PARTS)}")
    parser.add_argument(
        "--serial",
        action="store_true",
        help="run the scale benchmark in this process after the others (default: a second "
        "process, alongside the reads and transitions benchmarks)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    parser.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)  # a child process runs one part
    args = parser.parse_args(argv)
    quick = args.quick
    args.appointments = args.appointments or (5_000 if quick else 100_000)
    args.batch = args.batch or (20 if quick else 100)
    args.scale = args.scale or (300 if quick else 5_000)
    args.build_runs = args.build_runs or (3 if quick else 7)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 5000))

    if args.part:  # child: one part, raw results as JSON on stdout
        print(json.dumps(run_part(args.part, args)))
        return 0

    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown parts {unknown}; choose from {','.join(PARTS)}")
    started = time.perf_counter()
    results: dict[str, Any] = {}
    if "build" in parts:  # first, alone: nothing else competes for the CPU
        progress("build: timing build.py")
        results["build"] = bench_build(args.build_runs)
    child = None
    parallel = "scale" in parts and not args.serial and any(p in parts for p in ("reads", "transitions"))
    if parallel:
        command = [sys.executable, str(Path(__file__).resolve()), "--part", "scale", "--scale", str(args.scale)]
        progress("scale: started in a second process")
        child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    for part in ("reads", "transitions"):
        if part in parts:
            results[part] = run_part(part, args)
    if child is not None:
        output, _ = child.communicate()
        if child.returncode != 0:
            raise SystemExit(f"the scale benchmark failed ({child.returncode})")
        results["scale"] = json.loads(output)
    elif "scale" in parts:
        results["scale"] = bench_scale(args.scale)
    for part in RUNTIME_PARTS:
        if part in parts:
            results[part] = run_part(part, args)
    elapsed = time.perf_counter() - started

    sections: list[tuple[str, list[tuple[str, str, str]]]] = []
    if "reads" in results:
        title = (
            f"1. DynamoDB items read per due reminder ({results['reads']['due']:,} due of "
            f"{results['reads']['appointments']:,})"
        )
        sections.append((title, rows_reads(results["reads"])))
    if "transitions" in results or "reads" in results:
        rows: list[tuple[str, str, str]] = []
        if "transitions" in results:
            rows += rows_transitions(f"{results['transitions']['batch']} due", results["transitions"]["window"])
        if "reads" in results:
            rows += rows_transitions(f"{results['reads']['due']} due", results["reads"]["window"])
        if "transitions" in results:
            rows += rows_empty(results["transitions"]["empty"])
        sections.append(("2. Lambda invocations and billed state transitions per reminder", rows))
    if "scale" in results:
        sections.append(("3. Many due reminders in one schedule run", rows_scale(results["scale"])))
    if "build" in results:
        sections.append(("4. python build.py", rows_build(results["build"])))
    if "cost" in results or "faults" in results:
        from benchmarks import runtime

        if "cost" in results:
            sections.append(("5. Orchestration cost per million reminders", runtime.rows_cost(results["cost"])))
            sections.append(
                ("6. Idle month at the default schedule, rate(1 minute)", runtime.rows_idle(results["cost"]))
            )
            sections.append(
                (
                    "7. Lateness at the default schedule: due time to the provider's call",
                    runtime.rows_lateness(results["cost"]),
                )
            )
        if "faults" in results:
            sections.append(("8. Fault runs", runtime.rows_faults(results["faults"])))
    print_table(sections)
    for record in results.get("scale", {}).get("missing", []):
        print(f"no SMS for this reminder: {json.dumps(record, default=str)}")
    print()
    print(
        NOTE.format(
            start=START.isoformat(),
            parallel="ran in a second process alongside benchmarks 1-2" if parallel else "ran in this process",
        )
    )
    if "cost" in results:
        from benchmarks import runtime

        print()
        print(runtime.assumptions())
    print(f"\nTotal wall time: {elapsed:.0f} s{' (--quick)' if quick else ''}.")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
