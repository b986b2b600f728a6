"""Every physical name fits its resource's limit, at the longest prefix and suffix the library allows.

A name too long for AWS is refused halfway through a create, after the resources before it were
made. The suffix parameter's ``MaxLength`` and ``ReminderProps``'s check of prefix plus suffix
refuse it before anything is created; these tests build every name at those lengths.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tapstack import ReminderProps, build_template
from tapstack.local import load_template
from tapstack.props import DEFAULT_PARAMETERS, MAX_PREFIX_AND_SUFFIX
from tapstack.render import to_yaml

#: (resource type, property that holds a physical name) → (longest name AWS accepts, where it says so).
NAME_LIMITS: dict[tuple[str, str], tuple[int, str]] = {
    ("AWS::Lambda::Function", "FunctionName"): (
        64,  # "If you specify only the function name, it is limited to 64 characters in length."
        "https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html",
    ),
    ("AWS::Events::Rule", "Name"): (64, "https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutRule.html"),
    ("AWS::Pipes::Pipe", "Name"): (64, "https://docs.aws.amazon.com/eventbridge/latest/pipes-reference/API_Pipe.html"),
    ("AWS::StepFunctions::StateMachine", "StateMachineName"): (
        80,
        "https://docs.aws.amazon.com/step-functions/latest/apireference/API_StateMachineListItem.html",
    ),
    ("AWS::SQS::Queue", "QueueName"): (
        80,  # "A queue name can have up to 80 characters."
        "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CreateQueue.html",
    ),
    ("AWS::SNS::Topic", "TopicName"): (
        256,  # "must be between 1 and 256 characters long"
        "https://docs.aws.amazon.com/sns/latest/api/API_CreateTopic.html",
    ),
    ("AWS::DynamoDB::Table", "TableName"): (
        255,
        "https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_CreateTable.html",
    ),
    ("AWS::Logs::LogGroup", "LogGroupName"): (
        512,
        "https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogGroup.html",
    ),
    # The handlers' metrics namespace, in the alarms that watch it (and in the functions' environment).
    ("AWS::CloudWatch::Alarm", "Namespace"): (
        255,
        "https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricData.html",
    ),
}

#: Top-level properties whose name ends in "Name" but that name nothing of this stack.
NOT_PHYSICAL_NAMES = {"MetricName"}

LONGEST_PREFIX = "P" + "x" * 19


def physical_names(template: dict[str, Any], parameters: dict[str, str]) -> list[tuple[str, str, str]]:
    """(resource type, property, name as CloudFormation makes it) of every physical name."""
    found = []
    for resource in template["Resources"].values():
        for (resource_type, prop), _ in NAME_LIMITS.items():
            if resource["Type"] == resource_type and prop in resource.get("Properties", {}):
                found.append((resource_type, prop, resolve(resource["Properties"][prop], parameters)))
    return found


def resolve(value: Any, parameters: dict[str, str]) -> str:
    """A literal name, or ``Fn::Sub`` of the parameters (names use no other intrinsic)."""
    if isinstance(value, str):
        return value
    return re.sub(r"\$\{([A-Za-z]+)\}", lambda found: parameters[found.group(1)], value["Fn::Sub"])


def test_the_names_the_limits_cover_are_all_the_names_of_the_template(template_data: dict[str, Any]) -> None:
    """A new named resource (or a new kind of name) must get its limit here first."""
    named = set()
    for resource in template_data["Resources"].values():
        for prop, value in resource.get("Properties", {}).items():
            if prop.endswith("Name") and prop not in NOT_PHYSICAL_NAMES:
                named.add((resource["Type"], prop))
            if prop == "Namespace" and not (isinstance(value, str) and value.startswith("AWS/")):
                named.add((resource["Type"], prop))  # ours, not an AWS service's
    assert named == set(NAME_LIMITS)


@pytest.mark.parametrize(
    ("prefix", "suffix_length"),
    [("", MAX_PREFIX_AND_SUFFIX), (LONGEST_PREFIX, MAX_PREFIX_AND_SUFFIX - len(LONGEST_PREFIX))],
)
def test_every_physical_name_fits_at_the_longest_prefix_and_suffix(prefix: str, suffix_length: int) -> None:
    suffix = "s" * suffix_length
    props = ReminderProps(prefix=prefix, environment_suffix=suffix, sender_email="r@example.com")
    template = load_template(to_yaml(build_template(props)))
    # The suffix is a parameter: CloudFormation accepts up to its MaxLength, and that is the longest.
    parameter = template["Parameters"][f"{prefix}EnvironmentSuffix"]
    assert parameter["MaxLength"] == suffix_length == props.max_suffix_length
    names = physical_names(template, {f"{prefix}EnvironmentSuffix": "s" * parameter["MaxLength"]})
    assert len(names) >= 14
    too_long = [
        f"{name} ({len(name)} > {NAME_LIMITS[kind, prop][0]}: {NAME_LIMITS[kind, prop][1]})"
        for kind, prop, name in names
        if len(name) > NAME_LIMITS[kind, prop][0]
    ]
    assert not too_long, too_long
    # The bound is no stricter than it must be: the schedule rule's name is exactly at its limit.
    assert max(len(name) for kind, _, name in names if kind == "AWS::Events::Rule") == 64


def test_baked_in_names_fit_too() -> None:
    props = ReminderProps(
        prefix=LONGEST_PREFIX,
        environment_suffix="s" * 12,
        sender_email="r@example.com",
        parameters=DEFAULT_PARAMETERS - {"EnvironmentSuffix"},
    )
    names = physical_names(build_template(props).to_dict(), {})
    assert names and all(len(name) <= NAME_LIMITS[kind, prop][0] for kind, prop, name in names)


@pytest.mark.parametrize(
    ("prefix", "suffix"),
    [
        ("", "s" * (MAX_PREFIX_AND_SUFFIX + 1)),
        (LONGEST_PREFIX, "s" * (MAX_PREFIX_AND_SUFFIX - len(LONGEST_PREFIX) + 1)),
    ],
)
def test_a_suffix_one_character_too_long_is_refused_before_anything_is_built(prefix: str, suffix: str) -> None:
    with pytest.raises(ValueError, match=r"^environment_suffix: expected at most \d+ characters"):
        ReminderProps(prefix=prefix, environment_suffix=suffix)


def test_the_deployer_is_told_the_limit(template_data: dict[str, Any]) -> None:
    suffix = template_data["Parameters"]["EnvironmentSuffix"]
    assert suffix["MaxLength"] == MAX_PREFIX_AND_SUFFIX == 32
    assert "32" in suffix["ConstraintDescription"]
