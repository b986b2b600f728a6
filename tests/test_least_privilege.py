"""Least privilege, proven on the generated template.

Scenarios run on fresh local deployments of the template (handlers as inlined) and together take
every code path that calls AWS. Every call is recorded: the functions' and the pipe's boto3 calls
(``monitor.calls``), the workflow's Lambda invocations (``monitor.invocations``), and the
executions the workflow (continuation) and the schedule started. Each becomes an IAM request
(action, resource ARN) of the role that makes it, and each role's policy is resolved from the
template. Then, per role:

- every request is allowed, by a grant on its resource (not by a broader ``*`` one), and not denied;
- every grant (Allow action x resource) is used by some request, except the few in ``UNOBSERVABLE``,
  which AWS services use on the role's behalf where the local runner cannot see it;
- ``*`` is a resource only of the actions AWS authorises on ``*`` alone (``STAR_ACTIONS``).
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from email.utils import parseaddr
from typing import Any
from urllib.parse import urlparse

import pytest
import time_machine

import tests.test_end_to_end as e2e
from tapstack import ReminderProps, build_template
from tapstack.cli import render
from tapstack.local import LocalDeployment, load_template
from tapstack.local.deployment import ACCOUNT_ID
from tapstack.render import to_yaml
from tapstack.triggers import PIPE_MAXIMUM_RETRY_ATTEMPTS
from tapstack.workflow import CONTINUATION_SOURCE
from tests import iam
from tests.iam import LOG_DELIVERY_ACTIONS, STAR_ACTIONS
from tests.support import DAY, HOUR, OPTED_OUT_PHONE, SENDER, START, appointment, put_appointment, reminder

# ---- what cannot be observed, and where AWS authorises only on "*" -------------------------------


@dataclass(frozen=True)
class Unobservable:
    """Grants that AWS uses on the role's behalf, out of sight of the local runner."""

    kinds: frozenset[str]  # role kinds: function, pipe, workflow, schedule
    actions: tuple[str, ...]  # IAM action patterns
    resource: str  # "*" or the type of the resource the grant's ARN refers to
    reason: str


ANY_ROLE = frozenset({"function", "pipe", "workflow", "schedule"})
UNOBSERVABLE = (
    Unobservable(
        frozenset({"function"}),
        ("logs:CreateLogStream", "logs:PutLogEvents"),
        "AWS::Logs::LogGroup",
        "Lambda writes the function's log with the function's role; locally the log is a list",
    ),
    Unobservable(
        frozenset({"workflow"}),
        ("xray:*",),
        "*",
        "Step Functions uploads the workflow's traces (its tracing); moto has no X-Ray",
    ),
    Unobservable(
        ANY_ROLE,
        ("kms:*",),
        "AWS::KMS::Key",
        "Lambda decrypts the environment; DynamoDB, SNS and SQS use the key with the caller's role; "
        "moto does not check KMS on their behalf",
    ),
    Unobservable(
        frozenset({"pipe"}),
        ("dynamodb:ListStreams",),
        "*",
        "EventBridge Pipes requires it for a DynamoDB stream source (documented execution-role "
        "permissions); the local pipe reads the stream ARN it is given",
    ),
    Unobservable(
        frozenset({"workflow"}),
        LOG_DELIVERY_ACTIONS,
        "*",
        "Step Functions sets up the vended log delivery of its LoggingConfiguration with the role",
    ),
)

# ---- the template's roles and who uses them -----------------------------------------------------


def _get_att_target(value: Any) -> str:
    """The logical ID that ``{"Fn::GetAtt": [X, "Arn"]}`` names."""
    target = value["Fn::GetAtt"]
    return str(target.split(".", 1)[0] if isinstance(target, str) else target[0])


def principals(template: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Role logical ID → (kind, logical ID of what acts with it)."""
    found: dict[str, list[tuple[str, str]]] = {}
    for logical_id, resource in template["Resources"].items():
        props, kind = resource.get("Properties", {}), resource["Type"]
        roles = {
            "AWS::Lambda::Function": ("function", [props.get("Role")]),
            "AWS::Pipes::Pipe": ("pipe", [props.get("RoleArn")]),
            "AWS::StepFunctions::StateMachine": ("workflow", [props.get("RoleArn")]),
            "AWS::Events::Rule": ("schedule", [t.get("RoleArn") for t in props.get("Targets", [])]),
        }.get(kind)
        if roles:
            for role in roles[1]:
                found.setdefault(_get_att_target(role), []).append((roles[0], logical_id))
    shared = {role: users for role, users in found.items() if len(users) != 1}
    assert not shared, f"each role serves exactly one principal: {shared}"
    return {role: users[0] for role, users in found.items()}


def role_statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    properties = template["Resources"][role]["Properties"]
    assert not properties.get("ManagedPolicyArns"), f"{role}: managed policies are not evaluated here"
    return [s for policy in properties.get("Policies", []) for s in policy["PolicyDocument"]["Statement"]]


TEMPLATE = load_template(render("yaml"))
PRINCIPALS = principals(TEMPLATE)
ROLES = sorted(PRINCIPALS)

# ---- calls → IAM requests -----------------------------------------------------------------------

IAM_PREFIX = {
    "dynamodb": "dynamodb",
    "dynamodbstreams": "dynamodb",
    "ses": "ses",
    "sns": "sns",
    "sqs": "sqs",
    "stepfunctions": "states",
}


@dataclass(frozen=True)
class Observed:
    """One request a role made: ``resources`` are alternatives (AWS authorises on any one of them)."""

    role: str
    principal: str
    action: str
    resources: tuple[str, ...]
    context: tuple[tuple[str, str], ...]

    def requests(self) -> list[iam.Request]:
        return [iam.Request(self.action, r, dict(self.context)) for r in self.resources]

    def __str__(self) -> str:
        return f"{self.principal}: {self.action} on {' or '.join(self.resources)}"


def call_requests(deployment: LocalDeployment, call: Any) -> list[tuple[str, tuple[str, ...]]]:
    """(IAM action, alternative resource ARNs) of one recorded boto3 call."""
    region, params, operation = deployment.region, call.params, call.operation
    if call.service not in IAM_PREFIX:
        raise AssertionError(f"{call.function} called {call.service}.{operation}: map it to IAM here")
    action = f"{IAM_PREFIX[call.service]}:{operation}"

    def table(name: str) -> str:
        return f"arn:aws:dynamodb:{region}:{ACCOUNT_ID}:table/{name}"

    if call.service == "dynamodb":
        if operation in ("BatchGetItem", "BatchWriteItem"):
            return [(action, (table(name),)) for name in params["RequestItems"]]
        if "TableName" in params:
            arn = table(params["TableName"])
            if operation in ("Query", "Scan") and "IndexName" in params:
                arn += f"/index/{params['IndexName']}"
            return [(action, (arn,))]
    elif call.service == "dynamodbstreams":
        if "StreamArn" in params:
            return [(action, (params["StreamArn"],))]
        if operation == "GetRecords" and call.function == deployment.pipe.logical_id:
            return [(action, (deployment.pipe.stream_arn,))]  # a shard iterator names no stream
    elif call.service == "ses" and operation == "SendEmail":
        address = parseaddr(params["Source"])[1]
        identity = f"arn:aws:ses:{region}:{ACCOUNT_ID}:identity/"
        requests = [(action, (identity + address, identity + address.split("@", 1)[1]))]
        # SES also authorises the send on the configuration set that applies: the one the request
        # names, else the sending identity's default (docs in tapstack.policies.email_sending_statements).
        configuration_set = params.get("ConfigurationSetName") or default_configuration_set(deployment, address)
        if configuration_set:
            requests.append((action, (f"arn:aws:ses:{region}:{ACCOUNT_ID}:configuration-set/{configuration_set}",)))
        return requests
    elif call.service == "sns":
        if operation == "Publish":
            target = params.get("TopicArn") or params.get("TargetArn")
            return [(action, (target or "*",))]  # a PhoneNumber has no ARN
        if operation == "CheckIfPhoneNumberIsOptedOut":
            return [(action, ("*",))]
    elif call.service == "stepfunctions" and operation in ("StartExecution", "StartSyncExecution"):
        return [(action, (params["stateMachineArn"],))]
    elif call.service == "sqs" and operation == "SendMessage":
        name = urlparse(params["QueueUrl"]).path.rstrip("/").rsplit("/", 1)[-1]
        return [(action, (f"arn:aws:sqs:{region}:{ACCOUNT_ID}:{name}",))]
    raise AssertionError(f"{call.function} called {call.service}.{operation}: map it to IAM here")


def default_configuration_set(deployment: LocalDeployment, address: str) -> str | None:
    """The default configuration set of the identity that sends from ``address``: the address's own
    identity, else its domain's."""
    sesv2 = deployment.client("sesv2")
    for identity in (address, address.split("@", 1)[1]):
        try:
            found = sesv2.get_email_identity(EmailIdentity=identity)
        except sesv2.exceptions.NotFoundException:
            continue
        return found.get("ConfigurationSetName") or None
    return None


@dataclass
class Evidence:
    """What one deployment showed: its roles' resolved statements and the requests they made."""

    scenario: str
    statements: dict[str, list[dict[str, Any]]]  # resolved, by role
    template: dict[str, Any]
    observed: list[Observed] = field(default_factory=list)


def collect(scenario: str, deployment: LocalDeployment, direct: set[int]) -> Evidence:
    template = deployment.template
    roles = principals(template)
    statements = {role: deployment.resolver.resolve(role_statements(template, role)) for role in roles}
    evidence = Evidence(scenario, statements, template)
    role_of = {principal: role for role, (_, principal) in roles.items()}
    context = (("aws:RequestedRegion", deployment.region),)

    def observe(principal: str, action: str, resources: tuple[str, ...]) -> None:
        assert principal in role_of, f"{principal} made {action} calls but has no role in the template"
        evidence.observed.append(Observed(role_of[principal], principal, action, resources, context))

    for call in deployment.monitor.calls:
        for action, resources in call_requests(deployment, call):
            observe(call.function, action, resources)
    workflow = deployment.logical_id("AWS::StepFunctions::StateMachine", "")
    for invocation in deployment.monitor.invocations:
        if id(invocation) not in direct:  # the scenario's own deployment.invoke is not the workflow's
            arn = deployment.resources[invocation.function].attributes["Arn"]
            observe(workflow, "lambda:InvokeFunction", (arn,))
    sfn = deployment.client("stepfunctions")
    for execution in deployment.executions():
        started = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
        if not isinstance(started, dict):
            continue  # a stream batch: the pipe's StartExecution, recorded as its call
        if started.get("source") == CONTINUATION_SOURCE:  # the workflow's own states:startExecution task
            observe(workflow, "states:StartExecution", (execution["stateMachineArn"],))
    return evidence


# ---- the scenarios ------------------------------------------------------------------------------

Make = Callable[..., LocalDeployment]


def assert_all_succeeded(stack: LocalDeployment) -> list[dict[str, Any]]:
    executions = stack.wait()
    assert executions and {e["status"] for e in executions} == {"SUCCEEDED"}, executions
    return executions


def deliver_now(stack: LocalDeployment, appointment_id: str, **fields: Any) -> dict[str, Any]:
    """A booking 23 h ahead: the pipe's execution claims and delivers it at once."""
    put_appointment(stack, appointment(appointment_id, DAY - HOUR, **fields))
    stack.run_pipe()
    assert_all_succeeded(stack)
    record = reminder(stack, f"{appointment_id}#1440")
    assert record is not None
    return record


def sms_faults_and_opt_out(make: Make, clock: Any) -> None:
    stack = make()
    stack.inject("sns", "Publish", "Throttling", function="SmsSenderFunction", message="Rate exceeded")
    assert deliver_now(stack, "sms-throttled")["smsResult"]["status"] == "SENT"
    stack.inject("sns", "Publish", "InvalidParameter", function="SmsSenderFunction")
    record = deliver_now(stack, "sms-rejected")["smsResult"]
    assert (record["status"], record["reason"]) == ("FAILED", "InvalidParameter")
    stack.inject("sns", "CheckIfPhoneNumberIsOptedOut", "Throttling", message="Rate exceeded")
    record = deliver_now(stack, "opted-out", customerPhone=OPTED_OUT_PHONE)["smsResult"]
    assert (record["status"], record["reason"]) == ("SKIPPED", "OptedOut")
    # The status updater's transient failures: its write, then its announcement, are retried.
    stack.inject("dynamodb", "UpdateItem", "ProvisionedThroughputExceededException", function="StatusUpdaterFunction")
    stack.inject("sns", "Publish", "Throttling", function="StatusUpdaterFunction")
    assert deliver_now(stack, "updater-retried")["state"] == "SENT"


def email_transient_and_unknown_outcome(make: Make, clock: Any) -> None:
    stack = make()
    # SES unavailable: the channel mark is removed (REMOVE emailResult) and the send retried.
    stack.inject("ses", "SendEmail", "ServiceUnavailable", status=503)
    assert deliver_now(stack, "ses-unavailable")["emailResult"]["status"] == "SENT"
    # The connection is lost after the request went out: the outcome is unknown, never resent.
    stack.inject("ses", "SendEmail", "ReadTimeoutError")
    record = deliver_now(stack, "ses-lost")["emailResult"]
    assert record["status"] == "FAILED"


def email_with_a_default_configuration_set(make: Make, clock: Any) -> None:
    """The sender's identity has a default configuration set: SES applies it to every send."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    stack = make()
    stack.client("sesv2").create_configuration_set(ConfigurationSetName="tracking")
    # moto has no PutEmailIdentityConfigurationSetAttributes; AWS sets the default this way.
    ses_backends[DEFAULT_ACCOUNT_ID][stack.region].email_identities[SENDER].configuration_set_name = "tracking"
    assert deliver_now(stack, "tracked")["emailResult"]["status"] == "SENT"


def pipe_dead_letter(make: Make, clock: Any) -> None:
    stack = make()
    stack.inject(
        "stepfunctions",
        "StartSyncExecution",
        "ServiceUnavailable",
        times=1 + PIPE_MAXIMUM_RETRY_ATTEMPTS,
        function=stack.pipe.logical_id,
        status=503,
    )
    put_appointment(stack, appointment("undeliverable", DAY + HOUR))
    assert stack.run_pipe() == []
    assert len(stack.pipe.dead_letters) == 1
    queue = stack.resources[stack.logical_id("AWS::SQS::Queue", "PipeDeadLetterQueue")].ref
    assert len(stack.client("sqs").receive_message(QueueUrl=queue).get("Messages", [])) == 1


def continuation(make: Make, clock: Any) -> None:
    """A batch of two: the workflow continues in new executions of itself until all are sent."""
    small_batches = to_yaml(build_template(ReminderProps(claim_batch_size=2)))
    stack = make(template=small_batches)
    ids = [f"c{n:02}" for n in range(12)]
    for appointment_id in ids:
        put_appointment(stack, appointment(appointment_id, DAY + HOUR))
    e2e.run(stack)
    clock.shift(HOUR)
    e2e.run(stack)
    executions = assert_all_succeeded(stack)
    assert len(executions) > 3, "the schedule's execution continued in new ones"
    assert {(reminder(stack, f"{i}#1440") or {}).get("state") for i in ids} == {"SENT"}


SCENARIOS: dict[str, Callable[[Make, Any], None]] = {
    # The end-to-end scenarios: pipe INSERT/MODIFY/REMOVE, schedule, cancellations, short notice,
    # transient and permanent SES errors, an invalid phone, malformed input, lease expiry re-claim.
    "due reminder": lambda make, clock: e2e.test_a_due_reminder_goes_out_once_by_email_and_sms(make(), clock),
    "cancelled and deleted": lambda make, clock: e2e.test_nothing_for_future_past_cancelled_or_deleted_appointments(
        make(), clock
    ),
    "moved": lambda make, clock: e2e.test_a_moved_appointment_is_reminded_only_for_its_new_time(make(), clock),
    "short notice": lambda make, clock: e2e.test_a_short_notice_booking_is_reminded_at_once(make),
    "throttled email": lambda make, clock: e2e.test_throttled_email_is_retried_then_sent(make(), clock),
    "rejected email": lambda make, clock: e2e.test_permanent_email_rejection_is_recorded_and_sms_still_sent(make()),
    "invalid phone": lambda make, clock: e2e.test_invalid_phone_is_failed_with_a_reason(make()),
    "malformed": lambda make, clock: e2e.test_a_malformed_appointment_does_not_stop_the_good_ones(make()),
    "lease expiry": lambda make, clock: e2e.test_a_claim_whose_execution_died_is_sent_once_after_the_lease(
        make(), clock
    ),
    # Paths the end-to-end tests do not take.
    "sms faults and opt-out": sms_faults_and_opt_out,
    "email transient and unknown outcome": email_transient_and_unknown_outcome,
    "email with a default configuration set": email_with_a_default_configuration_set,
    "pipe dead letter": pipe_dead_letter,
    "continuation": continuation,
}


def run_scenario(name: str, scenario: Callable[[Make, Any], None], template_text: str) -> list[Evidence]:
    """Run one scenario on fresh deployments, made as the ``deploy`` fixture makes them (inlined)."""
    found: list[Evidence] = []
    with time_machine.travel(START, tick=False) as clock, ExitStack() as stack:
        made: list[tuple[LocalDeployment, set[int]]] = []

        def make(inlined: bool = True, template: str | None = None, **parameters: Any) -> LocalDeployment:
            deployment = stack.enter_context(
                LocalDeployment(
                    template or template_text, {"SenderEmail": SENDER, **parameters}, use_handler_files=not inlined
                )
            )
            direct: set[int] = set()  # the scenario's own deployment.invoke: not the workflow's invocations
            invoke = deployment.invoke

            def direct_invoke(logical_id: str, event: Any) -> Any:
                before = len(deployment.monitor.invocations)
                try:
                    return invoke(logical_id, event)
                finally:
                    direct.update(id(i) for i in deployment.monitor.invocations[before:])

            deployment.invoke = direct_invoke  # type: ignore[method-assign]
            made.append((deployment, direct))
            return deployment

        scenario(make, clock)
        for deployment, direct in made:
            deployment.wait()
            found.append(collect(name, deployment, direct))
    return found


@pytest.fixture(scope="module")
def evidence(template_text: str) -> list[Evidence]:
    return [e for name, scenario in SCENARIOS.items() for e in run_scenario(name, scenario, template_text)]


# ---- grants -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    role: str
    action: str
    resource: str  # as the template writes it (JSON), the same in every deployment

    def __str__(self) -> str:
        return f"{self.action} on {self.resource}"


def resource_kind(template: dict[str, Any], resource: Any) -> str | None:
    """ "*", or the type of the resource that ``{"Fn::GetAtt": [X, "Arn"]}`` / ``{"Ref": X}`` names."""
    if resource == "*":
        return "*"
    if isinstance(resource, dict) and ("Fn::GetAtt" in resource or "Ref" in resource):
        target = _get_att_target(resource) if "Fn::GetAtt" in resource else resource["Ref"]
        found = template["Resources"].get(target, {}).get("Type")
        return str(found) if found else None
    return None


def unobservable(template: dict[str, Any], grant_role: str, action: str, resource: Any) -> Unobservable | None:
    kind = PRINCIPALS[grant_role][0]
    return next(
        (
            u
            for u in UNOBSERVABLE
            if kind in u.kinds
            and resource_kind(template, resource) == u.resource
            and any(iam.action_matches(p, action) for p in u.actions)
        ),
        None,
    )


def grants(evidence: Evidence, role: str) -> Iterator[tuple[Grant, dict[str, Any], Any]]:
    """(grant, the one-action one-resource resolved statement, the unresolved resource) of each Allow."""
    unresolved = role_statements(evidence.template, role)
    for raw, statement in zip(unresolved, evidence.statements[role], strict=False):
        if statement["Effect"] != "Allow":
            continue
        for action in iam.as_list(statement["Action"]):
            for expression, resource in zip(
                iam.as_list(raw["Resource"]), iam.as_list(statement["Resource"]), strict=False
            ):
                single = {**statement, "Action": [action], "Resource": [resource]}
                yield Grant(role, action, json.dumps(expression, sort_keys=True)), single, expression


def seen(evidences: list[Evidence], role: str) -> str:
    counts = Counter(str(o) for e in evidences for o in e.observed if o.role == role)
    lines = [f"  {n:4} x {text}" for text, n in sorted(counts.items())] or ["  (none)"]
    return f"calls seen for {role} ({PRINCIPALS[role][0]} {PRINCIPALS[role][1]}):\n" + "\n".join(lines)


# ---- the tests ----------------------------------------------------------------------------------

STATEMENTS: list[dict[str, Any]] = [
    {"Effect": "Allow", "Action": ["dynamodb:UpdateItem"], "Resource": ["arn:aws:dynamodb:us-east-1:1:table/T"]},
    {"Effect": "Allow", "Action": ["dynamodb:Query"], "Resource": ["arn:aws:dynamodb:us-east-1:1:table/T/index/*"]},
    {"Effect": "Allow", "Action": ["s3:Get*"], "Resource": ["arn:aws:s3:::bucket/?.txt"]},
    {
        "Effect": "Allow",
        "Action": ["sns:Publish"],
        "Resource": ["*"],
        "Condition": {"StringEquals": {"aws:RequestedRegion": "us-east-1"}},
    },
    {"Effect": "Deny", "Action": ["sns:Publish"], "Resource": ["arn:aws:sns:*:*:*"]},
]


@pytest.mark.parametrize(
    ("action", "resource", "region", "decision"),
    [
        ("dynamodb:UpdateItem", "arn:aws:dynamodb:us-east-1:1:table/T", "us-east-1", iam.ALLOW),
        ("DynamoDB:updateitem", "arn:aws:dynamodb:us-east-1:1:table/T", "us-east-1", iam.ALLOW),  # actions: any case
        ("dynamodb:UpdateItem", "arn:aws:dynamodb:us-east-1:1:table/t", "us-east-1", iam.IMPLICIT_DENY),  # ARNs: exact
        ("dynamodb:UpdateItem", "arn:aws:dynamodb:us-east-1:1:table/T/index/I", "us-east-1", iam.IMPLICIT_DENY),
        ("dynamodb:PutItem", "arn:aws:dynamodb:us-east-1:1:table/T", "us-east-1", iam.IMPLICIT_DENY),
        ("dynamodb:Query", "arn:aws:dynamodb:us-east-1:1:table/T/index/DueIndex", "us-east-1", iam.ALLOW),
        ("dynamodb:Query", "arn:aws:dynamodb:us-east-1:1:table/T", "us-east-1", iam.IMPLICIT_DENY),
        ("s3:GetObject", "arn:aws:s3:::bucket/a.txt", "us-east-1", iam.ALLOW),
        ("s3:GetObject", "arn:aws:s3:::bucket/ab.txt", "us-east-1", iam.IMPLICIT_DENY),  # ? is one character
        ("s3:PutObject", "arn:aws:s3:::bucket/a.txt", "us-east-1", iam.IMPLICIT_DENY),
        ("sns:Publish", "*", "us-east-1", iam.ALLOW),  # SMS to a phone number
        ("sns:Publish", "*", "eu-west-1", iam.IMPLICIT_DENY),  # the condition does not hold
        ("sns:Publish", "arn:aws:sns:us-east-1:1:topic", "us-east-1", iam.DENY),  # Deny wins over the "*" Allow
    ],
)
def test_the_evaluator_decides_as_iam(action: str, resource: str, region: str, decision: str) -> None:
    assert iam.evaluate(STATEMENTS, iam.Request(action, resource, {"aws:RequestedRegion": region})) == decision


@pytest.mark.parametrize(
    "statement",
    [
        {
            "Effect": "Allow",
            "Action": ["sns:Publish"],
            "Resource": ["*"],
            "Condition": {"StringLike": {"aws:RequestedRegion": "us-*"}},
        },
        {
            "Effect": "Allow",
            "Action": ["sns:Publish"],
            "Resource": ["*"],
            "Condition": {"StringEquals": {"aws:SourceArn": "arn:aws:sns:us-east-1:1:t"}},
        },
        {"Effect": "Allow", "NotAction": ["sns:Publish"], "Resource": ["*"]},
        {"Effect": "Allow", "Action": ["sns:Publish"], "NotResource": ["*"]},
        {"Effect": "Allow", "Action": ["sns:Publish"], "Resource": ["arn:aws:sns:${aws:RequestedRegion}:1:t"]},
        {"Effect": "Allow", "Action": ["sns:Publish"], "Resource": [{"Ref": "Topic"}]},
    ],
)
def test_the_evaluator_fails_loudly_on_what_it_does_not_implement(statement: dict[str, Any]) -> None:
    with pytest.raises(iam.UnsupportedPolicy):
        iam.evaluate([statement], iam.Request("sns:Publish", "*", {"aws:RequestedRegion": "us-east-1"}))


def test_every_role_serves_one_principal_that_the_scenarios_can_observe() -> None:
    declared = {lid for lid, r in TEMPLATE["Resources"].items() if r["Type"] == "AWS::IAM::Role"}
    assert declared == set(PRINCIPALS)
    assert {kind for kind, _ in PRINCIPALS.values()} == {"function", "pipe", "workflow", "schedule"}


def test_star_is_a_resource_only_where_aws_authorises_on_star_alone(evidence: list[Evidence]) -> None:
    wrong = set()
    for evidence_ in evidence:
        for role in evidence_.statements:
            for grant, statement, expression in grants(evidence_, role):
                (action,), (resource,) = statement["Action"], statement["Resource"]
                if "*" in action or "?" in action:
                    wrong.add(f"{role}: a wildcard action: {grant}")
                if resource == "*":
                    if action not in STAR_ACTIONS:
                        wrong.add(f"{role}: {action} on *, which AWS authorises on a resource ARN")
                elif "*" in resource or "?" in resource:
                    # A log group's own Arn attribute ends in ":*" (its streams); and a send is also
                    # authorised on whichever configuration set the identity's owner made its default.
                    own_log_group_arn = resource_kind(evidence_.template, expression) == "AWS::Logs::LogGroup"
                    own_streams = own_log_group_arn and resource.endswith(":*")
                    any_configuration_set = action == "ses:SendEmail" and resource.endswith(":configuration-set/*")
                    if not ((own_streams or any_configuration_set) and resource.count("*") == 1):
                        wrong.add(f"{role}: a wildcard resource {resource} for {action}")
    assert not wrong, "\n".join(sorted(wrong))


@pytest.mark.parametrize("role", ROLES)
def test_every_call_is_allowed_by_a_grant_on_its_resource(evidence: list[Evidence], role: str) -> None:
    observed = [(e, o) for e in evidence for o in e.observed if o.role == role]
    wrong = []
    for evidence_, call in observed:
        statements = evidence_.statements[role]
        decisions = {r.resource: iam.evaluate(statements, r) for r in call.requests()}
        if iam.DENY in decisions.values() or iam.ALLOW not in decisions.values():
            wrong.append(f"{call} [{evidence_.scenario}]: {decisions}")
            continue
        for request in call.requests():
            allowed_by = iam.allowing_resources(statements, request)
            if allowed_by and request.resource != "*" and set(allowed_by) == {"*"}:
                wrong.append(f"{call} [{evidence_.scenario}]: allowed only by a grant on *")
    assert not wrong, f"{role}: calls not allowed as they should be:\n" + "\n".join(wrong) + "\n" + seen(evidence, role)


@pytest.mark.parametrize("role", ROLES)
def test_every_grant_is_used(evidence: list[Evidence], role: str) -> None:
    unused = unused_grants(evidence, role)
    assert not unused, f"{role}: grants no call used:\n  " + "\n  ".join(unused) + "\n" + seen(evidence, role)


#: Grants a role could gain by mistake, each on a resource of this very stack.
EXTRA_GRANTS = [
    ("AppointmentProcessorRole", "dynamodb:UpdateItem", "AppointmentsTable", "table/Appointments-dev"),
    ("AppointmentProcessorRole", "dynamodb:DeleteItem", "RemindersTable", "table/Reminders-dev"),
    ("EmailSenderRole", "dynamodb:BatchGetItem", "AppointmentsTable", "table/Appointments-dev"),
    ("SmsSenderRole", "dynamodb:PutItem", "RemindersTable", "table/Reminders-dev"),
    ("StatusUpdaterRole", "dynamodb:DeleteItem", "RemindersTable", "table/Reminders-dev"),
]


@pytest.mark.parametrize(("role", "action", "target", "resource"), EXTRA_GRANTS)
def test_a_grant_no_scenario_needs_is_caught(
    evidence: list[Evidence], role: str, action: str, target: str, resource: str
) -> None:
    """The scenarios, not only the template's expected shape, catch a role that gains a grant."""
    assert not unused_grants(evidence, role)
    wider = copy.deepcopy(evidence)
    for evidence_ in wider:
        if role not in evidence_.statements:
            continue
        raw = {"Effect": "Allow", "Action": [action], "Resource": [{"Fn::GetAtt": [target, "Arn"]}]}
        document = evidence_.template["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]
        document["Statement"].append(raw)
        arn = f"arn:aws:dynamodb:us-east-1:{ACCOUNT_ID}:{resource}"
        evidence_.statements[role].append({**raw, "Resource": [arn]})
    assert [f"{action} on " in grant for grant in unused_grants(wider, role)] == [True]


def unused_grants(evidence: list[Evidence], role: str) -> list[str]:
    """Each of the role's grants (Allow action x resource) that no observed request used and that
    no ``UNOBSERVABLE`` entry excuses."""
    used, granted, excused = set(), {}, {}
    for evidence_ in evidence:
        observed = [o for o in evidence_.observed if o.role == role]
        for grant, statement, expression in grants(evidence_, role):
            granted[grant] = statement["Resource"][0]
            reason = unobservable(evidence_.template, role, grant.action, expression)
            if reason:
                excused[grant] = reason
            # A grant on "*" is used only by requests that name no resource (an SMS to a phone
            # number), not by a call on an ARN that a narrower grant should allow.
            if any(
                iam.matching_resource(statement, r)
                for o in observed
                for r in o.requests()
                if r.resource == "*" or statement["Resource"] != ["*"]
            ):
                used.add(grant)
    return [f"{g} = {granted[g]}" for g in granted if g not in used and g not in excused]


def test_every_unobservable_entry_excuses_a_grant(evidence: list[Evidence]) -> None:
    applied = {
        unobservable(e.template, role, g.action, expression)
        for e in evidence
        for role in e.statements
        for g, _, expression in grants(e, role)
    }
    assert set(UNOBSERVABLE) <= applied, [u.reason for u in UNOBSERVABLE if u not in applied]
