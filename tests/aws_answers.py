"""Play AWS where moto does not: answers to calls moto lacks, and faults (throttling, timeouts, no endpoint).

Everything registers on a boto3 session's event system, so the clients a command makes from that session
later (``DeployedStack.load(session=...)``) get it; moto answers every other call.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber

REGION = "us-east-1"


class OneCallStubber(Stubber):
    """botocore's ``Stubber`` for one operation of a service: the same queue of answers, validated against the
    service's model, and the same hooks, but on the session and for that operation only (a plain ``Stubber``
    takes over every call of its client, and moto answers the client's other calls)."""

    def __init__(self, session: boto3.Session, service: str, operation: str) -> None:
        super().__init__(session.client(service, region_name=REGION))  # type: ignore[call-overload]
        service_id = self.client.meta.service_model.service_id.hyphenize()
        self._events = session.events
        # Stubber's own handler IDs are fixed strings, and an emitter ignores a second handler with an ID it
        # already holds: one ID per operation lets several operations be stubbed on one session.
        self._event_id = f"one-call-stubber-{service_id}-{operation}"
        self._expected_params_event_id = f"{self._event_id}-params"
        self._params_event = f"before-parameter-build.{service_id}.{operation}"
        self._call_event = f"before-call.{service_id}.{operation}"

    def activate(self) -> None:
        self._events.register_first(
            self._params_event, self._assert_expected_params, unique_id=self._expected_params_event_id
        )
        self._events.register(self._call_event, self._get_response_handler, unique_id=self._event_id)

    def deactivate(self) -> None:
        self._events.unregister(self._params_event, unique_id=self._expected_params_event_id)
        self._events.unregister(self._call_event, unique_id=self._event_id)


class PlayedAnswers:
    """AWS's answers to calls moto does not implement, queued per operation in the order they are made."""

    def __init__(self, session: boto3.Session) -> None:
        self.session = session
        self._stubbers: dict[tuple[str, str], OneCallStubber] = {}

    def _stubber(self, service: str, operation: str) -> OneCallStubber:
        key = (service, operation)
        if key not in self._stubbers:
            self._stubbers[key] = stubber = OneCallStubber(self.session, service, operation)
            stubber.activate()
        return self._stubbers[key]

    def answer(
        self, service: str, operation: str, response: dict[str, Any], expected_params: dict[str, Any] | None = None
    ) -> None:
        stubber = self._stubber(service, operation)
        stubber.add_response(_method(operation), response, expected_params)

    def error(self, service: str, operation: str, code: str, message: str, http_status: int = 400) -> None:
        stubber = self._stubber(service, operation)
        stubber.add_client_error(
            _method(operation), service_error_code=code, service_message=message, http_status_code=http_status
        )

    def assert_all_used(self) -> None:
        for stubber in self._stubbers.values():
            stubber.assert_no_pending_responses()


def _method(operation: str) -> str:
    """``GetSMSSandboxAccountStatus`` → ``get_sms_sandbox_account_status`` (botocore's own conversion)."""
    from botocore import xform_name

    return xform_name(operation)


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


def throttling(service: str) -> AWSResponse:
    """The answer AWS gives a throttled call, in the service's protocol (query XML or REST JSON)."""
    if service in ("cloudformation", "sns"):
        body = (
            "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
            "<Message>Rate exceeded</Message></Error><RequestId>r</RequestId></ErrorResponse>"
        )
        return AWSResponse("https://aws", 400, {}, _Body(body.encode()))
    headers = {"x-amzn-ErrorType": "TooManyRequestsException", "Content-Type": "application/json"}
    return AWSResponse("https://aws", 429, headers, _Body(json.dumps({"message": "Too Many Requests"}).encode()))


Fault = AWSResponse | Exception | Callable[[Any], AWSResponse | None]


@contextmanager
def faults(session: boto3.Session, service_id: str, operation: str, *planned: Fault) -> Iterator[list[str]]:
    """Each attempt at ``operation`` meets the next planned fault (a response AWS gives, or an exception the
    HTTP layer raises) before it reaches moto; once they are spent, moto answers. The clients' retries run
    as against AWS. Yields the list of attempts made."""
    queue = list(planned)
    attempts: list[str] = []

    def send(request: Any, **_: Any) -> AWSResponse | None:
        attempts.append(operation)
        if not queue:
            return None
        fault = queue.pop(0)
        if isinstance(fault, Exception):
            raise fault
        return fault if isinstance(fault, AWSResponse) else fault(request)

    event = f"before-send.{service_id}.{operation}"
    session.events.register_first(event, send, unique_id=f"fault-{event}")
    try:
        yield attempts
    finally:
        session.events.unregister(event, unique_id=f"fault-{event}")


def record_operations(session: boto3.Session) -> list[str]:
    """Every API operation the session's clients call from now on, as ``service:Operation``."""
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(f"{model.service_model.service_id.hyphenize()}:{model.name}")

    session.events.register_first("before-parameter-build", record, unique_id="record-operations")
    return calls
