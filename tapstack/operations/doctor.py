"""``python -m tapstack doctor --stack NAME``: what a first reminder needs, checked with read-only calls.

Each check prints one line, ``OK``, ``WARN`` or ``FAIL`` with what it found, and under every non-OK line the
command or console page that fixes it. Exit code 1 on any FAIL, 0 otherwise, 2 when the stack cannot be read
(no such stack, no credentials, unknown region, access denied, not a tapstack stack) or on a usage error.

Every call is a ``Describe``, ``Get`` or ``List``: doctor changes nothing. A check whose call is denied,
throttled after the client's retries or times out says so in a WARN line ("could not check") and the others
still run.
"""

from __future__ import annotations

import argparse
import enum
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from tapstack.operations.deployed import (
    AwsUnavailable,
    DeployedStack,
    DeployedStackError,
    SenderAddress,
    SenderUnknown,
    StackNotReady,
    aws_errors,
    translate,
    valid_stack_name,
)
from tapstack.props import PREFIX_PATTERN

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_pinpoint_sms_voice_v2.type_defs import PhoneNumberInformationTypeDef, SenderIdInformationTypeDef
    from mypy_boto3_sesv2.type_defs import GetAccountResponseTypeDef, GetEmailIdentityResponseTypeDef


class Status(enum.Enum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Finding:
    """One line of the report: a check's status, what it found, and what fixes a non-OK finding."""

    status: Status
    check: str
    found: str
    fixes: tuple[str, ...] = ()


@dataclass(frozen=True)
class DoctorOptions:
    """What doctor cannot read from AWS: the expected SMS volume, its destinations and their price."""

    sms_per_month: int | None = None
    #: ISO 3166-1 alpha-2 codes of the countries reminders are texted to (``US``).
    countries: tuple[str, ...] = ()
    #: USD per SMS; by default the price ``SMS_PRICES`` documents for the destination countries.
    sms_price: float | None = None


@dataclass(frozen=True)
class Check:
    name: str
    #: The read-only IAM actions it calls: an operator's role needs them to run doctor.
    actions: tuple[str, ...]
    run: Callable[[DeployedStack, DoctorOptions], list[Finding]]


# --- 1. The stack's status ------------------------------------------------------------------------------

#: A stack in one of these is in a last known stable state after a successful operation
#: (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_RollbackStack.html lists the
#: stable states: these three, plus the two rolled-back ones handled below).
_COMPLETE = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"})
#: The AWS CLI waiter that returns when an operation in progress ends (``aws cloudformation wait help``).
_WAITERS = {
    "CREATE_IN_PROGRESS": "stack-create-complete",
    "UPDATE_IN_PROGRESS": "stack-update-complete",
    "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS": "stack-update-complete",
    "IMPORT_IN_PROGRESS": "stack-import-complete",
    "UPDATE_ROLLBACK_IN_PROGRESS": "stack-rollback-complete",
    "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS": "stack-rollback-complete",
}


def check_stack(stack: DeployedStack, _: DoctorOptions) -> list[Finding]:
    status, where = stack.status, f"--stack-name {stack.name} --region {stack.region}"
    found = f"{stack.name} is {status} in {stack.region}"
    if stack.status_reason:
        found += f" ({stack.status_reason})"
    failed_events = (
        f"aws cloudformation describe-stack-events {where} --query "
        "\"StackEvents[?contains(ResourceStatus, 'FAILED')].[Timestamp,LogicalResourceId,ResourceStatusReason]\" "
        "--output text   # why it failed"
    )
    redeploy = "deploy again with the command in README.md (Deploy)"
    if status in _COMPLETE:
        return [Finding(Status.OK, "stack", found)]
    if status in _WAITERS:
        wait = f"aws cloudformation wait {_WAITERS[status]} {where}   # then run doctor again"
        return [Finding(Status.WARN, "stack", f"{found}: an operation is in progress", (wait,))]
    if status in ("UPDATE_ROLLBACK_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"):
        why = "the last change failed and was rolled back: the previous version runs"
        return [Finding(Status.WARN, "stack", f"{found}: {why}", (failed_events, f"fix the cause, then {redeploy}"))]
    # A failed first create that rolled back leaves a stack without resources, which can only be deleted
    # (RollbackStack above: it has no last known stable state to return to).
    start_over = (
        failed_events,
        f"aws cloudformation delete-stack {where}",
        f"fix the cause, then {redeploy}; should that create fail because a table already exists, an earlier "
        "stack of this suffix kept it when it was deleted (a failed create keeps nothing: DeletionPolicy "
        "RetainExceptOnCreate): delete it or import it (README.md, 'When a deploy fails, and after a stack "
        "delete'), or deploy with another EnvironmentSuffix",
    )
    failures: dict[str, tuple[str, tuple[str, ...]]] = {
        "CREATE_FAILED": ("the first create failed and was not rolled back", start_over),
        "ROLLBACK_IN_PROGRESS": ("the first create failed and is being rolled back", start_over),
        "ROLLBACK_COMPLETE": ("the first create failed: the stack holds no resources", start_over),
        "ROLLBACK_FAILED": ("the first create failed and so did its rollback", start_over),
        "UPDATE_FAILED": (
            "the last update failed and was not rolled back",
            (failed_events, f"aws cloudformation rollback-stack {where}"),
        ),
        "UPDATE_ROLLBACK_FAILED": (
            "the rollback of the last update failed: the stack cannot change until it completes",
            (failed_events, f"aws cloudformation continue-update-rollback {where}"),
        ),
        "IMPORT_ROLLBACK_FAILED": ("the rollback of a resource import failed", (failed_events,)),
        "IMPORT_ROLLBACK_IN_PROGRESS": ("a resource import failed and is being rolled back", (failed_events,)),
        "DELETE_IN_PROGRESS": (
            "the stack is being deleted",
            (f"aws cloudformation wait stack-delete-complete {where}",),
        ),
        "DELETE_FAILED": (
            "the stack could not be deleted",
            (failed_events, f"aws cloudformation delete-stack {where}   # after fixing the cause"),
        ),
        "REVIEW_IN_PROGRESS": (
            "it was created by a change set that was never executed: it holds no resources",
            (f"aws cloudformation list-change-sets {where}", redeploy),
        ),
    }
    why, fixes = failures.get(status, (f"a status doctor does not know ({status})", (failed_events,)))
    return [Finding(Status.FAIL, "stack", f"{found}: {why}", fixes)]


# --- 2. The sender identity in SES ------------------------------------------------------------------------


def _email_identity(stack: DeployedStack, identity: str) -> GetEmailIdentityResponseTypeDef | None:
    """SESv2 ``GetEmailIdentity``, or ``None`` when SES holds no such identity (``NotFoundException``,
    https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_GetEmailIdentity.html)."""
    try:
        with aws_errors("ses:GetEmailIdentity", stack.region, stack.clients.session):
            return stack.clients.sesv2.get_email_identity(EmailIdentity=identity)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "NotFoundException":
            return None
        raise


def _parent_domains(domain: str) -> list[str]:
    """``mail.example.com`` → ``mail.example.com``, ``example.com``: a verified domain identity lets SES
    send from any address of the domain and of its subdomains
    (https://docs.aws.amazon.com/ses/latest/dg/creating-identities.html)."""
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]


@dataclass
class _SenderIdentities:
    sender: SenderAddress
    address: GetEmailIdentityResponseTypeDef | None
    #: The most specific domain identity SES holds for the sender's domain, with its name.
    domain_name: str | None = None
    domain: GetEmailIdentityResponseTypeDef | None = None

    @property
    def verified_as(self) -> str | None:
        # VerifiedForSendingStatus is what SES sends by ("You can only send email from verified email
        # addresses or domains"): moto reports VerificationStatus SUCCESS with it False; AWS's field wins.
        if self.address and self.address.get("VerifiedForSendingStatus"):
            return "an address"
        if self.domain and self.domain.get("VerifiedForSendingStatus"):
            return f"its domain {self.domain_name}"
        return None

    @property
    def configuration_sets(self) -> list[str]:
        return [i["ConfigurationSetName"] for i in (self.address, self.domain) if i and i.get("ConfigurationSetName")]


def _sender_identities(stack: DeployedStack, sender: SenderAddress) -> _SenderIdentities:
    found = _SenderIdentities(sender, _email_identity(stack, sender.address))
    for domain in _parent_domains(sender.domain):
        identity = _email_identity(stack, domain)
        if identity is not None:
            found.domain_name, found.domain = domain, identity
            break
    return found


def check_sender(stack: DeployedStack, _: DoctorOptions) -> list[Finding]:
    sender = stack.sender_address()
    identities = _sender_identities(stack, sender)
    where = f"{sender.address} ({sender.source})"
    region = stack.region
    findings: list[Finding] = []
    if identities.verified_as:
        found = f"{where} is verified in SES {region} through {identities.verified_as}"
        for name in identities.configuration_sets:
            # Information: with a default configuration set SES also authorises ses:SendEmail against the
            # configuration set's ARN, which the email sender's role must therefore name (DESIGN.md, "Facts
            # from a review against AWS's documentation"; the template authorises it).
            found += f"; default configuration set {name!r} (ses:SendEmail is authorised against it too)"
        findings.append(Finding(Status.OK, "sender", found))
    else:
        findings.append(_unverified_sender(identities, region))
    findings.append(_dkim(identities, region))
    return findings


def _unverified_sender(identities: _SenderIdentities, region: str) -> Finding:
    sender = identities.sender
    where = f"{sender.address} ({sender.source})"
    console = f"https://console.aws.amazon.com/ses/home?region={region}#/identities"
    if identities.address is not None:
        status = identities.address.get("VerificationStatus", "PENDING")
        # VerifyEmailIdentity "attempts to verify it. As a result ..., a verification email is sent to the
        # specified address" (https://docs.aws.amazon.com/ses/latest/APIReference/API_VerifyEmailIdentity.html).
        resend = f"aws ses verify-email-identity --email-address {sender.address} --region {region}"
        return Finding(
            Status.FAIL,
            "sender",
            f"{where} is not verified in SES {region}: verification {status}; SES emailed the address a link",
            (f"open the link in that email, or send it again: {resend}", console),
        )
    if identities.domain is not None:
        return Finding(
            Status.FAIL,
            "sender",
            f"{where} is not verified in SES {region}: domain {identities.domain_name} is not verified yet "
            f"(DKIM {identities.domain.get('DkimAttributes', {}).get('Status', 'unknown')})",
            _dkim_record_fixes(identities.domain_name or sender.domain, region),
        )
    return Finding(
        Status.FAIL,
        "sender",
        f"{where} is not verified in SES {region}: SES holds no identity for the address or its domain",
        (
            f"aws sesv2 create-email-identity --email-identity {sender.address} --region {region}"
            "   # then open the link SES emails to the address",
            f"or verify the whole domain: aws sesv2 create-email-identity --email-identity {sender.domain} "
            f"--region {region}   # then publish the DKIM CNAME records it returns",
        ),
    )


def _dkim_record_fixes(domain: str, region: str) -> tuple[str, ...]:
    # Easy DKIM: one CNAME per token, <token>._domainkey.<domain> -> <token>.dkim.amazonses.com; SES may take
    # up to 72 hours to detect them (https://docs.aws.amazon.com/ses/latest/APIReference/API_VerifyDomainDkim.html).
    return (
        f"aws sesv2 get-email-identity --email-identity {domain} --region {region} "
        "--query DkimAttributes.Tokens --output text   # the DKIM tokens",
        f"publish a CNAME <token>._domainkey.{domain} -> <token>.dkim.amazonses.com for each token "
        "(SES detects them within 72 hours)",
    )


def _dkim(identities: _SenderIdentities, region: str) -> Finding:
    domain, identity = identities.domain_name, identities.domain
    if identity is None or domain is None:
        return Finding(
            Status.OK,
            "dkim",
            f"no domain identity for {identities.sender.domain}: SES signs the reminders with its own "
            "amazonses.com DKIM; verify the domain to sign as it",
        )
    dkim = identity.get("DkimAttributes", {})
    status, signing = dkim.get("Status", "NOT_STARTED"), dkim.get("SigningEnabled", False)
    if status == "SUCCESS" and signing:
        return Finding(Status.OK, "dkim", f"{domain} signs with DKIM (status SUCCESS)")
    if status == "SUCCESS":
        enable = f"aws sesv2 put-email-identity-dkim-attributes --email-identity {domain} --signing-enabled"
        return Finding(Status.WARN, "dkim", f"{domain}: DKIM signing is turned off", (f"{enable} --region {region}",))
    if status in ("FAILED", "TEMPORARY_FAILURE"):
        return Finding(
            Status.FAIL,
            "dkim",
            f"{domain}: DKIM {status}: SES did not find the DKIM records in DNS",
            _dkim_record_fixes(domain, region),
        )
    return Finding(
        Status.WARN,
        "dkim",
        f"{domain}: DKIM {status}: SES is waiting for the DNS records",
        _dkim_record_fixes(domain, region),
    )


# --- 3. The SES account -----------------------------------------------------------------------------------


Problem = tuple[Status, str, tuple[str, ...]]


def check_ses_account(stack: DeployedStack, _: DoctorOptions) -> list[Finding]:
    """SESv2 ``GetAccount`` (https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_GetAccount.html):
    ``SendingEnabled``, ``EnforcementStatus`` (HEALTHY, PROBATION, SHUTDOWN), ``ProductionAccessEnabled`` and
    the ``SendQuota``."""
    region = stack.region
    with aws_errors("ses:GetAccount", region, stack.clients.session):
        account = stack.clients.sesv2.get_account()
    quota = account.get("SendQuota", {})
    limits = (
        f"{quota.get('Max24HourSend', 0):,.0f} emails per 24 hours, {quota.get('MaxSendRate', 0):g} per second, "
        f"{quota.get('SentLast24Hours', 0):,.0f} sent in the last 24 hours"
    )
    problems = _sending_problems(account, region) + _sandbox_problems(account, region)
    if not problems:
        return [Finding(Status.OK, "ses-account", f"production access in {region}, sending enabled: {limits}")]
    return [_merged("ses-account", problems, limits)]


def _sending_problems(account: GetAccountResponseTypeDef, region: str) -> list[Problem]:
    enforcement = account.get("EnforcementStatus", "HEALTHY")
    if not account.get("SendingEnabled", False) or enforcement == "SHUTDOWN":
        return [
            (
                Status.FAIL,
                f"email sending is paused in {region} (enforcement status {enforcement})",
                (
                    f"https://console.aws.amazon.com/ses/home?region={region}#/account   # why AWS paused it",
                    f"aws sesv2 put-account-sending-attributes --sending-enabled --region {region}"
                    "   # only if you paused it yourself",
                ),
            )
        ]
    if enforcement == "PROBATION":
        return [
            (
                Status.WARN,
                "AWS has put the account under review for its sending reputation (PROBATION)",
                (f"https://console.aws.amazon.com/ses/home?region={region}#/reputation",),
            )
        ]
    return []


def _sandbox_problems(account: GetAccountResponseTypeDef, region: str) -> list[Problem]:
    """The sandbox is per region; in it SES sends only to verified addresses, at most 200 messages in 24 hours
    and 1 a second (https://docs.aws.amazon.com/ses/latest/dg/request-production-access.html)."""
    if account.get("ProductionAccessEnabled", False):
        return []
    review = account.get("Details", {}).get("ReviewDetails", {})
    requested = (
        f"; production access requested (case {review.get('CaseId', '?')}, {review['Status']})"
        if review.get("Status")
        else ""
    )
    request = (
        "aws sesv2 put-account-details --production-access-enabled --mail-type TRANSACTIONAL "
        '--website-url https://www.example.com --use-case-description "Appointment reminders to customers who '
        f'booked" --region {region}   # or: https://console.aws.amazon.com/ses/home?region={region}#/account'
    )
    found = (
        f"the account is in the SES sandbox in {region}: reminders reach only verified addresses, "
        f"at most 200 a day and 1 a second{requested}"
    )
    return [(Status.FAIL, found, (request,))]


def _merged(check: str, problems: list[Problem], detail: str) -> Finding:
    """One line for a check that found several things: the worst status, every finding and every fix."""
    worst = Status.FAIL if any(s is Status.FAIL for s, _, _ in problems) else Status.WARN
    found = "; ".join(text for _, text, _ in problems) + f" ({detail})"
    return Finding(worst, check, found, tuple(fix for _, _, fixes in problems for fix in fixes))


# --- 4. SMS -----------------------------------------------------------------------------------------------

#: USD per SMS, by destination country: the figure README.md's cost table uses, from AWS End User Messaging's
#: pricing page (https://aws.amazon.com/end-user-messaging/pricing/, consulted on 2026-11-25: about $0.008 to
#: a US number, carrier fees included). Prices vary by country and carrier; ``--sms-price`` overrides.
SMS_PRICES = {"US": 0.008}
SMS_PRICE_SOURCE = "price of README.md's cost table, 2026-11-25"
#: A new account's SMS spending quota is $1.00 a month; SNS stops sending SMS within minutes of a month's
#: spend crossing the account's limit
#: (https://docs.aws.amazon.com/sns/latest/dg/channels-sms-awssupport-spend-threshold.html). Left unset,
#: ``MonthlySpendLimit`` is the maximum the account is allowed
#: (https://docs.aws.amazon.com/sns/latest/api/API_SetSMSAttributes.html), which is that quota.
NEW_ACCOUNT_SPEND_QUOTA = 1.0


@dataclass(frozen=True)
class OriginationRule:
    """What a destination country requires of the identity SMS are sent from, and AWS's statement of it."""

    needs: str
    source: str


#: Countries whose requirement doctor knows. For the others it cannot tell whether one is needed: AWS's
#: country table says (https://docs.aws.amazon.com/sms-voice/latest/userguide/phone-numbers-sms-by-country.html).
ORIGINATION_RULES = {
    # "to send a message to a recipient in the United States, you must first request and register a US
    # number" (https://docs.aws.amazon.com/sms-voice/latest/userguide/sandbox.html); US carriers no longer
    # carry application-to-person SMS from unregistered long codes
    # (https://docs.aws.amazon.com/sns/latest/dg/channels-sms-awssupport-long-code.html).
    "US": OriginationRule(
        needs="a registered US phone number (toll-free, 10DLC or short code)",
        source="https://docs.aws.amazon.com/sms-voice/latest/userguide/sandbox.html",
    ),
}


def check_sms_sandbox(stack: DeployedStack, _: DoctorOptions) -> list[Finding]:
    """In the SNS SMS sandbox an account sends SMS only to verified destination numbers, at most 10
    (https://docs.aws.amazon.com/sns/latest/dg/sns-sms-sandbox.html)."""
    region = stack.region
    with aws_errors("sns:GetSMSSandboxAccountStatus", region, stack.clients.session):
        in_sandbox = stack.clients.sns.get_sms_sandbox_account_status()["IsInSandbox"]
    if not in_sandbox:
        return [Finding(Status.OK, "sms-sandbox", f"the account is out of the SNS SMS sandbox in {region}")]
    return [
        Finding(
            Status.FAIL,
            "sms-sandbox",
            f"the account is in the SNS SMS sandbox in {region}: SMS reach only verified destination numbers "
            "(at most 10)",
            (
                f"https://console.aws.amazon.com/sns/v3/home?region={region}#/mobile/text-messaging"
                "   # Exit SMS sandbox (opens a support case)",
                "to test meanwhile, verify your own number: aws sns create-sms-sandbox-phone-number "
                f"--phone-number +1555555xxxx --region {region}",
            ),
        )
    ]


def _price(options: DoctorOptions) -> tuple[float, str] | None:
    """The price per SMS to use, and where it comes from; ``None`` when no destination's price is known."""
    if options.sms_price is not None:
        return options.sms_price, "--sms-price"
    known = {c: SMS_PRICES[c] for c in options.countries or ("US",) if c in SMS_PRICES}
    if not known or (options.countries and len(known) < len(options.countries)):
        return None
    country = max(known, key=lambda c: known[c])
    return known[country], f"{country}, {SMS_PRICE_SOURCE}"


def check_sms_spend(stack: DeployedStack, options: DoctorOptions) -> list[Finding]:
    region = stack.region
    with aws_errors("sns:GetSMSAttributes", region, stack.clients.session):
        attributes = stack.clients.sns.get_sms_attributes(attributes=["MonthlySpendLimit"])["attributes"]
    configured = attributes.get("MonthlySpendLimit")
    limit = float(configured) if configured else NEW_ACCOUNT_SPEND_QUOTA
    limit_text = (
        f"MonthlySpendLimit ${limit:,.2f}"
        if configured
        else f"MonthlySpendLimit not set: the account's quota applies, ${limit:,.2f} in a new account"
    )
    price = _price(options)
    raise_limit = (
        f"aws sns set-sms-attributes --attributes MonthlySpendLimit=<USD> --region {region}",
        "above the account's quota, first: https://console.aws.amazon.com/support/home#/case/create"
        "?issueType=service-limit-increase   # SNS Text Messaging, spend limit",
    )
    if options.sms_per_month is None:
        per_month = f"about {limit / price[0]:,.0f} SMS a month at ${price[0]:g} ({price[1]})" if price else ""
        found = f"{limit_text}{': ' + per_month if per_month else ''}; pass --sms-per-month N to compare"
        if limit <= NEW_ACCOUNT_SPEND_QUOTA:
            return [Finding(Status.WARN, "sms-spend", f"{found}; SNS stops sending SMS at the limit", raise_limit)]
        return [Finding(Status.OK, "sms-spend", found)]
    if price is None:
        unknown = ", ".join(c for c in options.countries if c not in SMS_PRICES)
        return [
            Finding(
                Status.WARN,
                "sms-spend",
                f"{limit_text}; doctor knows no SMS price for {unknown}",
                ("pass --sms-price USD (per SMS, from https://aws.amazon.com/end-user-messaging/pricing/)",),
            )
        ]
    cost = options.sms_per_month * price[0]
    found = f"{limit_text}; expected {options.sms_per_month:,} SMS at ${price[0]:g} ({price[1]}) = ${cost:,.2f} a month"
    if cost <= limit:
        return [Finding(Status.OK, "sms-spend", found)]
    # Above an explicit limit SNS stops sending SMS; above an unset one only if AWS never raised the quota.
    status = Status.FAIL if configured else Status.WARN
    stops = "SNS stops sending SMS within minutes of crossing it"
    return [Finding(status, "sms-spend", f"{found}, above the limit: {stops}", raise_limit)]


def _phone_numbers(stack: DeployedStack) -> list[PhoneNumberInformationTypeDef]:
    with aws_errors("sms-voice:DescribePhoneNumbers", stack.region, stack.clients.session):
        pages = stack.clients.sms_voice.get_paginator("describe_phone_numbers").paginate()
        return [number for page in pages for number in page["PhoneNumbers"]]


def _sender_ids(stack: DeployedStack) -> list[SenderIdInformationTypeDef]:
    with aws_errors("sms-voice:DescribeSenderIds", stack.region, stack.clients.session):
        pages = stack.clients.sms_voice.get_paginator("describe_sender_ids").paginate()
        return [sender for page in pages for sender in page["SenderIds"]]


def _shared_with_sns(stack: DeployedStack, arn: str) -> bool:
    """Whether the identity's resource policy names SNS: "You must use a Resource policy to share the phone
    number with Amazon Pinpoint or Amazon SNS even if you are using the same AWS account"
    (https://docs.aws.amazon.com/sns/latest/dg/channels-sms-awssupport-long-code.html)."""
    try:
        with aws_errors("sms-voice:GetResourcePolicy", stack.region, stack.clients.session):
            policy = stack.clients.sms_voice.get_resource_policy(ResourceArn=arn).get("Policy", "")
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return False
        raise
    return "sns.amazonaws.com" in policy


def check_sms_origination(stack: DeployedStack, options: DoctorOptions) -> list[Finding]:
    if not options.countries:
        return [
            Finding(
                Status.WARN,
                "sms-origination",
                "destination countries not given: some (the US) need a registered number of your own",
                ("run doctor again with --country CC for each country reminders are texted to (--country US)",),
            )
        ]
    numbers, sender_ids = _phone_numbers(stack), _sender_ids(stack)
    return [_origination_for(stack, country, numbers, sender_ids) for country in options.countries]


def _origination_for(
    stack: DeployedStack,
    country: str,
    numbers: list[PhoneNumberInformationTypeDef],
    sender_ids: list[SenderIdInformationTypeDef],
) -> Finding:
    region, check = stack.region, f"sms-origination {country}"
    console = f"https://console.aws.amazon.com/sms-voice/home?region={region}#/phone-numbers"
    share = (
        f"{console}   # the number's Resource policy: share it with sns.amazonaws.com",
        "https://docs.aws.amazon.com/sms-voice/latest/userguide/shared-resources.html",
    )
    of_country = [n for n in numbers if n["IsoCountryCode"] == country and "SMS" in n["NumberCapabilities"]]
    active = [n for n in of_country if n["Status"] == "ACTIVE"]
    ids = [s for s in sender_ids if s["IsoCountryCode"] == country]
    usable = [n["PhoneNumberArn"] for n in active] + [s["SenderIdArn"] for s in ids]
    shared = [arn for arn in usable if _shared_with_sns(stack, arn)]
    described = _describe_identities(active, ids, len(of_country) - len(active))
    rule = ORIGINATION_RULES.get(country)
    if rule is not None:
        if not active:
            return Finding(
                Status.FAIL,
                check,
                f"SMS to {country} need {rule.needs} ({rule.source}); {region} has {described}",
                (f"{console}   # Request originator, then complete its registration",),
            )
        if not shared:
            return Finding(
                Status.FAIL, check, f"{described} in {region}, but no resource policy lets SNS send from it", share
            )
        return Finding(Status.OK, check, f"{described} in {region}, shared with SNS")
    if shared:
        return Finding(Status.OK, check, f"{described} in {region}, shared with SNS")
    if usable:
        return Finding(Status.WARN, check, f"{described} in {region}, but no resource policy lets SNS use it", share)
    return Finding(
        Status.WARN,
        check,
        f"{region} has {described}; doctor does not know whether {country} requires one",
        ("https://docs.aws.amazon.com/sms-voice/latest/userguide/phone-numbers-sms-by-country.html",),
    )


def _describe_identities(
    active: list[PhoneNumberInformationTypeDef], ids: list[SenderIdInformationTypeDef], not_active: int
) -> str:
    parts = [f"{n['NumberType'].lower().replace('_', ' ')} number {n['PhoneNumber']}" for n in active]
    parts += [f"sender ID {s['SenderId']}" for s in ids]
    if not_active:
        parts.append(f"{not_active} number{'s' if not_active > 1 else ''} not ACTIVE yet (registration pending?)")
    return ", ".join(parts) if parts else "no phone number or sender ID for it"


# --- 5. The alarm topic's subscriptions --------------------------------------------------------------------


def check_alarm_subscriptions(stack: DeployedStack, _: DoctorOptions) -> list[Finding]:
    """An email subscription waits for its confirmation link (``SubscriptionArn`` reads
    ``PendingConfirmation`` until then), and SNS deletes one left unconfirmed for 48 hours
    (https://aws.amazon.com/about-aws/whats-new/2023/05/amazon-sns-automatic-deletion-unconfirmed-subscriptions/):
    CloudFormation does not recreate it."""
    region, topic = stack.region, stack.alarm_topic_arn
    with aws_errors("sns:ListSubscriptionsByTopic", region, stack.clients.session):
        pages = stack.clients.sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic)
        subscriptions = [s for page in pages for s in page["Subscriptions"]]
    confirmed = [s for s in subscriptions if s["SubscriptionArn"].startswith("arn:")]
    pending = [s for s in subscriptions if s["SubscriptionArn"] == "PendingConfirmation"]
    subscribe = (
        f"aws sns subscribe --topic-arn {topic} --protocol email --notification-endpoint oncall@example.com "
        f"--region {region}   # then open the link AWS emails"
    )
    if confirmed:
        protocols = ", ".join(sorted({s["Protocol"] for s in confirmed}))
        count = len(confirmed)
        return [Finding(Status.OK, "alarms", f"{count} confirmed subscription{'s' if count > 1 else ''} ({protocols})")]
    if pending:
        return [
            Finding(
                Status.WARN,
                "alarms",
                f"{len(pending)} subscription(s) pending confirmation, none confirmed: alarms reach no one until a "
                "link AWS emailed is opened (SNS deletes it after 48 hours unconfirmed)",
                (f"open the link in the email from AWS Notifications, or subscribe again: {subscribe}",),
            )
        ]
    baked = "" if stack.parameter("AlarmEmail") is None else " (the AlarmEmail subscription is gone or was never set)"
    return [
        Finding(Status.WARN, "alarms", f"the alarm topic has no subscription{baked}: alarms reach no one", (subscribe,))
    ]


# --- Running and reporting ------------------------------------------------------------------------------

CHECKS = (
    Check("stack", ("cloudformation:DescribeStacks",), check_stack),
    Check("sender", ("ses:GetEmailIdentity", "lambda:GetFunctionConfiguration"), check_sender),
    Check("ses-account", ("ses:GetAccount",), check_ses_account),
    Check("sms-sandbox", ("sns:GetSMSSandboxAccountStatus",), check_sms_sandbox),
    Check("sms-spend", ("sns:GetSMSAttributes",), check_sms_spend),
    Check(
        "sms-origination",
        ("sms-voice:DescribePhoneNumbers", "sms-voice:DescribeSenderIds", "sms-voice:GetResourcePolicy"),
        check_sms_origination,
    ),
    Check("alarms", ("sns:ListSubscriptionsByTopic",), check_alarm_subscriptions),
)


def run_checks(stack: DeployedStack, options: DoctorOptions, checks: Iterable[Check] = CHECKS) -> list[Finding]:
    """Every check's findings, in order; a check that cannot be made is one WARN finding that says why."""
    findings: list[Finding] = []
    for check in checks:
        try:
            findings.extend(check.run(stack, options))
        except DeployedStackError as error:
            findings.append(_could_not_check(check, error))
        except (BotoCoreError, ClientError) as error:
            translated = translate(error, "/".join(check.actions), stack.region, stack.clients.session)
            findings.append(_could_not_check(check, translated or error))
    return findings


def _could_not_check(check: Check, error: Exception) -> Finding:
    if isinstance(error, StackNotReady):
        fix = "fix the stack first (the stack line says how), then run doctor again"
    elif isinstance(error, SenderUnknown):
        fix = (
            "let these credentials read the email sender's environment (lambda:GetFunctionConfiguration, and "
            "kms:Decrypt on the stack's key), or look the address up by hand: aws sesv2 get-email-identity "
            "--email-identity <sender address>"
        )
    elif isinstance(error, AwsUnavailable):
        fix = "AWS was busy or out of reach: run doctor again"
    else:
        fix = f"doctor needs the read-only actions {', '.join(check.actions)}"
    return Finding(Status.WARN, check.name, f"could not check: {error}", (fix,))


def report(findings: list[Finding], out: TextIO) -> None:
    width = max(len(f.check) for f in findings)
    for finding in findings:
        out.write(f"{finding.status.value:<5} {finding.check:<{width}}  {finding.found}\n")
        for fix in finding.fixes:
            out.write(f"{'':<5} {'':<{width}}  fix: {fix}\n")
    counts = {status: sum(f.status is status for f in findings) for status in Status}
    out.write(f"\n{len(findings)} checks: " + ", ".join(f"{n} {s.value}" for s, n in counts.items()) + "\n")


def exit_code(findings: list[Finding]) -> int:
    return 1 if any(f.status is Status.FAIL for f in findings) else 0


# --- The command line -------------------------------------------------------------------------------------

DESCRIPTION = "Check, with read-only calls, what the first reminder of a deployed stack needs."
EPILOG = """checks: the stack's status; the sender identity in SES (and DKIM for its domain); the SES account
(sending enabled, out of the sandbox, quota); SMS (the SNS SMS sandbox, the monthly spend limit against
--sms-per-month, an origination number for each --country that needs one); the alarm topic's subscriptions.
exit codes: 0 no FAIL, 1 at least one FAIL, 2 the stack cannot be read or a usage error."""


def _stack_name(text: str) -> str:
    if not valid_stack_name(text):
        raise argparse.ArgumentTypeError(f"expected a stack name (a letter, then letters, digits, -), got {text!r}")
    return text


def _prefix(text: str) -> str:
    if not PREFIX_PATTERN.match(text):
        raise argparse.ArgumentTypeError(f"expected PascalCase letters and digits, up to 20, got {text!r}")
    return text


def _country(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z]{2}", text):
        raise argparse.ArgumentTypeError(f"expected an ISO 3166 two-letter country code (US), got {text!r}")
    return text.upper()


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number of SMS, got {text!r}")
    return int(text)


def _usd(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 10:
        raise argparse.ArgumentTypeError(f"expected a price in USD per SMS, such as 0.0083, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description, parser.epilog = DESCRIPTION, EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--stack", required=True, type=_stack_name, help="the stack's name (or stack ID)")
    parser.add_argument("--region", help="its region (default: AWS_REGION or your profile's)")
    parser.add_argument(
        "--prefix", default="", type=_prefix, help="ReminderProps.prefix of a system in a host stack (default none)"
    )
    parser.add_argument(
        "--sms-per-month", type=_count, metavar="N", help="expected SMS a month, compared with the spend limit"
    )
    parser.add_argument(
        "--country",
        action="append",
        type=_country,
        default=[],
        metavar="CC",
        help="a country SMS go to, ISO code (repeatable): checks its origination number",
    )
    parser.add_argument(
        "--sms-price",
        type=_usd,
        metavar="USD",
        help="USD per SMS (default: the documented price of the destination, US $0.008)",
    )


def options_from(args: argparse.Namespace) -> DoctorOptions:
    # A country given twice is checked once.
    countries = tuple(dict.fromkeys(args.country))
    return DoctorOptions(sms_per_month=args.sms_per_month, countries=countries, sms_price=args.sms_price)


def run(args: argparse.Namespace, session: boto3.Session | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        stack = DeployedStack.load(args.stack, region=args.region, prefix=args.prefix, session=session)
    except DeployedStackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    findings = run_checks(stack, options_from(args))
    out.write(f"tapstack doctor: stack {stack.name} in {stack.region}\n\n")
    report(findings, out)
    return exit_code(findings)


def main(argv: list[str] | None = None, session: boto3.Session | None = None, out: TextIO | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tapstack doctor")
    add_arguments(parser)
    return run(parser.parse_args(argv), session=session, out=out)


__all__ = ["CHECKS", "Check", "DoctorOptions", "Finding", "Status", "main", "run", "run_checks"]
