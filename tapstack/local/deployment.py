"""Deploy a generated template into moto, in this process, and drive it like AWS would."""

from __future__ import annotations

import io
import json
import os
import re
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
from botocore.exceptions import ClientError
from cfn_flip import load_yaml

from tapstack.local.functions import Fault, FunctionMonitor, InProcessFunction, Invocation
from tapstack.local.pipe import FIRE_AND_FORGET, LocalPipe, check_pipe, invocation_type
from tapstack.local.resolve import Resolver, UnsupportedTemplate, substitute
from tapstack.local.workflows import StepFunctionsRuntime
from tapstack.sources import HANDLER_MODULES, handler_path

ACCOUNT_ID = "123456789012"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
}

#: The resource types the local runner can deploy.
SUPPORTED_TYPES = (
    "AWS::KMS::Key",
    "AWS::Logs::LogGroup",
    "AWS::SNS::Topic",
    "AWS::SNS::Subscription",
    "AWS::SQS::Queue",
    "AWS::DynamoDB::Table",
    "AWS::IAM::Role",
    "AWS::Lambda::Function",
    "AWS::StepFunctions::StateMachine",
    "AWS::Events::Rule",
    "AWS::Pipes::Pipe",
    "AWS::CloudWatch::Alarm",
)


def load_template(source: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """A template given as a dict, YAML/JSON text, or a path to a file."""
    if isinstance(source, Mapping):
        data = source
    else:
        text = Path(source).read_text(encoding="utf-8") if isinstance(source, Path) else source
        if "\n" not in text and Path(text).is_file():
            text = Path(text).read_text(encoding="utf-8")
        data = load_yaml(text)
    # Through JSON: plain dicts and lists, and a copy the caller may change.
    template: dict[str, Any] = json.loads(json.dumps(data))
    return template


@dataclass
class Deployed:
    """What a resource became: its ``Ref`` value and its ``Fn::GetAtt`` attributes."""

    type: str
    ref: Any
    attributes: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass
class FunctionFailure:
    """The next ``times`` invocations of a function fail as Lambda reports an unhandled error."""

    function: str  # logical ID
    times: int
    error_type: str
    message: str


#: Throttling, as every AWS API answers it (400 ThrottlingException), Step Functions included:
#: https://docs.aws.amazon.com/step-functions/latest/apireference/CommonErrors.html
THROTTLING = ("ThrottlingException", "Rate exceeded")
#: An EventBridge rule retries a target "for 24 hours and up to 185 times" unless its RetryPolicy
#: says less, then drops the event: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-retry-policy.html
RULE_DEFAULT_RETRY_ATTEMPTS = 185


class LocalDeployment:
    """A template deployed into moto. Use it as a context manager (the moto mock lives inside it).

    ``use_handler_files`` runs each function from its file in ``handlers/`` instead of the
    template's inlined copy (the same code with its comments), so coverage sees the file.

    The state machine runs as its ``StateMachineType`` says (``tapstack.local.workflows``): an
    Express one at least once when started asynchronously, for at most five virtual minutes, and
    through :meth:`start_sync_execution`; the pipe (:attr:`pipe`) plays its invocation type,
    input template, retries, bisection and dead letters as AWS documents them.

    Faults, each consumed by the next matching calls, for tests of what AWS does under them:

    - :meth:`inject` — the next ``times`` calls of a service operation from the functions (or from
      the pipe or schedule, by logical ID) are answered with an error code;
    - :meth:`fail_function` — the next ``times`` invocations of a function fail as Lambda reports an
      unhandled error (``FunctionError: Unhandled``, the error type and message in the payload), so
      a workflow Task's ``Retry``/``Catch`` sees that error type; the handler does not run;
    - :meth:`throttle_starts` — the next ``times`` ``StartExecution`` (or, for a REQUEST_RESPONSE
      pipe, ``StartSyncExecution``) calls of the pipe or of the schedule are throttled
      (``ThrottlingException``); the pipe retries and dead-letters as it does for any error answer,
      the schedule retries as EventBridge does;
    - :meth:`duplicate_express_starts` — the next ``times`` asynchronous starts of an Express
      workflow (pipe FIRE_AND_FORGET, schedule, continuation, :meth:`start_execution`) run twice
      with the same input, as Express's at-least-once guarantee allows.

    :meth:`executions` and :meth:`wait` list executions of either type: for Express that is the
    runner's view, which AWS's API does not offer (only CloudWatch Logs).
    """

    def __init__(
        self,
        template: str | Path | Mapping[str, Any],
        parameters: Mapping[str, str] | None = None,
        *,
        region: str = "us-east-1",
        stack_name: str = "tapstack-local",
        use_handler_files: bool = False,
        verify_sender: bool = True,
        echo_logs: bool = True,
    ) -> None:
        self.template = load_template(template)
        self.region = region
        self.stack_name = stack_name
        self.use_handler_files = use_handler_files
        self.verify_sender = verify_sender
        self.parameters = self._parameter_values(parameters or {})
        self.resources: dict[str, Deployed] = {}
        self.functions: dict[str, InProcessFunction] = {}
        self.monitor = FunctionMonitor(echo=echo_logs)
        self.resolver = Resolver(
            self.template,
            self.parameters,
            {
                "AWS::AccountId": ACCOUNT_ID,
                "AWS::Region": region,
                "AWS::Partition": "aws",
                "AWS::StackName": stack_name,
                "AWS::URLSuffix": "amazonaws.com",
            },
            ref=lambda name: self.resources[name].ref,
            get_att=lambda name, attribute: self.resources[name].attributes[attribute],
        )
        self._mock: Any = None
        self._clients: dict[str, Any] = {}
        self._pipe: LocalPipe | None = None
        self._principal_clients: dict[tuple[str, str], Any] = {}
        self.step_functions = StepFunctionsRuntime(ACCOUNT_ID, region)
        self._function_failures: list[FunctionFailure] = []
        self._faults_lock = threading.Lock()
        self._patches: list[Callable[[], None]] = []
        self._saved_environment: dict[str, str] = {}

    # ---- parameters ------------------------------------------------------------------------

    def _parameter_values(self, overrides: Mapping[str, str]) -> dict[str, str]:
        declared = self.template.get("Parameters", {})
        unknown = sorted(set(overrides) - set(declared))
        if unknown:
            raise UnsupportedTemplate(f"parameters {unknown} are not declared by the template")
        values: dict[str, str] = {}
        for name, spec in declared.items():
            if name in overrides:
                values[name] = str(overrides[name])
            elif "Default" in spec:
                values[name] = str(spec["Default"])
            else:
                raise UnsupportedTemplate(f"parameter {name} has no default: give it a value")
        return values

    # ---- life cycle ------------------------------------------------------------------------

    def __enter__(self) -> LocalDeployment:
        from moto import mock_aws

        self._saved_environment = dict(os.environ)
        os.environ.update(FAKE_CREDENTIALS)
        os.environ["AWS_DEFAULT_REGION"] = self.region
        os.environ["AWS_REGION"] = self.region
        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        self._mock.start()
        try:
            self._install_patches()
            self.deploy()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.of_type("AWS::StepFunctions::StateMachine"):
            self.wait(timeout=30, raise_on_timeout=False)
        for undo in reversed(self._patches):
            undo()
        self._patches.clear()
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        os.environ.clear()
        os.environ.update(self._saved_environment)

    def client(self, service: str) -> Any:
        """A client of the deployment's account and region, shared (made once per service:
        clients are thread-safe, and making one is the slowest part of a deployment)."""
        if service not in self._clients:
            self._clients[service] = self.new_client(service)
        return self._clients[service]

    def new_client(self, service: str) -> Any:
        """A client of its own, e.g. to record its calls apart from everyone else's."""
        session: Any = boto3  # any service by name (the stubs type each one by its literal name)
        endpoint = None
        if service == "dynamodbstreams":
            # botocore now derives an account endpoint from the stream ARN, which moto does not
            # route; the regional endpoint is the same API.
            endpoint = f"https://streams.dynamodb.{self.region}.amazonaws.com"
        client = session.client(service, region_name=self.region, endpoint_url=endpoint)
        if service == "stepfunctions":
            self.step_functions.attach(client)  # moto has no StartSyncExecution
        return client

    def principal_client(self, logical_id: str, service: str) -> Any:
        """A client whose calls are recorded under ``logical_id``: a principal acting with its role."""
        key = (logical_id, service)
        if key not in self._principal_clients:
            client = self.new_client(service)
            self.monitor.instrument(logical_id, client)
            self._principal_clients[key] = client
        return self._principal_clients[key]

    # ---- deploying -------------------------------------------------------------------------

    def deploy(self) -> None:
        resources = self.template.get("Resources", {})
        unknown = sorted({r["Type"] for r in resources.values()} - set(SUPPORTED_TYPES))
        if unknown:
            raise UnsupportedTemplate(f"the local runner cannot deploy resource types {unknown}")
        for logical_id in deployment_order(resources):
            resource = resources[logical_id]
            condition = resource.get("Condition")
            if condition and not self.resolver.condition(condition):
                continue
            properties = self.resolver.resolve(resource.get("Properties", {}), f"Resources/{logical_id}")
            creator = getattr(self, "_create_" + resource["Type"].split("::", 1)[1].replace("::", "_").lower())
            deployed = creator(logical_id, properties)
            deployed.properties = properties
            self.resources[logical_id] = deployed
        if self.verify_sender:
            for deployed in self.of_type("AWS::Lambda::Function"):
                sender = deployed.properties.get("Environment", {}).get("Variables", {}).get("SENDER_EMAIL")
                if sender:
                    self.client("ses").verify_email_identity(EmailAddress=sender)

    def of_type(self, resource_type: str) -> list[Deployed]:
        return [d for d in self.resources.values() if d.type == resource_type]

    def logical_id(self, resource_type: str, suffix: str) -> str:
        """The one deployed resource of ``resource_type`` whose logical ID ends with ``suffix``."""
        found = [lid for lid, d in self.resources.items() if d.type == resource_type and lid.endswith(suffix)]
        if len(found) != 1:
            raise KeyError(f"expected one {resource_type} ending with {suffix!r}, found {found}")
        return found[0]

    def _arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{ACCOUNT_ID}:{resource}"

    def _create_kms_key(self, logical_id: str, properties: dict[str, Any]) -> Deployed:
        key = self.client("kms").create_key(
            Description=str(properties.get("Description", logical_id)),
            Policy=json.dumps(properties.get("KeyPolicy", {})),
        )["KeyMetadata"]
        if properties.get("EnableKeyRotation"):
            self.client("kms").enable_key_rotation(KeyId=key["KeyId"])
        return Deployed("AWS::KMS::Key", key["KeyId"], {"Arn": key["Arn"], "KeyId": key["KeyId"]})

    def _create_logs_loggroup(self, logical_id: str, properties: dict[str, Any]) -> Deployed:
        name = properties["LogGroupName"]
        logs = self.client("logs")
        logs.create_log_group(logGroupName=name)
        if "RetentionInDays" in properties:
            logs.put_retention_policy(logGroupName=name, retentionInDays=int(properties["RetentionInDays"]))
        return Deployed("AWS::Logs::LogGroup", name, {"Arn": self._arn("logs", f"log-group:{name}:*")})

    def _create_sns_topic(self, logical_id: str, properties: dict[str, Any]) -> Deployed:
        attributes = {"KmsMasterKeyId": properties["KmsMasterKeyId"]} if "KmsMasterKeyId" in properties else {}
        arn = self.client("sns").create_topic(Name=properties["TopicName"], Attributes=attributes)["TopicArn"]
        return Deployed("AWS::SNS::Topic", arn, {"TopicArn": arn, "TopicName": properties["TopicName"]})

    def _create_sns_subscription(self, logical_id: str, properties: dict[str, Any]) -> Deployed:
        arn = self.client("sns").subscribe(
            TopicArn=properties["TopicArn"], Protocol=properties["Protocol"], Endpoint=properties["Endpoint"]
        )["SubscriptionArn"]
        return Deployed("AWS::SNS::Subscription", arn)

    def _create_sqs_queue(self, logical_id: str, properties: dict[str, Any]) -> Deployed:
        attributes = {
            key: str(properties[key]) for key in ("KmsMasterKeyId", "MessageRetentionPeriod") if key in properties
        }
        name = properties["QueueName"]
        url = self.client("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        return Deployed("AWS::SQS::Queue", url, {"Arn": self._arn("sqs", name), "QueueName": name, "QueueUrl": url})

    def _create_dynamodb_table(self, logical_id: str, properties: dict[str, Any]) -> Deployed:
        dynamodb = self.client("dynamodb")
        name = properties["TableName"]
        request: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": properties["AttributeDefinitions"],
            "KeySchema": properties["KeySchema"],
            "BillingMode": properties.get("BillingMode", "PROVISIONED"),
        }
        if properties.get("GlobalSecondaryIndexes"):
            request["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
        if properties.get("StreamSpecification"):
            request["StreamSpecification"] = {"StreamEnabled": True, **properties["StreamSpecification"]}
        sse = properties.get("SSESpecification")
        if sse:
            request["SSESpecification"] = {
                "Enabled": sse.get("SSEEnabled", False),
                **({"SSEType": sse["SSEType"]} if "SSEType" in sse else {}),
                **({"KMSMasterKeyId": sse["KMSMasterKeyId"]} if "KMSMasterKeyId" in sse else {}),
            }
        if "DeletionProtectionEnabled" in properties:
            request["DeletionProtectionEnabled"] = str(properties["DeletionProtectionEnabled"]).lower() == "true"
        table = dynamodb.create_table(**request)["TableDescription"]
        ttl = properties.get("TimeToLiveSpecification")
        if ttl and str(ttl.get("Enabled")).lower() == "true":
            dynamodb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]}
            )
        pitr = properties.get("PointInTimeRecoverySpecification", {})
        if str(pitr.get("PointInTimeRecoveryEnabled")).lower() == "true":
            dynamodb.update_continuous_backups(
                TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )
        attributes = {"Arn": table["TableArn"]}
        if "LatestStreamArn" in table:
            attributes["StreamArn"] = table["LatestStreamArn"]
        return Deployed("AWS::DynamoDB::Table", name, attributes)

    def _create_iam_role(self, logical_id: str, properties: dict[str, Any]) -> Deployed:
        iam = self.client("iam")
        name = properties.get("RoleName", f"{self.stack_name}-{logical_id}")
        role = iam.create_role(
            RoleName=name, AssumeRolePolicyDocument=json.dumps(properties["AssumeRolePolicyDocument"])
        )["Role"]
        for policy in properties.get("Policies", []):
            iam.put_role_policy(
                RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(policy["PolicyDocument"])
            )
        return Deployed("AWS::IAM::Role", name, {"Arn": role["Arn"], "RoleId": role["RoleId"]})

    def _handler_code(self, logical_id: str, properties: dict[str, Any]) -> tuple[str, str]:
        source = properties.get("Code", {}).get("ZipFile")
        if source is None:
            raise UnsupportedTemplate(
                f"Resources/{logical_id}: only functions with inline Code.ZipFile can run locally"
            )
        if self.use_handler_files:
            module = next((m for lid, m in HANDLER_MODULES.items() if logical_id.endswith(lid)), None)
            if module is not None:
                path = handler_path(module)
                return path.read_text(encoding="utf-8"), str(path)
        return source, f"<{logical_id}>/index.py"

    def _create_lambda_function(self, logical_id: str, properties: dict[str, Any]) -> Deployed:
        name = properties.get("FunctionName", f"{self.stack_name}-{logical_id}")
        source, filename = self._handler_code(logical_id, properties)
        package = io.BytesIO()
        with zipfile.ZipFile(package, "w") as archive:
            archive.writestr("index.py", properties["Code"]["ZipFile"])
        variables = properties.get("Environment", {}).get("Variables", {})
        function = self.client("lambda").create_function(
            FunctionName=name,
            Runtime=properties["Runtime"],
            Role=properties["Role"],
            Handler=properties["Handler"],
            Code={"ZipFile": package.getvalue()},
            Timeout=int(properties.get("Timeout", 3)),
            MemorySize=int(properties.get("MemorySize", 128)),
            Environment={"Variables": {k: str(v) for k, v in variables.items()}},
        )
        self.functions[name] = InProcessFunction(
            logical_id,
            name,
            source,
            filename,
            properties["Handler"],
            {k: str(v) for k, v in variables.items()},
            self.monitor,
        )
        return Deployed("AWS::Lambda::Function", name, {"Arn": function["FunctionArn"]})

    def _create_stepfunctions_statemachine(self, logical_id: str, properties: dict[str, Any]) -> Deployed:
        if "Definition" not in properties:
            raise UnsupportedTemplate(
                f"Resources/{logical_id}: the local runner needs Definition (not DefinitionString)"
            )
        definition = substitute(properties["Definition"], properties.get("DefinitionSubstitutions", {}))
        name = properties.get("StateMachineName", f"{self.stack_name}-{logical_id}")
        arn = self.client("stepfunctions").create_state_machine(
            name=name,
            definition=json.dumps(definition),
            roleArn=properties["RoleArn"],
            type=properties.get("StateMachineType", "STANDARD"),
            **_state_machine_configuration(properties),
        )["stateMachineArn"]
        return Deployed("AWS::StepFunctions::StateMachine", arn, {"Arn": arn, "Name": name})

    def _create_events_rule(self, logical_id: str, properties: dict[str, Any]) -> Deployed:
        events = self.client("events")
        name = properties.get("Name", f"{self.stack_name}-{logical_id}")
        arn = events.put_rule(
            Name=name, ScheduleExpression=properties["ScheduleExpression"], State=properties.get("State", "ENABLED")
        )["RuleArn"]
        targets = [
            {k: v for k, v in t.items() if k in ("Id", "Arn", "RoleArn", "Input")}
            for t in properties.get("Targets", [])
        ]
        if targets:
            events.put_targets(Rule=name, Targets=targets)
        return Deployed("AWS::Events::Rule", name, {"Arn": arn})

    def _create_pipes_pipe(self, logical_id: str, properties: dict[str, Any]) -> Deployed:
        # moto has no Pipes; the local pipe (tapstack.local.pipe) runs it from these properties.
        targets = [d for d in self.of_type("AWS::StepFunctions::StateMachine") if d.ref == properties.get("Target")]
        target_type = targets[0].properties.get("StateMachineType", "STANDARD") if targets else None
        check_pipe(properties, target_type, f"Resources/{logical_id}")
        name = properties.get("Name", f"{self.stack_name}-{logical_id}")
        return Deployed("AWS::Pipes::Pipe", name, {"Arn": self._arn("pipes", f"pipe/{name}")})

    def _create_cloudwatch_alarm(self, logical_id: str, properties: dict[str, Any]) -> Deployed:
        name = properties.get("AlarmName", f"{self.stack_name}-{logical_id}")
        request = {k: v for k, v in properties.items() if k != "AlarmName"}
        for key in ("Period", "EvaluationPeriods", "Threshold"):
            if key in request:
                request[key] = float(request[key]) if key == "Threshold" else int(request[key])
        self.client("cloudwatch").put_metric_alarm(AlarmName=name, **request)
        return Deployed("AWS::CloudWatch::Alarm", name, {"Arn": self._arn("cloudwatch", f"alarm:{name}")})

    # ---- running ---------------------------------------------------------------------------

    def _install_patches(self) -> None:
        from moto.awslambda import models as lambda_models
        from moto.dynamodb.models import DynamoDBBackend
        from moto.dynamodb.responses import DynamoHandler
        from moto.stepfunctions.parser.asl.component.common.path import result_path
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
            StateTaskServiceSfn,
        )
        from moto.stepfunctions.parser.asl.utils import json_path

        deployment = self

        def invoke(function: Any, body: Any, request_headers: Any, response_headers: Any) -> bytes:
            local = deployment.functions.get(function.function_name)
            if local is None:
                raise UnsupportedTemplate(f"function {function.function_name} was not deployed by this runner")
            event = json.loads(body) if body else {}
            result, error = deployment._invoke_function(local, event)
            if error is not None:
                response_headers["x-amz-function-error"] = "Unhandled"
                return json.dumps(error).encode()
            return json.dumps(result).encode()

        self._patch(lambda_models.LambdaFunction, "invoke", invoke)
        # The states:startExecution integration takes the API's parameters in PascalCase
        # (StateMachineArn); moto hands them to boto3 unchanged, which wants stateMachineArn.
        normalise = StateTaskServiceSfn._normalise_parameters

        def pascal_to_api(task: Any, parameters: dict[str, Any], *args: Any, **kwargs: Any) -> None:
            normalise(task, parameters, *args, **kwargs)
            for name in list(parameters):
                parameters[name[:1].lower() + name[1:]] = parameters.pop(name)

        self._patch(StateTaskServiceSfn, "_normalise_parameters", pascal_to_api)
        evaluate = StateTaskServiceSfn._eval_service_task

        def api_to_pascal(task: Any, env: Any, *args: Any, **kwargs: Any) -> None:
            # ...and answers in PascalCase with dates as epoch milliseconds, which is JSON.
            evaluate(task, env, *args, **kwargs)
            response = env.stack.pop()
            env.stack.append(
                {
                    name[:1].upper() + name[1:]: int(value.timestamp() * 1000) if hasattr(value, "timestamp") else value
                    for name, value in response.items()
                }
            )

        self._patch(StateTaskServiceSfn, "_eval_service_task", api_to_pascal)
        # Execution names, Express's at-least-once starts and its five-minute limit.
        self.step_functions.install(self._patch)
        # jsonpath-ng parses with PLY, whose parser state is shared: two executions' threads
        # parsing at once can fail a path with States.Runtime. One parse at a time, each path once.
        for module in (json_path, result_path):
            self._patch(module, "parse", _parsed_once(module.parse))
        # Retry intervals take no wall time here; the clock only moves when a scenario moves it.
        self._patch(retrier_decl, "time", _NoSleep())
        # DynamoDB applies each conditional write atomically; moto must not interleave them.
        lock = threading.RLock()
        for method in ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item"):
            original = getattr(DynamoDBBackend, method)
            self._patch(DynamoDBBackend, method, _locked(original, lock))
        # moto builds a response from the stored item after the write returns: a concurrent write
        # to the same item would change it mid-way. DynamoDB answers each request atomically.
        self._patch(DynamoHandler, "call_action", _locked(DynamoHandler.call_action, lock))

    def _patch(self, owner: Any, name: str, value: Any) -> None:
        original = getattr(owner, name)
        setattr(owner, name, value)
        self._patches.append(lambda: setattr(owner, name, original))

    def inject(
        self,
        service: str,
        operation: str,
        code: str,
        *,
        times: int = 1,
        function: str | None = None,
        message: str = "injected by the local runner",
        status: int = 400,
    ) -> Fault:
        """Make the next ``times`` calls of a service operation from the functions fail with ``code``."""
        return self.monitor.inject(Fault(service, operation, code, message, times, status, function))

    def fail_function(
        self,
        logical_id: str,
        *,
        times: int = 1,
        error_type: str = "InjectedFailure",
        message: str = "injected by the local runner",
    ) -> FunctionFailure:
        """Make the next ``times`` invocations of a function fail as an unhandled error of type
        ``error_type`` (the workflow's ``Retry``/``Catch`` match that name); the handler does not run."""
        if logical_id not in self.resources or self.resources[logical_id].type != "AWS::Lambda::Function":
            raise KeyError(f"{logical_id} is not a function of this deployment")
        failure = FunctionFailure(logical_id, times, error_type, message)
        with self._faults_lock:
            self._function_failures.append(failure)
        return failure

    def throttle_starts(self, logical_id: str, *, times: int = 1) -> Fault:
        """Throttle the next ``times`` calls that the pipe or the schedule rule ``logical_id``
        makes to start the workflow (the pipe's StartSyncExecution when it is REQUEST_RESPONSE)."""
        resource = self.resources[logical_id]
        operation = "StartExecution"
        if resource.type == "AWS::Pipes::Pipe":
            if invocation_type(resource.properties) != FIRE_AND_FORGET:
                operation = "StartSyncExecution"
        elif resource.type != "AWS::Events::Rule":
            raise KeyError(f"{logical_id} is neither the pipe nor a schedule rule")
        code, message = THROTTLING
        return self.monitor.inject(Fault("stepfunctions", operation, code, message, times, 400, logical_id))

    def duplicate_express_starts(self, *, times: int = 1) -> None:
        """Run the next ``times`` asynchronous starts of an Express workflow twice (same input)."""
        self.step_functions.duplicate_async_starts(times)

    def _take_function_failure(self, logical_id: str) -> FunctionFailure | None:
        with self._faults_lock:
            failure = next((f for f in self._function_failures if f.function == logical_id and f.times > 0), None)
            if failure is not None:
                failure.times -= 1
            return failure

    def _invoke_function(self, function: InProcessFunction, event: Any) -> tuple[Any, dict[str, Any] | None]:
        failure = self._take_function_failure(function.logical_id)
        if failure is None:
            return function.invoke(event)
        # As Lambda reports a Python function's unhandled error: its type and message in the
        # payload (https://docs.aws.amazon.com/lambda/latest/dg/python-exceptions.html).
        error = {"errorType": failure.error_type, "errorMessage": failure.message, "stackTrace": []}
        self.monitor.invocations.append(Invocation(function.logical_id, event, error=error))
        return None, error

    def invoke(self, logical_id: str, event: Any) -> Any:
        """Invoke one function directly; raise its error as ``FunctionError``."""
        function = self.functions[self.resources[logical_id].ref]
        result, error = self._invoke_function(function, event)
        if error is not None:
            raise FunctionError(error)
        return result

    @property
    def state_machine_arn(self) -> str:
        machines = self.of_type("AWS::StepFunctions::StateMachine")
        if len(machines) != 1:
            raise UnsupportedTemplate(f"expected one state machine, found {len(machines)}")
        return str(machines[0].ref)

    @property
    def state_machine_type(self) -> str:
        """STANDARD or EXPRESS, as the template says (absent means STANDARD)."""
        (machine,) = self.of_type("AWS::StepFunctions::StateMachine")
        return str(machine.properties.get("StateMachineType", "STANDARD"))

    def start_execution(self, payload: Any) -> str:
        return str(
            self.client("stepfunctions").start_execution(
                stateMachineArn=self.state_machine_arn, name=uuid.uuid4().hex, input=json.dumps(payload)
            )["executionArn"]
        )

    def start_sync_execution(self, payload: Any) -> dict[str, Any]:
        """``StartSyncExecution`` on the state machine: run it to its end and answer as the API
        does (``status``, ``output``, ``error``, ``cause``...). A STANDARD state machine is refused
        with ``ClientError`` ``StateMachineTypeNotSupported``, as AWS refuses it."""
        answer = self.client("stepfunctions").start_sync_execution(
            stateMachineArn=self.state_machine_arn, name=uuid.uuid4().hex, input=json.dumps(payload)
        )
        answer.pop("ResponseMetadata", None)
        return dict(answer)

    @property
    def pipe(self) -> LocalPipe:
        """The template's one Pipe, run locally (it keeps its place in the stream)."""
        if self._pipe is None:
            pipes = [lid for lid, d in self.resources.items() if d.type == "AWS::Pipes::Pipe"]
            if len(pipes) != 1:
                raise UnsupportedTemplate(f"expected one pipe, found {len(pipes)}")
            self._pipe = LocalPipe(self, pipes[0])
        return self._pipe

    def run_pipe(self) -> list[str]:
        """Deliver the appointment changes written since the last run; return the executions started."""
        return self.pipe.poll()

    def run_schedule(self) -> str | None:
        """What the schedule rule does when it fires: start the workflow with a Scheduled Event.

        A throttled or failed start is retried as EventBridge retries a rule's target (its
        ``RetryPolicy``, by default up to 185 times; retries take no virtual time here); the ARN
        of the execution started, or None when the event was dropped. Not modelled: a target's
        ``DeadLetterConfig`` and ``MaximumEventAgeInSeconds``.
        """
        (rule_id,) = [lid for lid, d in self.resources.items() if d.type == "AWS::Events::Rule"]
        rule = self.resources[rule_id]
        target = rule.properties["Targets"][0]
        now = time.gmtime()
        event = {
            "version": "0",
            "id": os.urandom(16).hex(),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": ACCOUNT_ID,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", now),
            "region": self.region,
            "resources": [rule.attributes["Arn"]],
            "detail": {},
        }
        sfn = self.principal_client(rule_id, "stepfunctions")
        retries = int(target.get("RetryPolicy", {}).get("MaximumRetryAttempts", RULE_DEFAULT_RETRY_ATTEMPTS))
        for _ in range(1 + retries):
            try:
                return str(
                    sfn.start_execution(
                        stateMachineArn=target["Arn"],
                        name=uuid.uuid4().hex,
                        input=target.get("Input", json.dumps(event)),
                    )["executionArn"]
                )
            except ClientError as error:
                if not _retriable(error):
                    return None
            except (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError):
                continue
        return None

    def executions(self) -> list[dict[str, Any]]:
        sfn = self.client("stepfunctions")
        pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=self.state_machine_arn)
        return [execution for page in pages for execution in page["executions"]]

    def wait(self, timeout: float = 120, raise_on_timeout: bool = True) -> list[dict[str, Any]]:
        """Wait until no execution runs (continuations included); return every execution."""
        if self._mock is None:
            return []
        deadline = time.monotonic() + timeout
        while True:
            executions = self.executions()
            if all(e["status"] != "RUNNING" for e in executions):
                return executions
            if time.monotonic() > deadline:
                if raise_on_timeout:
                    raise TimeoutError(f"executions still running after {timeout} s")
                return executions
            time.sleep(0.02)

    def item(self, table_suffix: str, key: dict[str, Any]) -> dict[str, Any] | None:
        from boto3.dynamodb.types import TypeDeserializer

        name = self.resources[self.logical_id("AWS::DynamoDB::Table", table_suffix)].ref
        raw = self.client("dynamodb").get_item(TableName=name, Key=_serialize(key), ConsistentRead=True)
        if "Item" not in raw:
            return None
        deserializer = TypeDeserializer()
        return {k: deserializer.deserialize(v) for k, v in raw["Item"].items()}

    def table_name(self, suffix: str) -> str:
        return str(self.resources[self.logical_id("AWS::DynamoDB::Table", suffix)].ref)


def references(value: Any) -> set[str]:
    """Names a template fragment refers to (Ref, Fn::GetAtt, Fn::Sub variables)."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= references(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.add(item)
            elif key == "Fn::GetAtt":
                found.add(item.split(".", 1)[0] if isinstance(item, str) else item[0])
            elif key == "Fn::Sub":
                text = item if isinstance(item, str) else item[0]
                found |= {name.split(".", 1)[0] for name in re.findall(r"\$\{([^}!]+)\}", text)}
                if not isinstance(item, str):
                    found |= references(item[1])
            else:
                found |= references(item)
    return found


def deployment_order(resources: Mapping[str, Any]) -> list[str]:
    """Logical IDs so that each resource comes after every resource it refers to."""
    depends = {}
    for logical_id, resource in resources.items():
        declared = resource.get("DependsOn", [])
        declared = [declared] if isinstance(declared, str) else declared
        depends[logical_id] = (references(resource.get("Properties", {})) | set(declared)) & set(resources)
    order: list[str] = []
    visiting: set[str] = set()

    def visit(logical_id: str) -> None:
        if logical_id in order:
            return
        if logical_id in visiting:
            raise UnsupportedTemplate(f"Resources/{logical_id}: circular reference")
        visiting.add(logical_id)
        for dependency in sorted(depends[logical_id]):
            visit(dependency)
        visiting.discard(logical_id)
        order.append(logical_id)

    for logical_id in resources:
        visit(logical_id)
    return order


class FunctionError(Exception):
    """A function's handler raised; ``error`` is the payload Lambda would return."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error['errorType']}: {error['errorMessage']}")
        self.error = error


def _retriable(error: ClientError) -> bool:
    """An error that a retry may outlive: throttling or the service's own failure (5xx)."""
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400))
    code = error.response["Error"]["Code"]
    throttled = "Throttl" in code or code in ("TooManyRequestsException", "RequestLimitExceeded")
    return status >= 500 or status == 429 or throttled


class _NoSleep:
    """Stands in for the ``time`` module of moto's retrier: retries happen without waiting."""

    def sleep(self, seconds: float) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def _parsed_once(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    lock, parsed = threading.Lock(), {}

    def parse_once(path: str) -> Any:
        with lock:
            if path not in parsed:
                parsed[path] = parse(path)
            return parsed[path]

    return parse_once


def _locked(method: Callable[..., Any], lock: threading.RLock) -> Callable[..., Any]:
    def locked(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return method(*args, **kwargs)

    return locked


def _serialize(item: dict[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()
    return {k: serializer.serialize(v) for k, v in item.items()}


__all__ = ["FunctionError", "LocalDeployment", "UnsupportedTemplate", "load_template"]


#: CloudFormation's property of a state machine → the CreateStateMachine parameter and the names of
#: its fields (https://docs.aws.amazon.com/step-functions/latest/apireference/API_CreateStateMachine.html,
#: API_EncryptionConfiguration.html, API_LoggingConfiguration.html, API_TracingConfiguration.html).
_STATE_MACHINE_CONFIGURATION = {
    "EncryptionConfiguration": (
        "encryptionConfiguration",
        {"Type": "type", "KmsKeyId": "kmsKeyId", "KmsDataKeyReusePeriodSeconds": "kmsDataKeyReusePeriodSeconds"},
    ),
    "LoggingConfiguration": (
        "loggingConfiguration",
        {"Level": "level", "IncludeExecutionData": "includeExecutionData", "Destinations": "destinations"},
    ),
    "TracingConfiguration": ("tracingConfiguration", {"Enabled": "enabled"}),
}


def _state_machine_configuration(properties: dict[str, Any]) -> dict[str, Any]:
    """The state machine's encryption, logging and tracing as CreateStateMachine takes them, for the
    fields the template sets (moto stores them and DescribeStateMachine returns them)."""
    arguments: dict[str, Any] = {}
    for name, (parameter, fields) in _STATE_MACHINE_CONFIGURATION.items():
        if name in properties:
            arguments[parameter] = {fields[key]: _api_shape(value) for key, value in properties[name].items()}
    return arguments


def _api_shape(value: Any) -> Any:
    """A log destination as the API spells it (``cloudWatchLogsLogGroup.logGroupArn``)."""
    if isinstance(value, list):
        return [
            {"cloudWatchLogsLogGroup": {"logGroupArn": item["CloudWatchLogsLogGroup"]["LogGroupArn"]}} for item in value
        ]
    return value
