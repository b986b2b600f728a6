"""Scenarios: book, move, cancel and delete appointments on a virtual clock; print what went out."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

from tapstack.local.deployment import LocalDeployment

DEFAULT_SCENARIO = "default.json"
_DURATION = re.compile(r"^([+-]?)(\d+)(s|m|h|d)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
ACTIONS = ("book", "move", "cancel", "delete")


class ScenarioError(ValueError):
    """The scenario file is not of the expected form; the message says where."""


def shipped_scenarios() -> list[str]:
    """The names of the scenarios shipped with the package."""
    folder = resources.files("tapstack.local").joinpath("scenarios")
    return sorted(entry.name.removesuffix(".json") for entry in folder.iterdir() if entry.name.endswith(".json"))


def duration(text: str, where: str) -> int:
    """``"90m"``, ``"+26h"``, ``"2d"`` → seconds."""
    match = _DURATION.match(str(text).strip())
    if not match:
        raise ScenarioError(f"{where}: expected a duration such as 30m, 26h or 2d, got {text!r}")
    sign = -1 if match.group(1) == "-" else 1
    return sign * int(match.group(2)) * _UNITS[match.group(3)]


@dataclass
class Step:
    at: int  # seconds after the start
    action: str
    appointment_id: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class Scenario:
    """A parsed scenario: parameters for the stack, a start time, timed steps and an end."""

    description: str
    start: datetime
    parameters: dict[str, str]
    steps: list[Step]
    until: int
    tick: int | None
    #: Print every message sent, as its recipient reads it (``"showMessages": true``).
    show_messages: bool = False

    @classmethod
    def load(cls, source: str | Path | None = None) -> Scenario:
        if source is None:
            text = resources.files("tapstack.local").joinpath("scenarios", DEFAULT_SCENARIO).read_text("utf-8")
            name = f"(default scenario {DEFAULT_SCENARIO})"
        else:
            path = Path(source)
            shipped = resources.files("tapstack.local").joinpath("scenarios", f"{path.name}.json")
            if not path.is_file() and path.name == str(source) and shipped.is_file():
                # A scenario shipped with the package, by its name (``simulate messages``).
                text, name = shipped.read_text("utf-8"), f"(scenario {path.name})"
            elif not path.is_file():
                raise ScenarioError(
                    f"{path}: no such scenario file (or shipped scenario: {', '.join(shipped_scenarios())})"
                )
            else:
                text, name = path.read_text(encoding="utf-8"), str(path)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ScenarioError(f"{name}: not JSON ({error})") from None
        return cls.parse(data, name)

    @classmethod
    def parse(cls, data: Mapping[str, Any], name: str = "scenario") -> Scenario:
        if not isinstance(data, Mapping) or not isinstance(data.get("steps"), list):
            raise ScenarioError(f"{name}: expected an object with a list of steps")
        try:
            start = datetime.fromisoformat(str(data.get("start", "2026-03-02T09:00:00+00:00")).replace("Z", "+00:00"))
        except ValueError:
            raise ScenarioError(f"{name}: start must be an ISO date-time such as 2026-03-02T09:00:00Z") from None
        if start.tzinfo is None:
            raise ScenarioError(f"{name}: start needs a time zone (end it with Z for UTC)")
        steps = [cls._step(raw, f"{name}: steps[{number}]") for number, raw in enumerate(data["steps"])]
        last = max((step.at for step in steps), default=0)
        until = duration(data["until"], f"{name}: until") if "until" in data else last
        if until < last:
            raise ScenarioError(f"{name}: until ({data['until']}) is before the last step")
        tick = duration(data["tick"], f"{name}: tick") if "tick" in data else None
        parameters = {str(k): str(v) for k, v in data.get("parameters", {}).items()}
        show_messages = data.get("showMessages", False)
        if not isinstance(show_messages, bool):
            raise ScenarioError(f"{name}: showMessages must be true or false")
        return cls(str(data.get("description", "")), start, parameters, steps, until, tick, show_messages)

    @staticmethod
    def _step(raw: Any, where: str) -> Step:
        if not isinstance(raw, Mapping):
            raise ScenarioError(f"{where}: expected an object")
        actions = [name for name in ACTIONS if name in raw]
        if len(actions) != 1:
            raise ScenarioError(f"{where}: expected exactly one of {', '.join(ACTIONS)}")
        action = actions[0]
        at = duration(raw.get("at", "0m"), f"{where}.at")
        body = raw[action]
        if action in ("cancel", "delete"):
            if not isinstance(body, str):
                raise ScenarioError(f"{where}.{action}: expected an appointment id")
            return Step(at, action, body)
        if not isinstance(body, Mapping) or "appointmentId" not in body or "in" not in body:
            raise ScenarioError(f"{where}.{action}: expected an object with appointmentId and in (e.g. 26h)")
        fields = {k: v for k, v in body.items() if k not in ("appointmentId", "in")}
        fields["startsIn"] = duration(body["in"], f"{where}.{action}.in")
        return Step(at, action, str(body["appointmentId"]), fields)


@dataclass
class TimelineRow:
    at: datetime
    appointment_id: str
    offset_minutes: int
    channel: str
    outcome: str
    shown: str


@dataclass
class SentMessage:
    """A message a sender delivered, as its recipient reads it."""

    at: datetime
    appointment_id: str
    offset_minutes: int
    channel: str
    #: The email's headers and parts, or the SMS's text with its encoding and segments.
    text: str


@dataclass
class SimulationResult:
    rows: list[TimelineRow]
    reminders: list[dict[str, Any]]
    executions: Counter[str]
    failed_executions: list[str]
    messages: list[SentMessage] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed_executions


def schedule_period(expression: str) -> int:
    """Seconds between schedule runs for ``rate(...)``; five minutes for ``cron(...)``."""
    match = re.match(r"rate\((\d+) (minute|hour|day)s?\)", expression)
    if not match:
        return 300
    return int(match.group(1)) * {"minute": 60, "hour": 3600, "day": 86400}[match.group(2)]


@contextmanager
def _clock(start: datetime) -> Iterator[Any]:
    import time_machine

    with time_machine.travel(start, tick=False) as traveller:
        yield traveller


class Simulation:
    """Runs a scenario on a local deployment of a template."""

    def __init__(
        self, template: str | Path | Mapping[str, Any], scenario: Scenario, parameters: Mapping[str, str] | None = None
    ) -> None:
        self.template = template
        self.scenario = scenario
        self.parameters = {"SenderEmail": "reminders@example.com", **scenario.parameters, **(parameters or {})}

    def run(self) -> SimulationResult:
        scenario = self.scenario
        with (
            _clock(scenario.start) as clock,
            LocalDeployment(self.template, self.parameters, echo_logs=False) as deployment,
        ):
            period = scenario.tick or schedule_period(deployment.parameters.get("ScheduleExpression", ""))
            now = 0
            pending = sorted(scenario.steps, key=lambda step: step.at)
            while True:
                while pending and pending[0].at <= now:
                    self._apply(deployment, pending.pop(0), scenario.start + timedelta(seconds=now))
                deployment.run_pipe()
                deployment.wait()
                deployment.run_schedule()
                deployment.wait()
                if now >= scenario.until and not pending:
                    break
                step = min(period, (pending[0].at - now) if pending else period)
                now += max(step, 1)
                clock.move_to(scenario.start + timedelta(seconds=now))
            return self._result(deployment)

    def _apply(self, deployment: LocalDeployment, step: Step, when: datetime) -> None:
        """What the booking app writes; the system reacts through the stream, as in AWS."""
        from boto3.dynamodb.types import TypeSerializer

        dynamodb = deployment.client("dynamodb")
        table = deployment.table_name("AppointmentsTable")
        key = {"appointmentId": {"S": step.appointment_id}}
        if step.action == "delete":
            dynamodb.delete_item(TableName=table, Key=key)
        elif step.action == "cancel":
            dynamodb.update_item(
                TableName=table,
                Key=key,
                UpdateExpression="SET #s = :c",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":c": {"S": "CANCELLED"}},
            )
        elif step.action == "move":
            time = int(when.timestamp()) + step.fields["startsIn"]
            dynamodb.update_item(
                TableName=table,
                Key=key,
                UpdateExpression="SET appointmentTime = :t",
                ExpressionAttributeValues={":t": {"N": str(time)}},
            )
        else:
            item: dict[str, Any] = {
                "appointmentId": step.appointment_id,
                "appointmentTime": int(when.timestamp()) + step.fields["startsIn"],
                "customerEmail": f"{step.appointment_id}@example.com",
                "customerPhone": "+15555550100",
            }
            item.update({k: v for k, v in step.fields.items() if k != "startsIn"})
            if isinstance(item.get("notificationChannels"), list):
                item["notificationChannels"] = set(item["notificationChannels"])
            item = {k: v for k, v in item.items() if v is not None}
            serializer = TypeSerializer()
            dynamodb.put_item(TableName=table, Item={k: serializer.serialize(v) for k, v in item.items()})

    def _result(self, deployment: LocalDeployment) -> SimulationResult:
        shown: dict[tuple[str, str], str] = {}
        rows: list[TimelineRow] = []
        messages: list[SentMessage] = []
        for invocation in deployment.monitor.invocations:
            if invocation.function.endswith("AppointmentProcessorFunction") and invocation.result:
                for job in invocation.result.get("jobs", []):
                    shown[(job["reminderId"], job["claimToken"])] = job.get("localTime", "")
        for invocation in deployment.monitor.invocations:
            if not invocation.function.endswith(("EmailSenderFunction", "SmsSenderFunction")):
                continue
            event, result = invocation.event, invocation.result
            appointment_id, _, offset = str(event["reminderId"]).rpartition("#")
            channel = "email" if invocation.function.endswith("EmailSenderFunction") else "sms"
            if result is None:
                outcome = f"ERROR {invocation.error['errorType'] if invocation.error else ''}".strip()
            else:
                outcome = " ".join(filter(None, [result.get("status"), result.get("reason")]))
            rows.append(
                TimelineRow(
                    _utc(invocation.at),
                    appointment_id,
                    int(offset),
                    channel,
                    outcome,
                    shown.get((event["reminderId"], event["claimToken"]), ""),
                )
            )
            if result is not None and result.get("status") == "SENT" and event.get("message"):
                text = _as_read(deployment, channel, event["message"])
                messages.append(SentMessage(_utc(invocation.at), appointment_id, int(offset), channel, text))
        reminders = _scan(deployment, "RemindersTable")
        for item in reminders:
            if item["state"] in ("SKIPPED", "CANCELLED") and "reason" in item:
                rows.append(
                    TimelineRow(
                        _utc(float(item["updatedAt"])),
                        str(item["appointmentId"]),
                        int(item["offsetMinutes"]),
                        "-",
                        f"{item['state']} {item['reason']}",
                        "",
                    )
                )
        rows.sort(key=lambda row: (row.at, row.appointment_id, row.offset_minutes, row.channel))
        executions = deployment.executions()
        return SimulationResult(
            rows=rows,
            reminders=reminders,
            executions=Counter(e["status"] for e in executions),
            failed_executions=[e["executionArn"] for e in executions if e["status"] != "SUCCEEDED"],
            messages=sorted(messages, key=lambda m: (m.at, m.appointment_id, m.offset_minutes, m.channel)),
        )


def _as_read(deployment: LocalDeployment, channel: str, message: dict[str, Any]) -> str:
    """The message as its recipient reads it, rendered by the deployed functions' own code: the
    email sender's SendEmail request (From, Reply-To), the processor's count of SMS segments."""
    from tapstack.local.preview import email_lines, sms_size

    if channel == "email":
        sender = deployment.functions[
            deployment.resources[deployment.logical_id("AWS::Lambda::Function", "EmailSenderFunction")].ref
        ]
        return email_lines(sender.module.email_request(message))
    processor_id = deployment.logical_id("AWS::Lambda::Function", "AppointmentProcessorFunction")
    processor = deployment.functions[deployment.resources[processor_id].ref].module
    encoding, segments = processor.sms_segments(message["text"])
    return f"  ({sms_size(encoding, segments)})\n" + "".join(f"  {line}\n" for line in message["text"].splitlines())


def _scan(deployment: LocalDeployment, table_suffix: str) -> list[dict[str, Any]]:
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    pages = (
        deployment.client("dynamodb")
        .get_paginator("scan")
        .paginate(TableName=deployment.table_name(table_suffix), ConsistentRead=True)
    )
    return [{k: deserializer.deserialize(v) for k, v in item.items()} for page in pages for item in page["Items"]]


def print_timeline(result: SimulationResult, out: TextIO, show_messages: bool = False) -> None:
    """A table of every reminder sent or skipped, then a summary; with ``show_messages``, every
    message sent as its recipient reads it."""
    headers = ("time (UTC)", "appointment", "offset", "channel", "outcome", "time shown to the customer")
    table = [headers] + [
        (
            row.at.strftime("%Y-%m-%d %H:%M"),
            row.appointment_id,
            f"{row.offset_minutes} min",
            row.channel,
            row.outcome,
            row.shown,
        )
        for row in result.rows
    ]
    widths = [max(len(str(line[i])) for line in table) for i in range(len(headers))]
    for number, line in enumerate(table):
        out.write("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=False)).rstrip() + "\n")
        if number == 0:
            out.write("  ".join("-" * width for width in widths) + "\n")
    outcomes = Counter(f"{row.channel} {row.outcome.split()[0]}" for row in result.rows if row.channel != "-")
    states = Counter(str(item["state"]) for item in result.reminders)
    out.write("\nsummary\n")
    out.write(f"  deliveries:  {_counts(outcomes) or 'none'}\n")
    out.write(f"  reminders:   {_counts(states) or 'none'}\n")
    out.write(f"  executions:  {_counts(result.executions) or 'none'}\n")
    for arn in result.failed_executions:
        out.write(f"  FAILED execution: {arn}\n")
    if show_messages:
        out.write("\nmessages sent\n")
        for message in result.messages:
            when = f"{message.at:%Y-%m-%d %H:%M}"
            out.write(f"\n{when}  {message.appointment_id}  {message.offset_minutes} min  {message.channel}\n")
            out.write(message.text)


def _counts(counter: Mapping[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(counter.items()))


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)
