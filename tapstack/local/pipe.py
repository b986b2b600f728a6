"""The EventBridge Pipe, run from its template properties: stream → filter → batch → transform → workflow.

moto has no Pipes. This module plays a pipe with a DynamoDB stream source and a Step Functions
target as AWS documents it; each behaviour names its source next to the code that relies on it.
What AWS does not document precisely enough to copy is refused with ``UnsupportedTemplate``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import botocore.exceptions
from botocore.exceptions import ClientError

from tapstack.local.resolve import UnsupportedTemplate

PIPES_INPUT_TRANSFORMATION = (
    "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-pipes-input-transformation.html"
)
PIPES_BATCHING = "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-pipes-batching-concurrency.html"
PIPES_ERRORS = "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-pipes-error-troubleshooting.html"
PIPES_STATE_MACHINE_TARGET = (
    "https://docs.aws.amazon.com/eventbridge/latest/pipes-reference/API_PipeTargetStateMachineParameters.html"
)
PIPES_DYNAMODB_SOURCE = "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-pipes-dynamodb.html"
PIPES_DYNAMODB_PARAMETERS = (
    "https://docs.aws.amazon.com/eventbridge/latest/pipes-reference/API_PipeSourceDynamoDBStreamParameters.html"
)
#: AWS documents no dead-letter message for Pipes; this engineering blog shows one from a pipe
#: with a DynamoDB stream source, and its DDBStreamBatchInfo is the one Lambda documents at
#: https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html
PIPES_DEAD_LETTER_EXAMPLE = (
    "https://github.com/dvla/dvla.github.io/blob/main/content/posts/"
    "2024-03-stream-state-changes-using-eventbridge-pipes/index.md"
)

FIRE_AND_FORGET = "FIRE_AND_FORGET"
REQUEST_RESPONSE = "REQUEST_RESPONSE"

#: Failures in which the request never got an answer: Pipes calls these internal errors, retries
#: them without limit and does not count them against MaximumRetryAttempts (PIPES_ERRORS).
_NO_ANSWER = (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError)


# ---- the input template ---------------------------------------------------------------------

#: Anything that looks like a variable; each is then checked against what the runner supports.
_CANDIDATE = re.compile(r"<(\$[^<>\"]*|aws\.[^<>\"]*)>")
#: A JSON path of the documented syntax: dot notation with names of letters, digits, dashes,
#: underscores and forward slashes, and array indices (PIPES_INPUT_TRANSFORMATION). Wildcards,
#: also documented, select several values whose rendering Pipes does not document: refused.
_PATH = re.compile(r"^\$(?:\.[A-Za-z0-9_\-/]+|\[\d+\])*$")
_PATH_STEP = re.compile(r"\.([A-Za-z0-9_\-/]+)|\[(\d+)\]")
#: Reserved variables the runner fills; aws.pipes.event (escaping undocumented) and
#: aws.pipes.enrichment-arn (the runner plays no enrichment) are refused.
RESERVED_VARIABLES = (
    "aws.pipes.pipe-arn",
    "aws.pipes.pipe-name",
    "aws.pipes.source-arn",
    "aws.pipes.target-arn",
    "aws.pipes.event.ingestion-time",
    "aws.pipes.event.json",
)


@dataclass(frozen=True)
class _Variable:
    start: int
    end: int
    name: str  # a JSON path ($...) or a reserved variable (aws.pipes....)
    in_string: bool  # written between the quotes of a JSON string


class InputTemplate:
    """A pipe's ``TargetParameters.InputTemplate``, checked once, then applied to each record.

    Pipes applies the template to each record of a batch, not to the batch, and a Step Functions
    target receives the batch as one JSON array (PIPES_BATCHING, PIPES_INPUT_TRANSFORMATION).

    Supported, as PIPES_INPUT_TRANSFORMATION documents it:

    - a JSON object or array whose values are variables (``"id": <$.dynamodb.Keys.id.S>``) or hold
      them between quotes (``"id": "<$.dynamodb.Keys.id.S>"``), or a template that is one variable;
    - JSON paths in dot notation with array indices, and the reserved variables in
      ``RESERVED_VARIABLES``.

    How values are written: a string variable outside quotes gets quotes added ("Pipes
    automatically adds quotes to string variable values"); between quotes it is written as it
    is; an object or array is written as JSON, outside quotes only. Values are not escaped
    ("EventBridge doesn't escape values extracted by Input Path"): a quote inside a value makes
    the record invalid JSON, and Step Functions then refuses the batch.

    Refused with ``UnsupportedTemplate`` (AWS's result is not documented well enough to copy):
    free text, wildcards, ``aws.pipes.event``, ``aws.pipes.enrichment-arn``, an object or array
    between quotes, and a path that a record does not have ("that variable isn't created").
    """

    def __init__(self, text: str, where: str = "InputTemplate") -> None:
        self.text = text
        self.where = where
        self.variables = _variables(text)
        for variable in self.variables:
            if variable.name.startswith("$"):
                if not _PATH.match(variable.name):
                    raise UnsupportedTemplate(
                        f"{where}: the local runner supports JSON paths in dot notation with array "
                        f"indices, not <{variable.name}> ({PIPES_INPUT_TRANSFORMATION})"
                    )
            elif variable.name not in RESERVED_VARIABLES:
                raise UnsupportedTemplate(
                    f"{where}: the local runner does not fill <{variable.name}>; it fills "
                    f"{', '.join(RESERVED_VARIABLES)} ({PIPES_INPUT_TRANSFORMATION})"
                )
            elif variable.name == "aws.pipes.event.json" and variable.in_string:
                raise UnsupportedTemplate(
                    f"{where}: <aws.pipes.event.json> can only be the value of a JSON field "
                    f"({PIPES_INPUT_TRANSFORMATION})"
                )
        self._check_json()

    def _check_json(self) -> None:
        stripped = self.text.strip()
        whole = len(self.variables) == 1 and (self.variables[0].start, self.variables[0].end) == (0, len(self.text))
        if not whole and not stripped.startswith(("{", "[")):
            raise UnsupportedTemplate(
                f"{self.where}: a Step Functions target takes JSON; the local runner supports a JSON "
                f"object or array template, or one variable, not free text ({PIPES_INPUT_TRANSFORMATION})"
            )
        sample = self._fill(lambda variable: "" if variable.in_string else "null")
        try:
            json.loads(sample)
        except json.JSONDecodeError as error:
            raise UnsupportedTemplate(f"{self.where}: not JSON once its variables are filled in ({error})") from None

    def render(self, record: Mapping[str, Any], reserved: Mapping[str, Any]) -> str:
        """The record as the target receives it (text: it may be invalid JSON, as in AWS)."""
        return self._fill(lambda variable: self._written(variable, self._value(variable, record, reserved)))

    def _fill(self, text_of: Callable[[_Variable], str]) -> str:
        parts, done = [], 0
        for variable in self.variables:
            parts += [self.text[done : variable.start], text_of(variable)]
            done = variable.end
        parts.append(self.text[done:])
        return "".join(parts)

    def _value(self, variable: _Variable, record: Mapping[str, Any], reserved: Mapping[str, Any]) -> Any:
        if not variable.name.startswith("$"):
            return reserved[variable.name] if variable.name != "aws.pipes.event.json" else record
        value: Any = record
        for key, index in _PATH_STEP.findall(variable.name):
            try:
                value = value[int(index)] if index else value[key]
            except (KeyError, IndexError, TypeError):
                raise UnsupportedTemplate(
                    f"{self.where}: a record has no {variable.name}; Pipes then leaves the variable out, "
                    f"which the local runner does not copy ({PIPES_INPUT_TRANSFORMATION})"
                ) from None
        return value

    def _written(self, variable: _Variable, value: Any) -> str:
        if isinstance(value, dict | list):
            if variable.in_string:
                raise UnsupportedTemplate(
                    f"{self.where}: <{variable.name}> is an object or array between quotes; Pipes removes "
                    f"its inner quotes, which the local runner does not copy ({PIPES_INPUT_TRANSFORMATION})"
                )
            return json.dumps(value)
        if isinstance(value, str):
            # Not escaped, as in AWS: see the class docstring.
            return value if variable.in_string else f'"{value}"'
        if variable.in_string:
            return json.dumps(value).strip('"')
        return json.dumps(value)


def _variables(text: str) -> list[_Variable]:
    """The variables of a template, each knowing whether it is written inside a JSON string."""
    found: list[_Variable] = []
    in_string, position = False, 0
    while position < len(text):
        char = text[position]
        if in_string and char == "\\":
            position += 2
            continue
        if char == '"':
            in_string = not in_string
        elif char == "<":
            match = _CANDIDATE.match(text, position)
            if match:
                found.append(_Variable(match.start(), match.end(), match.group(1), in_string))
                position = match.end()
                continue
        position += 1
    return found


# ---- the pipe's settings ----------------------------------------------------------------------


def invocation_type(properties: Mapping[str, Any]) -> str:
    """How the pipe starts its state machine; REQUEST_RESPONSE when the template says nothing
    (PIPES_STATE_MACHINE_TARGET: "REQUEST_RESPONSE (default)")."""
    target = properties.get("TargetParameters", {}).get("StepFunctionStateMachineParameters", {})
    return str(target.get("InvocationType", REQUEST_RESPONSE))


def check_pipe(properties: Mapping[str, Any], target_type: str | None, where: str) -> None:
    """Refuse, at deploy, a pipe that AWS would not run or that the runner cannot play."""
    if "DynamoDBStreamParameters" not in properties.get("SourceParameters", {}):
        raise UnsupportedTemplate(f"{where}: the local runner plays pipes with a DynamoDB stream source only")
    if properties.get("Enrichment"):
        raise UnsupportedTemplate(f"{where}: the local runner does not play a pipe's Enrichment")
    if target_type is None:
        raise UnsupportedTemplate(f"{where}: the local runner plays pipes whose Target is a state machine it deployed")
    invocation = invocation_type(properties)
    if invocation not in (FIRE_AND_FORGET, REQUEST_RESPONSE):
        raise UnsupportedTemplate(f"{where}: InvocationType {invocation!r} is not one AWS knows")
    if invocation == REQUEST_RESPONSE and target_type != "EXPRESS":
        # "REQUEST_RESPONSE is not supported for STANDARD state machine workflows"
        # (PIPES_STATE_MACHINE_TARGET); AWS stops such a pipe (PIPES_ERRORS, "Pipe failure states").
        raise UnsupportedTemplate(
            f"{where}: InvocationType REQUEST_RESPONSE (the default) starts the workflow with "
            f"StartSyncExecution, which a STANDARD state machine does not support: use "
            f"FIRE_AND_FORGET, or an EXPRESS state machine ({PIPES_STATE_MACHINE_TARGET})"
        )
    template = properties.get("TargetParameters", {}).get("InputTemplate")
    if template is not None:
        InputTemplate(str(template), f"{where}/TargetParameters/InputTemplate")


# ---- delivering ---------------------------------------------------------------------------------


class _TargetFailed(Exception):
    """The target answered with a failure: Pipes counts it against MaximumRetryAttempts."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class _Held(Exception):
    """These records wait at the head of their shard for the next poll."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(records)} records held")
        self.records = records


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _arrival(record: Mapping[str, Any]) -> float:
    """When the record was written to the stream, in epoch seconds."""
    return float(record["dynamodb"]["ApproximateCreationDateTime"])


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now() -> float:
    # The virtual clock when a test or scenario froze it (time-machine patches datetime).
    return datetime.now(tz=UTC).timestamp()


class LocalPipe:
    """A pipe from a DynamoDB stream to a state machine, played as AWS documents it.

    Each :meth:`poll` reads the records written since the previous poll (the first starts at
    ``StartingPosition``), keeps those the pipe's ``FilterCriteria`` match (moto's EventBridge
    pattern matcher), cuts each shard's records into batches of ``BatchSize`` in stream order and
    delivers each batch:

    - **input**: the records, each through ``TargetParameters.InputTemplate`` when there is one,
      as one JSON array, also for a single record (PIPES_BATCHING);
    - **FIRE_AND_FORGET**: ``StartExecution`` (Standard or Express); the batch is delivered when the
      call succeeds, whatever the execution does later;
    - **REQUEST_RESPONSE** (Express only): ``StartSyncExecution``; a FAILED or TIMED_OUT execution
      fails the batch (PIPES_ERRORS: a logic error in a synchronously invoked Step Functions target
      is a customer invocation error, retried);
    - **a failed batch** (an error answer from Step Functions, or a failed synchronous execution) is
      retried up to ``MaximumRetryAttempts`` times, then its stream position goes to the dead-letter
      queue and the pipe moves on (PIPES_ERRORS). With ``OnPartialBatchItemFailure:
      AUTOMATIC_BISECT`` a failed batch of more than one record is halved at once and each half
      delivered in order, until the records are delivered or one failed record is left
      (PIPES_DYNAMODB_PARAMETERS); the split itself uses no retry, as Lambda documents for the same
      setting (https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html), and a
      single record then gets its ``1 + MaximumRetryAttempts`` attempts;
    - **no answer at all** (a connection that failed or timed out) is a pipe internal error: not
      counted, retried without limit (PIPES_ERRORS). The batch and everything after it on its
      shard wait for the next poll, as does a failed batch when ``MaximumRetryAttempts`` is -1
      (unlimited, the default: PIPES_DYNAMODB_PARAMETERS);
    - **MaximumRecordAgeInSeconds**: records older than this on the (virtual) clock when their
      batch is delivered go to the dead-letter queue instead (PIPES_ERRORS, "Pipe DLQ behavior").

    Retries take no virtual time. Not modelled: MaximumBatchingWindowInSeconds (a poll delivers
    what the stream holds), ParallelizationFactor, the stream's 24-hour retention, and a partial
    batch response (``batchItemFailures``) in a synchronous execution's output, which is refused.
    """

    def __init__(self, deployment: Any, logical_id: str) -> None:
        from moto.events.models import EventPattern

        self.deployment = deployment
        self.logical_id = logical_id
        deployed = deployment.resources[logical_id]
        properties = deployed.properties
        self.properties = properties
        self.arn = str(deployed.attributes["Arn"])
        self.name = str(deployed.ref)
        source = properties["SourceParameters"]
        self.stream = source["DynamoDBStreamParameters"]
        self.patterns = [EventPattern.load(f["Pattern"]) for f in source.get("FilterCriteria", {}).get("Filters", [])]
        # Defaults: 100 records (PIPES_DYNAMODB_SOURCE); -1 = unlimited (PIPES_DYNAMODB_PARAMETERS).
        self.batch_size = int(self.stream.get("BatchSize", 100))
        self.max_retries = int(self.stream.get("MaximumRetryAttempts", -1))
        self.max_record_age = int(self.stream.get("MaximumRecordAgeInSeconds", -1))
        self.bisect = self.stream.get("OnPartialBatchItemFailure") == "AUTOMATIC_BISECT"
        self.dead_letter_arn: str | None = self.stream.get("DeadLetterConfig", {}).get("Arn")
        self.stream_arn = str(properties["Source"])
        self.target = str(properties["Target"])
        self.invocation_type = invocation_type(properties)
        template = properties.get("TargetParameters", {}).get("InputTemplate")
        self.input_template = InputTemplate(str(template)) if template is not None else None
        self._iterators: dict[str, str] = {}
        #: Records (already filtered) waiting at the head of their shard for the next poll.
        self.held: dict[str, list[dict[str, Any]]] = {}
        #: Every dead-letter message, as sent to the queue.
        self.dead_letters: list[dict[str, Any]] = []

    def _client(self, service: str) -> Any:
        """A client whose calls are recorded under the pipe's logical ID (its role's calls)."""
        return self.deployment.principal_client(self.logical_id, service)

    # ---- reading --------------------------------------------------------------------------------

    def _read_shards(self) -> dict[str, list[dict[str, Any]]]:
        """Each shard's records written since the last read."""
        streams = self._client("dynamodbstreams")
        by_shard: dict[str, list[dict[str, Any]]] = {}
        shards = streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        for shard in shards:
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators:
                self._iterators[shard_id] = streams.get_shard_iterator(
                    StreamArn=self.stream_arn,
                    ShardId=shard_id,
                    ShardIteratorType=self.stream.get("StartingPosition", "LATEST"),
                )["ShardIterator"]
            records = by_shard.setdefault(shard_id, [])
            while True:
                page = streams.get_records(ShardIterator=self._iterators[shard_id])
                self._iterators[shard_id] = page["NextShardIterator"]
                if not page["Records"]:
                    break
                records += [{**_jsonable(record), "eventSourceARN": self.stream_arn} for record in page["Records"]]
        return by_shard

    def read(self) -> list[dict[str, Any]]:
        """Stream records written since the last read (the first read starts at ``StartingPosition``)."""
        return [record for records in self._read_shards().values() for record in records]

    def matches(self, record: dict[str, Any]) -> bool:
        event: Any = record  # moto types its events as its own TypedDict; a stream record is matched the same way
        return not self.patterns or any(pattern.matches_event(event) for pattern in self.patterns)

    def batches(self) -> list[list[dict[str, Any]]]:
        """The new matching records, as the pipe would batch them (the stream position moves on)."""
        return [
            batch
            for records in self._read_shards().values()
            for batch in self._cut([record for record in records if self.matches(record)])
        ]

    def _cut(self, records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        return [records[i : i + self.batch_size] for i in range(0, len(records), self.batch_size)]

    def target_input(self, records: list[dict[str, Any]]) -> str:
        """What the target receives for these records: one JSON array (PIPES_BATCHING)."""
        if self.input_template is None:
            return json.dumps(records)
        reserved = {
            "aws.pipes.pipe-arn": self.arn,
            "aws.pipes.pipe-name": self.name,
            "aws.pipes.source-arn": self.stream_arn,
            "aws.pipes.target-arn": self.target,
            "aws.pipes.event.ingestion-time": _iso(_now()),
        }
        return "[" + ",".join(self.input_template.render(record, reserved) for record in records) + "]"

    # ---- delivering -----------------------------------------------------------------------------

    def poll(self) -> list[str]:
        """Deliver what the stream holds now; return the ARNs of the executions that took a batch."""
        taken: list[str] = []
        new = self._read_shards()
        for shard in sorted(set(self.held) | set(new)):
            records = self.held.pop(shard, []) + [record for record in new.get(shard, []) if self.matches(record)]
            for number, batch in enumerate(self._cut(records)):
                try:
                    taken += self._deliver(shard, batch)
                except _Held as held:
                    # The shard waits: nothing after these records goes before them ("EventBridge
                    # Pipes maintains the order of records from the data stream": PIPES_DYNAMODB_SOURCE).
                    self.held[shard] = held.records + records[(number + 1) * self.batch_size :]
                    break
        return taken

    def _deliver(self, shard: str, records: list[dict[str, Any]]) -> list[str]:
        """Deliver one batch; the ARNs of the executions that took it. Raises ``_Held``."""
        failures = 0
        while True:
            records = self._drop_expired(shard, records)
            if not records:
                return []
            try:
                return [self._invoke(records)]
            except _NO_ANSWER:
                raise _Held(records) from None
            except _TargetFailed:
                if self.bisect and len(records) > 1:
                    return self._deliver_halves(shard, records)
                failures += 1
                if self.max_retries < 0:
                    raise _Held(records) from None
                if failures > self.max_retries:
                    self._dead_letter(shard, records, "RetryAttemptsExhausted")
                    return []

    def _deliver_halves(self, shard: str, records: list[dict[str, Any]]) -> list[str]:
        middle = (len(records) + 1) // 2
        first, second = records[:middle], records[middle:]
        try:
            taken = self._deliver(shard, first)
        except _Held as held:
            raise _Held(held.records + second) from None
        return taken + self._deliver(shard, second)

    def _drop_expired(self, shard: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Dead-letter the records older than MaximumRecordAgeInSeconds; the rest."""
        if self.max_record_age < 0:
            return records
        now = _now()
        # A shard's records come in the order they were written: the expired ones come first.
        expired = [r for r in records if now - _arrival(r) > self.max_record_age]
        if expired:
            self._dead_letter(shard, expired, "RecordAgeExceeded")
        return records[len(expired) :]

    def _invoke(self, records: list[dict[str, Any]]) -> str:
        """Start the state machine with the batch; the ARN of the execution that took it."""
        sfn = self._client("stepfunctions")
        request = {"stateMachineArn": self.target, "name": uuid.uuid4().hex, "input": self.target_input(records)}
        try:
            if self.invocation_type == FIRE_AND_FORGET:
                return str(sfn.start_execution(**request)["executionArn"])
            answer = sfn.start_sync_execution(**request)
        except ClientError as error:
            raise _TargetFailed(error.response["Error"]["Code"], error.response["Error"].get("Message", "")) from error
        if answer["status"] != "SUCCEEDED":
            raise _TargetFailed(str(answer.get("error") or answer["status"]), str(answer.get("cause", "")))
        self._refuse_partial_batch_response(answer.get("output"))
        return str(answer["executionArn"])

    def _refuse_partial_batch_response(self, output: str | None) -> None:
        try:
            answer = json.loads(output or "null")
        except json.JSONDecodeError:
            return
        if isinstance(answer, dict) and answer.get("batchItemFailures"):
            raise UnsupportedTemplate(
                f"Resources/{self.logical_id}: the workflow answered with batchItemFailures; the local "
                f"runner does not play partial batch responses ({PIPES_BATCHING})"
            )

    def _dead_letter(self, shard: str, records: list[dict[str, Any]], condition: str) -> None:
        """Send the batch's stream position (not its records) to the dead-letter queue.

        The message has the shape of the Pipes dead-letter message in PIPES_DEAD_LETTER_EXAMPLE:
        ``context`` (the pipe's ARN and why), ``version``, ``timestamp`` and ``DDBStreamBatchInfo``
        (shard, first and last sequence numbers, arrival times, batch size, stream).
        """
        arrivals = [_arrival(r) for r in records]
        message = {
            "context": {"partnerResourceArn": self.arn, "condition": condition},
            "version": "1.0",
            "timestamp": _iso(_now()),
            "DDBStreamBatchInfo": {
                "shardId": shard,
                "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso(arrivals[0]),
                "approximateArrivalOfLastRecord": _iso(arrivals[-1]),
                "batchSize": len(records),
                "streamArn": self.stream_arn,
            },
        }
        self.dead_letters.append(message)
        if self.dead_letter_arn:
            self._send_dead_letter(self.dead_letter_arn, json.dumps(message))

    def _send_dead_letter(self, arn: str, body: str) -> None:
        # An SQS queue or an SNS topic (PIPES_ERRORS, "Pipe DLQ behavior").
        if arn.split(":")[2] == "sns":
            self._client("sns").publish(TopicArn=arn, Message=body)
            return
        queue = next(d for d in self.deployment.of_type("AWS::SQS::Queue") if d.attributes["Arn"] == arn)
        self._client("sqs").send_message(QueueUrl=queue.ref, MessageBody=body)
