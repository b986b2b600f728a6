"""Shared fixtures: a frozen clock, the generated template deployed into moto, an empty account, and
the check that what a function printed holds no personal data."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import boto3
import pytest
import time_machine
from moto import mock_aws

from tapstack.cli import render
from tapstack.local import LocalDeployment, load_template
from tests import tools
from tests.support import SENDER, START


@pytest.fixture(scope="session")
def template_text() -> str:
    """The template exactly as ``python build.py`` writes it."""
    return render("yaml")


@pytest.fixture(scope="session")
def npm_tools() -> tools.NpmTools:
    """cfn-guard with the Control Tower rules, and asl-validator: installed once into ``.tools/``."""
    try:
        return tools.install()
    except tools.ToolsUnavailable as problem:
        pytest.fail(str(problem), pytrace=False)


@pytest.fixture(scope="session")
def template_data(template_text: str) -> dict[str, Any]:
    """That text, parsed once (each deployment takes its own copy)."""
    return load_template(template_text)


@pytest.fixture
def clock() -> Iterator[time_machine.Coordinates]:
    """The clock stands still at START until a test moves it (``clock.shift(seconds)``)."""
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def deploy(template_data: dict[str, Any], clock: time_machine.Coordinates) -> Iterator[Callable[..., LocalDeployment]]:
    """Deploy the generated template into moto: ``deploy(ReminderOffsetsMinutes="1440,60")``.

    By default the functions run from their files in ``handlers/`` (so coverage sees them);
    ``inlined=True`` runs the code exactly as the template inlines it.
    """
    with ExitStack() as stack:

        def make(inlined: bool = False, **parameters: Any) -> LocalDeployment:
            values = {"SenderEmail": SENDER, **parameters}
            return stack.enter_context(LocalDeployment(template_data, values, use_handler_files=not inlined))

        yield make


@pytest.fixture
def deployment(deploy: Callable[..., LocalDeployment]) -> LocalDeployment:
    return deploy()


@pytest.fixture
def bare_account(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.Session]:
    """An account with no stack at all (moto), its credentials in the environment: the session."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield boto3.Session(region_name="us-east-1")


@pytest.fixture
def logs_hold_no_personal_data(request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> Iterator[None]:
    """After the test: everything the functions printed is JSON lines, none holding what the test
    module's ``PERSONAL`` lists (contact data, message text). A module opts in with ``pytestmark``."""
    yield
    out = capsys.readouterr().out
    assert [needle for needle in request.module.PERSONAL if needle in out] == []
    for line in out.splitlines():
        json.loads(line)
