"""``python -m tapstack status`` on the local runner: the generated template deployed into moto, its
reminders brought into every state by the system itself (the pipe, the schedule, the functions, with faults
injected where a state needs one), and read back as an operator would.

Where moto does not answer as AWS would, the test gives AWS's answer, and says so:

- moto keeps what the functions print, but neither puts it into CloudWatch Logs nor extracts the
  embedded-metric-format metrics from it: ``CloudWatchFeed`` does both, as Lambda and CloudWatch do.
- moto's DescribeTable has no ``ItemCount`` for a global secondary index: DynamoDB's answer is played
  with the count it would report (the index's items).
- Two claims (SENDING) are written as the processor leaves them: a live one and one whose execution died.
"""

from __future__ import annotations

import io
import json
import re
import sys
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.endpoint
import pytest
import time_machine
from boto3.dynamodb.types import TypeSerializer
from botocore.awsrequest import AWSResponse, HTTPHeaders

import tapstack.operations
from tapstack.__main__ import main as tapstack_main
from tapstack.local import LocalDeployment
from tapstack.operations import status
from tapstack.operations.deployed import DeployedStack
from tapstack.props import ReminderProps
from tapstack.stack import build_template
from tapstack.storage import DUE_INDEX, DUE_INDEX_SHARDS
from tapstack.timing import CLAIM_LEASE_SECONDS
from tests.aws_answers import faults, record_operations
from tests.operations_support import PLACEHOLDER, CloudWatchFeed, operator_session, register_stack, reminders
from tests.support import DAY, HOUR, NOW, appointment, function_global, put_appointment

MINUTE = 60
#: When each part of the story happens (epoch seconds; the clock starts at NOW).
T0 = NOW  # a booking whose providers refuse it for now
T1 = NOW + 25 * MINUTE  # its appointment has started: a schedule run fails it
T2 = T1 + MINUTE  # the other bookings
T3 = T2 + 70 * MINUTE  # when the operator asks


def time_of(moment: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass
class System:
    deployment: LocalDeployment
    session: boto3.Session
    stack: str

    def status(self, *args: str) -> tuple[int, str]:
        out = io.StringIO()
        code = status.main(["--stack", self.stack, *args], session=self.session, out=out)
        return code, out.getvalue()


def claim(deployment: LocalDeployment, appointment_id: str, due_at: int, lease_end: int) -> None:
    """Reminder ``<appointment_id>#1440`` as the processor leaves it when it claims it (handlers/README.md,
    row 6): SENDING, in the due index until the lease ends."""
    reminder_id = f"{appointment_id}#1440"
    item = {
        "reminderId": reminder_id,
        "appointmentId": appointment_id,
        "offsetMinutes": 1440,
        "appointmentTime": due_at + DAY,
        "dueAt": due_at,
        "state": "SENDING",
        "claimToken": "9f" * 16,
        "claimExpiresAt": lease_end,
        "attemptAt": lease_end,
        "dueShard": str(zlib.crc32(reminder_id.encode()) % DUE_INDEX_SHARDS),
        "expiresAt": due_at + 91 * DAY,
    }
    serializer = TypeSerializer()
    deployment.client("dynamodb").put_item(
        TableName=deployment.table_name("RemindersTable"), Item={k: serializer.serialize(v) for k, v in item.items()}
    )


def index_count(deployment: LocalDeployment, session: boto3.Session) -> int:
    """DescribeTable answers as DynamoDB does, with the due index's ``ItemCount`` (moto leaves it out)."""
    client = deployment.client("dynamodb")
    table = client.describe_table(TableName=deployment.table_name("RemindersTable"))["Table"]
    count = sum(1 for record in reminders(deployment).values() if "dueShard" in record and "attemptAt" in record)
    for index in table["GlobalSecondaryIndexes"]:
        if index["IndexName"] == DUE_INDEX:
            index["ItemCount"] = count

    def answer(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        return AWSResponse("https://local.invalid/", 200, HTTPHeaders(), None), {
            "Table": table,
            "ResponseMetadata": {"HTTPStatusCode": 200},
        }

    session.events.register_first("before-call.dynamodb.DescribeTable", answer)
    return count


@pytest.fixture
def system(deploy: Callable[..., LocalDeployment], clock: time_machine.Coordinates) -> System:
    """Reminders in every state, by the system's own hands."""
    deployment = deploy()
    feed = CloudWatchFeed(deployment)
    # T0: booked 20 minutes ahead, so its reminder is due at once; both providers refuse it for now.
    put_appointment(deployment, appointment("starts-soon", 20 * MINUTE))
    deployment.inject("ses", "SendEmail", "Throttling", times=3)
    deployment.inject("sns", "Publish", "Throttling", times=3)
    deployment.run_pipe()  # deferred
    # T1: the appointment has started before the retry went out: the schedule run fails it.
    clock.shift(T1 - T0)
    deployment.run_schedule()
    deployment.wait()
    # T2: a reminder sent, one that failed, one skipped, one deferred, one cancelled, three planned.
    clock.shift(T2 - T1)
    put_appointment(deployment, appointment("sent", 2 * HOUR))
    put_appointment(
        deployment, appointment("bad-address", 2 * HOUR, customerEmail="not-an-address", customerPhone=None)
    )
    put_appointment(deployment, appointment("no-address", 2 * HOUR, customerEmail=None, notificationChannels={"email"}))
    deployment.run_pipe()
    put_appointment(deployment, appointment("refused", 2 * HOUR))
    deployment.inject("ses", "SendEmail", "Throttling", times=3)
    deployment.run_pipe()
    put_appointment(deployment, appointment("cancelled", 3 * DAY))
    deployment.run_pipe()
    put_appointment(deployment, appointment("cancelled", 3 * DAY, status="CANCELLED"))
    # Due 10 minutes before T3, and 10 minutes after it (``appointment`` counts from NOW).
    put_appointment(deployment, appointment("due", T3 - 10 * MINUTE + DAY - NOW))
    put_appointment(deployment, appointment("due-soon", T3 + 10 * MINUTE + DAY - NOW))
    put_appointment(deployment, appointment("later", 10 * DAY))
    deployment.run_pipe()
    deployment.wait()
    # T3: no schedule run since: "due" is 10 minutes overdue, "due-soon" due in 10 minutes; one reminder
    # is being delivered, another was claimed by an execution that died.
    clock.shift(T3 - T2)
    claim(deployment, "claimed", due_at=T3 - MINUTE, lease_end=T3 + 5 * MINUTE)
    claim(deployment, "stalled", due_at=T3 - 10 * MINUTE, lease_end=T3 - 2 * MINUTE)
    feed.deliver()
    session = operator_session(deployment)
    return System(deployment, session, register_stack(deployment))


def test_the_report_counts_every_state_names_the_deferred_and_overdue_and_the_latest_failures(
    system: System,
) -> None:
    records = reminders(system.deployment)
    assert {record["state"] for record in records.values()} == {
        "PENDING",
        "SENDING",
        "SENT",
        "FAILED",
        "SKIPPED",
        "CANCELLED",
    }
    indexed = index_count(system.deployment, system.session)
    code, report = system.status()
    assert code == 0, report
    deferred_at = int(records["refused#1440"]["attemptAt"])
    window = (T3 // HOUR + 1) * HOUR - 24 * HOUR
    assert report == "\n".join(
        [
            f"tapstack status: stack tapstack-local in us-east-1, {time_of(T3)}",
            "",
            "Open reminders, from DueIndex of Reminders-dev (a Query on each of its 8 shards, due up to "
            f"{time_of(T3 + 15 * MINUTE)}): 5 items read",
            "  due             1  PENDING and due: the next schedule run sends it",
            "  deferred        1  a channel was refused for now: tried again at its time",
            "  sending         1  claimed by a running execution",
            "  claim expired   1  SENDING, but its execution is gone: the next schedule run takes it over",
            "  due soon        1  PENDING, due within 15 minutes",
            f"  in the index   ~{indexed}  every PENDING and SENDING reminder, those planned later too "
            "(refreshed about every 6 hours)",
            "Deferred, by reason:",
            f"  Throttling  1  1 deferral at most; next try {time_of(deferred_at)}",
            # Booked inside its 24-hour window at T2: due from then, when it could first go out.
            f"Oldest overdue: refused#1440, due {time_of(T2)} ({(T3 - T2) // MINUTE} min ago), deferred",
            "",
            f"Outcomes, from the metrics in TapStack-dev (GetMetricData, hourly since {time_of(window)}: 24 periods):",
            "  SENT                  1",
            "  FAILED                1",
            "  SKIPPED               1",
            "  DEFERRED              2  deferrals (a reminder may be deferred more than once)",
            # "starts-soon", booked 20 minutes ahead, tried at T0 and failed at T1: 25 minutes late,
            # counted from when it could first go out (its booking), not a day before its appointment.
            "  worst lateness  1,500 s  OverdueSeconds: the most overdue reminder a schedule run found (25 min late)",
            "  Counted when UpdateStatus records a delivery, at least once (a retried one may count twice); not",
            "  counted: cancellations, and the reminders the processor closes without a delivery (Superseded,",
            "  NoChannelRequested, AppointmentStarted, NotSentBeforeAppointment).",
            "",
            "Latest failures, from the logs /aws/lambda/StatusUpdater-dev and /aws/lambda/AppointmentProcessor-dev "
            f"(FilterLogEvents since {time_of(T3 - 24 * HOUR)}): 2 found",
            f"  {time_of(T2)}  bad-address#1440  FAILED: email FAILED InvalidAddress, sms SKIPPED NoAddress",
            f"  {time_of(T1)}  starts-soon#1440  FAILED: NotSentBeforeAppointment",
            "",
        ]
    )
    assert indexed == 6  # "later" too, planned ten days ahead: counted, not read
    for contact in ("@example.com", "+1555", "Pat Example", "not-an-address"):
        assert contact not in report


def test_it_reads_the_due_index_the_metrics_and_the_logs_and_nothing_else(system: System) -> None:
    calls = record_operations(system.session)
    queries: list[dict[str, Any]] = []
    system.session.events.register("provide-client-params.dynamodb.Query", lambda params, **_: queries.append(params))
    assert system.status()[0] == 0
    assert Counter(calls) == Counter(
        {
            "cloudformation:DescribeStacks": 1,
            "dynamodb:Query": DUE_INDEX_SHARDS,  # one page a shard here
            "dynamodb:DescribeTable": 1,
            "cloudwatch:GetMetricData": 1,
            "cloudwatch-logs:FilterLogEvents": 2,
            "dynamodb:BatchGetItem": 1,  # the failed reminder's channel reasons
        }
    )
    assert {q["IndexName"] for q in queries} == {DUE_INDEX}
    assert sorted(q["ExpressionAttributeValues"][":shard"]["S"] for q in queries) == [str(n) for n in range(8)]
    assert {q["ExpressionAttributeValues"][":until"]["N"] for q in queries} == {str(T3 + status.LOOKAHEAD_SECONDS)}
    assert {q["ProjectionExpression"] for q in queries} == {
        "reminderId, #state, attemptAt, dueAt, deferrals, deferReason"
    }


def test_a_record_it_cannot_read_is_counted_apart(system: System) -> None:
    system.deployment.client("dynamodb").put_item(
        TableName=system.deployment.table_name("RemindersTable"),
        Item={
            "reminderId": {"S": "odd#1440"},
            "dueShard": {"S": "0"},
            "attemptAt": {"N": str(T3)},
            "dueAt": {"S": "x"},
        },
    )
    code, report = system.status()
    assert code == 0
    assert "): 6 items read, 1 of them unreadable (left out)\n" in report
    assert re.search(r"^  due +1  PENDING", report, re.MULTILINE)


def test_the_lookahead_holds_every_deferred_and_every_claimed_reminder(system: System) -> None:
    longest_deferral = function_global(system.deployment, "StatusUpdaterFunction", "LONGEST_BACKOFF_SECONDS")
    assert longest_deferral <= status.LOOKAHEAD_SECONDS
    assert status.LOOKAHEAD_SECONDS >= CLAIM_LEASE_SECONDS


def test_only_the_latest_failures_are_listed(system: System) -> None:
    code, report = system.status("--failures", "1")
    assert code == 0
    assert f"(FilterLogEvents since {time_of(T3 - 24 * HOUR)}): 2 found, the latest 1\n" in report
    assert "bad-address#1440" in report and "starts-soon#1440" not in report


def test_a_shorter_window_counts_and_lists_only_what_happened_in_it(system: System) -> None:
    code, report = system.status("--hours", "1")
    assert code == 0
    # The last whole hour, up to the next: everything happened before 10:00.
    assert f"(GetMetricData, hourly since {time_of((T3 // HOUR) * HOUR)}: 1 periods)" in report
    assert re.search(r"^  SENT +0$", report, re.MULTILINE)
    assert report.endswith(f"(FilterLogEvents since {time_of(T3 - HOUR)}): 0 found\n  none\n")


def test_a_fresh_stack_reports_nothing_open_and_no_outcome(
    deploy: Callable[..., LocalDeployment], clock: time_machine.Coordinates
) -> None:
    deployment = deploy()
    system = System(deployment, operator_session(deployment), register_stack(deployment))
    code, report = system.status()
    assert code == 0
    assert "): 0 items read\n" in report
    # moto's DescribeTable leaves the index's ItemCount out: the report says it does not know.
    assert "  in the index   ?  DynamoDB did not report the index's item count\n" in report
    assert "Oldest overdue: none\n" in report
    assert all(
        re.search(rf"^  {state} +0", report, re.MULTILINE) for state in ("SENT", "FAILED", "SKIPPED", "DEFERRED")
    )
    assert "  worst lateness  none reported  OverdueSeconds" in report
    assert report.endswith("): 0 found\n  none\n")


def test_a_part_that_cannot_be_read_is_named_and_the_rest_is_printed(system: System) -> None:
    def denied(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        return AWSResponse("https://local.invalid/", 400, HTTPHeaders(), None), {
            "Error": {"Code": "AccessDeniedException", "Message": "not authorized to perform logs:FilterLogEvents"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }

    system.session.events.register_first("before-call.cloudwatch-logs.FilterLogEvents", denied)
    code, report = system.status()
    assert code == 1
    assert report.endswith(
        "\nLatest failures: could not read: access denied: logs:FilterLogEvents in us-east-1 is not allowed for "
        "these credentials (not authorized to perform logs:FilterLogEvents)\n"
    )
    assert "Open reminders, from DueIndex" in report and "Outcomes, from the metrics" in report


def test_metrics_throttled_beyond_the_retries_are_named(system: System, monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr(botocore.endpoint.time, "sleep", waits.append)  # the retries run, without their waits
    with faults(system.session, "cloudwatch", "GetMetricData", *[metrics_throttled() for _ in range(5)]) as attempts:
        code, report = system.status()
    assert code == 1 and len(attempts) == 5 and len(waits) == 4
    assert (
        "\nOutcomes: could not read: AWS did not serve cloudwatch:GetMetricData in us-east-1, even after retries"
        in (report)
    )
    assert "Latest failures, from the logs" in report


def metrics_throttled() -> AWSResponse:
    """CloudWatch's throttling answer, in its query protocol's XML ("Throttling", 400: the common errors of
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CommonErrors.html)."""
    body = (
        "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
        "<Message>Rate exceeded</Message></Error><RequestId>r</RequestId></ErrorResponse>"
    )
    return AWSResponse("https://aws", 400, {}, _Body(body.encode()))


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


# --- Names: derived as the template gives them ----------------------------------------------------------


@pytest.mark.parametrize("prefix", ["", "Clinic"])
def test_the_names_it_reads_are_the_ones_the_template_gives(prefix: str) -> None:
    template = build_template(ReminderProps(prefix=prefix, sender_email="reminders@example.com")).to_dict()
    resources = template["Resources"]

    def named(value: Any) -> str:
        text = value["Fn::Sub"] if isinstance(value, dict) else value
        return str(text).replace("${" + prefix + "EnvironmentSuffix}", "dev")

    stack = DeployedStack(
        name="host",
        region="us-east-1",
        prefix=prefix,
        stack_id="id",
        status="CREATE_COMPLETE",
        status_reason="",
        parameters={},
        outputs={f"{prefix}EnvironmentSuffix": "dev"},
        clients=None,  # type: ignore[arg-type]
    )
    updater = resources[f"{prefix}StatusUpdaterFunction"]["Properties"]
    assert status.metrics_namespace(stack) == named(updater["Environment"]["Variables"]["METRICS_NAMESPACE"])
    for function, log_group in (
        ("StatusUpdater", "StatusUpdaterLogGroup"),
        ("AppointmentProcessor", "ProcessorLogGroup"),
    ):
        expected = named(resources[f"{prefix}{log_group}"]["Properties"]["LogGroupName"])
        assert status.log_group(stack, function) == expected


# --- Exit 2, help ---------------------------------------------------------------------------------------


def test_a_stack_without_its_outputs_exits_2(bare_account: boto3.Session, capsys: pytest.CaptureFixture[str]) -> None:
    from moto.cloudformation.models import cloudformation_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    bare_account.client("cloudformation").create_stack(
        StackName="rolled-back", TemplateBody=json.dumps({"Resources": PLACEHOLDER})
    )
    for stack in cloudformation_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].stacks.values():
        stack.status = "ROLLBACK_COMPLETE"  # a failed first create: no resources, no outputs
    assert status.main(["--stack", "rolled-back"], session=bare_account) == 2
    assert capsys.readouterr().err == "error: stack rolled-back is ROLLBACK_COMPLETE in us-east-1: it has no outputs\n"


def test_python_m_tapstack_status_is_wired(bare_account: boto3.Session, capsys: pytest.CaptureFixture[str]) -> None:
    assert tapstack_main(["status", "--stack", "nothing-here"]) == 2
    assert "no stack named nothing-here" in capsys.readouterr().err


def test_without_boto3_status_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "tapstack.operations.status", None)  # the import fails as without boto3
    monkeypatch.delattr(tapstack.operations, "status", raising=False)
    assert tapstack_main(["status"]) == 2
    assert capsys.readouterr().err.startswith("error: status needs boto3: pip install 'tapstack[local]'")
