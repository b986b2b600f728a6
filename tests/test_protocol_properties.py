"""The claim protocol keeps its promises under generated interleavings of every actor (Hypothesis).

A bounded run here (a fixed seed, so CI explores the same interleavings each time); the long,
random run is ``python benchmarks/explore_protocol.py``. The machine is tests/protocol_machine.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from tapstack.local import LocalDeployment
from tests.protocol_machine import World, machine
from tests.support import SENDER, START


@pytest.fixture(scope="module")
def world(template_data: dict[str, Any]) -> Iterator[World]:
    parameters = {"SenderEmail": SENDER, "ReminderOffsetsMinutes": "1440,60"}
    with (
        time_machine.travel(START, tick=False) as clock,
        LocalDeployment(template_data, parameters, use_handler_files=True, echo_logs=False) as deployment,
    ):
        yield World(deployment, clock)


def test_every_interleaving_keeps_the_promises(world: World) -> None:
    run_state_machine_as_test(
        machine(world),
        settings=settings(
            max_examples=25,
            stateful_step_count=30,
            deadline=None,
            derandomize=True,
            report_multiple_bugs=False,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
