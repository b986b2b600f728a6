"""List prices, the assumptions that turn the runner's counts into AWS's bill, and the meter that counts.

The runner counts what the stack does: executions, billed state transitions, Lambda invocations
and the AWS calls each made, DynamoDB's read and write request units. It cannot measure how long
an invocation takes in AWS, so a duration is *modelled*: the CPU time its thread used on the runner
(the function's code, botocore, and moto's emulation of the service, which makes it an upper bound
of the function's own work) plus an assumed round trip for each AWS call it made
(``CALL_LATENCY_MS``). Every assumption is printed next to the figures that use it.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

#: Where and when the list prices below were read.
PRICE_REGION = "us-east-1 (US East, N. Virginia)"
PRICE_DATE = "2026-11-28"


@dataclass(frozen=True)
class Price:
    usd: float
    per: str
    source: str


#: us-east-1 list prices. AWS's pricing pages render most figures in the browser; where the text of
#: AWS's own page did not show the figure, the note says where it was read.
PRICES = {
    "express_request": Price(
        1.00 / 1_000_000, "request (execution started)", "https://aws.amazon.com/step-functions/pricing/"
    ),
    # "$0.06000 per GB-hour" for the first 1,000 GB-hours (the page's pricing example), i.e. per GB-second:
    "express_gb_second": Price(
        0.06 / 3600, "GB-second (first 1,000 GB-hours)", "https://aws.amazon.com/step-functions/pricing/"
    ),
    "standard_transition": Price(
        0.025 / 1000,
        "state transition, retries included (4,000 free a month)",
        "https://aws.amazon.com/step-functions/pricing/",
    ),
    "lambda_request": Price(0.20 / 1_000_000, "request", "https://aws.amazon.com/lambda/pricing/"),
    # arm64, first 7.5 billion GB-seconds a month (tiers: https://aws.amazon.com/blogs/compute/introducing-tiered-pricing-for-aws-lambda/);
    # the figure as README.md's cost table read it on 2026-11-25, confirmed by third-party copies of the page.
    "lambda_gb_second_arm64": Price(0.0000133334, "GB-second, arm64", "https://aws.amazon.com/lambda/pricing/"),
    # On demand, Standard table class, after the November 2024 price cut (README.md's table, 2026-11-25).
    "dynamodb_wru": Price(
        0.625 / 1_000_000, "write request unit", "https://aws.amazon.com/dynamodb/pricing/on-demand/"
    ),
    "dynamodb_rru": Price(0.125 / 1_000_000, "read request unit", "https://aws.amazon.com/dynamodb/pricing/on-demand/"),
    "cloudwatch_metric": Price(
        0.30, "custom metric a month (first 10,000, prorated by the hour)", "https://aws.amazon.com/cloudwatch/pricing/"
    ),
    "cloudwatch_logs_gb": Price(
        0.50, "GB of logs ingested (standard class)", "https://aws.amazon.com/cloudwatch/pricing/"
    ),
    "pipes_request": Price(
        0.40 / 1_000_000, "request (per 64 KB chunk of a batch)", "https://aws.amazon.com/eventbridge/pricing/"
    ),
}

#: Assumed round trip of one AWS call from a Lambda function in the same region (the runner answers
#: in-process). DynamoDB: "single-digit millisecond" (https://aws.amazon.com/dynamodb/); the others
#: are assumptions of this benchmark, chosen on the slow side.
CALL_LATENCY_MS = {
    "dynamodb": 10.0,
    "ses": 100.0,
    "sns": 60.0,
    "stepfunctions": 30.0,
}
#: Assumed time Step Functions takes per state on an execution's critical path (scheduling, the
#: Lambda integration's own call): an assumption of this benchmark.
STATE_OVERHEAD_MS = 20.0
#: Express bills memory in 64 MB chunks, "50 MB + state machine definition size + execution data
#: size x Number of Parallel or Map Steps", and duration rounded up to 100 ms (the pricing page).
EXPRESS_BASE_MB = 50.0
EXPRESS_MEMORY_CHUNK_MB = 64
EXPRESS_DURATION_STEP_MS = 100
#: Lambda bills duration rounded up to 1 ms: https://aws.amazon.com/lambda/pricing/
LAMBDA_DURATION_STEP_MS = 1
#: The default schedule, rate(1 minute), fires this often in a 30-day month.
SCHEDULE_RUNS_PER_MONTH = 30 * 24 * 60

ASSUMPTIONS = [
    f"prices: {PRICE_REGION} list prices read on {PRICE_DATE} (sources in benchmarks/pricing.py); no free tier "
    "counted except where said",
    "Lambda duration = CPU time of the invocation's thread on the runner (its code, botocore and moto's emulation) "
    f"+ per AWS call {', '.join(f'{k} {v:.0f} ms' for k, v in CALL_LATENCY_MS.items())} (assumed round trips)",
    f"Express duration = the execution's critical path: processor, the Map's items on MaxConcurrency slots "
    f"(each: the slower sender, then UpdateStatus), {STATE_OVERHEAD_MS:.0f} ms per state on the path (assumed); "
    f"billed in {EXPRESS_DURATION_STEP_MS} ms steps and {EXPRESS_MEMORY_CHUNK_MB} MB chunks "
    f"({EXPRESS_BASE_MB:.0f} MB + definition + largest state payload x (Map items + Parallel states))",
    "DynamoDB: WRU = the larger of the item before and after, per KB; each write to the sparse DueIndex (projection "
    "ALL) 1 more, 2 when its key changes; a refused conditional write 1 per KB of the existing item (at least 1, "
    "assumed); RRU = Query 0.5 per 4 KB read (the index is eventually consistent), at least 0.5; BatchGetItem "
    "(consistent) 1 per 4 KB per item, 1 for an item not found (assumed)",
    "not counted: SES and SMS messages, SNS delivery events, Pipes requests, log ingestion except "
    "in the idle month, KMS, alarms (README.md's fixed costs)",
]


# ---- metering --------------------------------------------------------------------------------------


@dataclass
class Invocation:
    """One function invocation as the meter saw it."""

    function: str
    event: Any
    result: Any
    error: Any
    cpu_ms: float
    at: float  # the runner's (virtual) clock when it started
    calls: Counter[str] = field(default_factory=Counter)  # "service" -> calls

    @property
    def modelled_ms(self) -> float:
        return self.cpu_ms + sum(CALL_LATENCY_MS.get(service, 10.0) * n for service, n in self.calls.items())

    @property
    def billed_ms(self) -> int:
        return max(1, math.ceil(self.modelled_ms / LAMBDA_DURATION_STEP_MS) * LAMBDA_DURATION_STEP_MS)


@dataclass
class Capacity:
    """DynamoDB request units, by table and operation."""

    wru: Counter[str] = field(default_factory=Counter)
    rru: Counter[str] = field(default_factory=Counter)

    def total(self) -> tuple[float, float]:
        return sum(self.wru.values()), sum(self.rru.values())


class Meter:
    """Installed on a ``LocalDeployment`` (inside its ``with``): times every invocation, attributes
    each AWS call a function makes to the invocation making it, and counts DynamoDB's request units
    from moto's backend (each request sees the item before and after it). ``mark()`` starts a
    window; ``since(mark)`` is what happened after it."""

    def __init__(self, deployment: Any) -> None:
        self.deployment = deployment
        self.invocations: list[Invocation] = []
        self.capacity = Capacity()
        self._current = threading.local()
        self._lock = threading.Lock()
        self._undo: list[Callable[[], None]] = []
        self.counting = True

    # -- installing ---------------------------------------------------------------------------

    def __enter__(self) -> Meter:
        for function in self.deployment.functions.values():
            self._time(function)
        self._tag_calls()
        self._count_capacity()
        return self

    def __exit__(self, *exc: object) -> None:
        for undo in reversed(self._undo):
            undo()

    def _patch(self, owner: Any, name: str, value: Any) -> None:
        original = getattr(owner, name)
        setattr(owner, name, value)
        self._undo.append(lambda: setattr(owner, name, original))

    def _time(self, function: Any) -> None:
        meter, invoke = self, function.invoke

        def timed(event: Any) -> Any:
            record = Invocation(function.logical_id, event, None, None, 0.0, time.time())
            meter._current.invocation = record
            started = time.thread_time()
            try:
                result, error = invoke(event)
            finally:
                record.cpu_ms = (time.thread_time() - started) * 1000
                meter._current.invocation = None
            record.result, record.error = result, error
            with meter._lock:
                meter.invocations.append(record)
            return result, error

        self._patch(function, "invoke", timed)

    def _tag_calls(self) -> None:
        """Each call the monitor records is made in the thread of the invocation making it."""
        meter, monitor = self, self.deployment.monitor

        class TaggedCalls(list):  # type: ignore[type-arg]
            def append(self, call: Any) -> None:
                invocation = getattr(meter._current, "invocation", None)
                if invocation is not None:
                    invocation.calls[call.service] += 1
                super().append(call)

        tagged = TaggedCalls(monitor.calls)
        original = monitor.calls
        monitor.calls = tagged
        self._undo.append(lambda: setattr(monitor, "calls", original + list(tagged[len(original) :])))

    def _count_capacity(self) -> None:
        from moto.dynamodb.exceptions import ConditionalCheckFailed
        from moto.dynamodb.models import DynamoDBBackend
        from moto.dynamodb.models.dynamo_type import DynamoType
        from moto.dynamodb.responses import DynamoHandler

        meter = self
        update_item, query, batch_get_item = (
            DynamoDBBackend.update_item,
            DynamoDBBackend.query,
            DynamoHandler.batch_get_item,
        )

        def item_of(backend: Any, table_name: str, key: dict[str, Any]) -> tuple[Any, Any]:
            table = backend.get_table(table_name)
            hash_value = DynamoType(key[table.hash_key_attr])
            range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            return table, table.get_item(hash_value, range_value)

        def metered_update(backend: Any, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            table, before = item_of(backend, table_name, key)
            size_before = before.size() if before else 0
            keys_before = _index_keys(table, before)
            try:
                written = update_item(backend, table_name, key, *args, **kwargs)
            except ConditionalCheckFailed:
                meter._add("wru", table_name, "refused", max(1, math.ceil(size_before / 1024)))
                raise
            _, after = item_of(backend, table_name, key)
            size_after = after.size() if after else 0
            units = max(1, math.ceil(max(size_before, size_after) / 1024))
            meter._add("wru", table_name, "UpdateItem", units)
            for index, key_before in keys_before.items():
                key_after = _index_keys(table, after)[index]
                index_units = math.ceil(size_after / 1024) or 1
                if key_before is None and key_after is None:
                    continue
                changed = key_before is not None and key_after is not None and key_before != key_after
                meter._add("wru", table_name, f"{index} (index)", (2 if changed else 1) * index_units)
            return written

        def metered_query(backend: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
            items, scanned, last = query(backend, table_name, *args, **kwargs)
            consistent = bool(kwargs.get("consistent_read"))  # moto's handler passes it by name
            unit = 1.0 if consistent else 0.5
            size = sum(item.size() for item in items)
            meter._add("rru", table_name, "Query", max(unit, unit * math.ceil(size / 4096)))
            return items, scanned, last

        def metered_batch_get(handler: Any) -> Any:
            for table_name, request in handler.body["RequestItems"].items():
                unit = 1.0 if request.get("ConsistentRead") else 0.5
                for key in request["Keys"]:
                    _, item = item_of(handler.dynamodb_backend, table_name, key)
                    size = item.size() if item else 0
                    meter._add("rru", table_name, "BatchGetItem", max(unit, unit * math.ceil(size / 4096)))
            return batch_get_item(handler)

        self._patch(DynamoDBBackend, "update_item", metered_update)
        self._patch(DynamoDBBackend, "query", metered_query)
        self._patch(DynamoHandler, "batch_get_item", metered_batch_get)

    def _add(self, kind: str, table: str, operation: str, units: float) -> None:
        if not self.counting:
            return
        with self._lock:
            getattr(self.capacity, kind)[f"{table} {operation}"] += units

    # -- windows --------------------------------------------------------------------------------

    def mark(self) -> tuple[int, Counter[str], Counter[str], set[str]]:
        executions = {e["executionArn"] for e in self.deployment.executions()}
        return len(self.invocations), Counter(self.capacity.wru), Counter(self.capacity.rru), executions

    def since(self, mark: tuple[int, Counter[str], Counter[str], set[str]]) -> Window:
        count, wru, rru, executions = mark
        capacity = Capacity(self.capacity.wru - wru, self.capacity.rru - rru)
        new = [e for e in self.deployment.executions() if e["executionArn"] not in executions]
        return Window(list(self.invocations[count:]), capacity, new)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """DynamoDB traffic of the benchmark itself (reading records back) is not counted."""
        self.counting = False
        try:
            yield
        finally:
            self.counting = True


def _index_keys(table: Any, item: Any) -> dict[str, tuple[Any, ...] | None]:
    """Each global secondary index's key of the item, or None when the item is not in it (sparse)."""
    keys: dict[str, tuple[Any, ...] | None] = {}
    for index in table.global_indexes:
        names = [k["AttributeName"] for k in index.schema]
        if item is None or any(name not in item.attrs for name in names):
            keys[index.name] = None
        else:
            keys[index.name] = tuple(item.attrs[name].value for name in names)
    return keys


@dataclass
class Window:
    invocations: list[Invocation]
    capacity: Capacity
    executions: list[dict[str, Any]]


# ---- costs --------------------------------------------------------------------------------------


def lambda_cost(invocations: list[Invocation], memory_mb: dict[str, int]) -> tuple[float, float]:
    """(requests, duration) in USD."""
    requests = len(invocations) * PRICES["lambda_request"].usd
    gb_seconds = sum(memory_mb[i.function] / 1024 * i.billed_ms / 1000 for i in invocations)
    return requests, gb_seconds * PRICES["lambda_gb_second_arm64"].usd


def dynamodb_cost(capacity: Capacity) -> float:
    wru, rru = capacity.total()
    return wru * PRICES["dynamodb_wru"].usd + rru * PRICES["dynamodb_rru"].usd


def express_cost(executions: int, gb_seconds: float) -> tuple[float, float]:
    return executions * PRICES["express_request"].usd, gb_seconds * PRICES["express_gb_second"].usd


def standard_cost(transitions: int) -> float:
    return transitions * PRICES["standard_transition"].usd


def billed_express(duration_ms: float, memory_mb: float) -> tuple[int, int, float]:
    """(billed ms, billed MB, GB-seconds) of one Express execution."""
    billed_ms = math.ceil(duration_ms / EXPRESS_DURATION_STEP_MS) * EXPRESS_DURATION_STEP_MS
    billed_mb = math.ceil(memory_mb / EXPRESS_MEMORY_CHUNK_MB) * EXPRESS_MEMORY_CHUNK_MB
    return billed_ms, billed_mb, billed_mb / 1024 * billed_ms / 1000


def list_schedule(durations: list[float], slots: int) -> tuple[list[float], float]:
    """Start times of items run on ``slots`` at once in order (a Map's MaxConcurrency), and the end."""
    free = [0.0] * max(1, slots)
    starts = []
    for duration in durations:
        slot = min(range(len(free)), key=free.__getitem__)
        starts.append(free[slot])
        free[slot] += duration
    return starts, max(free)


def by_execution(invocations: list[Invocation]) -> dict[str, list[Invocation]]:
    """Invocations grouped by the execution that made them: the processor's event names its
    execution; the others carry the claim token, derived from it (handlers/README.md)."""
    import hashlib

    groups: dict[str, list[Invocation]] = defaultdict(list)
    tokens: dict[str, str] = {}
    for invocation in invocations:
        if isinstance(invocation.event, dict) and "execution" in invocation.event:
            execution = invocation.event["execution"]
            tokens[hashlib.sha256(execution.encode()).hexdigest()[:32]] = execution
    for invocation in invocations:
        event = invocation.event if isinstance(invocation.event, dict) else {}
        execution = event.get("execution") or tokens.get(event.get("claimToken", ""), "?")
        groups[execution].append(invocation)
    return groups
