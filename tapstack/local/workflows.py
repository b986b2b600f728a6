"""Step Functions as AWS runs it where moto does not: Express workflows and StartSyncExecution.

moto accepts ``type=EXPRESS`` and reports it, but runs every execution as a Standard one, and has
no ``StartSyncExecution``. The facts this module plays, from AWS's documentation:

- An Express execution runs for at most five minutes (STANDARD_VS_EXPRESS). Here the limit is
  measured on the virtual clock: an Express execution whose stop comes more than 300 s (or its
  definition's smaller ``TimeoutSeconds``) after its start ends ``TIMED_OUT`` with
  ``States.Timeout``. The steps it ran meanwhile have run: the runner cannot stop a step halfway.
- An asynchronous Express execution runs at least once; a synchronous one at most once; Step
  Functions does not make Express starts idempotent (EXPRESS_GUARANTEES). The runner starts each
  execution once unless a test asks for duplicates (:meth:`StepFunctionsRuntime.duplicate_async_starts`).
- Step Functions keeps no execution history for Express workflows: it goes to CloudWatch Logs,
  best effort, when logging is on (EXPRESS_GUARANTEES). moto still lists Express executions;
  ``LocalDeployment.executions()`` is the runner's view, not an API that AWS offers for Express.
- ``StartSyncExecution`` starts an Express execution and answers when it ends, with its
  ``status`` (SUCCEEDED, FAILED or TIMED_OUT), ``output`` (only when it succeeded), ``error`` and
  ``cause``; it answers 200 even when the execution fails, and is "not available for STANDARD
  workflows" (START_SYNC_EXECUTION), which the API refuses with ``StateMachineTypeNotSupported``.
  The runner leaves out ``billingDetails``: it measures neither memory nor real duration.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.client import BaseClient

STANDARD_VS_EXPRESS = "https://docs.aws.amazon.com/step-functions/latest/dg/concepts-standard-vs-express.html"
EXPRESS_GUARANTEES = "https://docs.aws.amazon.com/step-functions/latest/dg/express-at-least-once-execution.html"
START_SYNC_EXECUTION = "https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartSyncExecution.html"

#: The longest an Express execution runs (STANDARD_VS_EXPRESS).
EXPRESS_TIME_LIMIT_SECONDS = 300

#: How long (real time) a synchronous execution may take here before the runner gives up.
_SYNC_WAIT_SECONDS = 60.0

Patch = Callable[[Any, str, Any], None]


class ApiError(Exception):
    """An error answer of the Step Functions API."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class StepFunctionsRuntime:
    """Runs the deployment's state machines by their type, on moto's Step Functions backend."""

    def __init__(self, account_id: str, region: str) -> None:
        self.account_id = account_id
        self.region = region
        self._lock = threading.Lock()
        self._duplicates = 0
        self._start: Callable[..., Any] | None = None  # moto's own StartExecution

    # ---- patches on moto ------------------------------------------------------------------------

    def install(self, patch: Patch) -> None:
        """Patch moto's backend (``patch(owner, name, value)`` undoes itself when the mock stops)."""
        from moto.core.exceptions import AWSError, JsonRESTError
        from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication
        from moto.stepfunctions.parser.models import StepFunctionsParserBackend

        start = StepFunctionsParserBackend.start_execution
        self._start = start
        runtime = self

        def start_execution(
            backend: Any, state_machine_arn: str, name: str | None = None, *args: Any, **kwargs: Any
        ) -> Any:
            try:
                # An execution started without a name gets a generated one in AWS; moto names it "None".
                execution = start(backend, state_machine_arn, name or uuid.uuid4().hex, *args, **kwargs)
            except JsonRESTError as error:
                if error.error_type:
                    raise
                # moto raises some errors (InvalidExecutionInput) without the code AWS answers with.
                raise AWSError(error.message, type(error).__name__) from None
            if runtime._take_duplicate(backend, state_machine_arn):
                # At least once: the same input runs in a second execution (EXPRESS_GUARANTEES).
                start(backend, state_machine_arn, uuid.uuid4().hex, *args, **kwargs)
            return execution

        patch(StepFunctionsParserBackend, "start_execution", start_execution)
        reflect: Callable[[Any], None] = BaseExecutionWorkerCommunication._reflect_execution_status

        def reflect_with_time_limit(communication: Any) -> None:
            reflect(communication)
            _apply_time_limit(communication.execution)

        patch(BaseExecutionWorkerCommunication, "_reflect_execution_status", reflect_with_time_limit)

    def backend(self) -> Any:
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        return stepfunctions_parser_backends[self.account_id][self.region]

    # ---- at least once --------------------------------------------------------------------------

    def duplicate_async_starts(self, times: int = 1) -> None:
        """Run the next ``times`` asynchronous starts of an Express workflow twice."""
        with self._lock:
            self._duplicates += times

    def _take_duplicate(self, backend: Any, state_machine_arn: str) -> bool:
        if backend.describe_state_machine(state_machine_arn).type != "EXPRESS":
            return False
        with self._lock:
            if self._duplicates <= 0:
                return False
            self._duplicates -= 1
            return True

    # ---- StartSyncExecution -----------------------------------------------------------------------

    def attach(self, client: BaseClient) -> None:
        """Let a Step Functions client call ``start_sync_execution``: the runner answers it.

        Registered last on ``before-call``, so a fault that a test injected on the call (see
        ``FunctionMonitor.instrument``) answers first, as a refused request would.
        """
        client.meta.events.register_last("before-call", self._answer)

    def _answer(self, model: Any, params: dict[str, Any], **_: Any) -> Any:
        if model.name != "StartSyncExecution":
            return None
        request = json.loads(params["body"] or b"{}")
        try:
            answer = self.start_sync_execution(request["stateMachineArn"], request.get("name"), request.get("input"))
        except ApiError as error:
            response = AWSResponse("https://local.invalid/", 400, HTTPHeaders(), None)
            return response, {
                "Error": {"Code": error.code, "Message": error.message},
                "ResponseMetadata": {"HTTPStatusCode": 400},
            }
        return AWSResponse("https://local.invalid/", 200, HTTPHeaders(), None), {
            **answer,
            "ResponseMetadata": {"HTTPStatusCode": 200},
        }

    def start_sync_execution(self, state_machine_arn: str, name: str | None, text: str | None) -> dict[str, Any]:
        """Run an Express execution to its end; what ``StartSyncExecution`` answers."""
        from moto.core.exceptions import JsonRESTError
        from moto.stepfunctions.parser.api import ExecutionStatus

        backend = self.backend()
        text = "{}" if text is None else text
        try:
            machine = backend.describe_state_machine(state_machine_arn)
            if machine.type != "EXPRESS":
                raise ApiError(
                    "StateMachineTypeNotSupported",
                    f"StartSyncExecution is not available for {machine.type} workflows ({START_SYNC_EXECUTION})",
                )
            assert self._start is not None, "install() first"
            # moto's own start: a synchronous execution runs at most once, never duplicated.
            execution = self._start(backend, state_machine_arn, name or uuid.uuid4().hex, text)
        except JsonRESTError as error:
            raise ApiError(error.error_type or type(error).__name__, error.message) from None
        deadline = time.monotonic() + _SYNC_WAIT_SECONDS
        while execution.exec_status == ExecutionStatus.RUNNING:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{execution.execution_arn} still running after {_SYNC_WAIT_SECONDS} s")
            time.sleep(0.005)
        return _sync_answer(execution, text)


def _time_limit(machine: Any) -> float | None:
    """How long an execution of this state machine may run, when the runner enforces it."""
    if getattr(machine, "type", "STANDARD") != "EXPRESS":
        return None  # moto enforces a Standard definition's TimeoutSeconds itself
    declared = json.loads(machine.definition).get("TimeoutSeconds")
    return float(min(EXPRESS_TIME_LIMIT_SECONDS, declared) if declared else EXPRESS_TIME_LIMIT_SECONDS)


def _apply_time_limit(execution: Any) -> None:
    from moto.stepfunctions.parser.api import ExecutionStatus

    limit = _time_limit(execution.state_machine)
    if limit is None or execution.stop_date is None:
        return
    if (execution.stop_date - execution.start_date).total_seconds() > limit:
        execution.exec_status = ExecutionStatus.TIMED_OUT
        execution.output = None
        execution.error = "States.Timeout"
        execution.cause = f"The execution ran longer than its {limit:.0f} s limit ({STANDARD_VS_EXPRESS})"


def _sync_answer(execution: Any, text: str) -> dict[str, Any]:
    status = execution.status if execution.status in ("SUCCEEDED", "TIMED_OUT") else "FAILED"
    answer: dict[str, Any] = {
        "executionArn": execution.execution_arn,
        "stateMachineArn": execution.state_machine_arn,
        "name": execution.name,
        "startDate": execution.start_date,
        "stopDate": execution.stop_date,
        "status": status,
        "input": text,
        "inputDetails": {"included": True},
    }
    if status == "SUCCEEDED":
        output = execution.output
        answer["output"] = output if isinstance(output, str) else json.dumps(output)
        answer["outputDetails"] = {"included": True}
    if execution.error is not None:
        answer["error"] = execution.error
    if execution.cause is not None:
        answer["cause"] = execution.cause
    return answer
