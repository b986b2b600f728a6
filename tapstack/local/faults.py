"""Faults that last a while, the recovery an operator makes after one, and the tally of what went out.

``LocalDeployment.inject`` fails the next few calls. A provider that refuses for ten minutes, or a
table that throttles a share of its writes while a batch is planned, is a :class:`Throttle`: it
refuses the calls that fall in a window of the runner's (virtual) clock, a share of them, or all of
them after the first few. Like an injected fault, one refused call stands for a request that
botocore's own retries did not get through (the fault answers before botocore sends anything).

The refusals are the ones AWS documents for throttling:

- SES: the API "produces a ThrottlingException error" whose message is "Maximum sending rate
  exceeded"; the Query API (the ``ses`` client) names it ``Throttling``, and SES asks the sender to
  "wait for an interval of up to 10 minutes, and then retry":
  https://docs.aws.amazon.com/ses/latest/dg/manage-sending-quotas-errors.html and
  https://aws.amazon.com/blogs/messaging-and-targeting/how-to-handle-a-throttling-maximum-sending-rate-exceeded-error/
- SNS: "An error occurred (ThrottlingException) when calling the publish operation: Rate exceeded":
  https://repost.aws/knowledge-center/sns-throttling-exception-errors
- DynamoDB: ``ProvisionedThroughputExceededException``, "The request was denied due to request
  throttling", also for on-demand tables past their throughput:
  https://docs.aws.amazon.com/botocore/latest/reference/services/dynamodb/client/exceptions/ProvisionedThroughputExceededException.html
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tapstack.local.functions import Fault
from tapstack.local.pipe import FIRE_AND_FORGET

CHANNELS = ("email", "sms")
SENDERS = {"email": "EmailSenderFunction", "sms": "SmsSenderFunction"}
PROCESSOR = "AppointmentProcessorFunction"


@dataclass(frozen=True)
class Refusal:
    """An error answer: its code, message and HTTP status."""

    code: str
    message: str
    status: int = 400


SES_THROTTLING = Refusal("Throttling", "Maximum sending rate exceeded.")
SNS_THROTTLING = Refusal("ThrottlingException", "Rate exceeded")
DYNAMODB_THROTTLING = Refusal(
    "ProvisionedThroughputExceededException", "The request was denied due to request throttling."
)


@dataclass
class Throttle(Fault):
    """Refuse calls of ``service.operation`` (from one function, or from any) with ``code``.

    A call is refused when it comes after the first ``after`` matching calls, falls in
    ``[start, end)`` on the runner's clock (``None``: unbounded), and a draw of the throttle's own
    seeded random numbers falls under ``rate`` (1.0: every call). ``refused`` and ``seen`` count
    what it did; :meth:`lift` ends it now.
    """

    start: float | None = None
    end: float | None = None
    rate: float = 1.0
    after: int = 0
    seed: int = 0
    seen: int = 0
    refused: int = 0
    _draws: random.Random = field(default_factory=random.Random, init=False, repr=False)

    def __post_init__(self) -> None:
        self.times = sys.maxsize  # the window, not a count, ends it
        self._draws.seed(self.seed)

    def matches(self, function: str, service: str, operation: str) -> bool:
        # Called once per call, under the monitor's lock, until a fault matches.
        if (service, operation) != (self.service, self.operation) or self.function not in (None, function):
            return False
        self.seen += 1
        now = time.time()  # the virtual clock when a test or benchmark froze it
        if self.seen <= self.after or (self.start is not None and now < self.start):
            return False
        if (self.end is not None and now >= self.end) or self._draws.random() >= self.rate:
            return False
        self.refused += 1
        return True

    def lift(self) -> None:
        """The service accepts again from now on."""
        self.end = time.time()


def throttle(
    deployment: Any,
    service: str,
    operation: str,
    refusal: Refusal,
    *,
    seconds: float | None = None,
    function: str | None = None,
    rate: float = 1.0,
    after: int = 0,
    seed: int = 0,
) -> Throttle:
    """Refuse ``service.operation`` from now for ``seconds`` of the runner's clock (``None``: until
    lifted). ``function`` is the suffix of a function's logical ID (``EmailSenderFunction``), so that
    a prefixed system's function is found too; ``None`` refuses every function's calls."""
    logical_id = None if function is None else deployment.logical_id("AWS::Lambda::Function", function)
    now = time.time()
    fault = Throttle(
        service,
        operation,
        refusal.code,
        refusal.message,
        status=refusal.status,
        function=logical_id,
        start=now,
        end=None if seconds is None else now + seconds,
        rate=rate,
        after=after,
        seed=seed,
    )
    deployment.monitor.inject(fault)
    return fault


def ses_refusing(deployment: Any, seconds: float | None = None) -> Throttle:
    """SES refuses every email for ``seconds``: the account's maximum send rate is exceeded."""
    return throttle(deployment, "ses", "SendEmail", SES_THROTTLING, seconds=seconds, function=SENDERS["email"])


def sns_refusing(deployment: Any, seconds: float | None = None) -> Throttle:
    """SNS refuses every SMS for ``seconds`` (the SMS sender's Publish; delivery events, which the
    status updater publishes to a topic, still go through)."""
    return throttle(deployment, "sns", "Publish", SNS_THROTTLING, seconds=seconds, function=SENDERS["sms"])


def table_throttling(
    deployment: Any,
    *,
    seconds: float | None = None,
    rate: float = 1.0,
    after: int = 0,
    seed: int = 0,
    operation: str = "UpdateItem",
) -> Throttle:
    """The Reminders table throttles the processor's writes (all, or ``rate`` of them, after the
    first ``after``). The processor's client reaches only the Reminders table with UpdateItem."""
    return throttle(
        deployment,
        "dynamodb",
        operation,
        DYNAMODB_THROTTLING,
        seconds=seconds,
        function=PROCESSOR,
        rate=rate,
        after=after,
        seed=seed,
    )


# ---- recovery: the pipe's dead letters, delivered again -------------------------------------------


def dead_letters_waiting(deployment: Any) -> int:
    """Messages in the pipe's dead-letter queue: what ``PipeDeadLetterAlarm`` watches
    (``ApproximateNumberOfMessagesVisible``, Maximum, at least 1)."""
    queue = deployment.resources[deployment.logical_id("AWS::SQS::Queue", "PipeDeadLetterQueue")].ref
    attributes = deployment.client("sqs").get_queue_attributes(
        QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def replay_dead_letters(deployment: Any) -> list[str]:
    """What an operator does once the cause of the dead letters is gone, while the stream still
    holds their records (a DynamoDB stream keeps a record for 24 hours:
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html): take each
    message from the dead-letter queue, read the records it names (its shard, first and last
    sequence numbers), and start the workflow with them as the pipe would (its filter and input
    template, its invocation type). Planning is idempotent, so a record planned before it was
    dead-lettered is not planned again. Returns the executions started.

    In AWS the records are read with an ``AT_SEQUENCE_NUMBER`` iterator; moto takes that sequence
    number only as an integer, so the runner reads the shard from ``TRIM_HORIZON`` and keeps the
    records between the two numbers (DynamoDB stream sequence numbers are increasing decimal
    numbers within a shard).
    """
    pipe = deployment.pipe
    sqs = deployment.client("sqs")
    queue = deployment.resources[deployment.logical_id("AWS::SQS::Queue", "PipeDeadLetterQueue")].ref
    started: list[str] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return started
        for message in messages:
            info = json.loads(message["Body"])["DDBStreamBatchInfo"]
            records = [record for record in _stream_records(deployment, info) if pipe.matches(record)]
            if records:
                started.append(_start(deployment, pipe.target_input(records)))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])


def _stream_records(deployment: Any, info: Mapping[str, Any]) -> list[dict[str, Any]]:
    streams = deployment.new_client("dynamodbstreams")
    iterator = streams.get_shard_iterator(
        StreamArn=info["streamArn"], ShardId=info["shardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    first, last = int(info["startSequenceNumber"]), int(info["endSequenceNumber"])
    records: list[dict[str, Any]] = []
    while True:
        page = streams.get_records(ShardIterator=iterator)
        if not page["Records"]:
            return records
        records += [
            {**_jsonable(record), "eventSourceARN": info["streamArn"]}
            for record in page["Records"]
            if first <= int(record["dynamodb"]["SequenceNumber"]) <= last
        ]
        iterator = page["NextShardIterator"]


def _jsonable(value: Any) -> Any:
    if hasattr(value, "timestamp"):
        return int(value.timestamp())
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _start(deployment: Any, text: str) -> str:
    payload = json.loads(text)
    if deployment.pipe.invocation_type == FIRE_AND_FORGET:
        return str(deployment.start_execution(payload))
    answer = deployment.start_sync_execution(payload)
    if answer["status"] != "SUCCEEDED":
        raise RuntimeError(f"the replayed batch failed again: {answer.get('error')} {answer.get('cause', '')}")
    return str(answer["executionArn"])


# ---- what went out ----------------------------------------------------------------------------------


@dataclass
class Tally:
    """What customers got and what the records say, after a run.

    ``sent[channel][address]``: how many messages the provider accepted for that address (moto
    keeps every email SES accepted and every SMS SNS accepted).
    """

    sent: dict[str, Counter[str]]
    expected: dict[str, set[str]]
    states: Counter[str]
    reasons: Counter[str]
    deferrals: int
    deferred_reminders: int
    defer_reasons: Counter[str]
    records: list[dict[str, Any]]

    def missing(self, channel: str) -> set[str]:
        return {address for address in self.expected[channel] if self.sent[channel][address] == 0}

    def duplicated(self, channel: str) -> set[str]:
        return {address for address, count in self.sent[channel].items() if count > 1}

    def unexpected(self, channel: str) -> set[str]:
        return set(self.sent[channel]) - self.expected[channel]

    def exactly_once(self, channel: str) -> int:
        return sum(1 for address in self.expected[channel] if self.sent[channel][address] == 1)

    @property
    def exactly_once_nothing_failed(self) -> bool:
        """Every expected address got one message per channel, nothing else went out, and no
        reminder is FAILED."""
        return all(
            not (self.missing(c) or self.duplicated(c) or self.unexpected(c)) for c in CHANNELS
        ) and not self.states.get("FAILED")


def tally(deployment: Any, expected: Mapping[str, Iterable[str]]) -> Tally:
    """Count the emails and SMS the providers accepted, per address, and the reminder records.
    ``expected`` maps each channel to the addresses (emails, phone numbers) that should get
    exactly one message."""
    from moto.ses.models import ses_backends
    from moto.sns.models import sns_backends

    from tapstack.local.deployment import ACCOUNT_ID  # moto's default account, where it keeps them

    emails = Counter(
        address
        for message in ses_backends[ACCOUNT_ID][deployment.region].sent_messages
        for address in message.destinations["ToAddresses"]
    )
    sms = Counter(number for number, _ in sns_backends[ACCOUNT_ID][deployment.region].sms_messages.values())
    records = _scan(deployment, deployment.table_name("RemindersTable"))
    return Tally(
        sent={"email": emails, "sms": sms},
        expected={channel: set(expected.get(channel, ())) for channel in CHANNELS},
        states=Counter(str(record["state"]) for record in records),
        reasons=Counter(f"{record['state']} {record['reason']}" for record in records if "reason" in record),
        deferrals=sum(int(record.get("deferrals", 0)) for record in records),
        deferred_reminders=sum(1 for record in records if int(record.get("deferrals", 0)) > 0),
        defer_reasons=Counter(str(record["deferReason"]) for record in records if "deferReason" in record),
        records=records,
    )


def _scan(deployment: Any, table: str) -> list[dict[str, Any]]:
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    pages = deployment.client("dynamodb").get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
    return [{k: deserializer.deserialize(v) for k, v in item.items()} for page in pages for item in page["Items"]]


__all__ = [
    "DYNAMODB_THROTTLING",
    "SES_THROTTLING",
    "SNS_THROTTLING",
    "Refusal",
    "Tally",
    "Throttle",
    "dead_letters_waiting",
    "replay_dead_letters",
    "ses_refusing",
    "sns_refusing",
    "table_throttling",
    "tally",
    "throttle",
]
