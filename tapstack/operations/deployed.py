"""A deployed reminder stack as the operations commands see it.

``DeployedStack.load`` makes one CloudFormation ``DescribeStacks`` call and keeps the stack's status,
parameters and outputs; the accessors name the outputs this system creates (``tapstack/stack.py``,
``_add_outputs``), so a command asks for ``stack.reminders_table_name`` instead of spelling output keys.
Every reason the stack cannot be read is a ``DeployedStackError`` with a one-line message for the operator
(``python -m tapstack`` prints it on stderr and exits 2).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, NoReturn

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    InvalidRegionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    SSOTokenLoadError,
    TokenRetrievalError,
    UnauthorizedSSOTokenError,
)

from tapstack.props import PREFIX_PATTERN

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudformation.type_defs import StackTypeDef
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_pinpoint_sms_voice_v2 import PinpointSMSVoiceV2Client
    from mypy_boto3_sesv2 import SESV2Client
    from mypy_boto3_sns import SNSClient

#: Every client retries throttling and transient errors (timeouts, 5xx) with exponential backoff:
#: boto3's "standard" retry mode, capped at 20 s between attempts
#: (https://docs.aws.amazon.com/boto3/latest/guide/retries.html). The operations commands only read,
#: so a retried call never does anything twice. Five attempts in all (botocore reads ``max_attempts`` as
#: retries after the first). The timeouts keep a command that cannot reach AWS from
#: hanging for botocore's default of 60 s per attempt.
CLIENT_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 5}, connect_timeout=5, read_timeout=20)

#: The outputs every tapstack stack has (``AppointmentReminders._add_outputs``), without the prefix.
#: ``StackName`` is left out: a host stack (with a prefix) does not create it.
REQUIRED_OUTPUTS = (
    "AppointmentsTableName",
    "AppointmentsTableArn",
    "RemindersTableName",
    "NotificationTopicArn",
    "AlarmTopicArn",
    "NotificationWorkflowArn",
    "AppointmentProcessorFunctionArn",
    "EmailSenderFunctionArn",
    "SmsSenderFunctionArn",
    "EnvironmentSuffix",
)

# Error codes AWS answers for credentials it does not accept (expired, deleted, mistyped:
# https://repost.aws/knowledge-center/iam-credentials-token). Users report the same answer from an opt-in
# region the account has not enabled; the message names that possibility too (not confirmed in AWS's docs).
_REJECTED_CREDENTIALS = frozenset(
    {
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestExpired",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
        "AuthFailure",
    }
)
_ACCESS_DENIED = frozenset({"AccessDenied", "AccessDeniedException", "AuthorizationError", "UnauthorizedOperation"})
# What remains after the retries: AWS was there but did not serve the call.
_UNAVAILABLE = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "InternalError",
        "InternalErrorException",
        "InternalFailure",
        "InternalServerException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)


class DeployedStackError(Exception):
    """The stack cannot be read (or used); the message is one line for the operator."""


class StackNotFound(DeployedStackError):
    """No stack of that name in that region (CloudFormation stacks are regional)."""


class NoCredentials(DeployedStackError):
    """No AWS credentials were found, or AWS rejected them."""


class UnknownRegion(DeployedStackError):
    """No region was given, or the name given is not an AWS region."""


class AccessDenied(DeployedStackError):
    """The credentials work but may not make a call the command needs."""


class AwsUnavailable(DeployedStackError):
    """AWS did not serve a call even after the client's retries (throttled, timed out, 5xx)."""


class NotATapstackStack(DeployedStackError):
    """The stack exists but lacks the outputs a tapstack stack has (another stack, or another prefix)."""


class StackNotReady(DeployedStackError):
    """The stack has no outputs yet or any more (being created, rolled back after a failed create, deleted)."""


class SenderUnknown(DeployedStackError):
    """The stack bakes the sender address in, and the email sender's environment does not show it."""


def known_regions(session: boto3.Session) -> list[str]:
    """The regions this botocore knows for CloudFormation, in every partition (newer regions may be missing)."""
    regions: set[str] = set()
    for partition in session.get_available_partitions():
        regions.update(session.get_available_regions("cloudformation", partition_name=partition))
    return sorted(regions)


def _unknown_region(session: boto3.Session, region: str, why: str) -> UnknownRegion:
    close = difflib.get_close_matches(region, known_regions(session), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return UnknownRegion(f"unknown region {region!r}: {why}{hint}")


def translate(error: Exception, action: str, region: str, session: boto3.Session) -> DeployedStackError | None:
    """The operator's reading of a boto3 error raised while calling ``action`` (e.g.
    ``cloudformation:DescribeStacks``) in ``region``; ``None`` when it is none of the general cases."""
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return NoCredentials(
            "no AWS credentials found: run 'aws configure' or 'aws sso login', or set AWS_PROFILE "
            f"(or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) ({error})"
        )
    if isinstance(error, ProfileNotFound | SSOTokenLoadError | TokenRetrievalError | UnauthorizedSSOTokenError):
        return NoCredentials(f"no usable AWS credentials: {error} (for an SSO profile: aws sso login)")
    if isinstance(error, NoRegionError):
        return UnknownRegion("no region given: pass --region, or set AWS_REGION or a region in your AWS profile")
    if isinstance(error, InvalidRegionError):
        return _unknown_region(session, region, "not a region name")
    if isinstance(error, EndpointConnectionError):
        if region not in known_regions(session):
            return _unknown_region(
                session, region, f"no AWS endpoint answers there ({error.kwargs.get('endpoint_url')})"
            )
        return AwsUnavailable(f"could not reach AWS for {action} in {region}: {error}")
    if isinstance(error, ConnectTimeoutError | ReadTimeoutError):
        return AwsUnavailable(f"AWS did not answer {action} in {region} in time, even after retries: {error}")
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        if code in _REJECTED_CREDENTIALS:
            return NoCredentials(
                f"AWS rejected the credentials ({code}: {message}): they are invalid or expired, "
                f"or the account has not enabled region {region}"
            )
        if code in _ACCESS_DENIED:
            return AccessDenied(f"access denied: {action} in {region} is not allowed for these credentials ({message})")
        if code in _UNAVAILABLE:
            return AwsUnavailable(f"AWS did not serve {action} in {region}, even after retries ({code}: {message})")
    return None


@contextmanager
def aws_errors(action: str, region: str, session: boto3.Session) -> Iterator[None]:
    """Raise the ``DeployedStackError`` that says why ``action`` failed; other errors pass unchanged."""
    try:
        yield
    except (BotoCoreError, ClientError) as error:
        translated = translate(error, action, region, session)
        if translated is None:
            raise
        raise translated from error


class AwsClients:
    """The boto3 clients of one session and region, made once each, all with ``CLIENT_CONFIG``."""

    def __init__(self, session: boto3.Session, region: str) -> None:
        self.session = session
        self.region = region

    @contextmanager
    def _creating(self, service: str) -> Iterator[None]:
        # botocore refuses a malformed region name when it makes the client.
        with aws_errors(f"{service} client", self.region, self.session):
            yield

    @cached_property
    def cloudformation(self) -> CloudFormationClient:
        with self._creating("cloudformation"):
            return self.session.client("cloudformation", region_name=self.region, config=CLIENT_CONFIG)

    @cached_property
    def sesv2(self) -> SESV2Client:
        with self._creating("sesv2"):
            return self.session.client("sesv2", region_name=self.region, config=CLIENT_CONFIG)

    @cached_property
    def sns(self) -> SNSClient:
        with self._creating("sns"):
            return self.session.client("sns", region_name=self.region, config=CLIENT_CONFIG)

    @cached_property
    def awslambda(self) -> LambdaClient:
        with self._creating("lambda"):
            return self.session.client("lambda", region_name=self.region, config=CLIENT_CONFIG)

    @cached_property
    def sms_voice(self) -> PinpointSMSVoiceV2Client:
        """AWS End User Messaging SMS, which holds the phone numbers and sender IDs SNS sends SMS from."""
        with self._creating("pinpoint-sms-voice-v2"):
            return self.session.client("pinpoint-sms-voice-v2", region_name=self.region, config=CLIENT_CONFIG)


def _has_outputs(status: str) -> bool:
    """Whether the stack's resources, and so its outputs, exist in ``status``: it was created and is not
    being deleted. After a failed first create (``ROLLBACK_*``, ``CREATE_FAILED``) there is nothing."""
    return status == "CREATE_COMPLETE" or status.startswith(("UPDATE_", "IMPORT_"))


@dataclass(frozen=True)
class SenderAddress:
    """The address reminders are sent from, and where it was read."""

    address: str
    #: ``"parameter SenderEmail"`` or ``"EmailSenderFunction environment"``.
    source: str

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2].lower()


@dataclass(frozen=True)
class DeployedStack:
    """One stack's status, parameters and outputs, read once; ``clients`` reach its region."""

    name: str
    region: str
    prefix: str
    stack_id: str
    status: str
    status_reason: str
    #: By the names the template declares (a library stack's carry its prefix: ``ClinicSenderEmail``).
    parameters: Mapping[str, str]
    outputs: Mapping[str, str]
    clients: AwsClients = field(repr=False, compare=False)

    @classmethod
    def load(
        cls, stack_name: str, region: str | None = None, prefix: str = "", session: boto3.Session | None = None
    ) -> DeployedStack:
        """Read stack ``stack_name`` (a name or a stack ID) with one ``DescribeStacks`` call.

        ``region`` defaults to the session's (``AWS_REGION``, the profile); ``prefix`` is the
        ``ReminderProps.prefix`` a host stack built the system with. Raises a ``DeployedStackError``
        subclass for every reason the stack cannot be read; a stack that is not a tapstack stack (its
        outputs are missing) raises ``NotATapstackStack`` unless it has no outputs at all because of its
        status (see ``has_outputs``).
        """
        if not PREFIX_PATTERN.match(prefix):
            raise ValueError(f"prefix: expected PascalCase letters and digits, up to 20 (or empty), got {prefix!r}")
        try:
            session = session or boto3.Session()
            with aws_errors("cloudformation:DescribeStacks", region or "", session):
                chosen = region or session.region_name
            if not chosen:
                raise UnknownRegion("no region given: pass --region, or set AWS_REGION or a region in your AWS profile")
            clients = AwsClients(session, chosen)
            described = _describe(clients, stack_name)
        except BotoCoreError as error:  # anything else in the AWS configuration: one line, not a traceback
            raise DeployedStackError(f"could not call AWS: {error}") from error
        stack = cls(
            name=described["StackName"],
            region=chosen,
            prefix=prefix,
            stack_id=described["StackId"],
            status=described["StackStatus"],
            status_reason=described.get("StackStatusReason", ""),
            parameters={p["ParameterKey"]: p.get("ParameterValue", "") for p in described.get("Parameters", [])},
            outputs={o["OutputKey"]: o.get("OutputValue", "") for o in described.get("Outputs", [])},
            clients=clients,
        )
        if stack.has_outputs:
            stack._require_outputs()
        return stack

    @property
    def has_outputs(self) -> bool:
        """Whether the stack's status is one in which its resources and outputs exist."""
        return _has_outputs(self.status)

    def output(self, name: str) -> str:
        """The value of this system's output ``name`` (given without the prefix)."""
        if not self.has_outputs:
            raise StackNotReady(f"stack {self.name} is {self.status} in {self.region}: it has no outputs")
        key = self.prefix + name
        if key not in self.outputs:
            self._not_a_tapstack_stack([key])
        return self.outputs[key]

    def parameter(self, name: str) -> str | None:
        """The value of this system's parameter ``name`` (given without the prefix).

        ``None`` when the template has no such parameter: a host stack may bake the setting in
        (``ReminderProps.parameters`` leaves it out), and then its value lives only in the resources that
        use it. ``sender_address`` shows how to read one there.
        """
        return self.parameters.get(self.prefix + name)

    @property
    def appointments_table_name(self) -> str:
        return self.output("AppointmentsTableName")

    @property
    def appointments_table_arn(self) -> str:
        return self.output("AppointmentsTableArn")

    @property
    def reminders_table_name(self) -> str:
        return self.output("RemindersTableName")

    @property
    def notification_topic_arn(self) -> str:
        return self.output("NotificationTopicArn")

    @property
    def alarm_topic_arn(self) -> str:
        return self.output("AlarmTopicArn")

    @property
    def workflow_arn(self) -> str:
        return self.output("NotificationWorkflowArn")

    @property
    def processor_function_arn(self) -> str:
        return self.output("AppointmentProcessorFunctionArn")

    @property
    def email_sender_function_arn(self) -> str:
        return self.output("EmailSenderFunctionArn")

    @property
    def sms_sender_function_arn(self) -> str:
        return self.output("SmsSenderFunctionArn")

    @property
    def environment_suffix(self) -> str:
        return self.output("EnvironmentSuffix")

    def sender_address(self) -> SenderAddress:
        """The address reminders come from: the ``SenderEmail`` parameter, or, when the stack bakes it in,
        the ``SENDER_EMAIL`` environment variable of the email sender function (one read-only
        ``lambda:GetFunctionConfiguration`` call).

        Raises ``SenderUnknown`` when the environment does not hold it. The stack encrypts the functions'
        environments with its customer-managed key, and Lambda can answer an ``Error`` in place of the
        variables ("error messages for environment variables that couldn't be applied",
        https://docs.aws.amazon.com/lambda/latest/api/API_EnvironmentError.html).
        """
        parameter = self.parameter("SenderEmail")
        if parameter:
            return SenderAddress(parameter, f"parameter {self.prefix}SenderEmail")
        with aws_errors("lambda:GetFunctionConfiguration", self.region, self.clients.session):
            configuration = self.clients.awslambda.get_function_configuration(
                FunctionName=self.email_sender_function_arn
            )
        environment = configuration.get("Environment", {})
        address = environment.get("Variables", {}).get("SENDER_EMAIL")
        if address:
            return SenderAddress(address, f"{self.prefix}EmailSenderFunction environment")
        error = environment.get("Error", {})
        why = f"{error.get('ErrorCode')}: {error.get('Message')}" if error else "no SENDER_EMAIL variable"
        raise SenderUnknown(
            f"the stack bakes the sender address in, and the environment of {self.email_sender_function_arn} "
            f"does not show it ({why})"
        )

    def _require_outputs(self) -> None:
        missing = [self.prefix + name for name in REQUIRED_OUTPUTS if self.prefix + name not in self.outputs]
        if missing:
            self._not_a_tapstack_stack(missing)

    def _not_a_tapstack_stack(self, missing: list[str]) -> NoReturn:
        marker = "NotificationWorkflowArn"
        prefixes = sorted(key[: -len(marker)] for key in self.outputs if key.endswith(marker))
        if prefixes and self.prefix not in prefixes:
            shown = ", ".join(repr(p) for p in prefixes)
            hint = f"it holds reminder systems with prefix {shown}: pass --prefix {prefixes[0] or chr(39) * 2}"
        else:
            hint = "it is not a tapstack stack, or it was built with ReminderProps(outputs=False)"
        raise NotATapstackStack(
            f"stack {self.name} in {self.region} lacks the output{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}: {hint}"
        )


def _describe(clients: AwsClients, stack_name: str) -> StackTypeDef:
    """``DescribeStacks`` for one stack. A missing one is ``StackNotFound``: AWS answers ``ValidationError``
    "Stack with id <name> does not exist"; a deleted stack is found only by its stack ID
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStacks.html)."""
    session, region = clients.session, clients.region
    try:
        with aws_errors("cloudformation:DescribeStacks", region, session):
            answer = clients.cloudformation.describe_stacks(StackName=stack_name)
    except ClientError as error:
        message = error.response.get("Error", {}).get("Message", "")
        if error.response.get("Error", {}).get("Code") == "ValidationError" and "does not exist" in message:
            raise StackNotFound(
                f"no stack named {stack_name} in region {region} (CloudFormation stacks are regional: "
                "is it in another region? pass --region)"
            ) from error
        raise DeployedStackError(f"CloudFormation refused DescribeStacks for {stack_name!r}: {message}") from error
    return answer["Stacks"][0]


_STACK_NAME = re.compile(r"^[A-Za-z][-A-Za-z0-9]{0,127}$|^arn:[-a-z]+:cloudformation:")


def valid_stack_name(text: str) -> bool:
    """A CloudFormation stack name (a letter, then letters, digits and hyphens, up to 128) or stack ID."""
    return bool(_STACK_NAME.match(text))
