"""``python -m tapstack backfill`` on the local runner: the generated template deployed into moto, the
command reading its Appointments table and starting its workflow as an operator would.

What the runner plays where moto does not: StartSyncExecution (``tests/operations_support.py``), and
faults at the API (throttling) or in the run (a processor that fails). Time does not pass here unless a
test moves it; the command's waits (its rate and its backoff) go to a fake clock that records them.
"""

from __future__ import annotations

import io
import itertools
import json
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.exceptions import EndpointConnectionError, NoCredentialsError
from moto.core.botocore_stubber import MockRawResponse

import tapstack.operations
from tapstack.__main__ import main as tapstack_main
from tapstack.local import LocalDeployment, load_template
from tapstack.operations import backfill
from tapstack.props import ReminderProps
from tapstack.render import to_yaml
from tapstack.stack import build_template
from tapstack.triggers import PIPE_BATCH_SIZE
from tests.operations_support import (
    FakeClock,
    after_call,
    log_events,
    operator_session,
    put_appointments,
    register_stack,
    reminders,
    throttle,
)
from tests.support import DAY, HOUR, SENDER, appointment, sent_emails

PROCESSOR = "AppointmentProcessorFunction"
FAST = ["--rate", "1000000"]  # the pacing has its own test


class Terminal(io.StringIO):
    """Where a progress bar draws: tqdm shows its bar only on a terminal."""

    def isatty(self) -> bool:
        return True


class Operator:
    """Runs the command against one deployment, with one state file, and keeps what it printed."""

    def __init__(self, deployment: LocalDeployment, state: Path) -> None:
        self.deployment = deployment
        self.stack = register_stack(deployment)
        self.session = operator_session(deployment)
        self.state = state
        self.clock = FakeClock()
        self.out = io.StringIO()
        self.err: io.StringIO = io.StringIO()

    def backfill(self, *args: str, err: io.StringIO | None = None) -> int:
        self.out, self.err = io.StringIO(), err or io.StringIO()
        return backfill.main(
            ["--stack", self.stack, "--state", str(self.state), *FAST, *args],
            session=self.session,
            out=self.out,
            err=self.err,
            sleep=self.clock.sleep,
            clock=self.clock,
        )

    def saved(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.state.read_text(encoding="utf-8"))
        return data

    def starts(self) -> list[list[dict[str, Any]]]:
        """The input of every execution the command started, from now on."""
        inputs: list[list[dict[str, Any]]] = []

        def record(params: dict[str, Any], **_: Any) -> None:
            inputs.append(json.loads(params["input"]))

        for operation in ("StartSyncExecution", "StartExecution"):
            self.session.events.register(f"provide-client-params.sfn.{operation}", record)
        return inputs


@pytest.fixture
def operator(deploy: Callable[..., LocalDeployment], tmp_path: Path) -> Operator:
    return Operator(deploy(), tmp_path / "backfill.json")


def a_table(count: int) -> dict[str, list[dict[str, Any]]]:
    """``count`` appointments as a booking app's table holds them after a while: most booked ahead, some
    cancelled, some past, and some so close that their reminder (24 hours before) is already due."""
    kinds: dict[str, list[dict[str, Any]]] = {"ahead": [], "cancelled": [], "past": [], "due": []}
    for number in range(count):
        name = f"appt-{number:05d}"
        if number % 50 == 7:
            kinds["due"].append(appointment(name, 2 * HOUR + number))
        elif number % 20 == 3:
            kinds["cancelled"].append(appointment(name, 3 * DAY, status="CANCELLED"))
        elif number % 20 == 11:
            kinds["past"].append(appointment(name, -DAY))
        else:
            kinds["ahead"].append(appointment(name, 2 * DAY + 60 * number))
    return kinds


def seed(deployment: LocalDeployment, count: int) -> dict[str, list[dict[str, Any]]]:
    kinds = a_table(count)
    put_appointments(deployment, [item for items in kinds.values() for item in items])
    return kinds


def planned(deployment: LocalDeployment) -> Counter[str]:
    """How often the processor wrote each reminder's plan (its ``reminder_pending`` log line)."""
    return Counter(fields["reminderId"] for fields in log_events(deployment, PROCESSOR, "reminder_pending"))


def ids(items: list[dict[str, Any]]) -> set[str]:
    return {f"{item['appointmentId']}#1440" for item in items}


# --- Planning every appointment, once -----------------------------------------------------------------


#: Thousands, as a table a backfill is for holds. Each appointment costs the runner a conditional write in
#: moto (most of the test's time: about 20 s of CPU a thousand, more in wall time on a busy machine).
THOUSANDS = 2000


def test_every_booked_future_appointment_is_planned_exactly_once(operator: Operator) -> None:
    kinds = seed(operator.deployment, THOUSANDS)
    inputs = operator.starts()
    scans: list[dict[str, Any]] = []
    operator.session.events.register("after-call.dynamodb.Scan", lambda parsed, **_: scans.append(parsed))

    assert operator.backfill() == 0, operator.err.getvalue()

    records = reminders(operator.deployment)
    assert planned(operator.deployment) == Counter(ids(kinds["ahead"]) | ids(kinds["due"]))
    for reminder_id in ids(kinds["ahead"]):
        record = records[reminder_id]
        assert record["state"] == "PENDING" and "version" not in record  # a backfill's plan has no version
    assert {records[i]["state"] for i in ids(kinds["due"])} == {"SENT"}  # due at once: claimed and sent
    assert len(sent_emails(operator.deployment)) == len(kinds["due"])
    assert {(records[i]["state"], records[i]["reason"]) for i in ids(kinds["cancelled"])} == {
        ("CANCELLED", "AppointmentCancelled")
    }
    assert {(records[i]["state"], records[i]["reason"]) for i in ids(kinds["past"])} == {
        ("CANCELLED", "AppointmentPast")
    }
    # Handed as the pipe hands a batch: its size, keys only, no sequence number (create-only planning).
    assert len(inputs) == THOUSANDS // PIPE_BATCH_SIZE and {len(batch) for batch in inputs} == {PIPE_BATCH_SIZE}
    assert {json.dumps(sorted(change)) for batch in inputs for change in batch} == {'["eventName", "keys"]'}
    assert sorted(change["keys"]["appointmentId"]["S"] for batch in inputs for change in batch) == sorted(
        item["appointmentId"] for items in kinds.values() for item in items
    )
    # Only keys left DynamoDB, and nothing the command printed or saved holds contact data.
    assert {name for page in scans for item in page["Items"] for name in item} == {"appointmentId"}
    printed = operator.out.getvalue() + operator.err.getvalue() + operator.state.read_text(encoding="utf-8")
    assert "@example.com" not in printed and "+1555" not in printed
    assert operator.saved() | {"started_at": "-", "updated_at": "-"} == {
        "executions": THOUSANDS // PIPE_BATCH_SIZE,
        "failed_attempts": 0,
        "finished": True,
        "handed": THOUSANDS,
        "position": None,
        "scanned": THOUSANDS,
        "started_at": "-",
        "table": operator.deployment.resources["AppointmentsTable"].attributes["Arn"],
        "updated_at": "-",
        "version": 1,
        "workflow": operator.deployment.state_machine_arn,
    }
    assert operator.out.getvalue().endswith(
        "finished: scanned 2,000 appointments, handed 2,000 in 200 executions (0 failed attempts). "
        "Running it again plans nothing twice.\n"
    )


def test_a_second_run_plans_nothing_and_sends_nothing_again(operator: Operator, tmp_path: Path) -> None:
    kinds = seed(operator.deployment, 200)
    assert operator.backfill() == 0
    before = reminders(operator.deployment)
    emails = len(sent_emails(operator.deployment))

    # The same state file: the run is over, and it says so without reading the table.
    inputs = operator.starts()
    assert operator.backfill() == 0
    assert "was backfilled already" in operator.out.getvalue() and "Nothing to do" in operator.out.getvalue()
    assert inputs == []

    # A fresh run over the same table (--restart): every batch handed again, nothing planned or sent twice.
    assert operator.backfill("--restart") == 0
    assert len(inputs) == 20
    assert planned(operator.deployment) == Counter(ids(kinds["ahead"]) | ids(kinds["due"]))
    assert reminders(operator.deployment) == before  # not one attribute rewritten, updatedAt included
    assert len(sent_emails(operator.deployment)) == emails
    outcomes = Counter(
        outcome
        for fields in log_events(operator.deployment, PROCESSOR, "batch_done")[20:]
        for outcome, count in fields.items()
        if outcome not in ("level", "event", "jobs", "more")
        for _ in range(count)
    )
    assert outcomes == Counter({"unchanged": 200})


def test_an_interrupted_run_resumes_where_it_stopped_and_plans_nothing_twice(operator: Operator) -> None:
    kinds = seed(operator.deployment, 120)
    inputs = operator.starts()

    def interrupt(call: int) -> None:
        if call == 7:  # Ctrl-C while the 7th batch's run is over and its answer not back yet
            raise KeyboardInterrupt

    after_call(operator.session, "StartSyncExecution", interrupt)
    assert operator.backfill() == 130
    assert operator.err.getvalue().endswith(
        "interrupted: scanned 60 appointments, handed 60 in 6 executions (0 failed attempts); "
        f"run the same command again to resume (state file {operator.state})\n"
    )
    saved = operator.saved()
    assert (saved["finished"], saved["position"]) == (False, inputs[5][-1]["keys"])

    assert operator.backfill() == 0
    assert "resuming after 60 appointments" in operator.out.getvalue()
    assert inputs[7] == inputs[6]  # the batch in flight is handed again ...
    assert len(inputs) == 13
    # ... and plans nothing twice: every reminder was planned once, over both runs.
    assert planned(operator.deployment) == Counter(ids(kinds["ahead"]) | ids(kinds["due"]))
    assert operator.saved()["executions"] == 12 and operator.saved()["finished"]


# --- Faults: throttling, failed runs ------------------------------------------------------------------


def test_a_throttled_start_is_retried_after_a_backoff(operator: Operator) -> None:
    kinds = seed(operator.deployment, 30)
    throttled = throttle(operator.session, "StartSyncExecution", times=2)
    inputs = operator.starts()
    assert operator.backfill("--no-progress") == 0
    assert throttled == [1, 2]
    assert len(inputs) == 5 and inputs[0] == inputs[1] == inputs[2]  # one batch, three attempts
    assert planned(operator.deployment) == Counter(ids(kinds["ahead"]) | ids(kinds["due"]))
    # Full jitter under a doubling cap: a wait up to 2 s, then up to 4 s.
    first, second = operator.clock.waits
    assert 0 <= first <= 2 and 0 <= second <= 4
    assert operator.err.getvalue().splitlines() == [
        f"attempt 1 failed: ThrottlingException; trying again in {first:.1f} s",
        f"attempt 2 failed: ThrottlingException; trying again in {second:.1f} s",
    ]
    assert operator.saved()["failed_attempts"] == 2


def test_a_failed_run_is_retried(operator: Operator) -> None:
    kinds = seed(operator.deployment, 10)
    # The processor fails three times: the workflow's own two retries, then the run fails.
    operator.deployment.fail_function(PROCESSOR, times=3, error_type="RetryableError")
    assert operator.backfill() == 0
    (note, *_) = operator.err.getvalue().splitlines()
    assert note.startswith(f"attempt 1 failed: FAILED RetryableError ({operator.deployment.state_machine_arn}"[:60])
    assert ":backfill-" in note  # the execution's name says who started it
    assert planned(operator.deployment) == Counter(ids(kinds["ahead"]) | ids(kinds["due"]))


def test_a_start_that_gets_no_answer_is_tried_again(operator: Operator) -> None:
    kinds = seed(operator.deployment, 20)
    unreachable = [1]

    def no_connection(**_: Any) -> None:
        if unreachable:
            unreachable.pop()
            raise EndpointConnectionError(endpoint_url="https://sync-states.us-east-1.amazonaws.com/")

    operator.session.events.register_first("before-call.sfn.StartSyncExecution", no_connection)
    assert operator.backfill() == 0
    assert operator.err.getvalue().startswith("attempt 1 failed: EndpointConnectionError; trying again in ")
    assert planned(operator.deployment) == Counter(ids(kinds["ahead"]) | ids(kinds["due"]))


def test_credentials_that_expire_during_the_run_stop_it_with_exit_2(operator: Operator) -> None:
    seed(operator.deployment, 30)

    def expired(call: int) -> None:
        if call == 2:
            raise NoCredentialsError

    after_call(operator.session, "StartSyncExecution", expired)
    assert operator.backfill() == 2
    assert operator.err.getvalue().startswith("error: no AWS credentials found: run 'aws configure' or 'aws sso login'")
    assert operator.err.getvalue().endswith(
        "; scanned 10 appointments, handed 10 in 1 execution (0 failed attempts); run the same command again to "
        f"resume (state file {operator.state}) once it is fixed\n"
    )
    assert operator.backfill() == 0  # the credentials are back: it resumes


def test_a_batch_that_keeps_failing_stops_the_run_and_the_next_run_resumes_it(operator: Operator) -> None:
    kinds = seed(operator.deployment, 25)
    inputs = operator.starts()
    # The second batch is throttled at every attempt.
    throttled = throttle(operator.session, "StartSyncExecution", times=backfill.START_ATTEMPTS, after=1)
    assert operator.backfill("--no-progress") == 1
    assert throttled == [2, 3, 4, 5, 6]
    assert len(operator.clock.waits) == backfill.START_ATTEMPTS - 1  # a backoff between attempts
    assert operator.err.getvalue().splitlines()[-1] == (
        f"stopped: a batch of 10 appointments still failed after {backfill.START_ATTEMPTS} attempts: "
        "ThrottlingException; scanned 10 appointments, handed 10 in 1 execution (5 failed attempts) before it; "
        f"run the same command again to resume (state file {operator.state})"
    )
    assert operator.saved()["position"] == inputs[0][-1]["keys"]

    assert operator.backfill() == 0
    assert inputs[6] == inputs[1]  # the next run starts with the batch that failed
    assert len(inputs) == 8
    assert planned(operator.deployment) == Counter(ids(kinds["ahead"]) | ids(kinds["due"]))


def dynamodb_throttling() -> AWSResponse:
    """DynamoDB's answer to a request over the table's throughput, as it goes over the wire (400,
    ``ProvisionedThroughputExceededException``: https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Scan.html,
    Errors), for the client's retry handler to read."""
    body = json.dumps(
        {
            "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            "message": "The level of configured provisioned throughput for the table was exceeded.",
        }
    )
    headers = HTTPHeaders()
    headers["Content-Type"] = "application/x-amz-json-1.0"
    return AWSResponse("https://dynamodb.us-east-1.amazonaws.com/", 400, headers, MockRawResponse(body))


def test_a_throttled_scan_is_retried_by_the_client(operator: Operator) -> None:
    kinds = seed(operator.deployment, 30)
    sent: list[int] = []

    def throttled_once(**_: Any) -> AWSResponse | None:
        sent.append(len(sent) + 1)
        return dynamodb_throttling() if len(sent) == 2 else None  # the second page's first try

    # On the wire (before-send), under the client's retries: boto3's standard mode tries it again.
    operator.session.events.register_first("before-send.dynamodb.Scan", throttled_once)
    pages: list[int] = []
    operator.session.events.register("after-call.dynamodb.Scan", lambda **_: pages.append(1))
    assert operator.backfill() == 0, operator.err.getvalue()
    assert len(sent) == len(pages) + 1  # every page sent once, the throttled one twice
    assert planned(operator.deployment) == Counter(ids(kinds["ahead"]) | ids(kinds["due"]))
    assert operator.saved()["failed_attempts"] == 0  # the command never saw it


def test_a_scan_throttled_beyond_the_retries_stops_the_run_and_the_next_run_resumes_it(operator: Operator) -> None:
    kinds = seed(operator.deployment, 30)
    calls = [0]

    def throttled_third_page(**_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        calls[0] += 1
        if calls[0] != 3:
            return None
        return AWSResponse("https://local.invalid/", 400, HTTPHeaders(), None), {
            "Error": {"Code": "ProvisionedThroughputExceededException", "Message": "throughput exceeded"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }

    # What the command sees once the client's retries are spent (before-call answers after them).
    operator.session.events.register_first("before-call.dynamodb.Scan", throttled_third_page)
    assert operator.backfill() == 1
    table = operator.deployment.table_name("AppointmentsTable")
    assert operator.err.getvalue() == (
        f"stopped: DynamoDB throttled dynamodb:Scan on {table} in us-east-1, even after retries "
        "(ProvisionedThroughputExceededException); the table is busy: a lower --rate leaves it more room; "
        "scanned 20 appointments, handed 20 in 2 executions (0 failed attempts); run the same command again to "
        f"resume (state file {operator.state})\n"
    )
    assert (operator.saved()["scanned"], operator.saved()["finished"]) == (20, False)

    assert operator.backfill() == 0
    assert planned(operator.deployment) == Counter(ids(kinds["ahead"]) | ids(kinds["due"]))


def test_a_scan_dynamodb_refuses_for_another_reason_stops_with_exit_2(operator: Operator) -> None:
    seed(operator.deployment, 10)
    operator.session.events.register_first(
        "before-call.dynamodb.Scan",
        lambda **_: refusal("ValidationException", "The provided key element does not match"),
    )
    assert operator.backfill() == 2
    table = operator.deployment.table_name("AppointmentsTable")
    assert operator.err.getvalue().startswith(
        f"error: DynamoDB refused dynamodb:Scan on {table}: ValidationException: The provided key element does not "
        "match; scanned 0 appointments"
    )


# --- With the pipe, and the Standard variant ----------------------------------------------------------


def test_the_backfill_never_overrides_what_the_stream_planned_nor_the_stream_what_it_planned(
    operator: Operator,
) -> None:
    deployment = operator.deployment
    streamed = [appointment(f"streamed-{n}", 3 * DAY + n) for n in range(10)]
    put_appointments(deployment, streamed)
    deployment.run_pipe()  # the stream plans them, each with its change's version
    before = reminders(deployment)
    assert all("version" in record for record in before.values())

    assert operator.backfill() == 0
    assert reminders(deployment) == before  # untouched: not even updatedAt

    backfilled = [appointment(f"backfilled-{n}", 4 * DAY + n) for n in range(10)]
    put_appointments(deployment, backfilled)
    assert operator.backfill("--restart") == 0
    deployment.run_pipe()  # the stream now delivers their INSERTs: planned already, only the version moves on
    after = reminders(deployment)
    assert planned(deployment) == Counter(ids(streamed) | ids(backfilled))
    for reminder_id in ids(backfilled):
        assert after[reminder_id]["state"] == "PENDING" and "version" in after[reminder_id]


def test_a_standard_workflow_is_started_asynchronously_as_the_pipe_starts_it(
    clock: Any, tmp_path: Path, template_data: dict[str, Any]
) -> None:
    template = load_template(to_yaml(build_template(ReminderProps(workflow_type="STANDARD"))))
    with LocalDeployment(template, {"SenderEmail": SENDER}, use_handler_files=True, echo_logs=False) as deployment:
        operator = Operator(deployment, tmp_path / "backfill.json")
        kinds = seed(deployment, 40)
        inputs = operator.starts()
        sync_calls = after_call(operator.session, "StartSyncExecution", lambda call: None)
        assert operator.backfill() == 0
        assert "(STANDARD, StartExecution)" in operator.out.getvalue()
        assert len(inputs) == 4 and sync_calls == []
        deployment.wait()
        assert {e["status"] for e in deployment.executions()} == {"SUCCEEDED"}
        assert planned(deployment) == Counter(ids(kinds["ahead"]) | ids(kinds["due"]))


# --- Pacing and progress --------------------------------------------------------------------------------


def test_the_rate_bounds_the_reads_in_every_stretch_of_the_run(operator: Operator) -> None:
    seed(operator.deployment, 100)
    scanned_at: list[float] = []
    operator.session.events.register("before-call.dynamodb.Scan", lambda **_: scanned_at.append(operator.clock.now))
    operator.out, operator.err = io.StringIO(), io.StringIO()
    code = backfill.main(
        ["--stack", operator.stack, "--state", str(operator.state), "--rate", "20"],
        session=operator.session,
        out=operator.out,
        err=operator.err,
        sleep=operator.clock.sleep,
        clock=operator.clock,
    )
    assert code == 0
    # Ten pages of ten. AWS may answer an eleventh, empty, page: a LastEvaluatedKey "does not necessarily
    # mean that there is more data" (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Scan.html);
    # moto ends on the tenth.
    assert len(scanned_at) >= 10
    gaps = [later - earlier for earlier, later in itertools.pairwise(scanned_at)]
    assert min(gaps) >= PIPE_BATCH_SIZE / 20  # a page of ten waits half a second after the one before
    assert "at most 20 a second" in operator.out.getvalue()


def test_an_empty_page_that_is_not_the_last_is_skipped_and_the_scan_goes_on(operator: Operator) -> None:
    kinds = seed(operator.deployment, 30)
    inputs = operator.starts()
    pages = [0]

    def empty_second_page(params: dict[str, Any], **_: Any) -> Any:
        # What DynamoDB may answer: no item, and a LastEvaluatedKey where the page stopped (here: where
        # it started), so the scan goes on from there.
        pages[0] += 1
        if pages[0] != 2:
            return None
        start = json.loads(params["body"])["ExclusiveStartKey"]
        return AWSResponse("https://local.invalid/", 200, HTTPHeaders(), None), {
            "Items": [],
            "Count": 0,
            "ScannedCount": 0,
            "LastEvaluatedKey": start,
            "ResponseMetadata": {"HTTPStatusCode": 200},
        }

    operator.session.events.register_first("before-call.dynamodb.Scan", empty_second_page)
    assert operator.backfill() == 0
    assert pages[0] >= 4 and len(inputs) == 3
    assert planned(operator.deployment) == Counter(ids(kinds["ahead"]) | ids(kinds["due"]))
    assert (operator.saved()["scanned"], operator.saved()["handed"]) == (30, 30)


def test_the_progress_bar_counts_scanned_handed_and_failed_attempts(operator: Operator) -> None:
    seed(operator.deployment, 30)
    throttle(operator.session, "StartSyncExecution", times=1)
    terminal = Terminal()
    assert operator.backfill(err=terminal) == 0
    drawn = terminal.getvalue()
    assert "scanned: 100%" in drawn and "30/30" in drawn  # the total is the table's item count
    assert "handed=30, executions=3, failed=1" in drawn
    assert "attempt 1 failed: ThrottlingException" in drawn


def test_without_a_terminal_there_is_no_bar(operator: Operator) -> None:
    seed(operator.deployment, 10)
    assert operator.backfill() == 0
    assert operator.err.getvalue() == ""
    terminal = Terminal()
    assert operator.backfill("--restart", "--no-progress", err=terminal) == 0
    assert terminal.getvalue() == ""


# --- Exit 2: what stops it before it starts ---------------------------------------------------------------


def test_a_state_file_of_another_table_is_refused(operator: Operator) -> None:
    operator.state.write_text(
        json.dumps({"version": 1, "table": "arn:aws:dynamodb:us-east-1:123456789012:table/Other", "workflow": "w"}),
        encoding="utf-8",
    )
    assert operator.backfill() == 2
    assert operator.err.getvalue() == (
        f"error: state file {operator.state} is for table arn:aws:dynamodb:us-east-1:123456789012:table/Other, "
        f"not {operator.deployment.resources['AppointmentsTable'].attributes['Arn']}: pass another --state, "
        "or --restart\n"
    )


@pytest.mark.parametrize("content", ["{not json", '{"version": 7}', "[1, 2]", '{"version": 1, "colour": "red"}'])
def test_a_state_file_that_is_not_one_is_refused(operator: Operator, content: str) -> None:
    operator.state.write_text(content, encoding="utf-8")
    assert operator.backfill() == 2
    assert operator.err.getvalue().startswith("error: ")
    assert str(operator.state) in operator.err.getvalue()


def test_a_workflow_that_is_gone_is_named(operator: Operator) -> None:
    operator.session.events.register_first(
        "before-call.sfn.DescribeStateMachine",
        lambda **_: refusal("StateMachineDoesNotExist", "State Machine Does Not Exist"),
    )
    assert operator.backfill() == 2
    assert operator.err.getvalue() == (
        f"error: cannot read the stack's workflow {operator.deployment.state_machine_arn}: "
        "StateMachineDoesNotExist: State Machine Does Not Exist\n"
    )


def refusal(code: str, message: str) -> tuple[AWSResponse, dict[str, Any]]:
    """An AWS error answer, as a ``before-call`` handler returns it."""
    return AWSResponse("https://local.invalid/", 400, HTTPHeaders(), None), {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": 400},
    }


def test_a_scan_the_credentials_may_not_make_stops_with_exit_2(operator: Operator) -> None:
    seed(operator.deployment, 30)
    operator.session.events.register_first(
        "before-call.dynamodb.Scan",
        lambda **_: refusal("AccessDeniedException", "not authorized to perform dynamodb:Scan"),
    )
    assert operator.backfill() == 2
    assert operator.err.getvalue().startswith(
        "error: access denied: dynamodb:Scan in us-east-1 is not allowed for these credentials "
        "(not authorized to perform dynamodb:Scan); scanned 0 appointments"
    )


def test_python_m_tapstack_backfill_is_wired(bare_account: boto3.Session, capsys: pytest.CaptureFixture[str]) -> None:
    assert tapstack_main(["backfill", "--stack", "nothing-here"]) == 2
    assert "no stack named nothing-here" in capsys.readouterr().err


def test_without_boto3_backfill_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "tapstack.operations.backfill", None)  # the import fails as without boto3
    monkeypatch.delattr(tapstack.operations, "backfill", raising=False)
    assert tapstack_main(["backfill"]) == 2
    assert capsys.readouterr().err.startswith("error: backfill needs boto3: pip install 'tapstack[local]'")
