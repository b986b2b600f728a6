"""``python -m tapstack backfill``: plan reminders for the appointments already in the table.

The pipe plans an appointment when it changes; one written before the stack existed, or more than the
stream's 24 hours before the pipe read it, is never planned. The backfill reads the Appointments table
page by page (keys only) and hands the keys to the deployed workflow exactly as the pipe does: a JSON
array of changes ``{"eventName", "keys"}``, in batches of the pipe's size, one execution per batch. The
changes carry no ``sequenceNumber``, so the processor only creates plans that do not exist yet (its plan
write is conditional on the reminder record not existing: handlers/README.md, ProcessAppointments): a
backfill plans nothing twice, and never overrides what the stream planned.

After each batch whose execution succeeded, the scan position is saved to a state file; a run that is
interrupted (Ctrl-C, a batch that keeps failing, a lost connection) is resumed by running the same
command again. At most the batch in flight when it stopped is handed again, which plans nothing twice.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from tqdm import tqdm

from tapstack.operations.arguments import add_stack_arguments, positive_number
from tapstack.operations.deployed import (
    CLIENT_CONFIG,
    AwsUnavailable,
    DeployedStack,
    DeployedStackError,
    aws_errors,
    translate,
)
from tapstack.timing import EXECUTION_TIMEOUT_SECONDS
from tapstack.triggers import PIPE_BATCH_SIZE

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_stepfunctions import SFNClient

#: The data contract's partition key (README.md, "The data contract").
APPOINTMENT_KEY = "appointmentId"

#: Appointments read a second at most, by default. Each one costs the Appointments table a consistent
#: read (the processor re-reads it: 1 read unit up to 4 KB) and the Reminders table a conditional
#: write per offset and its index entry; the scan itself reads pages of 10 keys (half a read unit per
#: 4 KB, eventually consistent). At 100 a second that is about 100 read units and, with three offsets,
#: 600 write units a second: far below what a pay-per-request table serves at once, "up to 4,000 write
#: request units or 12,000 read request units" for a new table, and below a partition's "3,000 read
#: request units or 1,000 write request units"
#: (https://repost.aws/knowledge-center/on-demand-table-throttling-dynamodb,
#: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html), which
#: leaves the booking app its own traffic. It also keeps the workflow's starts at 10 a second.
DEFAULT_RATE = 100.0

#: A batch's execution is started at most this many times; between attempts the wait doubles from
#: FIRST_BACKOFF_SECONDS up to LONGEST_BACKOFF_SECONDS, with full jitter (a random wait up to it), so
#: that a throttled account is not hit again in step.
START_ATTEMPTS = 5
FIRST_BACKOFF_SECONDS = 2.0
LONGEST_BACKOFF_SECONDS = 30.0

#: StartSyncExecution answers when the Express execution ends, after up to five minutes
#: (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-standard-vs-express.html): the read
#: timeout waits that long, and a little more. The client makes one attempt: this module retries the
#: start itself, as it also retries a run that failed, with one policy for both.
START_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 1},
    connect_timeout=5,
    read_timeout=EXECUTION_TIMEOUT_SECONDS + 30,
)

#: Step Functions' answers that another try may outlive: throttling ("ThrottlingException", "Rate
#: exceeded": https://docs.aws.amazon.com/step-functions/latest/apireference/CommonErrors.html), the
#: service's own failures (5xx), a KMS throttle, and a Standard account's full quota of open executions
#: ("ExecutionLimitExceeded": https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html).
RETRYABLE_START_ERRORS = frozenset(
    {
        "ThrottlingException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "KmsThrottlingException",
        "ExecutionLimitExceeded",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalServerError",
        "InternalFailure",
    }
)

STATE_FILE_VERSION = 1


class BackfillError(DeployedStackError):
    """The backfill cannot go on; the message says why and what to do (exit code 2)."""


class BatchFailed(Exception):
    """A batch's execution still failed after its attempts (exit code 1: run again to resume)."""


# --- Pacing -----------------------------------------------------------------------------------------------


@dataclass
class Pacer:
    """At most ``rate`` items a second, in every stretch of the run: a page of items waits until the
    previous page is ``1 / rate`` seconds per item behind it (a slow stretch is never made up for by a
    burst)."""

    rate: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    next_at: float = float("-inf")

    def wait_for(self, items: int) -> None:
        now = self.clock()
        if now < self.next_at:
            self.sleep(self.next_at - now)
            now = self.next_at
        self.next_at = now + items / self.rate


def backoff_seconds(attempt: int, draw: Callable[[float, float], float] = random.uniform) -> float:
    """The wait after failed attempt ``attempt`` (1, 2, ...): full jitter under a doubling cap."""
    cap = min(FIRST_BACKOFF_SECONDS * 2 ** (attempt - 1), LONGEST_BACKOFF_SECONDS)
    return draw(0, cap)


# --- The state file ---------------------------------------------------------------------------------------


def _now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class BackfillState:
    """Where a backfill of one table stands. ``position`` is the scan's ``LastEvaluatedKey`` after the last
    batch whose execution succeeded (``None``: from the start); counts add up over resumed runs."""

    table: str
    workflow: str
    position: dict[str, Any] | None = None
    finished: bool = False
    scanned: int = 0
    handed: int = 0
    executions: int = 0
    failed_attempts: int = 0
    started_at: str = field(default_factory=_now_text)
    updated_at: str = field(default_factory=_now_text)
    version: int = STATE_FILE_VERSION

    @classmethod
    def load(cls, path: Path) -> BackfillState | None:
        """The state saved at ``path``; ``None`` when there is no file."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            raise BackfillError(f"cannot read state file {path}: {error}") from error
        try:
            if data.get("version") != STATE_FILE_VERSION:
                raise TypeError(f"version {data.get('version')!r}, expected {STATE_FILE_VERSION}")
            return cls(**data)
        except (AttributeError, TypeError) as error:
            raise BackfillError(
                f"{path} is not a backfill state file ({error}): pass another --state, or delete it"
            ) from error

    def save(self, path: Path) -> None:
        """Write the state so that an interruption leaves the old file or the new one, never half of one
        (``os.replace`` is atomic on POSIX and Windows)."""
        self.updated_at = _now_text()
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(temporary, path)


def default_state_path(stack: DeployedStack) -> Path:
    system = f"-{stack.prefix}" if stack.prefix else ""
    return Path(f"tapstack-backfill-{stack.name}{system}-{stack.region}.json")


# --- The workflow -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartAttempt:
    """One attempt at starting a batch's execution: its ARN when it ran (or was accepted), or why not."""

    execution_arn: str | None
    error: str | None = None
    retryable: bool = True

    @property
    def succeeded(self) -> bool:
        return self.error is None


class Workflow:
    """The deployed state machine, started as the pipe starts it: an Express workflow synchronously
    (``StartSyncExecution``, the pipe's REQUEST_RESPONSE: the batch is handed when the run SUCCEEDED),
    a Standard one asynchronously (``StartExecution``, FIRE_AND_FORGET: handed when the start is accepted;
    its failures are the WorkflowErrorsAlarm's and redrive's, as for the pipe)."""

    def __init__(self, stack: DeployedStack, client: SFNClient, express: bool) -> None:
        self.stack = stack
        self.client = client
        self.arn = stack.workflow_arn
        self.express = express

    @classmethod
    def of(cls, stack: DeployedStack) -> Workflow:
        """The stack's workflow and its type (one ``DescribeStateMachine`` call)."""
        session, arn = stack.clients.session, stack.workflow_arn
        try:
            with aws_errors("states:DescribeStateMachine", stack.region, session):
                reader = session.client("stepfunctions", region_name=stack.region, config=CLIENT_CONFIG)
                described = reader.describe_state_machine(stateMachineArn=arn)
                client: SFNClient = session.client(
                    "stepfunctions", region_name=stack.region, config=START_CLIENT_CONFIG
                )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            message = error.response.get("Error", {}).get("Message", "")
            raise BackfillError(f"cannot read the stack's workflow {arn}: {code}: {message}") from error
        except BotoCoreError as error:
            raise BackfillError(f"could not call AWS: {error}") from error
        return cls(stack, client, described["type"] == "EXPRESS")

    @property
    def start_action(self) -> str:
        return "states:StartSyncExecution" if self.express else "states:StartExecution"

    def start(self, changes: list[dict[str, Any]]) -> StartAttempt:
        """Start one execution with ``changes`` as its input; raises ``DeployedStackError`` when Step
        Functions refuses for a reason no retry outlives (access denied, no such state machine)."""
        # The name tells the backfill's executions from the pipe's in the logs.
        name, text = f"backfill-{uuid.uuid4().hex}", json.dumps(changes)
        try:
            if not self.express:
                started = self.client.start_execution(stateMachineArn=self.arn, name=name, input=text)
                return StartAttempt(started["executionArn"])
            answer = self.client.start_sync_execution(stateMachineArn=self.arn, name=name, input=text)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400))
            if code in RETRYABLE_START_ERRORS or status >= 500:
                return StartAttempt(None, code)
            raise self._refused(error) from error
        except BotoCoreError as error:
            translated = translate(error, self.start_action, self.stack.region, self.stack.clients.session)
            if translated is not None and not isinstance(translated, AwsUnavailable):
                raise translated from error  # credentials gone (an SSO session expired): no retry helps
            # No answer (a connection failed, the answer timed out): the run may or may not have
            # happened; handing the batch again plans nothing twice.
            return StartAttempt(None, type(error).__name__)
        # "StartSyncExecution will return a 200 OK response, even if your execution fails"
        # (https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartSyncExecution.html):
        # the run's own status says whether the batch was planned.
        if answer["status"] == "SUCCEEDED":
            return StartAttempt(answer["executionArn"])
        # Only the error's name: its cause may quote the processor's exception.
        return StartAttempt(answer["executionArn"], f"{answer['status']} {answer.get('error') or ''}".strip())

    def _refused(self, error: ClientError) -> DeployedStackError:
        translated = translate(error, self.start_action, self.stack.region, self.stack.clients.session)
        if translated is not None:
            return translated
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        return BackfillError(f"Step Functions refused to start {self.arn}: {code}: {message}")


# --- The backfill -----------------------------------------------------------------------------------------


@dataclass
class Progress:
    """The progress bar (on stderr, when it is a terminal): scanned, handed, executions failed; and notes
    about failed attempts, printed above it (or alone, without a terminal)."""

    bar: tqdm[Any]
    stream: TextIO

    @classmethod
    def open(cls, total: int | None, state: BackfillState, stream: TextIO, enabled: bool) -> Progress:
        bar: tqdm[Any] = tqdm(
            total=max(total, state.scanned) if total else None,
            initial=state.scanned,
            desc="scanned",
            unit=" appointments",
            file=stream,
            disable=None if enabled else True,  # None: only on a terminal
            dynamic_ncols=True,
        )
        progress = cls(bar, stream)
        progress.show(state)
        return progress

    def show(self, state: BackfillState, scanned: int = 0) -> None:
        # In this order (keyword arguments would be sorted by name).
        counts = {"handed": state.handed, "executions": state.executions, "failed": state.failed_attempts}
        self.bar.set_postfix(counts, refresh=not scanned)
        if scanned:
            if self.bar.total is not None and self.bar.n + scanned > self.bar.total:
                self.bar.total = self.bar.n + scanned  # the table's count is six hours old at most
            self.bar.update(scanned)

    def note(self, text: str) -> None:
        tqdm.write(text, file=self.stream)

    def close(self) -> None:
        self.bar.close()


class Backfill:
    """Scan, batch, hand, save: one table's backfill from where its state says."""

    def __init__(
        self,
        stack: DeployedStack,
        workflow: Workflow,
        state: BackfillState,
        state_path: Path,
        pacer: Pacer,
        progress: Progress,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.stack = stack
        self.workflow = workflow
        self.state = state
        self.state_path = state_path
        self.pacer = pacer
        self.progress = progress
        self.sleep = sleep
        self.table = stack.appointments_table_name
        self.dynamodb: DynamoDBClient = stack.clients.session.client(
            "dynamodb", region_name=stack.region, config=CLIENT_CONFIG
        )

    def run(self) -> None:
        """Until the table is done; raises ``BatchFailed``, ``DeployedStackError`` or ``KeyboardInterrupt``
        with the state saved after the last batch handed."""
        while not self.state.finished:
            page = self.scan_page()
            keys = page.get("Items", [])
            if keys:
                self.hand(keys)
            self.state.scanned += len(keys)
            self.state.handed += len(keys)
            # "If LastEvaluatedKey is empty, then the 'last page' of results has been processed";
            # a page with a LastEvaluatedKey may still be empty, or the last one
            # (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Scan.html).
            self.state.position = page.get("LastEvaluatedKey")
            self.state.finished = self.state.position is None
            self.state.save(self.state_path)
            self.progress.show(self.state, len(keys))

    def scan_page(self) -> dict[str, Any]:
        """The next page of keys: one batch (``Limit`` is the pipe's batch size). Only the key is read out of
        DynamoDB (``ProjectionExpression``): no contact data leaves the table. Eventually consistent: an
        appointment written during the backfill reaches the processor through the stream anyway. The
        client retries a throttled page (boto3's standard retry mode)."""
        self.pacer.wait_for(PIPE_BATCH_SIZE)
        request: dict[str, Any] = {
            "TableName": self.table,
            "Limit": PIPE_BATCH_SIZE,
            "ProjectionExpression": "#key",
            "ExpressionAttributeNames": {"#key": APPOINTMENT_KEY},
        }
        if self.state.position:
            request["ExclusiveStartKey"] = self.state.position
        try:
            with aws_errors("dynamodb:Scan", self.stack.region, self.stack.clients.session):
                return dict(self.dynamodb.scan(**request))
        except ClientError as error:  # DynamoDB's own answers, the general ones translated above
            code = error.response.get("Error", {}).get("Code", "")
            message = error.response.get("Error", {}).get("Message", "")
            if code == "ResourceNotFoundException":
                raise BackfillError(f"table {self.table} not found in {self.stack.region}") from error
            if code == "ProvisionedThroughputExceededException":
                # DynamoDB's throttling: "The AWS SDKs for DynamoDB automatically retry requests that receive
                # this exception" (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Scan.html,
                # Errors); boto3's standard mode does, so this one outlived the retries. Nothing is lost: the
                # position of the last batch handed is saved.
                raise AwsUnavailable(
                    f"DynamoDB throttled dynamodb:Scan on {self.table} in {self.stack.region}, even after retries "
                    f"({code}); the table is busy: a lower --rate leaves it more room"
                ) from error
            raise BackfillError(f"DynamoDB refused dynamodb:Scan on {self.table}: {code}: {message}") from error

    def hand(self, keys: list[dict[str, Any]]) -> None:
        """One execution for the batch, as the pipe's input template renders its records (``eventName``,
        ``keys``), without ``sequenceNumber``: the processor then only creates missing plans. A failed
        or throttled start is tried again after a backoff, up to ``START_ATTEMPTS`` times."""
        # INSERT: how the stream names a change that makes an item appear; the processor decides from the
        # item it reads, not from the name.
        changes = [{"eventName": "INSERT", "keys": key} for key in keys]
        for attempt in range(1, START_ATTEMPTS + 1):
            started = self.workflow.start(changes)
            if started.succeeded:
                self.state.executions += 1
                return
            self.state.failed_attempts += 1
            self.progress.show(self.state)
            where = f" ({started.execution_arn})" if started.execution_arn else ""
            if attempt == START_ATTEMPTS:
                raise BatchFailed(
                    f"a batch of {len(keys)} appointments still failed after {START_ATTEMPTS} attempts: "
                    f"{started.error}{where}"
                )
            wait = backoff_seconds(attempt)
            self.progress.note(f"attempt {attempt} failed: {started.error}{where}; trying again in {wait:.1f} s")
            self.sleep(wait)


# --- The command line -------------------------------------------------------------------------------------

DESCRIPTION = "Plan reminders for the appointments already in a deployed stack's Appointments table."
EPILOG = f"""It hands the table's keys to the deployed workflow as the pipe does, {PIPE_BATCH_SIZE} per
execution, without stream sequence numbers: the processor only creates plans that do not exist yet, so
running it again, or next to the pipe, plans nothing twice. Ctrl-C stops it; the same command resumes
from the last batch handed (the state file).
exit codes: 0 finished (or finished before), 1 a batch still failed after {START_ATTEMPTS} attempts, AWS was
out of reach, or the table throttled the scan beyond the retries (run it again to resume), 2 the stack
cannot be read or used, or a usage error, 130 interrupted."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description, parser.epilog = DESCRIPTION, EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add_stack_arguments(parser)
    parser.add_argument(
        "--rate",
        type=positive_number,
        default=DEFAULT_RATE,
        metavar="N",
        help=f"appointments read a second at most (default {DEFAULT_RATE:g}: see docs/operations.md)",
    )
    parser.add_argument(
        "--state",
        type=Path,
        metavar="FILE",
        help="where the scan position is saved (default: tapstack-backfill-<stack>[-<prefix>]-<region>.json here)",
    )
    parser.add_argument(
        "--restart", action="store_true", help="start from the beginning of the table, whatever the state file says"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (it shows only on a terminal)")


@contextmanager
def _progress(total: int | None, state: BackfillState, stream: TextIO, enabled: bool) -> Iterator[Progress]:
    progress = Progress.open(total, state, stream, enabled)
    try:
        yield progress
    finally:
        progress.close()


def approximate_item_count(stack: DeployedStack) -> int | None:
    """The table's item count for the progress bar; "DynamoDB updates this value approximately every six
    hours" (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TableDescription.html).
    ``None`` when it cannot be read: the bar then counts without a total."""
    try:
        client = stack.clients.session.client("dynamodb", region_name=stack.region, config=CLIENT_CONFIG)
        return int(client.describe_table(TableName=stack.appointments_table_name)["Table"]["ItemCount"])
    except (BotoCoreError, ClientError, KeyError):
        return None


def prepare_state(args: argparse.Namespace, stack: DeployedStack, workflow: Workflow, path: Path) -> BackfillState:
    fresh = BackfillState(table=stack.appointments_table_arn, workflow=workflow.arn)
    saved = None if args.restart else BackfillState.load(path)
    if saved is None:
        return fresh
    if saved.table != fresh.table:
        raise BackfillError(
            f"state file {path} is for table {saved.table}, not {fresh.table}: pass another --state, or --restart"
        )
    saved.workflow = workflow.arn  # a stack updated since hands the rest to its workflow of today
    return saved


def _describe_run(stack: DeployedStack, workflow: Workflow, rate: float, path: Path, total: int | None) -> str:
    how = "StartSyncExecution" if workflow.express else "StartExecution"
    kind = "EXPRESS" if workflow.express else "STANDARD"
    about = f", about {total:,} items" if total is not None else ""
    return (
        f"tapstack backfill: stack {stack.name} in {stack.region}\n"
        f"reading {stack.appointments_table_name} (keys only{about}) at most {rate:g} a second; "
        f"{PIPE_BATCH_SIZE} per execution of {workflow.arn.rpartition(':')[2]} ({kind}, {how}); "
        f"state file {path}\n"
    )


def _count(number: int, thing: str) -> str:
    return f"{number:,} {thing}" + ("" if number == 1 else "s")


def _summary(state: BackfillState) -> str:
    return (
        f"scanned {_count(state.scanned, 'appointment')}, handed {state.handed:,} in "
        f"{_count(state.executions, 'execution')} ({_count(state.failed_attempts, 'failed attempt')})"
    )


def run(
    args: argparse.Namespace,
    session: boto3.Session | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    try:
        stack = DeployedStack.load(args.stack, region=args.region, prefix=args.prefix, session=session)
        workflow = Workflow.of(stack)
        path = args.state or default_state_path(stack)
        state = prepare_state(args, stack, workflow, path)
    except DeployedStackError as error:
        print(f"error: {error}", file=err)
        return 2
    if state.finished:
        out.write(
            f"tapstack backfill: {stack.appointments_table_name} was backfilled already ({state.updated_at}): "
            f"{_summary(state)}. Nothing to do; --restart runs it again (it plans nothing twice).\n"
        )
        return 0
    total = approximate_item_count(stack)
    out.write(_describe_run(stack, workflow, args.rate, path, total))
    if state.position is not None:
        out.write(f"resuming after {state.scanned:,} appointments (saved {state.updated_at})\n")
    out.flush()
    try:
        state.save(path)
    except OSError as error:
        print(f"error: cannot write state file {path}: {error}", file=err)
        return 2
    resume = f"run the same command again to resume (state file {path})"
    with _progress(total, state, err, enabled=not args.no_progress) as progress:
        backfill = Backfill(stack, workflow, state, path, Pacer(args.rate, clock, sleep), progress, sleep)
        try:
            backfill.run()
        except KeyboardInterrupt:
            progress.close()
            print(f"interrupted: {_summary(state)}; {resume}", file=err)
            return 130
        except BatchFailed as error:
            progress.close()
            print(f"stopped: {error}; {_summary(state)} before it; {resume}", file=err)
            return 1
        except AwsUnavailable as error:
            progress.close()
            print(f"stopped: {error}; {_summary(state)}; {resume}", file=err)
            return 1
        except DeployedStackError as error:
            progress.close()
            print(f"error: {error}; {_summary(state)}; {resume} once it is fixed", file=err)
            return 2
    out.write(f"finished: {_summary(state)}. Running it again plans nothing twice.\n")
    return 0


def main(
    argv: list[str] | None = None,
    session: boto3.Session | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    parser = argparse.ArgumentParser(prog="python -m tapstack backfill")
    add_arguments(parser)
    return run(parser.parse_args(argv), session=session, out=out, err=err, sleep=sleep, clock=clock)


__all__ = ["DEFAULT_RATE", "Backfill", "BackfillState", "Pacer", "Workflow", "main", "run"]
