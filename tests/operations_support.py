"""The operations commands against the generated template deployed on the local runner.

The runner deploys the template's resources into moto but no CloudFormation stack; the commands read the
stack with one ``DescribeStacks`` call (``tapstack.operations.deployed``). ``register_stack`` records in
moto's CloudFormation a stack whose outputs are the template's own, resolved against what the runner
deployed, so that a command finds the real tables, workflow and log groups through them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import boto3
from boto3.dynamodb.types import TypeSerializer
from botocore.awsrequest import AWSResponse, HTTPHeaders

from tapstack.local import LocalDeployment

#: A resource moto's CloudFormation accepts and creates nothing for: the stack holds only its outputs.
PLACEHOLDER = {"Placeholder": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}


def register_stack(deployment: LocalDeployment) -> str:
    """Record the deployment as stack ``deployment.stack_name`` with the template's outputs; its name."""
    outputs = {
        name: {"Value": str(deployment.resolver.resolve(output["Value"], f"Outputs/{name}"))}
        for name, output in deployment.template.get("Outputs", {}).items()
        if "Condition" not in output or deployment.resolver.condition(output["Condition"])
    }
    deployment.client("cloudformation").create_stack(
        StackName=deployment.stack_name, TemplateBody=json.dumps({"Resources": PLACEHOLDER, "Outputs": outputs})
    )
    return deployment.stack_name


def operator_session(deployment: LocalDeployment) -> boto3.Session:
    """A session as an operator's, in the deployment's account and region (moto), whose clients get
    StartSyncExecution answered by the runner (moto has none). The runner answers for the clients it
    ``attach``es; a command makes its clients from this session, and every client copies the session's
    event handlers when it is made, so the same handler goes on the session."""
    session = boto3.Session(region_name=deployment.region)
    session.events.register_last("before-call", deployment.step_functions._answer)
    return session


def put_appointments(deployment: LocalDeployment, items: list[dict[str, Any]]) -> None:
    """Write the items as the booking app would, 25 to a request (BatchWriteItem's most)."""
    serializer = TypeSerializer()
    table = deployment.table_name("AppointmentsTable")
    client = deployment.client("dynamodb")
    for start in range(0, len(items), 25):
        requests = [
            {"PutRequest": {"Item": {k: serializer.serialize(v) for k, v in item.items()}}}
            for item in items[start : start + 25]
        ]
        client.batch_write_item(RequestItems={table: requests})


def reminders(deployment: LocalDeployment) -> dict[str, dict[str, Any]]:
    """Every reminder record, by id, as plain values."""
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    pages = (
        deployment.client("dynamodb")
        .get_paginator("scan")
        .paginate(TableName=deployment.table_name("RemindersTable"), ConsistentRead=True)
    )
    return {
        item["reminderId"]["S"]: {k: deserializer.deserialize(v) for k, v in item.items()}
        for page in pages
        for item in page["Items"]
    }


def log_events(deployment: LocalDeployment, function: str, event: str) -> list[dict[str, Any]]:
    """The JSON lines a function printed whose ``event`` is ``event``, in order."""
    found = []
    for logical_id, line in deployment.monitor.logs:
        if logical_id != function or not line.startswith("{"):
            continue
        fields = json.loads(line)
        if fields.get("event") == event:
            found.append(fields)
    return found


def throttle(session: boto3.Session, operation: str, times: int, after: int = 0) -> list[int]:
    """After ``after`` calls, the next ``times`` calls of Step Functions ``operation`` by the session's
    clients are answered with throttling, as Step Functions answers them (400 ThrottlingException "Rate
    exceeded": https://docs.aws.amazon.com/step-functions/latest/apireference/CommonErrors.html), before
    the runner runs anything. Returns the numbers of the calls throttled (1 is the first call)."""
    throttled: list[int] = []
    calls = [0]

    def answer(**_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        calls[0] += 1
        if not after < calls[0] <= after + times:
            return None
        throttled.append(calls[0])
        return AWSResponse("https://local.invalid/", 400, HTTPHeaders(), None), {
            "Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }

    session.events.register_first(f"before-call.sfn.{operation}", answer)
    return throttled


def after_call(session: boto3.Session, operation: str, action: Callable[[int], None]) -> list[int]:
    """Run ``action(n)`` once the n-th call of Step Functions ``operation`` has been answered (the run is
    over) and before the caller sees the answer: an exception it raises is what the caller sees instead."""
    calls: list[int] = []

    def hook(**_: Any) -> None:
        calls.append(len(calls) + 1)
        action(calls[-1])

    session.events.register(f"after-call.sfn.{operation}", hook)
    return calls


class FakeClock:
    """A monotonic clock whose time passes by a millisecond at each reading (the work between two
    readings) and by each wait: ``sleep`` records the wait and moves the clock on."""

    TICK = 0.001

    def __init__(self) -> None:
        self.now = time.monotonic()
        self.waits: list[float] = []

    def __call__(self) -> float:
        self.now += self.TICK
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


class CloudWatchFeed:
    """What Lambda and CloudWatch make of the functions' output, which moto does not: each line a function
    prints becomes a log event in the function's log group (``LoggingConfig.LogGroup``) at the time it was
    printed, and each embedded-metric-format line becomes the metric values it names, with its timestamp
    and dimensions ("instruct CloudWatch Logs to automatically extract metric values embedded in structured
    log events": https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
    The runner keeps what the functions print (``monitor.logs``); this feed also keeps when."""

    def __init__(self, deployment: LocalDeployment) -> None:
        self.deployment = deployment
        self.lines: list[tuple[float, str, str]] = []
        original = deployment.monitor.log

        def log(function: str, line: str) -> None:
            self.lines.append((time.time(), function, line))
            original(function, line)

        deployment.monitor.log = log  # type: ignore[method-assign]

    def deliver(self) -> None:
        """Put everything printed so far into CloudWatch Logs and CloudWatch metrics (moto)."""
        logs, cloudwatch = self.deployment.client("logs"), self.deployment.client("cloudwatch")
        streams: set[str] = set()
        for at, function, line in self.lines:
            group = self.deployment.resources[function].properties["LoggingConfig"]["LogGroup"]
            if group not in streams:
                logs.create_log_stream(logGroupName=group, logStreamName="local")
                streams.add(group)
            logs.put_log_events(
                logGroupName=group, logStreamName="local", logEvents=[{"timestamp": int(at * 1000), "message": line}]
            )
            if line.startswith("{") and '"_aws"' in line:
                self._extract_metrics(cloudwatch, json.loads(line))
        self.lines.clear()

    @staticmethod
    def _extract_metrics(cloudwatch: Any, document: dict[str, Any]) -> None:
        from datetime import UTC, datetime

        metadata = document["_aws"]
        timestamp = datetime.fromtimestamp(metadata["Timestamp"] / 1000, UTC)
        for directive in metadata["CloudWatchMetrics"]:
            for dimension_set in directive.get("Dimensions", [[]]):
                dimensions = [{"Name": name, "Value": str(document[name])} for name in dimension_set]
                for metric in directive["Metrics"]:
                    datum = {
                        "MetricName": metric["Name"],
                        "Dimensions": dimensions,
                        "Value": float(document[metric["Name"]]),
                        "Timestamp": timestamp,
                    }
                    if "Unit" in metric:
                        datum["Unit"] = metric["Unit"]
                    cloudwatch.put_metric_data(Namespace=directive["Namespace"], MetricData=[datum])
