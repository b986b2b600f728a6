"""The EventBridge Pipe, run from its template properties: stream → filter → batch → workflow."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


class LocalPipe:
    """Reads the source stream from where it last stopped, as Pipes' poller does.

    Each call of :meth:`poll` takes the records written since the previous call, keeps those
    the pipe's ``FilterCriteria`` match (moto's EventBridge pattern matcher), splits them into
    batches of ``BatchSize`` and starts the target state machine once per batch, with the batch
    (a JSON array of stream records) as input. A batch that cannot start the workflow is retried
    ``MaximumRetryAttempts`` times and then sent to the dead-letter queue.
    """

    def __init__(self, deployment: Any, logical_id: str) -> None:
        from moto.events.models import EventPattern

        self.deployment = deployment
        self.logical_id = logical_id
        properties = deployment.resources[logical_id].properties
        self.properties = properties
        source = properties["SourceParameters"]
        self.stream = source["DynamoDBStreamParameters"]
        self.patterns = [EventPattern.load(f["Pattern"]) for f in source.get("FilterCriteria", {}).get("Filters", [])]
        self.batch_size = int(self.stream.get("BatchSize", 100))
        self.max_retries = int(self.stream.get("MaximumRetryAttempts", -1))
        self.stream_arn = properties["Source"]
        self.target = properties["Target"]
        invocation = properties.get("TargetParameters", {}).get("StepFunctionStateMachineParameters", {})
        if invocation.get("InvocationType") != "FIRE_AND_FORGET":
            raise ValueError("a Standard state machine target needs InvocationType FIRE_AND_FORGET")
        self._iterators: dict[str, str] = {}
        self.dead_letters: list[dict[str, Any]] = []
        self._clients: dict[str, Any] = {}

    def _client(self, service: str) -> Any:
        """A client whose calls are recorded under the pipe's logical ID (its role's calls)."""
        if service not in self._clients:
            client = self.deployment.new_client(service)
            self.deployment.monitor.instrument(self.logical_id, client)
            self._clients[service] = client
        return self._clients[service]

    def _streams(self) -> Any:
        return self._client("dynamodbstreams")

    def read(self) -> list[dict[str, Any]]:
        """Stream records written since the last read (the first read starts at ``StartingPosition``)."""
        streams = self._streams()
        records: list[dict[str, Any]] = []
        shards = streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        for shard in shards:
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators:
                self._iterators[shard_id] = streams.get_shard_iterator(
                    StreamArn=self.stream_arn,
                    ShardId=shard_id,
                    ShardIteratorType=self.stream.get("StartingPosition", "LATEST"),
                )["ShardIterator"]
            while True:
                page = streams.get_records(ShardIterator=self._iterators[shard_id])
                self._iterators[shard_id] = page["NextShardIterator"]
                if not page["Records"]:
                    break
                for record in page["Records"]:
                    records.append({**_jsonable(record), "eventSourceARN": self.stream_arn})
        return records

    def matches(self, record: dict[str, Any]) -> bool:
        event: Any = record  # moto types its events as its own TypedDict; a stream record is matched the same way
        return not self.patterns or any(pattern.matches_event(event) for pattern in self.patterns)

    def batches(self) -> list[list[dict[str, Any]]]:
        records = [record for record in self.read() if self.matches(record)]
        return [records[i : i + self.batch_size] for i in range(0, len(records), self.batch_size)]

    def poll(self) -> list[str]:
        """Deliver what the stream holds now; return the started execution ARNs."""
        started = []
        for batch in self.batches():
            arn = self._start(batch)
            if arn is not None:
                started.append(arn)
        return started

    def _start(self, batch: list[dict[str, Any]]) -> str | None:
        sfn = self._client("stepfunctions")
        attempts = 1 + (self.max_retries if self.max_retries >= 0 else 10)
        error: ClientError | None = None
        for _ in range(attempts):
            try:
                return str(
                    sfn.start_execution(stateMachineArn=self.target, name=uuid.uuid4().hex, input=json.dumps(batch))[
                        "executionArn"
                    ]
                )
            except ClientError as failure:
                error = failure
        self._dead_letter(batch, error)
        return None

    def _dead_letter(self, batch: list[dict[str, Any]], error: ClientError | None) -> None:
        arn = self.stream.get("DeadLetterConfig", {}).get("Arn")
        message = {
            "context": {"errorCode": error.response["Error"]["Code"] if error else "Unknown"},
            "records": [
                {"eventID": r.get("eventID"), "sequenceNumber": r["dynamodb"].get("SequenceNumber")} for r in batch
            ],
        }
        self.dead_letters.append(message)
        if arn:
            queue = next(d for d in self.deployment.of_type("AWS::SQS::Queue") if d.attributes["Arn"] == arn)
            self._client("sqs").send_message(QueueUrl=queue.ref, MessageBody=json.dumps(message))
