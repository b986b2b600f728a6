"""What every command that operates a deployed stack (doctor, backfill, status) shares: the errors
that exit 2 with one line that says what to do, before it reads anything of the stack (a usage
error included), and a --help that names its options and exit codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tapstack.__main__ import main as tapstack_main
from tests.operations_support import PLACEHOLDER

COMMANDS = ["doctor", "backfill", "status"]


@pytest.mark.parametrize("command", COMMANDS)
def test_no_credentials_exits_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    for name in ("AWS_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with mock_aws():  # should a credential turn up after all, nothing leaves the process
        # moto puts fake keys in the environment, and deletes them when it stops.
        fake = {name: os.environ.pop(name) for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
        try:
            code = tapstack_main([command, "--stack", "reminders-dev", "--region", "us-east-1"])
        finally:
            os.environ.update(fake)
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no AWS credentials found: run 'aws configure' or 'aws sso login'")
    assert err.count("\n") == 1


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("region", ["mars central", "eu_west_1"])
def test_a_wrong_region_exits_2(
    bare_account: boto3.Session, capsys: pytest.CaptureFixture[str], command: str, region: str
) -> None:
    assert tapstack_main([command, "--stack", "reminders-dev", "--region", region]) == 2
    assert f"error: unknown region {region!r}: not a region name" in capsys.readouterr().err


@pytest.mark.parametrize("command", COMMANDS)
def test_a_stack_in_another_region_is_not_found_there(
    bare_account: boto3.Session, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    boto3.client("cloudformation", region_name="eu-west-1").create_stack(
        StackName="reminders-dev",
        TemplateBody='{"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}',
    )
    assert tapstack_main([command, "--stack", "reminders-dev", "--region", "us-west-2"]) == 2
    assert capsys.readouterr().err == (
        "error: no stack named reminders-dev in region us-west-2 "
        "(CloudFormation stacks are regional: is it in another region? pass --region)\n"
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_no_such_stack_exits_2_with_one_line(
    bare_account: boto3.Session, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    assert tapstack_main([command, "--stack", "nothing-here"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "error: no stack named nothing-here in region us-east-1 "
        "(CloudFormation stacks are regional: is it in another region? pass --region)\n"
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_a_stack_that_is_not_a_tapstack_stack_exits_2(
    bare_account: boto3.Session, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    bare_account.client("cloudformation").create_stack(
        StackName="other", TemplateBody=json.dumps({"Resources": PLACEHOLDER})
    )
    assert tapstack_main([command, "--stack", "other"]) == 2
    err = capsys.readouterr().err
    assert "it is not a tapstack stack" in err and err.count("\n") == 1


#: Arguments each command refuses before it reads anything: argparse's usage error, exit 2.
USAGE_ERRORS = {
    "doctor": [
        [],  # --stack is required
        ["--stack", "bad_name!"],
        ["--stack", "s", "--country", "USA"],
        ["--stack", "s", "--sms-per-month", "-5"],
        ["--stack", "s", "--sms-price", "free"],
        ["--stack", "s", "--prefix", "clinic"],
    ],
    "backfill": [[], ["--stack", "bad_name!"], ["--stack", "s", "--rate", "0"], ["--stack", "s", "--rate", "fast"]],
    "status": [[], ["--stack", "bad_name!"], ["--stack", "s", "--hours", "0"], ["--stack", "s", "--failures", "many"]],
}


@pytest.mark.parametrize(("command", "args"), [(c, args) for c, cases in USAGE_ERRORS.items() for args in cases])
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], command: str, args: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        tapstack_main([command, *args])
    assert exit_.value.code == 2
    assert "error:" in capsys.readouterr().err


#: What each command's --help must say: its options, its exit codes, and what it does.
HELP = {
    "doctor": (
        ("--stack", "--region", "--prefix", "--sms-per-month", "--country", "--sms-price"),
        ("exit codes: 0 no FAIL, 1 at least one FAIL, 2", "the alarm topic's subscriptions"),
    ),
    "backfill": (
        ("--stack", "--region", "--prefix", "--rate", "--state", "--restart", "--no-progress"),
        ("exit codes: 0 finished", "130", "plans nothing twice"),
    ),
    "status": (
        ("--stack", "--region", "--prefix", "--hours", "--failures"),
        (
            "exit codes: 0 all read, 1 a part could not be read",
            "one Query per shard",
            "GetMetricData",
            "FilterLogEvents",
        ),
    ),
}


@pytest.mark.parametrize("command", COMMANDS)
def test_help_says_what_it_does_its_options_and_exit_codes(capsys: pytest.CaptureFixture[str], command: str) -> None:
    options, phrases = HELP[command]
    with pytest.raises(SystemExit) as exit_:
        tapstack_main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert [option for option in options if option not in out] == []
    assert [phrase for phrase in phrases if phrase not in out] == []
