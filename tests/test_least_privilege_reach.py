"""Least privilege, proven by what each role can reach, on the same scenarios as tests/test_least_privilege.py.

That module proves that every call is allowed and every Allow is used. A role can still gain reach
through a grant it does use: an Allow on ``*`` (SMS to a phone number) whose Deny or condition is
dropped also reaches every topic, or every region. So, from the same recorded requests of every
scenario, per role:

- every request that any role was seen making, this role may make only if it was seen making it too
  (the SMS sender may not publish to the delivery-event topic that the status updater publishes to);
- every request it makes on ``*`` is allowed in the stack's region only.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests import iam
from tests.test_least_privilege import ROLES, SCENARIOS, Evidence, run_scenario

#: A region the stack is not deployed in (the scenarios run in us-east-1).
ANOTHER_REGION = "eu-west-1"


@pytest.fixture(scope="module")
def evidence(template_text: str) -> list[Evidence]:
    return [e for name, scenario in SCENARIOS.items() for e in run_scenario(name, scenario, template_text)]


def key(request: iam.Request) -> tuple[str, str]:
    return request.action.lower(), request.resource


def beyond_what_it_does(evidences: list[Evidence], role: str) -> list[str]:
    """The requests some role was seen making that ``role`` may make and was never seen making."""
    found = set()
    own = {key(r) for e in evidences for o in e.observed if o.role == role for r in o.requests()}
    for evidence_ in evidences:
        if role not in evidence_.statements:
            continue
        for observed in evidence_.observed:
            if observed.role == role or any(key(r) in own for r in observed.requests()):
                continue
            statements = evidence_.statements[role]
            if any(iam.evaluate(statements, r) == iam.ALLOW for r in observed.requests()):
                found.add(
                    f"{role} may make what only {observed.principal} does: {observed.action} on "
                    + " or ".join(observed.resources)
                )
    return sorted(found)


def outside_its_region(evidences: list[Evidence], role: str) -> list[str]:
    """The role's requests on ``*`` that its policy would also allow from another region."""
    found = set()
    for evidence_ in evidences:
        for observed in (o for o in evidence_.observed if o.role == role and "*" in o.resources):
            elsewhere = iam.Request(observed.action, "*", {"aws:RequestedRegion": ANOTHER_REGION})
            if iam.evaluate(evidence_.statements[role], elsewhere) == iam.ALLOW:
                found.add(f"{role} may make {observed.action} on * from {ANOTHER_REGION}")
    return sorted(found)


@pytest.mark.parametrize("role", ROLES)
def test_a_role_reaches_only_what_it_was_seen_doing(evidence: list[Evidence], role: str) -> None:
    assert beyond_what_it_does(evidence, role) == []


@pytest.mark.parametrize("role", ROLES)
def test_a_grant_on_star_holds_only_in_the_stack_s_region(evidence: list[Evidence], role: str) -> None:
    assert outside_its_region(evidence, role) == []


def widened(evidences: list[Evidence], role: str, change: Any) -> list[Evidence]:
    """A copy of the evidence in which ``change`` has edited the role's resolved statements."""
    wider = copy.deepcopy(evidences)
    for evidence_ in wider:
        if role in evidence_.statements:
            evidence_.statements[role] = change(evidence_.statements[role])
    return wider


def without_deny(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in statements if s["Effect"] != iam.DENY]


def without_conditions(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in s.items() if k != "Condition"} for s in statements]


def publishing_to_topics(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [*statements, {"Effect": iam.ALLOW, "Action": ["sns:Publish"], "Resource": ["arn:aws:sns:*:*:*"]}]


@pytest.mark.parametrize(
    ("role", "change", "check", "expected"),
    [
        ("SmsSenderRole", without_deny, beyond_what_it_does, "sns:Publish on arn:aws:sns:us-east-1:"),
        # Every condition dropped: its opt-out check and its SMS both reach every region.
        ("SmsSenderRole", without_conditions, outside_its_region, "on * from eu-west-1"),
        ("EmailSenderRole", publishing_to_topics, beyond_what_it_does, "sns:Publish on arn:aws:sns:us-east-1:"),
    ],
    ids=["sms-deny-dropped", "sms-region-dropped", "email-publishes-to-topics"],
)
def test_a_role_that_gains_reach_is_caught(
    evidence: list[Evidence], role: str, change: Any, check: Any, expected: str
) -> None:
    """The checks above catch a widened role, in the very scenarios: not only in the template's shape."""
    assert check(evidence, role) == []
    found = check(widened(evidence, role, change), role)
    assert found and all(expected in line for line in found), found


def test_the_scenarios_show_each_role_s_requests(evidence: list[Evidence]) -> None:
    """The checks mean something only if every role was seen at work."""
    seen: set[str] = {o.role for e in evidence for o in e.observed}
    assert seen == set(ROLES)
