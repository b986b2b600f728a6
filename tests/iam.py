"""A small IAM policy evaluator for identity policies whose values are already resolved.

It decides, for one request (action, resource ARN, request context), what a list of statements
says: an explicit Deny wins, otherwise an Allow is needed, otherwise the request is implicitly
denied. Wildcards follow IAM: ``*`` matches any run of characters (colons included), ``?`` one
character; action names are case-insensitive, resource ARNs are not.

Only what the template uses is supported. Anything else (NotAction, NotResource, Principal,
policy variables, another condition operator or key) raises ``UnsupportedPolicy`` instead of
being ignored, so that a policy this module cannot judge never passes by accident.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

ALLOW, DENY, IMPLICIT_DENY = "Allow", "Deny", "ImplicitDeny"

#: Condition operators and keys this evaluator understands (condition keys are case-insensitive).
SUPPORTED_CONDITIONS = {"StringEquals": {"aws:requestedregion", "kms:viaservice"}}
SUPPORTED_STATEMENT_KEYS = {"Sid", "Effect", "Action", "Resource", "Condition"}


class UnsupportedPolicy(ValueError):
    """The policy uses something this evaluator does not implement."""


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)


def as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


@cache
def _pattern(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM matching of ``value`` against ``pattern`` with ``*`` and ``?``."""
    if not isinstance(pattern, str):
        raise UnsupportedPolicy(f"an unresolved value in a policy: {pattern!r}")
    if "${" in pattern:
        raise UnsupportedPolicy(f"policy variables are not supported: {pattern!r}")
    return _pattern(pattern, ignore_case).fullmatch(value) is not None


def action_matches(pattern: str, action: str) -> bool:
    return wildcard_match(pattern, action, ignore_case=True)


def resource_matches(pattern: str, resource: str) -> bool:
    return wildcard_match(pattern, resource)


def condition_holds(condition: Mapping[str, Any] | None, context: Mapping[str, str]) -> bool:
    """Every operator and every key of a Condition block must hold (AND); values of a key are OR."""
    if not condition:
        return True
    lowered = {k.lower(): v for k, v in context.items()}
    for operator, tests in condition.items():
        if operator not in SUPPORTED_CONDITIONS:
            raise UnsupportedPolicy(f"condition operator {operator!r} is not supported")
        for key, expected in tests.items():
            if key.lower() not in SUPPORTED_CONDITIONS[operator]:
                raise UnsupportedPolicy(f"condition key {key!r} is not supported with {operator}")
            actual = lowered.get(key.lower())
            if actual is None or actual not in [str(v) for v in as_list(expected)]:
                return False
    return True


def check_statement(statement: Mapping[str, Any]) -> None:
    unknown = set(statement) - SUPPORTED_STATEMENT_KEYS
    if unknown:
        raise UnsupportedPolicy(f"statement keys {sorted(unknown)} are not supported: {dict(statement)}")
    if statement.get("Effect") not in (ALLOW, DENY):
        raise UnsupportedPolicy(f"Effect must be Allow or Deny: {dict(statement)}")
    if "Action" not in statement or "Resource" not in statement:
        raise UnsupportedPolicy(f"a statement needs Action and Resource: {dict(statement)}")


def matching_resource(statement: Mapping[str, Any], request: Request) -> str | None:
    """The statement's resource pattern that applies to the request, or None if it does not apply."""
    check_statement(statement)
    if not any(action_matches(a, request.action) for a in as_list(statement["Action"])):
        return None
    pattern = next((r for r in as_list(statement["Resource"]) if resource_matches(r, request.resource)), None)
    if pattern is None or not condition_holds(statement.get("Condition"), request.context):
        return None
    return str(pattern)


def evaluate(statements: Iterable[Mapping[str, Any]], request: Request) -> str:
    """``Allow``, ``Deny`` (an explicit Deny applies) or ``ImplicitDeny`` (no Allow applies)."""
    effects = {s["Effect"] for s in statements if matching_resource(s, request) is not None}
    if DENY in effects:
        return DENY
    return ALLOW if ALLOW in effects else IMPLICIT_DENY


def allowing_resources(statements: Iterable[Mapping[str, Any]], request: Request) -> list[str]:
    """The resource patterns of the Allow statements that apply to the request."""
    found = []
    for statement in statements:
        if statement["Effect"] == ALLOW:
            pattern = matching_resource(statement, request)
            if pattern is not None:
                found.append(pattern)
    return found


LOG_DELIVERY_ACTIONS = (
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
)

#: Actions whose only resource can be ``*``, with the reason.
STAR_ACTIONS = {
    "sns:Publish": "a phone number has no ARN: SNS authorises direct SMS only on *",
    "sns:CheckIfPhoneNumberIsOptedOut": "names no resource",
    "dynamodb:ListStreams": "names no stream",
    "xray:PutTraceSegments": "X-Ray has no resource-level permissions",
    "xray:PutTelemetryRecords": "X-Ray has no resource-level permissions",
    "xray:GetSamplingRules": "X-Ray has no resource-level permissions",
    "xray:GetSamplingTargets": "X-Ray has no resource-level permissions",
    **dict.fromkeys(LOG_DELIVERY_ACTIONS, "CloudWatch Logs' vended log delivery authorises only on *"),
}
