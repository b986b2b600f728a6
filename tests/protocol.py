"""Drive the handlers as the workflow would, one step at a time, so that a test can interleave steps.

A *run* is what one execution does: the processor (changes from the stream, or a schedule run),
then, for each job it returns, the email sender, the SMS sender and the status updater. Tests call
each step themselves, in any order, more than once, or never (a crash), and pause an invocation
between two of its AWS calls (``after_call``) to let something else happen in between.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import botocore.exceptions
from botocore.client import BaseClient

from tapstack.local import LocalDeployment
from tests.support import sent_emails, sent_sms

PROCESSOR = "AppointmentProcessorFunction"
SENDERS = {"email": "EmailSenderFunction", "sms": "SmsSenderFunction"}
UPDATER = "StatusUpdaterFunction"

_executions = itertools.count(1)


def change(appointment_id: str, event_name: str, sequence: int | None) -> dict[str, Any]:
    """A change as the pipe's input template writes it (``sequence`` None: a backfill's change)."""
    keys = {"appointmentId": {"S": appointment_id}}
    return {"eventName": event_name, "keys": keys, **({"sequenceNumber": str(sequence)} if sequence else {})}


@dataclass
class Run:
    """One execution: its id and start (the claim token and the lease come from them)."""

    source: Any  # a list of changes, or a scheduled event
    execution: str = field(
        default_factory=lambda: f"arn:aws:states:us-east-1:123456789012:execution:wf:{next(_executions)}"
    )
    started: str = field(default_factory=lambda: datetime.fromtimestamp(int(time.time()), UTC).isoformat())
    jobs: list[dict[str, Any]] = field(default_factory=list)
    results: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)  # reminderId → channel → answers

    def event(self, retry: int = 0) -> dict[str, Any]:
        return {"input": self.source, "execution": self.execution, "started": self.started, "retry": retry}


SCHEDULED = {"source": "aws.events", "detail-type": "Scheduled Event"}


class Crash(BaseException):
    """A Lambda invocation that dies (a timeout, out of memory): not an exception its handler could catch."""


def die() -> None:
    """An ``after_call`` action: the invocation dies right there."""
    raise Crash


class Workflow:
    """The steps of runs on one local deployment, and what went out."""

    def __init__(self, deployment: LocalDeployment) -> None:
        self.deployment = deployment

    def process(self, run: Run, retry: int = 0) -> dict[str, Any]:
        """The processor's invocation; its jobs replace the run's (a retry returns them again)."""
        output: dict[str, Any] = self.deployment.invoke(PROCESSOR, run.event(retry))
        run.jobs = output["jobs"]
        return output

    def send(self, run: Run, job: dict[str, Any], channel: str) -> dict[str, Any]:
        event = {key: job[key] for key in ("reminderId", "claimToken", "appointmentTime")}
        answer: dict[str, Any] = self.deployment.invoke(SENDERS[channel], {**event, "message": job[channel]})
        run.results.setdefault(job["reminderId"], {}).setdefault(channel, []).append(answer)
        return answer

    def update(self, run: Run, job: dict[str, Any], delivery: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        if delivery is None:
            answers = run.results.get(job["reminderId"], {})
            delivery = [answers[channel][-1] for channel in SENDERS if channel in answers]
        event = {key: job[key] for key in ("reminderId", "claimToken", "appointmentTime", "deferrals")}
        result: dict[str, Any] = self.deployment.invoke(UPDATER, {**event, "delivery": delivery})
        return result

    def complete(self, run: Run) -> Run:
        """Every step of the run, in order, nothing failing."""
        self.process(run)
        return self.deliver(run)

    def deliver(self, run: Run) -> Run:
        """The rest of a run whose processor has answered: each job sent and recorded."""
        for job in run.jobs:
            for channel in SENDERS:
                self.send(run, job, channel)
            self.update(run, job)
        return run

    def emails(self) -> list[str]:
        return [message["to"][0] for message in sent_emails(self.deployment)]

    def texts(self) -> list[str]:
        return [text for _, text in sent_sms(self.deployment)]


def clients(deployment: LocalDeployment, logical_id: str) -> list[BaseClient]:
    """Every boto3 client a loaded function holds, its sibling modules' included."""
    module = deployment.functions[deployment.resources[logical_id].ref].module
    found: dict[int, BaseClient] = {}
    namespaces = [vars(module)] + [v.__globals__ for v in vars(module).values() if hasattr(v, "__globals__")]
    for namespace in namespaces:
        for value in namespace.values():
            if isinstance(value, BaseClient):
                found[id(value)] = value
    return list(found.values())


@contextmanager
def after_call(
    deployment: LocalDeployment, logical_id: str, operation: str, action: Callable[[], None], nth: int = 1
) -> Iterator[list[int]]:
    """Run ``action`` once, right after the function's ``nth`` call of ``operation`` returned: the
    function is paused between that call and its next. Yields how many times it ran (0 or 1)."""
    seen, ran = [0], [0]

    def hook(model: Any, **_: Any) -> None:
        if model.name != operation:
            return
        seen[0] += 1
        if seen[0] == nth:
            ran[0] += 1
            action()

    registered = [
        (client, f"after-call.{client.meta.service_model.service_id.hyphenize()}")
        for client in clients(deployment, logical_id)
    ]
    for client, event in registered:
        client.meta.events.register(event, hook)
    try:
        yield ran
    finally:
        for client, event in registered:
            client.meta.events.unregister(event, hook)


@contextmanager
def answers_lost(
    deployment: LocalDeployment, logical_id: str, operation: str, times: int = 1, error: str = "ReadTimeoutError"
) -> Iterator[list[int]]:
    """The function's next ``times`` requests of ``operation`` reach the service, which does the
    work (a write applied, a message accepted); their answers are lost (``ReadTimeoutError``, as
    botocore reports a read timeout). botocore's retry mode then decides, as against AWS, whether to
    repeat the request ("General socket/connection errors" are retried:
    https://docs.aws.amazon.com/boto3/latest/guide/retries.html). Yields the attempts it acted on."""
    acted: list[int] = []
    hooks = []
    for client in clients(deployment, logical_id):
        service = client.meta.service_model.service_id.hyphenize()

        def lose(event_name: str, _service: str = service, **_: Any) -> None:
            if event_name != f"before-send.{_service}.{operation}" or len(acted) >= times:
                return
            acted.append(len(acted) + 1)
            raise getattr(botocore.exceptions, error)(endpoint_url="https://local.invalid/")

        # Handlers of the bare event run after the operation's own, and "last" after moto's, which
        # answers the request: the service has done the work when this one raises.
        client.meta.events.register_last("before-send", lose)
        hooks.append((client, lose))
    try:
        yield acted
    finally:
        for client, hook in hooks:
            client.meta.events.unregister("before-send", hook)


@contextmanager
def refused(
    deployment: LocalDeployment, logical_id: str, service: str, operation: str, code: str, times: int = 1
) -> Iterator[Any]:
    """The function's next ``times`` calls of ``operation`` are refused with ``code`` (nothing reaches
    the service); a refusal not used by the end of the block is withdrawn, so it never hits a later
    call."""
    fault = deployment.inject(service, operation, code, times=times, function=logical_id)
    try:
        yield fault
    finally:
        fault.times = 0
