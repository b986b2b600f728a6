"""``python -m tapstack status``: how the reminders of a deployed stack stand, read without a table scan.

Three reads, each printed with what it read:

- **Open reminders** from the Reminders table's sparse due index, which holds only reminders still to be
  sent (``PENDING``, ``SENDING``, and deferred ones, which are ``PENDING`` again), sharded: one ``Query`` per
  shard for those whose next decision is due before ``now + LOOKAHEAD_SECONDS``. That is every open
  reminder that is due, deferred or claimed (a deferral waits 15 minutes at most, a claim's lease less), and
  the ones due soon; reminders planned further ahead are counted from ``DescribeTable`` (approximately).
- **Outcomes** from the metrics UpdateStatus emits for each one it records (embedded metric format:
  ``RemindersSent``, ``RemindersFailed``, ``RemindersSkipped``, ``RemindersDeferred``) and the processor's
  ``OverdueSeconds``, with ``GetMetricData`` over a window of whole hours.
- **Latest failures** from the functions' own log lines (``FilterLogEvents``): UpdateStatus's ``outcome``
  lines of state ``FAILED``, whose channel reasons are read from their records, and the processor's
  ``reminder_failed`` lines (a reminder that could not go out before its appointment, or one it could not
  handle and left due).

Nothing it reads or prints holds contact data: the index is read for ids, states and times only, the
records for their channels' status and reason, and the logs hold ids and codes by design. Reminder ids
(``<appointmentId>#<offset>``) are printed for the oldest overdue and the failures, so that an operator can
look them up; they are the ids the system's logs and delivery events already carry.
"""

from __future__ import annotations

import argparse
import heapq
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TextIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from tapstack.operations.arguments import add_stack_arguments, whole_number
from tapstack.operations.deployed import (
    CLIENT_CONFIG,
    DeployedStack,
    DeployedStackError,
    aws_errors,
    translate,
)
from tapstack.storage import DUE_INDEX, DUE_INDEX_SHARDS
from tapstack.timing import CLAIM_LEASE_SECONDS

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.type_defs import MetricDataQueryTypeDef, MetricTypeDef
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_logs import CloudWatchLogsClient

#: How far past now the due index is read. A deferred reminder waits at most 15 minutes before its next
#: try (UpdateStatus's LONGEST_BACKOFF_SECONDS, handlers/update_status.py) and a claim lasts
#: CLAIM_LEASE_SECONDS: every deferred and every claimed reminder is within it (a test holds both to it).
LOOKAHEAD_SECONDS = max(15 * 60, CLAIM_LEASE_SECONDS)

#: The metrics UpdateStatus emits (handlers/update_status.py, METRICS), as printed.
OUTCOME_METRICS = {
    "SENT": "RemindersSent",
    "FAILED": "RemindersFailed",
    "SKIPPED": "RemindersSkipped",
    "DEFERRED": "RemindersDeferred",
}
HOUR = 3600

DEFAULT_HOURS = 24
DEFAULT_FAILURES = 10


def physical_name(stack: DeployedStack, stem: str, pattern: str = "{}") -> str:
    """The name the stack gave a resource: ``<prefix><stem>-<suffix>``, as ``Settings.physical_name``
    builds it (tapstack/settings.py)."""
    return pattern.format(f"{stack.prefix}{stem}-{stack.environment_suffix}")


def metrics_namespace(stack: DeployedStack) -> str:
    """The handlers' metrics namespace (``tapstack.functions.metrics_namespace``)."""
    return physical_name(stack, "TapStack")


def log_group(stack: DeployedStack, function: str) -> str:
    """A function's log group (``tapstack.functions._add_function``): ``/aws/lambda/<its name>``."""
    return physical_name(stack, function, "/aws/lambda/{}")


def _time(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _ago(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h" if hours < 48 else f"{hours // 24} days"


# --- Open reminders: the due index --------------------------------------------------------------------


@dataclass(frozen=True)
class OpenReminder:
    """A reminder in the due index, as much of it as the report needs."""

    reminder_id: str
    state: str  # PENDING or SENDING
    attempt_at: int  # when its next decision is due: its due time, a deferral's retry, a claim's lease end
    due_at: int
    deferrals: int = 0
    defer_reason: str = ""

    @classmethod
    def of(cls, item: dict[str, Any]) -> OpenReminder | None:
        """The reminder, or ``None`` for a record it cannot read (edited by hand, or left by an older
        version): counted apart, never the end of the report."""
        try:
            return cls(
                reminder_id=item["reminderId"]["S"],
                state=item.get("state", {}).get("S", "?"),
                attempt_at=int(item["attemptAt"]["N"]),
                due_at=int(item.get("dueAt", item["attemptAt"])["N"]),
                deferrals=int(item.get("deferrals", {"N": "0"})["N"]),
                defer_reason=item.get("deferReason", {}).get("S", ""),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def category(self, now: int) -> str:
        if self.state == "SENDING":
            return "sending" if self.attempt_at > now else "claim expired"
        if self.deferrals:
            return "deferred"
        return "due" if self.attempt_at <= now else "due soon"

    def overdue(self, now: int) -> bool:
        """Past its due time and not being delivered right now (a live claim is)."""
        return self.due_at <= now and self.category(now) != "sending"


#: What each category means, in the order printed.
CATEGORIES = {
    "due": "PENDING and due: the next schedule run sends it",
    "deferred": "a channel was refused for now: tried again at its time",
    "sending": "claimed by a running execution",
    "claim expired": "SENDING, but its execution is gone: the next schedule run takes it over",
    "due soon": "PENDING, due within {lookahead}",
}


@dataclass
class OpenReminders:
    """What the due index holds up to ``until``; ``indexed`` is DescribeTable's count of all of it."""

    table: str
    now: int
    until: int
    items: list[OpenReminder]
    indexed: int | None
    unreadable: int = 0

    @classmethod
    def read(cls, stack: DeployedStack, dynamodb: DynamoDBClient, now: int) -> OpenReminders:
        """One Query per shard (``dueShard = s AND attemptAt <= until``), every page; a global secondary
        index is read eventually consistent ("Global secondary indexes support eventually consistent
        reads only": https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html)."""
        until = now + LOOKAHEAD_SECONDS
        table = stack.reminders_table_name
        read: list[OpenReminder | None] = []
        with aws_errors("dynamodb:Query", stack.region, stack.clients.session):
            paginator = dynamodb.get_paginator("query")
            for shard in range(DUE_INDEX_SHARDS):
                pages = paginator.paginate(
                    TableName=table,
                    IndexName=DUE_INDEX,
                    KeyConditionExpression="dueShard = :shard AND attemptAt <= :until",
                    ExpressionAttributeValues={":shard": {"S": str(shard)}, ":until": {"N": str(until)}},
                    # Ids, states and times only.
                    ProjectionExpression="reminderId, #state, attemptAt, dueAt, deferrals, deferReason",
                    ExpressionAttributeNames={"#state": "state"},
                )
                read += [OpenReminder.of(dict(item)) for page in pages for item in page.get("Items", [])]
        items = [item for item in read if item is not None]
        return cls(table, now, until, items, _indexed(stack, dynamodb), unreadable=len(read) - len(items))

    def counts(self) -> Counter[str]:
        return Counter(item.category(self.now) for item in self.items)

    def deferred_by_reason(self) -> dict[str, list[OpenReminder]]:
        grouped: dict[str, list[OpenReminder]] = {}
        for item in self.items:
            if item.category(self.now) == "deferred":
                grouped.setdefault(item.defer_reason or "(no reason recorded)", []).append(item)
        return dict(sorted(grouped.items(), key=lambda entry: (-len(entry[1]), entry[0])))

    def oldest_overdue(self) -> OpenReminder | None:
        overdue = [item for item in self.items if item.overdue(self.now)]
        return min(overdue, key=lambda item: (item.due_at, item.reminder_id), default=None)


def _indexed(stack: DeployedStack, dynamodb: DynamoDBClient) -> int | None:
    """The due index's item count: every open reminder, those planned far ahead included. "DynamoDB
    updates this value approximately every six hours"
    (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_GlobalSecondaryIndexDescription.html).
    ``None`` when DynamoDB does not say."""
    with aws_errors("dynamodb:DescribeTable", stack.region, stack.clients.session):
        table = dynamodb.describe_table(TableName=stack.reminders_table_name)["Table"]
    indexes = [i for i in table.get("GlobalSecondaryIndexes", []) if i.get("IndexName") == DUE_INDEX]
    count = indexes[0].get("ItemCount") if indexes else None
    return None if count is None else int(count)


# --- Outcomes: the metrics ------------------------------------------------------------------------------


@dataclass
class Outcomes:
    """The outcome counts UpdateStatus emitted from ``start`` to ``end`` (hourly periods), and the most
    overdue a schedule run found."""

    namespace: str
    start: datetime
    end: datetime
    counts: dict[str, float]
    worst_lateness: float | None

    @classmethod
    def read(cls, stack: DeployedStack, cloudwatch: CloudWatchClient, now: int, hours: int) -> Outcomes:
        """One ``GetMetricData`` request (paginated): each metric's Sum per hour, and OverdueSeconds'
        Maximum. The window ends at the next whole hour: "specify StartTime and EndTime values that align
        with the value of the metric's Period and sync up with the beginning and end of an hour"
        (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html); hourly
        data points are kept 455 days. The metrics have no dimensions (handlers/common.py, emit_metrics)."""
        namespace = metrics_namespace(stack)
        end = datetime.fromtimestamp((now // HOUR + 1) * HOUR, UTC)
        start = end - timedelta(hours=hours)

        def query(key: str, name: str, stat: str) -> MetricDataQueryTypeDef:
            metric: MetricTypeDef = {"Namespace": namespace, "MetricName": name}
            return {"Id": key, "MetricStat": {"Metric": metric, "Period": HOUR, "Stat": stat}, "ReturnData": True}

        queries = [query(state.lower(), name, "Sum") for state, name in OUTCOME_METRICS.items()]
        queries.append(query("overdue", "OverdueSeconds", "Maximum"))
        values: dict[str, list[float]] = {q["Id"]: [] for q in queries}
        with aws_errors("cloudwatch:GetMetricData", stack.region, stack.clients.session):
            pages = cloudwatch.get_paginator("get_metric_data").paginate(
                MetricDataQueries=queries,
                StartTime=start,
                EndTime=end,
            )
            for page in pages:
                for result in page.get("MetricDataResults", []):
                    values[result["Id"]] += result.get("Values", [])
        counts = {state: sum(values[state.lower()]) for state in OUTCOME_METRICS}
        return cls(namespace, start, end, counts, max(values["overdue"], default=None))


# --- Latest failures: the logs --------------------------------------------------------------------------


@dataclass(order=True, frozen=True)
class Failure:
    at: float  # epoch seconds
    reminder_id: str
    what: str = field(compare=False)


def _filtered(
    stack: DeployedStack,
    logs: CloudWatchLogsClient,
    group: str,
    pattern: str,
    start: int,
    end: int,
    keep: Callable[[dict[str, Any]], bool],
) -> Iterator[tuple[float, dict[str, Any]]]:
    """Each log line of ``group`` from ``start`` to ``end`` that matches ``pattern`` and ``keep``, as JSON.

    ``pattern`` is a JSON filter pattern (``{ $.event = "outcome" }``:
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html); AWS applies it;
    ``keep`` checks each line again, so that a line is only ever read for what the pattern says (moto
    matches every line against a JSON pattern). FilterLogEvents "can return empty results while there are
    more log events available through the token"
    (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_FilterLogEvents.html): every
    page is read.
    """
    with aws_errors("logs:FilterLogEvents", stack.region, stack.clients.session):
        try:
            pages = logs.get_paginator("filter_log_events").paginate(
                logGroupName=group, filterPattern=pattern, startTime=start * 1000, endTime=end * 1000
            )
            for page in pages:
                for event in page.get("events", []):
                    try:
                        fields = json.loads(event.get("message", ""))
                    except ValueError:
                        continue
                    if isinstance(fields, dict) and keep(fields):
                        yield event.get("timestamp", 0) / 1000, fields
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            # A log group the stack has not created (yet): nothing was logged there.


@dataclass
class Failures:
    """The latest ``limit`` failures from ``start`` to ``end``, newest first, and how many there were."""

    groups: list[str]
    start: int
    latest: list[Failure]
    found: int

    @classmethod
    def read(
        cls,
        stack: DeployedStack,
        logs: CloudWatchLogsClient,
        dynamodb: DynamoDBClient,
        now: int,
        hours: int,
        limit: int,
    ) -> Failures:
        start = now - hours * HOUR
        updater, processor = log_group(stack, "StatusUpdater"), log_group(stack, "AppointmentProcessor")
        found: list[Failure] = []
        count = 0
        outcomes = _filtered(
            stack,
            logs,
            updater,
            '{ ($.event = "outcome") && ($.state = "FAILED") }',
            start,
            now,
            lambda fields: fields.get("event") == "outcome" and fields.get("state") == "FAILED",
        )
        decisions = _filtered(
            stack,
            logs,
            processor,
            '{ $.event = "reminder_failed" }',
            start,
            now,
            lambda fields: fields.get("event") == "reminder_failed",
        )
        for at, fields in outcomes:
            count += 1
            found = _keep_latest(found, Failure(at, str(fields.get("reminderId")), "FAILED"), limit)
        for at, fields in decisions:
            count += 1
            if "reason" in fields:  # the processor made it FAILED: it could not go out in time
                what = f"FAILED: {fields['reason']}"
            else:  # the processor could not handle it and left it due
                what = f"error {fields.get('errorType', '?')}: left due, the next run tries again"
            found = _keep_latest(found, Failure(at, str(fields.get("reminderId")), what), limit)
        latest = sorted(found, reverse=True)
        return cls([updater, processor], start, _with_channel_reasons(stack, dynamodb, latest), count)


def _keep_latest(kept: list[Failure], failure: Failure, limit: int) -> list[Failure]:
    return heapq.nlargest(limit, [*kept, failure])


def _with_channel_reasons(stack: DeployedStack, dynamodb: DynamoDBClient, failures: list[Failure]) -> list[Failure]:
    """UpdateStatus logs an outcome without its channels' reasons; its record holds them (``emailResult``,
    ``smsResult``: status and reason, never an address). One BatchGetItem, projected to those."""
    wanted = sorted({f.reminder_id for f in failures if f.what == "FAILED"})
    if not wanted:
        return failures
    table = stack.reminders_table_name
    with aws_errors("dynamodb:BatchGetItem", stack.region, stack.clients.session):
        answer = dynamodb.batch_get_item(
            RequestItems={
                table: {
                    "Keys": [{"reminderId": {"S": reminder_id}} for reminder_id in wanted],
                    "ProjectionExpression": "reminderId, #state, emailResult.#status, emailResult.reason, "
                    "smsResult.#status, smsResult.reason",
                    "ExpressionAttributeNames": {"#state": "state", "#status": "status"},
                }
            }
        )
    records = {item["reminderId"]["S"]: item for item in answer.get("Responses", {}).get(table, [])}
    return [
        Failure(f.at, f.reminder_id, _channels(records.get(f.reminder_id))) if f.what == "FAILED" else f
        for f in failures
    ]


def _channels(record: dict[str, Any] | None) -> str:
    if record is None:
        return "FAILED (its record was not read)"
    parts = []
    for channel in ("email", "sms"):
        result = record.get(f"{channel}Result", {}).get("M", {})
        if result:
            reason = result.get("reason", {}).get("S")
            parts.append(f"{channel} {result.get('status', {}).get('S', '?')}" + (f" {reason}" if reason else ""))
    state = record.get("state", {}).get("S", "?")
    now = "" if state == "FAILED" else f" (now {state})"
    return f"FAILED: {', '.join(parts) or 'no channel result'}{now}"


# --- The report -------------------------------------------------------------------------------------------


@dataclass
class StatusOptions:
    hours: int = DEFAULT_HOURS
    failures: int = DEFAULT_FAILURES


def _rows(rows: Iterable[tuple[str, str, str]]) -> list[str]:
    rows = list(rows)
    width = max((len(label) for label, _, _ in rows), default=0)
    number = max((len(value) for _, value, _ in rows), default=0)
    return [f"  {label:<{width}}  {value:>{number}}  {note}".rstrip() for label, value, note in rows]


def _lookahead() -> str:
    return f"{LOOKAHEAD_SECONDS // 60} minutes"


def open_section(found: OpenReminders) -> list[str]:
    counts = found.counts()
    lines = [
        f"Open reminders, from {DUE_INDEX} of {found.table} (a Query on each of its {DUE_INDEX_SHARDS} shards, "
        f"due up to {_time(found.until)}): {len(found.items) + found.unreadable:,} items read"
        + (f", {found.unreadable:,} of them unreadable (left out)" if found.unreadable else "")
    ]
    rows = [
        (category, f"{counts.get(category, 0):,}", meaning.format(lookahead=_lookahead()))
        for category, meaning in CATEGORIES.items()
    ]
    if found.indexed is None:
        rows.append(("in the index", "?", "DynamoDB did not report the index's item count"))
    else:
        rows.append(
            (
                "in the index",
                f"~{found.indexed:,}",
                "every PENDING and SENDING reminder, those planned later too (refreshed about every 6 hours)",
            )
        )
    lines += _rows(rows)
    deferred = found.deferred_by_reason()
    if deferred:
        lines.append("Deferred, by reason:")
        lines += _rows(_deferred_row(reason, items) for reason, items in deferred.items())
    oldest = found.oldest_overdue()
    if oldest is None:
        lines.append("Oldest overdue: none")
    else:
        lines.append(
            f"Oldest overdue: {oldest.reminder_id}, due {_time(oldest.due_at)} "
            f"({_ago(found.now - oldest.due_at)} ago), {oldest.category(found.now)}"
        )
    return lines


def _deferred_row(reason: str, items: list[OpenReminder]) -> tuple[str, str, str]:
    most, next_try = max(i.deferrals for i in items), min(i.attempt_at for i in items)
    deferrals = f"{most:,} deferral{'' if most == 1 else 's'}"
    return reason, f"{len(items):,}", f"{deferrals} at most; next try {_time(next_try)}"


def outcomes_section(outcomes: Outcomes, hours: int) -> list[str]:
    lines = [
        f"Outcomes, from the metrics in {outcomes.namespace} (GetMetricData, hourly since "
        f"{_time(outcomes.start.timestamp())}: {hours} periods):"
    ]
    rows = [(state, f"{outcomes.counts[state]:,.0f}", "") for state in OUTCOME_METRICS]
    rows[-1] = (rows[-1][0], rows[-1][1], "deferrals (a reminder may be deferred more than once)")
    worst = outcomes.worst_lateness
    lateness = "none reported" if worst is None else f"{worst:,.0f} s"
    note = "OverdueSeconds: the most overdue reminder a schedule run found"
    rows.append(("worst lateness", lateness, note + ("" if not worst else f" ({_ago(worst)} late)")))
    lines += _rows(rows)
    lines += [
        "  Counted when UpdateStatus records a delivery, at least once (a retried one may count twice); not",
        "  counted: cancellations, and the reminders the processor closes without a delivery (Superseded,",
        "  NoChannelRequested, AppointmentStarted, NotSentBeforeAppointment).",
    ]
    return lines


def failures_section(failures: Failures) -> list[str]:
    shown = f", the latest {len(failures.latest)}" if failures.found > len(failures.latest) else ""
    lines = [
        f"Latest failures, from the logs {' and '.join(failures.groups)} (FilterLogEvents since "
        f"{_time(failures.start)}): {failures.found:,} found{shown}"
    ]
    width = max((len(f.reminder_id) for f in failures.latest), default=0)
    lines += [f"  {_time(f.at)}  {f.reminder_id:<{width}}  {f.what}" for f in failures.latest]
    if not failures.latest:
        lines.append("  none")
    return lines


def _section(name: str, stack: DeployedStack, read: Callable[[], list[str]]) -> tuple[list[str], bool]:
    """A section's lines, or one line that says why it could not be read; whether it was read."""
    try:
        return read(), True
    except DeployedStackError as error:
        return [f"{name}: could not read: {error}"], False
    except (BotoCoreError, ClientError) as error:
        translated = translate(error, name, stack.region, stack.clients.session)
        return [f"{name}: could not read: {translated or error}"], False


def report(stack: DeployedStack, options: StatusOptions, now: int, out: TextIO) -> int:
    session, region = stack.clients.session, stack.region
    dynamodb: DynamoDBClient = session.client("dynamodb", region_name=region, config=CLIENT_CONFIG)
    cloudwatch: CloudWatchClient = session.client("cloudwatch", region_name=region, config=CLIENT_CONFIG)
    logs: CloudWatchLogsClient = session.client("logs", region_name=region, config=CLIENT_CONFIG)
    out.write(f"tapstack status: stack {stack.name} in {region}, {_time(now)}\n")
    sections = [
        ("Open reminders", lambda: open_section(OpenReminders.read(stack, dynamodb, now))),
        ("Outcomes", lambda: outcomes_section(Outcomes.read(stack, cloudwatch, now, options.hours), options.hours)),
        (
            "Latest failures",
            lambda: failures_section(Failures.read(stack, logs, dynamodb, now, options.hours, options.failures)),
        ),
    ]
    complete = True
    for name, read in sections:
        lines, was_read = _section(name, stack, read)
        complete &= was_read
        out.write("\n" + "\n".join(lines) + "\n")
    return 0 if complete else 1


# --- The command line -------------------------------------------------------------------------------------

DESCRIPTION = "How the reminders of a deployed stack stand: open, deferred, overdue, outcomes and failures."
EPILOG = f"""It reads the due index (one Query per shard, due up to {LOOKAHEAD_SECONDS // 60} minutes ahead, and
DescribeTable's count), the metrics UpdateStatus emits (GetMetricData) and the functions' logs (FilterLogEvents),
and prints what it read. It changes nothing and prints no contact data.
exit codes: 0 all read, 1 a part could not be read (it says why; the rest is printed), 2 the stack cannot be read
or a usage error."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description, parser.epilog = DESCRIPTION, EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add_stack_arguments(parser)
    parser.add_argument(
        "--hours",
        type=whole_number(1, 24 * 63),
        default=DEFAULT_HOURS,
        metavar="H",
        help=f"the window of the outcomes and failures, in hours (default {DEFAULT_HOURS})",
    )
    parser.add_argument(
        "--failures",
        type=whole_number(1, 100),
        default=DEFAULT_FAILURES,
        metavar="N",
        help=f"how many of the latest failures to show (default {DEFAULT_FAILURES})",
    )


def run(args: argparse.Namespace, session: boto3.Session | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        stack = DeployedStack.load(args.stack, region=args.region, prefix=args.prefix, session=session)
        stack.reminders_table_name  # noqa: B018 - a stack without its outputs fails here, with exit code 2
    except DeployedStackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    now = int(datetime.now(UTC).timestamp())
    return report(stack, StatusOptions(args.hours, args.failures), now, out)


def main(argv: list[str] | None = None, session: boto3.Session | None = None, out: TextIO | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tapstack status")
    add_arguments(parser)
    return run(parser.parse_args(argv), session=session, out=out)


__all__ = ["LOOKAHEAD_SECONDS", "Failures", "OpenReminders", "Outcomes", "main", "report", "run"]
