"""Lambda functions run in-process, each like a warm container of its own."""

from __future__ import annotations

import builtins
import json
import os
import threading
import time
import traceback
import types
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.exceptions
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.client import BaseClient

#: Faults that are not an answer from the service but a failed connection or a lost answer.
NETWORK_ERRORS = ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError")


@dataclass
class Call:
    """One AWS API call a function made, and how many items it read (DynamoDB)."""

    function: str
    service: str
    operation: str
    params: dict[str, Any]
    items_read: int = 0


@dataclass
class Fault:
    """Answer the next ``times`` calls of ``service.operation`` with an error instead of calling."""

    service: str
    operation: str
    code: str
    message: str = "injected by the local runner"
    times: int = 1
    status: int = 400
    function: str | None = None  # None: any function

    def matches(self, function: str, service: str, operation: str) -> bool:
        return (
            self.times > 0
            and self.service == service
            and self.operation == operation
            and self.function in (None, function)
        )


@dataclass
class Invocation:
    function: str
    event: Any
    result: Any = None
    error: dict[str, Any] | None = None
    at: float = field(default_factory=time.time)  # the (virtual) time it was invoked


class InProcessFunction:
    """A function's inlined source, loaded once with its environment, invoked in this process.

    An exception raised by the handler comes back as Lambda reports it to Step Functions:
    ``FunctionError: Unhandled`` with ``errorType`` and ``errorMessage``.
    """

    def __init__(
        self,
        logical_id: str,
        name: str,
        source: str,
        filename: str,
        handler: str,
        environment: Mapping[str, str],
        monitor: FunctionMonitor,
    ) -> None:
        self.logical_id = logical_id
        self.name = name
        self.source = source
        self.filename = filename
        self.handler_name = handler
        self.environment = dict(environment)
        self.monitor = monitor
        self._module: types.ModuleType | None = None
        self._load_lock = threading.Lock()

    @property
    def module(self) -> types.ModuleType:
        """The loaded module (a cold start on first use)."""
        with self._load_lock:
            if self._module is None:
                self._module = self._load()
            return self._module

    def _load(self) -> types.ModuleType:
        # Its environment is its own, as in its own container: the code's `import os` gets an
        # `os` whose `environ` holds the function's variables. The process's own environment is
        # never changed, so functions loading in other threads see nothing come and go.
        function_os = types.ModuleType("os")
        function_os.__dict__.update(os.__dict__)
        function_os.environ = {  # type: ignore[attr-defined]
            **os.environ,
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            **self.environment,
        }
        siblings: dict[str, types.ModuleType] = {}
        instrumented: set[int] = set()

        def import_for_function(
            name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0
        ) -> Any:
            if level == 1:  # `from .common import log`: run from the files, a handler imports its siblings
                return sibling(name)
            if name == "os":
                return function_os
            return builtins.__import__(name, globals, locals, fromlist, level)

        def execute(module_name: str, source: str, filename: str) -> types.ModuleType:
            module = types.ModuleType(module_name)
            module.__file__ = filename
            # What the function prints is its log (CloudWatch Logs in AWS): kept per function.
            module.__dict__["print"] = self._print
            module.__dict__["__builtins__"] = {**builtins.__dict__, "__import__": import_for_function}
            exec(compile(source, filename, "exec"), module.__dict__)  # noqa: S102 - the function's own code
            for value in list(module.__dict__.values()):
                if isinstance(value, BaseClient) and id(value) not in instrumented:
                    instrumented.add(id(value))
                    self.monitor.instrument(self.logical_id, value)
            return module

        def sibling(name: str) -> types.ModuleType:
            """A sibling module of the handler's file, loaded once per function (like its container)."""
            if name not in siblings:
                path = Path(self.filename).with_name(f"{name}.py")
                if not path.is_file():
                    raise ImportError(f"{self.filename}: no sibling module {name}.py")
                siblings[name] = execute(name, path.read_text(encoding="utf-8"), str(path))
            return siblings[name]

        return execute(self.handler_name.rpartition(".")[0], self.source, self.filename)

    def _print(self, *values: Any, sep: str | None = " ", end: str | None = "\n", **_: Any) -> None:
        line = (sep or " ").join(str(value) for value in values)
        self.monitor.log(self.logical_id, line)
        if self.monitor.echo:
            builtins.print(line, end=end if end is not None else "\n")

    def invoke(self, event: Any) -> tuple[Any, dict[str, Any] | None]:
        """(result, None) or (None, error payload), as Lambda would answer."""
        handler: Callable[[Any, Any], Any] = getattr(self.module, self.handler_name.rpartition(".")[2])
        invocation = Invocation(self.logical_id, event)
        try:
            invocation.result = handler(event, _Context(self.name))
            # What Lambda returns must survive JSON, as it does on the wire.
            invocation.result = json.loads(json.dumps(invocation.result))
        except Exception as error:  # noqa: BLE001 - every error is the function's answer
            invocation.error = {
                "errorType": type(error).__name__,
                "errorMessage": str(error),
                "stackTrace": traceback.format_exception(error)[-3:],
            }
        self.monitor.invocations.append(invocation)
        return invocation.result, invocation.error


class _Context:
    def __init__(self, name: str) -> None:
        self.function_name = name
        self.aws_request_id = str(uuid.uuid4())
        self.memory_limit_in_mb = 256

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@dataclass
class FunctionMonitor:
    """Every call and invocation of the local functions, and the faults to inject into them."""

    calls: list[Call] = field(default_factory=list)
    invocations: list[Invocation] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    #: (function, line) of everything the functions printed: their logs.
    logs: list[tuple[str, str]] = field(default_factory=list)
    #: Also print the functions' logs to this process's stdout.
    echo: bool = True
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def log(self, function: str, line: str) -> None:
        with self._lock:
            self.logs.append((function, line))

    def instrument(self, function: str, client: BaseClient) -> None:
        service = client.meta.service_model.service_name

        calls_in_flight = threading.local()

        def record(model: Any, params: dict[str, Any], **_: Any) -> None:
            call = Call(function, service, model.name, dict(params))
            calls_in_flight.call = call
            with self._lock:
                self.calls.append(call)

        def count_reads(parsed: dict[str, Any], **_: Any) -> None:
            call = getattr(calls_in_flight, "call", None)
            if call is not None:
                call.items_read = _items_read(parsed)

        def before_call(model: Any, **_: Any) -> Any:
            with self._lock:
                fault = next((f for f in self.faults if f.matches(function, service, model.name)), None)
                if fault is None:
                    return None
                fault.times -= 1
            if fault.code in NETWORK_ERRORS:  # no answer at all, as botocore reports it
                raise getattr(botocore.exceptions, fault.code)(endpoint_url="https://local.invalid/")
            response = AWSResponse("https://local.invalid/", fault.status, HTTPHeaders(), None)
            return response, {
                "Error": {"Code": fault.code, "Message": fault.message},
                "ResponseMetadata": {"HTTPStatusCode": fault.status},
            }

        client.meta.events.register("before-parameter-build", record)
        client.meta.events.register("before-call", before_call)
        client.meta.events.register("after-call", count_reads)

    def inject(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault


def _items_read(response: dict[str, Any]) -> int:
    """Items a DynamoDB read returned or examined (what it is billed for reading)."""
    if "ScannedCount" in response:
        return int(response["ScannedCount"])
    if "Responses" in response:
        return sum(len(items) for items in response["Responses"].values())
    return 1 if "Item" in response else 0
