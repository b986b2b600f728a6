"""``python -m tapstack doctor`` against moto: a small stack with the outputs and parameters doctor reads,
and the account's SES, SNS and SMS state around it.

moto answers CloudFormation, SESv2 ``GetEmailIdentity`` (its verification flag is seeded in moto's backend:
moto never sets ``VerifiedForSendingStatus``), SNS ``GetSMSAttributes`` and ``ListSubscriptionsByTopic`` (a
pending subscription is seeded: moto confirms every one) and Lambda. The calls moto does not implement are
played with botocore's Stubber, one operation at a time (``tests/aws_answers.py``): SESv2 ``GetAccount``,
SNS ``GetSMSSandboxAccountStatus``, and End User Messaging SMS ``DescribePhoneNumbers``,
``DescribeSenderIds`` and ``GetResourcePolicy``.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import botocore.endpoint
import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID

import tapstack.operations
from tapstack.__main__ import main as tapstack_main
from tapstack.operations import doctor
from tapstack.operations.deployed import (
    REQUIRED_OUTPUTS,
    DeployedStack,
    NotATapstackStack,
    StackNotReady,
)
from tests.aws_answers import REGION, PlayedAnswers, faults, record_operations, throttling

STACK = "reminders-dev"
SENDER = "reminders@example.com"
TOLL_FREE_ARN = f"arn:aws:sms-voice:{REGION}:{DEFAULT_ACCOUNT_ID}:phone-number/phone-0123"
SNS_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sms-voice:SendTextMessage",
                "Resource": TOLL_FREE_ARN,
            }
        ],
    }
)


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.Session]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield boto3.Session(region_name=REGION)


@pytest.fixture
def played(session: boto3.Session) -> PlayedAnswers:
    return PlayedAnswers(session)


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The clients' retries run, without their waits; returns the waits they asked for."""
    waits: list[float] = []
    monkeypatch.setattr(botocore.endpoint.time, "sleep", waits.append)
    return waits


# --- The account ------------------------------------------------------------------------------------------


def stack_template(prefix: str = "", parameters: tuple[str, ...] = ("SenderEmail", "AlarmEmail")) -> dict[str, Any]:
    """The parameters and outputs of a tapstack stack, around the one resource doctor reads: the alarm topic."""
    literal = {
        "AppointmentsTableName": "Appointments-dev",
        "AppointmentsTableArn": f"arn:aws:dynamodb:{REGION}:{DEFAULT_ACCOUNT_ID}:table/Appointments-dev",
        "RemindersTableName": "Reminders-dev",
        "NotificationTopicArn": f"arn:aws:sns:{REGION}:{DEFAULT_ACCOUNT_ID}:AppointmentNotifications-dev",
        "NotificationWorkflowArn": f"arn:aws:states:{REGION}:{DEFAULT_ACCOUNT_ID}:stateMachine:Workflow-dev",
        "AppointmentProcessorFunctionArn": function_arn("AppointmentProcessor"),
        "EmailSenderFunctionArn": function_arn("EmailSender"),
        "SmsSenderFunctionArn": function_arn("SmsSender"),
        "EnvironmentSuffix": "dev",
    }
    outputs: dict[str, Any] = {prefix + name: {"Value": value} for name, value in literal.items()}
    outputs[prefix + "AlarmTopicArn"] = {"Value": {"Ref": prefix + "AlarmTopic"}}
    return {
        "Parameters": {prefix + name: {"Type": "String"} for name in parameters},
        "Resources": {prefix + "AlarmTopic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": outputs,
    }


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT_ID}:function:{name}-dev"


@dataclass
class Account:
    session: boto3.Session
    played: PlayedAnswers

    def client(self, service: str) -> Any:
        return self.session.client(service, region_name=REGION)  # type: ignore[call-overload]

    def deploy(
        self,
        template: dict[str, Any] | None = None,
        values: dict[str, str] | None = None,
        name: str = STACK,
        region: str = REGION,
    ) -> None:
        values = {"SenderEmail": SENDER, "AlarmEmail": "oncall@example.com"} if values is None else values
        self.session.client("cloudformation", region_name=region).create_stack(
            StackName=name,
            TemplateBody=json.dumps(template or stack_template()),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()],
        )

    def stack_status(self, status: str) -> None:
        from moto.cloudformation.models import cloudformation_backends

        for stack in cloudformation_backends[DEFAULT_ACCOUNT_ID][REGION].stacks.values():
            stack.status = status

    def identity(self, name: str, verified: bool = True, dkim: str | None = None, **fields: Any) -> None:
        """An SES identity; moto never marks one verified for sending, AWS does once it is verified."""
        from moto.ses.models import ses_backends

        self.client("sesv2").create_email_identity(EmailIdentity=name, **fields)
        identity = ses_backends[DEFAULT_ACCOUNT_ID][REGION].email_identities[name]
        identity.verified_for_sending_status = verified
        identity.verification_status = "SUCCESS" if verified else "PENDING"
        if dkim is not None:
            identity.dkim_attributes.update(Status=dkim, SigningEnabled=True)

    def ses_account(
        self, production: bool = True, sending: bool = True, enforcement: str = "HEALTHY", **details: Any
    ) -> None:
        quota = (
            {"Max24HourSend": 50000.0, "MaxSendRate": 14.0, "SentLast24Hours": 12.0}
            if production
            else {"Max24HourSend": 200.0, "MaxSendRate": 1.0, "SentLast24Hours": 0.0}
        )
        answer = {
            "ProductionAccessEnabled": production,
            "SendingEnabled": sending,
            "EnforcementStatus": enforcement,
            "SendQuota": quota,
            **details,
        }
        self.played.answer("sesv2", "GetAccount", answer)

    def sms_sandbox(self, in_sandbox: bool) -> None:
        self.played.answer("sns", "GetSMSSandboxAccountStatus", {"IsInSandbox": in_sandbox})

    def spend_limit(self, usd: str) -> None:
        self.client("sns").set_sms_attributes(attributes={"MonthlySpendLimit": usd})

    def origination(
        self,
        numbers: list[dict[str, Any]],
        sender_ids: tuple[dict[str, Any], ...] = (),
        policies: dict[str, str] | None = None,
    ) -> None:
        """What End User Messaging SMS answers: the numbers, the sender IDs, and each usable one's policy."""
        policies = policies or {}
        self.played.answer("pinpoint-sms-voice-v2", "DescribePhoneNumbers", {"PhoneNumbers": numbers})
        self.played.answer("pinpoint-sms-voice-v2", "DescribeSenderIds", {"SenderIds": list(sender_ids)})
        usable = [n["PhoneNumberArn"] for n in numbers if n["Status"] == "ACTIVE"]
        for arn in usable + [s["SenderIdArn"] for s in sender_ids]:
            if arn in policies:
                answer = {"ResourceArn": arn, "Policy": policies[arn]}
                self.played.answer("pinpoint-sms-voice-v2", "GetResourcePolicy", answer, {"ResourceArn": arn})
            else:
                self.played.error("pinpoint-sms-voice-v2", "GetResourcePolicy", "ResourceNotFoundException", "none")

    def alarm_topic(self) -> str:
        topics = self.client("sns").list_topics()["Topics"]
        return next(t["TopicArn"] for t in topics if "AlarmTopic" in t["TopicArn"])

    def subscribe_alarms(self, pending: bool = False, endpoint: str = "oncall@example.com") -> None:
        from moto.sns.models import sns_backends

        arn = self.client("sns").subscribe(TopicArn=self.alarm_topic(), Protocol="email", Endpoint=endpoint)[
            "SubscriptionArn"
        ]
        if pending:  # moto confirms every subscription; AWS waits for the link in the email
            sns_backends[DEFAULT_ACCOUNT_ID][REGION].subscriptions[arn].arn = "PendingConfirmation"


def toll_free(status: str = "ACTIVE", country: str = "US", arn: str = TOLL_FREE_ARN) -> dict[str, Any]:
    return {
        "PhoneNumberArn": arn,
        "PhoneNumber": "+18005550100",
        "Status": status,
        "IsoCountryCode": country,
        "MessageType": "TRANSACTIONAL",
        "NumberCapabilities": ["SMS"],
        "NumberType": "TOLL_FREE",
        "MonthlyLeasingPrice": "2.00",
        "TwoWayEnabled": False,
        "SelfManagedOptOutsEnabled": False,
        "OptOutListName": "Default",
        "DeletionProtectionEnabled": False,
        "CreatedTimestamp": datetime(2026, 1, 5, tzinfo=UTC),
    }


@pytest.fixture
def account(session: boto3.Session, played: PlayedAnswers) -> Account:
    return Account(session, played)


def healthy(account: Account, ses_account: bool = True) -> None:
    """An account ready for its first reminder, email and SMS to the US."""
    account.deploy()
    account.identity("example.com", dkim="SUCCESS", DkimSigningAttributes={"NextSigningKeyLength": "RSA_2048_BIT"})
    if ses_account:
        account.ses_account()
    account.sms_sandbox(False)
    account.spend_limit("100")
    account.origination([toll_free()], policies={TOLL_FREE_ARN: SNS_POLICY})
    account.subscribe_alarms()


HEALTHY_ARGS = ["--stack", STACK, "--sms-per-month", "1000", "--country", "US"]


@dataclass
class Line:
    status: str
    check: str
    found: str
    fixes: list[str]


def run(account: Account, capsys: pytest.CaptureFixture[str], args: list[str] = HEALTHY_ARGS) -> tuple[int, list[Line]]:
    code = doctor.main(args, session=account.session)
    out = capsys.readouterr().out
    lines: list[Line] = []
    for text in out.splitlines():
        if text.startswith(("OK ", "WARN ", "FAIL ")):
            status, rest = text.split(maxsplit=1)
            check, found = rest.split("  ", 1)
            lines.append(Line(status, check.strip(), found.strip(), []))
        elif text.strip().startswith("fix: "):
            lines[-1].fixes.append(text.strip().removeprefix("fix: "))
    return code, lines


def by_check(lines: list[Line]) -> dict[str, Line]:
    return {line.check: line for line in lines}


# --- The whole report -------------------------------------------------------------------------------------


def test_an_account_ready_for_its_first_reminder_passes_every_check(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    healthy(account)
    code, lines = run(account, capsys)
    assert code == 0
    assert [(line.check, line.status) for line in lines] == [
        ("stack", "OK"),
        ("sender", "OK"),
        ("dkim", "OK"),
        ("ses-account", "OK"),
        ("sms-sandbox", "OK"),
        ("sms-spend", "OK"),
        ("sms-origination US", "OK"),
        ("alarms", "OK"),
    ]
    assert not any(line.fixes for line in lines), "an OK line needs no fix"
    found = by_check(lines)
    assert found["sender"].found.startswith(f"{SENDER} (parameter SenderEmail) is verified in SES {REGION}")
    assert "through its domain example.com" in found["sender"].found
    assert "50,000 emails per 24 hours, 14 per second" in found["ses-account"].found
    assert "expected 1,000 SMS at $0.008" in found["sms-spend"].found and "= $8.00 a month" in found["sms-spend"].found
    assert "toll free number +18005550100" in found["sms-origination US"].found
    assert found["alarms"].found == "1 confirmed subscription (email)"
    account.played.assert_all_used()


def test_an_account_that_fails_every_check_exits_1_with_a_fix_under_each_failure(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    account.deploy()
    account.stack_status("UPDATE_ROLLBACK_FAILED")
    account.identity("example.com", verified=False, dkim="FAILED")
    account.ses_account(production=False, sending=False, enforcement="SHUTDOWN")
    account.sms_sandbox(True)
    account.spend_limit("1")
    account.origination([])
    code, lines = run(account, capsys)
    assert code == 1
    statuses = {line.check: line.status for line in lines}
    # The brief's alarm check warns at worst: a missing subscription loses alarms, not reminders.
    assert statuses == {
        "stack": "FAIL",
        "sender": "FAIL",
        "dkim": "FAIL",
        "ses-account": "FAIL",
        "sms-sandbox": "FAIL",
        "sms-spend": "FAIL",
        "sms-origination US": "FAIL",
        "alarms": "WARN",
    }
    for line in lines:
        assert line.fixes, f"{line.check} is {line.status} without a fix"
    found = by_check(lines)
    assert f"aws cloudformation continue-update-rollback --stack-name {STACK} --region {REGION}" in found["stack"].fixes
    assert "domain example.com is not verified yet (DKIM FAILED)" in found["sender"].found
    assert any("<token>._domainkey.example.com -> <token>.dkim.amazonses.com" in f for f in found["dkim"].fixes)
    assert "sending is paused" in found["ses-account"].found and "SES sandbox" in found["ses-account"].found
    assert any("put-account-details --production-access-enabled" in f for f in found["ses-account"].fixes)
    assert any("#/mobile/text-messaging" in f for f in found["sms-sandbox"].fixes)
    assert "= $8.00 a month, above the limit" in found["sms-spend"].found
    assert any("set-sms-attributes --attributes MonthlySpendLimit=" in f for f in found["sms-spend"].fixes)
    assert "need a registered US phone number" in found["sms-origination US"].found
    assert any("aws sns subscribe --topic-arn" in f for f in found["alarms"].fixes)
    account.played.assert_all_used()


def test_doctor_only_reads(account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    healthy(account)
    calls = record_operations(account.session)
    assert run(account, capsys)[0] == 0
    assert calls, "the recorder saw the calls"
    assert all(call.split(":")[1].startswith(("Describe", "Get", "List")) for call in calls), calls
    assert {
        "cloudformation:DescribeStacks",
        "sesv2:GetEmailIdentity",
        "sesv2:GetAccount",
        "sns:GetSMSSandboxAccountStatus",
        "sns:GetSMSAttributes",
        "pinpoint-sms-voice-v2:DescribePhoneNumbers",
        "pinpoint-sms-voice-v2:GetResourcePolicy",
        "sns:ListSubscriptionsByTopic",
    } <= set(calls)


def test_running_twice_reports_the_same(account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    healthy(account)
    first = run(account, capsys)
    # The second run needs AWS's answers once more; moto's state is as the first run left it.
    account.ses_account()
    account.sms_sandbox(False)
    account.origination([toll_free()], policies={TOLL_FREE_ARN: SNS_POLICY})
    assert run(account, capsys) == first


# --- Exit 2: the stack cannot be read ---------------------------------------------------------------------


def test_no_such_stack_exits_2_with_one_line(account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    assert doctor.main(["--stack", "nothing-here"], session=account.session) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"error: no stack named nothing-here in region {REGION} " + (
        "(CloudFormation stacks are regional: is it in another region? pass --region)\n"
    )


def test_a_profile_that_does_not_exist_exits_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "nope")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    assert tapstack_main(["doctor", "--stack", STACK, "--region", REGION]) == 2
    assert capsys.readouterr().err == "error: could not call AWS: The config profile (nope) could not be found\n"


def test_credentials_aws_rejects_exit_2(
    account: Account, played: PlayedAnswers, capsys: pytest.CaptureFixture[str]
) -> None:
    played.error("cloudformation", "DescribeStacks", "ExpiredToken", "The security token included has expired")
    assert doctor.main(["--stack", STACK], session=account.session) == 2
    err = capsys.readouterr().err
    assert "AWS rejected the credentials (ExpiredToken" in err and f"has not enabled region {REGION}" in err


@pytest.mark.parametrize("region", ["mars central", "eu_west_1"])
def test_a_malformed_region_exits_2(account: Account, capsys: pytest.CaptureFixture[str], region: str) -> None:
    assert doctor.main(["--stack", STACK, "--region", region], session=account.session) == 2
    assert f"error: unknown region {region!r}: not a region name" in capsys.readouterr().err


def test_a_region_without_endpoint_exits_2_with_the_nearest_name(
    account: Account, capsys: pytest.CaptureFixture[str], no_backoff: list[float]
) -> None:
    # What DNS answers for a region that does not exist: no endpoint. The client retries, then gives up.
    url = "https://cloudformation.us-east-11.amazonaws.com/"
    unreachable = [EndpointConnectionError(endpoint_url=url) for _ in range(5)]
    with faults(account.session, "cloudformation", "DescribeStacks", *unreachable) as attempts:
        code = doctor.main(["--stack", STACK, "--region", "us-east-11"], session=account.session)
    assert code == 2
    assert len(attempts) == 5 and len(no_backoff) == 4
    err = capsys.readouterr().err
    assert err.startswith("error: unknown region 'us-east-11': no AWS endpoint answers there")
    assert "(did you mean us-east-1?)" in err


def test_access_denied_exits_2(account: Account, played: PlayedAnswers, capsys: pytest.CaptureFixture[str]) -> None:
    played.error("cloudformation", "DescribeStacks", "AccessDenied", "not authorized to perform DescribeStacks", 403)
    assert doctor.main(["--stack", STACK], session=account.session) == 2
    assert capsys.readouterr().err == (
        f"error: access denied: cloudformation:DescribeStacks in {REGION} is not allowed for these credentials "
        "(not authorized to perform DescribeStacks)\n"
    )


def test_a_stack_that_is_not_a_tapstack_stack_exits_2(account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    account.deploy({"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}, "Outputs": {"Queue": {"Value": "q"}}}, {})
    assert doctor.main(["--stack", STACK], session=account.session) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: stack {STACK} in {REGION} lacks the outputs AppointmentsTableName, ")
    assert err.endswith("it is not a tapstack stack, or it was built with ReminderProps(outputs=False)\n")


def test_a_host_stack_needs_its_prefix_and_says_which(account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    account.deploy(stack_template(prefix="Clinic"), {"ClinicSenderEmail": SENDER, "ClinicAlarmEmail": ""})
    assert doctor.main(["--stack", STACK], session=account.session) == 2
    assert "it holds reminder systems with prefix 'Clinic': pass --prefix Clinic" in capsys.readouterr().err
    stack = DeployedStack.load(STACK, prefix="Clinic", session=account.session)
    assert stack.reminders_table_name == "Reminders-dev"
    assert stack.parameter("SenderEmail") == SENDER
    assert stack.sender_address().source == "parameter ClinicSenderEmail"


def test_python_m_tapstack_doctor_is_wired(account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    # Through the package's entry point, with the session AWS_* configures (moto here).
    assert tapstack_main(["doctor", "--stack", "nothing-here"]) == 2
    assert "no stack named nothing-here" in capsys.readouterr().err


def test_without_boto3_doctor_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The import fails as it does without boto3.
    monkeypatch.setitem(sys.modules, "tapstack.operations.doctor", None)
    monkeypatch.delattr(tapstack.operations, "doctor")
    assert tapstack_main(["doctor"]) == 2
    assert capsys.readouterr().err.startswith("error: doctor needs boto3: pip install 'tapstack[local]'")


# --- 1. The stack's status ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected", "fix"),
    [
        ("UPDATE_IN_PROGRESS", "WARN", f"aws cloudformation wait stack-update-complete --stack-name {STACK}"),
        ("UPDATE_ROLLBACK_COMPLETE", "WARN", "aws cloudformation describe-stack-events"),
        ("UPDATE_FAILED", "FAIL", f"aws cloudformation rollback-stack --stack-name {STACK}"),
        ("DELETE_FAILED", "FAIL", f"aws cloudformation delete-stack --stack-name {STACK}"),
    ],
)
def test_a_stack_with_resources_reports_its_status_and_the_other_checks_still_run(
    account: Account, capsys: pytest.CaptureFixture[str], status: str, expected: str, fix: str
) -> None:
    healthy(account)
    account.stack_status(status)
    code, lines = run(account, capsys)
    stack_line = by_check(lines)["stack"]
    assert (stack_line.status, code) == (expected, 1 if expected == "FAIL" else 0)
    assert any(f.startswith(fix) for f in stack_line.fixes), stack_line.fixes
    assert len(lines) == 8


@pytest.mark.parametrize("status", ["ROLLBACK_COMPLETE", "CREATE_FAILED", "REVIEW_IN_PROGRESS"])
def test_a_stack_without_resources_fails_and_the_checks_that_need_its_outputs_say_why(
    account: Account, capsys: pytest.CaptureFixture[str], status: str
) -> None:
    account.deploy()
    account.stack_status(status)
    account.ses_account()
    account.sms_sandbox(False)
    account.spend_limit("100")
    account.origination([toll_free()], policies={TOLL_FREE_ARN: SNS_POLICY})
    code, lines = run(account, capsys)
    found = by_check(lines)
    assert code == 1 and found["stack"].status == "FAIL"
    if status != "REVIEW_IN_PROGRESS":
        assert f"aws cloudformation delete-stack --stack-name {STACK} --region {REGION}" in found["stack"].fixes
    # The sender comes from the parameter; the alarm topic needs an output the stack does not have.
    assert found["sender"].status == "FAIL"  # no identity in this account
    assert found["alarms"].status == "WARN"
    assert found["alarms"].found == f"could not check: stack {STACK} is {status} in {REGION}: it has no outputs"
    assert found["ses-account"].status == found["sms-sandbox"].status == "OK"


def test_an_output_of_a_stack_without_resources_is_stack_not_ready(account: Account) -> None:
    account.deploy()
    account.stack_status("ROLLBACK_COMPLETE")
    stack = DeployedStack.load(STACK, session=account.session)
    assert not stack.has_outputs
    with pytest.raises(StackNotReady, match="is ROLLBACK_COMPLETE"):
        _ = stack.alarm_topic_arn


# --- 2. The sender ------------------------------------------------------------------------------------------


def test_an_address_of_a_verified_parent_domain_is_verified(account: Account) -> None:
    account.deploy(values={"SenderEmail": "reminders@mail.example.com", "AlarmEmail": ""})
    account.identity("example.com", dkim="SUCCESS", DkimSigningAttributes={"NextSigningKeyLength": "RSA_2048_BIT"})
    findings = checks(account, "sender")
    assert [f.status for f in findings] == [doctor.Status.OK, doctor.Status.OK]
    assert "through its domain example.com" in findings[0].found
    assert findings[1].found == "example.com signs with DKIM (status SUCCESS)"


def test_an_address_waiting_for_its_link_fails_with_the_command_that_sends_it_again(account: Account) -> None:
    account.deploy()
    account.identity(SENDER, verified=False)
    sender, dkim = checks(account, "sender")
    assert sender.status is doctor.Status.FAIL
    assert "verification PENDING; SES emailed the address a link" in sender.found
    assert f"aws ses verify-email-identity --email-address {SENDER} --region {REGION}" in sender.fixes[0]
    assert dkim.status is doctor.Status.OK and "SES signs the reminders with its own amazonses.com DKIM" in dkim.found


def test_no_identity_at_all_fails_with_both_ways_to_verify(account: Account) -> None:
    account.deploy()
    sender, _ = checks(account, "sender")
    assert sender.status is doctor.Status.FAIL
    assert "SES holds no identity for the address or its domain" in sender.found
    assert sender.fixes[0].startswith(f"aws sesv2 create-email-identity --email-identity {SENDER} --region {REGION}")
    assert "--email-identity example.com" in sender.fixes[1]


def test_a_default_configuration_set_is_reported(account: Account) -> None:
    account.deploy()
    account.client("sesv2").create_configuration_set(ConfigurationSetName="tracking")
    account.identity(SENDER, ConfigurationSetName="tracking")
    sender, _ = checks(account, "sender")
    assert sender.status is doctor.Status.OK
    assert "default configuration set 'tracking' (ses:SendEmail is authorised against it too)" in sender.found


@pytest.mark.parametrize(
    ("dkim", "signing", "expected"),
    [("PENDING", True, "WARN"), ("TEMPORARY_FAILURE", True, "FAIL"), ("SUCCESS", False, "WARN")],
)
def test_dkim_of_the_domain(account: Account, dkim: str, signing: bool, expected: str) -> None:
    from moto.ses.models import ses_backends

    account.deploy()
    account.identity(SENDER)
    account.identity("example.com", verified=dkim == "SUCCESS", dkim=dkim)
    ses_backends[DEFAULT_ACCOUNT_ID][REGION].email_identities["example.com"].dkim_attributes["SigningEnabled"] = signing
    _, finding = checks(account, "sender")
    assert finding.status.value == expected and finding.fixes


def test_a_baked_in_sender_is_read_from_the_email_sender_function(account: Account) -> None:
    account.deploy(stack_template(parameters=("AlarmEmail",)), {"AlarmEmail": ""})
    email_sender(account, {"SENDER_EMAIL": "reminders@clinic.example.com"})
    account.identity(
        "clinic.example.com", dkim="SUCCESS", DkimSigningAttributes={"NextSigningKeyLength": "RSA_2048_BIT"}
    )
    sender, _ = checks(account, "sender")
    assert sender.status is doctor.Status.OK
    assert sender.found.startswith("reminders@clinic.example.com (EmailSenderFunction environment) is verified")


def test_a_baked_in_sender_the_environment_does_not_show_is_a_warning(account: Account) -> None:
    account.deploy(stack_template(parameters=("AlarmEmail",)), {"AlarmEmail": ""})
    email_sender(account, {"SENDER_EMAIL": "reminders@example.com"})
    # AWS may answer an error in place of the variables (the environment is encrypted with the stack's key).
    error = {"ErrorCode": "AccessDeniedException", "Message": "Lambda was unable to decrypt the environment"}
    account.played.answer("lambda", "GetFunctionConfiguration", {"Environment": {"Error": error}})
    (finding,) = checks(account, "sender")
    assert finding.status is doctor.Status.WARN
    assert "could not check: the stack bakes the sender address in" in finding.found
    assert "AccessDeniedException: Lambda was unable to decrypt the environment" in finding.found
    assert "lambda:GetFunctionConfiguration" in finding.fixes[0]


def email_sender(account: Account, variables: dict[str, str]) -> None:
    role = account.client("iam").create_role(
        RoleName="EmailSenderRole",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ]
            }
        ),
    )["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return event\n")
    account.client("lambda").create_function(
        FunctionName="EmailSender-dev",
        Runtime="python3.12",
        Role=role,
        Handler="index.handler",
        Code={"ZipFile": code.getvalue()},
        Environment={"Variables": variables},
    )


def checks(account: Account, name: str, options: doctor.DoctorOptions | None = None) -> list[doctor.Finding]:
    """The findings of one check, on the stack as doctor loads it."""
    stack = DeployedStack.load(STACK, session=account.session)
    (check,) = [c for c in doctor.CHECKS if c.name == name]
    return doctor.run_checks(stack, options or doctor.DoctorOptions(), [check])


# --- 3. The SES account -----------------------------------------------------------------------------------


def test_a_sandboxed_account_with_a_pending_request_says_so(account: Account) -> None:
    account.deploy()
    account.ses_account(production=False, Details={"ReviewDetails": {"Status": "PENDING", "CaseId": "case-1"}})
    (finding,) = checks(account, "ses-account")
    assert finding.status is doctor.Status.FAIL
    assert "reminders reach only verified addresses, at most 200 a day and 1 a second" in finding.found
    assert "production access requested (case case-1, PENDING)" in finding.found
    assert "(200 emails per 24 hours, 1 per second, 0 sent in the last 24 hours)" in finding.found


def test_an_account_on_probation_is_a_warning(account: Account) -> None:
    account.deploy()
    account.ses_account(enforcement="PROBATION")
    (finding,) = checks(account, "ses-account")
    assert finding.status is doctor.Status.WARN
    assert "under review for its sending reputation" in finding.found
    assert finding.fixes == (f"https://console.aws.amazon.com/ses/home?region={REGION}#/reputation",)


def test_a_check_whose_call_is_denied_warns_and_the_others_run(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    healthy(account, ses_account=False)
    account.played.error("sesv2", "GetAccount", "AccessDeniedException", "not authorized to perform ses:GetAccount")
    code, lines = run(account, capsys)
    found = by_check(lines)
    assert code == 0
    assert found["ses-account"].status == "WARN"
    assert found["ses-account"].found.startswith("could not check: access denied: ses:GetAccount in us-east-1")
    assert found["ses-account"].fixes == ["doctor needs the read-only actions ses:GetAccount"]
    assert [line.status for line in lines].count("OK") == 7


# --- 4. SMS -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "args", "expected", "text"),
    [
        (None, [], "WARN", "MonthlySpendLimit not set: the account's quota applies, $1.00 in a new account"),
        (None, ["--sms-per-month", "100"], "OK", "expected 100 SMS at $0.008 (US, price of README.md's cost table"),
        (None, ["--sms-per-month", "1000"], "WARN", "= $8.00 a month, above the limit"),
        ("1", ["--sms-per-month", "1000"], "FAIL", "= $8.00 a month, above the limit"),
        ("50", [], "OK", "MonthlySpendLimit $50.00: about 6,250 SMS a month at $0.008"),
        ("50", ["--sms-per-month", "1000", "--country", "GB"], "WARN", "doctor knows no SMS price for GB"),
        ("50", ["--sms-per-month", "1000", "--sms-price", "0.06"], "FAIL", "= $60.00 a month, above the limit"),
    ],
)
def test_the_spend_limit_against_the_expected_volume(
    account: Account, limit: str | None, args: list[str], expected: str, text: str
) -> None:
    account.deploy()
    if limit:
        account.spend_limit(limit)
    parsed = argparse_options(args)
    (finding,) = checks(account, "sms-spend", parsed)
    assert finding.status.value == expected
    assert text in finding.found
    assert bool(finding.fixes) == (expected != "OK")


def argparse_options(args: list[str]) -> doctor.DoctorOptions:
    parser = argparse.ArgumentParser()
    doctor.add_arguments(parser)
    return doctor.options_from(parser.parse_args(["--stack", STACK, *args]))


def test_a_us_number_not_shared_with_sns_fails(account: Account) -> None:
    account.deploy()
    account.origination([toll_free()])
    (finding,) = checks(account, "sms-origination", doctor.DoctorOptions(countries=("US",)))
    assert finding.status is doctor.Status.FAIL
    assert "no resource policy lets SNS send from it" in finding.found
    assert "shared-resources.html" in finding.fixes[1]


def test_a_us_number_still_in_registration_fails(account: Account) -> None:
    account.deploy()
    account.origination([toll_free(status="PENDING")])
    (finding,) = checks(account, "sms-origination", doctor.DoctorOptions(countries=("US",)))
    assert finding.status is doctor.Status.FAIL
    assert "1 number not ACTIVE yet (registration pending?)" in finding.found


def test_countries_doctor_knows_no_rule_for(account: Account) -> None:
    account.deploy()
    sender_id = {
        "SenderIdArn": f"arn:aws:sms-voice:{REGION}:{DEFAULT_ACCOUNT_ID}:sender-id/CLINIC/GB",
        "SenderId": "CLINIC",
        "IsoCountryCode": "GB",
        "MessageTypes": ["TRANSACTIONAL"],
        "MonthlyLeasingPrice": "0.00",
        "DeletionProtectionEnabled": False,
        "Registered": False,
    }
    account.origination([], (sender_id,), policies={sender_id["SenderIdArn"]: SNS_POLICY})
    gb, fr = checks(account, "sms-origination", doctor.DoctorOptions(countries=("GB", "FR")))
    assert (gb.status, gb.found) == (doctor.Status.OK, f"sender ID CLINIC in {REGION}, shared with SNS")
    assert fr.status is doctor.Status.WARN
    assert "doctor does not know whether FR requires one" in fr.found


def test_without_countries_the_origination_check_asks_for_them(account: Account) -> None:
    account.deploy()
    (finding,) = checks(account, "sms-origination")
    assert finding.status is doctor.Status.WARN and "--country US" in finding.fixes[0]


def test_a_country_given_twice_is_checked_once(account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    healthy(account)
    code, lines = run(account, capsys, [*HEALTHY_ARGS, "--country", "us"])
    assert code == 0 and [line.check for line in lines].count("sms-origination US") == 1


# --- 5. The alarm topic -----------------------------------------------------------------------------------


def test_a_pending_alarm_subscription_is_a_warning(account: Account) -> None:
    account.deploy()
    account.subscribe_alarms(pending=True)
    (finding,) = checks(account, "alarms")
    assert finding.status is doctor.Status.WARN
    assert "1 subscription(s) pending confirmation, none confirmed" in finding.found
    assert "SNS deletes it after 48 hours unconfirmed" in finding.found


def test_a_confirmed_subscription_next_to_a_pending_one_is_enough(account: Account) -> None:
    account.deploy()
    account.subscribe_alarms(pending=True, endpoint="deputy@example.com")
    account.subscribe_alarms()
    (finding,) = checks(account, "alarms")
    assert (finding.status, finding.found) == (doctor.Status.OK, "1 confirmed subscription (email)")


def test_no_alarm_subscription_is_a_warning_with_the_subscribe_command(account: Account) -> None:
    account.deploy()
    (finding,) = checks(account, "alarms")
    assert finding.status is doctor.Status.WARN
    assert "(the AlarmEmail subscription is gone or was never set)" in finding.found
    assert finding.fixes[0].startswith(f"aws sns subscribe --topic-arn {account.alarm_topic()} --protocol email")


# --- Faults: throttling and timeouts ------------------------------------------------------------------------


def test_a_throttled_describe_stacks_is_retried(
    account: Account, capsys: pytest.CaptureFixture[str], no_backoff: list[float]
) -> None:
    healthy(account)
    with faults(
        account.session, "cloudformation", "DescribeStacks", throttling("cloudformation"), throttling("cloudformation")
    ) as attempts:
        code, lines = run(account, capsys)
    assert code == 0 and by_check(lines)["stack"].status == "OK"
    assert len(attempts) == 3 and len(no_backoff) == 2 and all(wait > 0 for wait in no_backoff)


def test_a_check_throttled_beyond_the_retries_warns_and_the_others_run(
    account: Account, capsys: pytest.CaptureFixture[str], no_backoff: list[float]
) -> None:
    healthy(account)
    with faults(account.session, "sesv2", "GetEmailIdentity", *[throttling("sesv2")] * 5) as attempts:
        code, lines = run(account, capsys)
    found = by_check(lines)
    assert code == 0 and len(attempts) == 5
    assert found["sender"].status == "WARN"
    assert found["sender"].found.startswith("could not check: AWS did not serve ses:GetEmailIdentity in us-east-1")
    assert "TooManyRequestsException" in found["sender"].found
    assert [line.status for line in lines].count("OK") == 6  # every check but the sender (and its DKIM line)


def test_a_check_that_times_out_warns_and_the_others_run(
    account: Account, capsys: pytest.CaptureFixture[str], no_backoff: list[float]
) -> None:
    healthy(account)
    timeouts = [ReadTimeoutError(endpoint_url=f"https://sns.{REGION}.amazonaws.com/") for _ in range(5)]
    with faults(account.session, "sns", "ListSubscriptionsByTopic", *timeouts) as attempts:
        code, lines = run(account, capsys)
    found = by_check(lines)
    assert code == 0 and len(attempts) == 5
    assert found["alarms"].status == "WARN"
    assert found["alarms"].found.startswith(
        "could not check: AWS did not answer sns:ListSubscriptionsByTopic in us-east-1 in time, even after retries"
    )


# --- The shared base --------------------------------------------------------------------------------------


def test_the_deployed_stack_names_every_output_and_parameter(account: Account) -> None:
    account.deploy()
    stack = DeployedStack.load(STACK, session=account.session)
    assert (stack.name, stack.region, stack.status) == (STACK, REGION, "CREATE_COMPLETE")
    assert stack.appointments_table_name == "Appointments-dev"
    assert stack.appointments_table_arn.endswith(":table/Appointments-dev")
    assert stack.reminders_table_name == "Reminders-dev"
    assert stack.workflow_arn.endswith(":stateMachine:Workflow-dev")
    assert stack.processor_function_arn == function_arn("AppointmentProcessor")
    assert stack.email_sender_function_arn == function_arn("EmailSender")
    assert stack.sms_sender_function_arn == function_arn("SmsSender")
    assert stack.notification_topic_arn.endswith(":AppointmentNotifications-dev")
    assert stack.alarm_topic_arn == account.alarm_topic()
    assert stack.environment_suffix == "dev"
    assert stack.parameter("SenderEmail") == SENDER
    assert stack.parameter("ScheduleExpression") is None  # baked in: not a parameter of this stack
    assert set(REQUIRED_OUTPUTS) <= set(stack.outputs)


def test_a_missing_output_is_named(account: Account) -> None:
    template = stack_template()
    del template["Outputs"]["SmsSenderFunctionArn"]
    account.deploy(template)
    with pytest.raises(NotATapstackStack, match="lacks the output SmsSenderFunctionArn: it is not a tapstack stack"):
        DeployedStack.load(STACK, session=account.session)
