#!/usr/bin/env python3
"""Plant realistic bugs, one at a time, and see whether the tests catch each (mutation testing by hand).

    .venv/bin/python benchmarks/mutations.py                      # every bug: about an hour on 2 busy cores
    .venv/bin/python benchmarks/mutations.py --only claim-time,update-connection-errors
    .venv/bin/python benchmarks/mutations.py --list               # the bugs, where each is planted

Each bug is a small edit of the code as a developer could get it wrong: a condition dropped from a
conditional write, a token check removed, a retry classified wrong, the lease off by one, a version
compare reversed, a grant a role should not have. For each, the repository's files (``git ls-files``,
with new files not yet committed) are copied to a temporary directory, the edit is applied there
(never here), and the tests relevant to the file run against that copy with this checkout's
interpreter, stopping at the first failure: the bug is *caught* (by that test) or *missed*. A control
run first checks that the same tests pass on the unedited copy. Prints one table (stdout) and
progress (stderr); ``--json`` writes the results too. benchmarks/README.md has the last table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROCESSOR = "handlers/process_appointments.py"
MARKS = "handlers/channel_marks.py"
UPDATER = "handlers/update_status.py"

#: The tests that exercise each part, the quicker files first (a run stops at the first failure).
PROCESSOR_TESTS = (
    "tests/test_protocol.py",
    "tests/test_process_appointments.py",
    "tests/test_end_to_end.py",
    "tests/test_protocol_properties.py",
)
SENDER_TESTS = (
    "tests/test_protocol.py",
    "tests/test_channel_marks.py",
    "tests/test_send_email.py",
    "tests/test_send_sms.py",
    "tests/test_end_to_end.py",
    "tests/test_protocol_properties.py",
)
UPDATER_TESTS = (
    "tests/test_protocol.py",
    "tests/test_update_status.py",
    "tests/test_end_to_end.py",
    "tests/test_protocol_properties.py",
)
#: Only the scenario tests: a gained grant must be caught by what the roles were seen doing, not
#: only by the template's expected shape (tests/test_iam_policies.py, tests/test_template.py).
LEAST_PRIVILEGE_TESTS = ("tests/test_least_privilege.py", "tests/test_least_privilege_reach.py")


#: A schedule run's final decision (``finalize(..., still, **stamp)``) written only while the reminder
#: is open: without the conditions that tie it to the record it was decided from (the same
#: appointmentTime and version). Either alone is enough today: every re-plan moves both.
WITHOUT_TIME = "OPEN, now=run.now)"


@dataclass(frozen=True)
class Bug:
    name: str
    area: str
    what: str
    file: str
    edits: tuple[tuple[str, str], ...]  # (text, replacement), each text found exactly once
    tests: tuple[str, ...]


def bug(name: str, area: str, what: str, file: str, *edits: tuple[str, str], tests: tuple[str, ...]) -> Bug:
    return Bug(name, area, what, file, edits, tests)


BUGS = [
    # ---- the processor ------------------------------------------------------------------------------
    bug(
        "claim-time",
        "processor",
        "the claim's write without its appointmentTime condition",
        PROCESSOR,
        ('f"({OPEN} OR claimToken = :k) AND appointmentTime = :t",', 'f"({OPEN} OR claimToken = :k)",'),
        (
            "        now=run.now,\n        t=planned,\n    )\n    if not written:",
            "        now=run.now,\n    )\n    if not written:",
        ),
        tests=PROCESSOR_TESTS,
    ),
    bug(
        "started-time",
        "processor",
        "the SKIPPED/FAILED write (appointment started) without its appointmentTime and version conditions",
        PROCESSOR,
        (
            "return finalize(reminder_id, state, reason, still, **stamp)",
            "return finalize(reminder_id, state, reason, " + WITHOUT_TIME,
        ),
        tests=PROCESSOR_TESTS,
    ),
    bug(
        "superseded-time",
        "processor",
        "the SKIPPED Superseded write without its appointmentTime and version conditions",
        PROCESSOR,
        (
            'return finalize(reminder_id, "SKIPPED", "Superseded", still, **stamp)',
            'return finalize(reminder_id, "SKIPPED", "Superseded", ' + WITHOUT_TIME,
        ),
        tests=PROCESSOR_TESTS,
    ),
    bug(
        "no-channel-time",
        "processor",
        "the SKIPPED NoChannelRequested write without its appointmentTime and version conditions",
        PROCESSOR,
        (
            'return finalize(reminder_id, "SKIPPED", "NoChannelRequested", still, **stamp)',
            'return finalize(reminder_id, "SKIPPED", "NoChannelRequested", ' + WITHOUT_TIME,
        ),
        tests=PROCESSOR_TESTS,
    ),
    bug(
        "cancelled-time",
        "processor",
        "a schedule run's CANCELLED write (appointment cancelled, deleted, offset removed) without its"
        " appointmentTime and version conditions",
        PROCESSOR,
        (
            'return finalize(reminder_id, "CANCELLED", why or "OffsetRemoved", still, **stamp)',
            'return finalize(reminder_id, "CANCELLED", why or "OffsetRemoved", ' + WITHOUT_TIME,
        ),
        tests=PROCESSOR_TESTS,
    ),
    bug(
        "cancelled-version",
        "processor",
        "a schedule run's CANCELLED write without its version condition (a cancel read before a same-time"
        " re-booking lands after it: the first bug the long run found)",
        PROCESSOR,
        (
            'return finalize(reminder_id, "CANCELLED", why or "OffsetRemoved", still, **stamp)',
            'return finalize(reminder_id, "CANCELLED", why or "OffsetRemoved", f"{OPEN} AND appointmentTime = :t",'
            " now=run.now, t=planned)",
        ),
        tests=PROCESSOR_TESTS,
    ),
    bug(
        "claim-token",
        "processor",
        "the claim taken over when any claim is there, not only this execution's own (token check removed)",
        PROCESSOR,
        (
            'f"({OPEN} OR claimToken = :k) AND appointmentTime = :t",',
            'f"({OPEN} OR attribute_exists(claimToken)) AND appointmentTime = :t",',
        ),
        tests=PROCESSOR_TESTS,
    ),
    bug(
        "cancel-live-claim",
        "processor",
        "a stream cancel only of a PENDING reminder, not of a live claim (issue 13, case 1)",
        PROCESSOR,
        ("OR #s IN (:p, :sending)) AND {newer}", "OR #s = :p) AND {newer}"),
        ('            p="PENDING",\n            sending="SENDING",\n', '            p="PENDING",\n'),
        tests=PROCESSOR_TESTS,
    ),
    bug(
        "version-reversed",
        "processor",
        "the plan's version compare reversed (an older change wins)",
        PROCESSOR,
        ('"(attribute_not_exists(version) OR version < :v)"', '"(attribute_not_exists(version) OR version > :v)"'),
        tests=PROCESSOR_TESTS,
    ),
    bug(
        "replan-keeps-claim",
        "processor",
        "a re-plan that keeps the claim token (a claim for the old time still sends)",
        PROCESSOR,
        (
            '" REMOVE claimToken, claimExpiresAt, emailResult, smsResult, reason, deferrals, deferReason"',
            '" REMOVE emailResult, smsResult, reason, deferrals, deferReason"',
        ),
        tests=PROCESSOR_TESTS,
    ),
    bug(
        "open-off-by-one",
        "processor",
        "a reminder open only after its time, not at it (attemptAt < now): the lease and the due time off by one",
        PROCESSOR,
        ('OPEN = "attemptAt <= :now"', 'OPEN = "attemptAt < :now"'),
        tests=PROCESSOR_TESTS,
    ),
    bug(
        "lease-from-invocation",
        "processor",
        "the lease counted from the invocation, not the execution's start (a retry cannot find its own claims)",
        PROCESSOR,
        (
            "self.lease_end = int(started.timestamp()) + CLAIM_LEASE_SECONDS",
            "self.lease_end = self.now + CLAIM_LEASE_SECONDS",
        ),
        tests=PROCESSOR_TESTS,
    ),
    bug(
        "ledger-ignored",
        "processor",
        "a final decision that ignores the sent ledger (an earlier plan's send for this time)",
        PROCESSOR,
        ('or (not result and f"{channel}@{at}" in ledger)', "or False"),
        tests=PROCESSOR_TESTS,
    ),
    bug(
        "correction-not-retried",
        "processor",
        "a final decision on a reminder that went out, whose processor died before its correction to SENT,"
        " not corrected by the retry (row 2c: found by the long run, seed 202)",
        PROCESSOR,
        ("    if final and out and write(", "    if written and out and write("),
        tests=PROCESSOR_TESTS,
    ),
    bug(
        "uncertain-send-hidden",
        "processor",
        "a final decision that does not show a send of unknown outcome whose mark a same-time re-plan cleared"
        " (row 2d: found by the long run, seed 606 at 20 steps)",
        PROCESSOR,
        ("    if final and not out:\n        show_unknown(reminder_id, item)\n", ""),
        tests=PROCESSOR_TESTS,
    ),
    bug(
        "uncertain-send-not-retried",
        "processor",
        "a final decision whose processor died before showing a send of unknown outcome, not shown by the retry"
        " (row 2d)",
        PROCESSOR,
        ("    if final and not out:\n", "    if written and not out:\n"),
        tests=PROCESSOR_TESTS,
    ),
    # ---- the senders and their channel marks ----------------------------------------------------------
    bug(
        "mark-ledger",
        "channel marks",
        "the mark without its ledger check (NOT contains(sent, :key)): a time sent before is sent again",
        MARKS,
        (
            '" AND attribute_not_exists(#r) AND NOT contains(sent, :key)",',
            '" AND attribute_not_exists(#r)",',
        ),
        ("            key=key,\n", ""),
        tests=SENDER_TESTS,
    ),
    bug(
        "mark-token",
        "channel marks",
        "the mark without its claim token check",
        MARKS,
        ('"claimToken = :t AND #s = :sending AND appointmentTime = :at"', '"#s = :sending AND appointmentTime = :at"'),
        ('            t=job["claimToken"],\n', ""),
        tests=SENDER_TESTS,
    ),
    bug(
        "mark-time",
        "channel marks",
        "the mark without its appointmentTime condition",
        MARKS,
        ('"claimToken = :t AND #s = :sending AND appointmentTime = :at"', '"claimToken = :t AND #s = :sending"'),
        ('            at=job["appointmentTime"],\n        )\n    except', "        )\n    except"),
        tests=SENDER_TESTS,
    ),
    bug(
        "own-mark",
        "channel marks",
        "its own mark, repeated by botocore after a lost answer, not recognised",
        MARKS,
        (
            '    if result.get("attempt") == attempt:\n'
            "        return None  # our own write, repeated by botocore after its answer was lost: go ahead\n",
            "",
        ),
        tests=SENDER_TESTS,
    ),
    bug(
        "until-reversed",
        "channel marks",
        "a mark in progress compared with its 'until' the wrong way (a live attempt given up, a dead one waited for)",
        MARKS,
        ('if float(result.get("until", 0)) > time.time():', 'if float(result.get("until", 0)) < time.time():'),
        tests=SENDER_TESTS,
    ),
    bug(
        "provider-timeout-transient",
        "channel marks",
        "a lost answer from the provider (read timeout) taken for 'nothing sent': the mark withdrawn, the send retried",
        MARKS,
        (
            "if is_transient(error, idempotent=False):  # throttled, a 5xx, no connection: nothing went out",
            "if is_transient(error, idempotent=True):  # throttled, a 5xx, no connection: nothing went out",
        ),
        tests=SENDER_TESTS,
    ),
    bug(
        "lost-answer-frees-time",
        "channel marks",
        "a lost answer from the provider recorded as if nothing went out (its time leaves the ledger)",
        MARKS,
        (
            "finish(channel, job, attempt, result, went_out=is_transient(error, idempotent=True))",
            "finish(channel, job, attempt, result, went_out=False)",
        ),
        tests=SENDER_TESTS,
    ),
    bug(
        "cancelled-sent-typo",
        "channel marks",
        "the record of a message that went out during a cancel not corrected to SENT (a typo: CANCELED)",
        MARKS,
        (
            'old.get("state") == {"S": "CANCELLED"}:\n            # Cancelled',
            'old.get("state") == {"S": "CANCELED"}:\n            # Cancelled',
        ),
        tests=SENDER_TESTS,
    ),
    bug(
        "sent-over-cancel-unguarded",
        "channel marks",
        "a message sent during a cancel recorded over a CANCELLED record without its state (the result SENT,"
        " the record CANCELLED: row 8b's single write never made)",
        MARKS,
        ('values |= {"k": key, "c": "CANCELLED"}', 'values |= {"k": key, "c": "NONE"}'),
        tests=SENDER_TESTS,
    ),
    bug(
        "no-take-back",
        "channel marks",
        "a mark whose write failed transiently (its answers lost) not taken back",
        MARKS,
        (
            "        if is_transient(error, idempotent=True):\n"
            "            take_back(channel, job, attempt)\n"
            "        raise",
            "        raise",
        ),
        tests=SENDER_TESTS,
    ),
    bug(
        "late-job-off-by-one",
        "senders",
        "a job is late only after its appointment's start, not at it (off by one)",
        MARKS,
        ('if time.time() >= event["appointmentTime"]:', 'if time.time() > event["appointmentTime"]:'),
        tests=SENDER_TESTS,
    ),
    bug(
        "opt-out-ignored",
        "senders",
        "the SMS sender no longer checks whether the number opted out",
        "handlers/send_sms.py",
        (
            '    if sns.check_if_phone_number_is_opted_out(phoneNumber=message["to"])["isOptedOut"]:\n'
            '        return answer(CHANNEL, "SKIPPED", "OptedOut")  # SNS would not deliver it: say so, not SENT\n',
            "",
        ),
        tests=SENDER_TESTS,
    ),
    # ---- UpdateStatus ---------------------------------------------------------------------------------
    bug(
        "update-connection-errors",
        "status updater",
        "EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError (UpdateItem and Publish) not retryable:"
        " only ClientErrors are caught",
        UPDATER,
        (
            "    except Exception as error:\n        # Every write",
            "    except ClientError as error:\n        # Every write",
        ),
        (
            "from botocore.config import Config\n",
            "from botocore.config import Config\nfrom botocore.exceptions import ClientError\n",
        ),
        tests=UPDATER_TESTS,
    ),
    bug(
        "update-lost-answer",
        "status updater",
        "a lost answer (ReadTimeoutError) on UpdateItem or Publish not retryable (classified as for a send)",
        UPDATER,
        ("if not is_transient(error, idempotent=True):", "if not is_transient(error, idempotent=False):"),
        tests=UPDATER_TESTS,
    ),
    bug(
        "publish-best-effort",
        "status updater",
        "connection errors and timeouts on Publish swallowed as 'best effort' (the outcome is never announced)",
        UPDATER,
        (
            "            announce(event, state, results)\n",
            "            try:\n                announce(event, state, results)\n"
            "            except (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError):\n"
            '                log("WARNING", "not_announced", reminderId=reminder_id)\n',
        ),
        (
            "from botocore.config import Config\n",
            "from botocore.config import Config\n"
            "from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError\n",
        ),
        tests=UPDATER_TESTS,
    ),
    bug(
        "update-time",
        "status updater",
        "the final (and deferral) write without its appointmentTime condition",
        UPDATER,
        ('"claimToken = :t AND #s = :sending AND appointmentTime = :at"\n', '"claimToken = :t AND #s = :sending"\n'),
        ('"sending": "SENDING", "at": event["appointmentTime"], "u": now}', '"sending": "SENDING", "u": now}'),
        tests=UPDATER_TESTS,
    ),
    bug(
        "update-state",
        "status updater",
        "the final write without its SENDING condition (a cancelled reminder's token accepted)",
        UPDATER,
        (
            '"claimToken = :t AND #s = :sending AND appointmentTime = :at"\n',
            '"claimToken = :t AND appointmentTime = :at"\n',
        ),
        ('"sending": "SENDING", "at"', '"at"'),
        tests=UPDATER_TESTS,
    ),
    bug(
        "final-keeps-claim",
        "status updater",
        "a final state that keeps the claim token (issue 13, case 2)",
        UPDATER,
        ('removed = "claimToken, claimExpiresAt, dueShard, attemptAt"', 'removed = "dueShard, attemptAt"'),
        tests=UPDATER_TESTS,
    ),
    bug(
        "lambda-errors-failed",
        "status updater",
        "a Lambda error (Lambda.Unknown: a timeout) taken for a permanent failure, not deferred",
        UPDATER,
        (
            r'DEFERRABLE = re.compile(r"RetryableError|Lambda\.|States\.Timeout")',
            r'DEFERRABLE = re.compile(r"RetryableError|States\.Timeout")',
        ),
        tests=UPDATER_TESTS,
    ),
    bug(
        "backoff-off-by-one",
        "status updater",
        "the deferral backoff off by one (the first deferral waits 2 minutes)",
        UPDATER,
        ("FIRST_BACKOFF_SECONDS << (deferrals - 1)", "FIRST_BACKOFF_SECONDS << deferrals"),
        tests=UPDATER_TESTS,
    ),
    bug(
        "sent-beats-deferred",
        "status updater",
        "a reminder with one channel sent and one deferred recorded SENT, final (the deferred one never retried)",
        UPDATER,
        ('for state in ("DEFERRED", "SENT", "FAILED")', 'for state in ("SENT", "DEFERRED", "FAILED")'),
        tests=UPDATER_TESTS,
    ),
    bug(
        "retry-deferral-count",
        "status updater",
        "a retry recognises an outcome as its own without comparing the deferral count",
        UPDATER,
        (
            '    if state == "DEFERRED" and old.get("deferrals") != {"N": str(int(event.get("deferrals", 0)) + 1)}:\n'
            "        return False\n",
            "",
        ),
        tests=UPDATER_TESTS,
    ),
    bug(
        "sent-overwritten",
        "status updater",
        "a late job's answers (AppointmentStarted) recorded over a channel an earlier claim sent"
        " (found by the long run, seed 303)",
        UPDATER,
        (
            "    if unsent:  # sent is sent, by this plan or an earlier one for this time: never recorded over\n",
            "    if False:\n",
        ),
        tests=UPDATER_TESTS,
    ),
    bug(
        "ledger-overwritten",
        "status updater",
        "a late job's answers recorded over a time an earlier plan sent (the ledger, delivered, not asked:"
        " found by the long run, seed 606)",
        UPDATER,
        (
            '            values[f"{channel}At"] = f"{channel}@{event[\'appointmentTime\']}"\n',
            "",
        ),
        (' AND NOT contains(delivered, :{channel}At)"', '"'),
        tests=UPDATER_TESTS,
    ),
    # ---- what every handler shares --------------------------------------------------------------------
    bug(
        "no-connection-not-transient",
        "common",
        "no connection (EndpointConnectionError, ConnectTimeoutError) no longer transient, for every handler",
        "handlers/common.py",
        ("|Internal|Unavailable|EndpointConnection|ConnectTimeout", "|Internal|Unavailable"),
        tests=(
            "tests/test_protocol.py",
            "tests/test_update_status.py",
            "tests/test_channel_marks.py",
            "tests/test_process_appointments.py",
        ),
    ),
    # ---- least privilege ------------------------------------------------------------------------------
    bug(
        "updater-delete",
        "least privilege",
        "the status updater's role gains dynamodb:DeleteItem on the Reminders table",
        "tapstack/functions.py",
        (
            "                *record_channel,\n                *policies.topic_publishing_statements(Ref(topic)),",
            "                *policies.table_statements(reminders_arn, [dynamodb.UpdateItem, dynamodb.DeleteItem]),\n"
            "                *policies.topic_publishing_statements(Ref(topic)),",
        ),
        tests=LEAST_PRIVILEGE_TESTS,
    ),
    bug(
        "email-reads-appointments",
        "least privilege",
        "the email sender's role gains dynamodb:GetItem on the Appointments table (customer data)",
        "tapstack/functions.py",
        (
            '                *policies.email_sending_statements(settings["SenderEmail"]),\n',
            '                *policies.email_sending_statements(settings["SenderEmail"]),\n'
            "                *policies.table_statements(appointments.arn, [dynamodb.GetItem]),\n",
        ),
        tests=LEAST_PRIVILEGE_TESTS,
    ),
    bug(
        "processor-updates-appointments",
        "least privilege",
        "the processor's role gains dynamodb:UpdateItem on the Appointments table (the booking app's)",
        "tapstack/functions.py",
        (
            "*policies.table_statements(appointments.arn, [dynamodb.BatchGetItem]),",
            "*policies.table_statements(appointments.arn, [dynamodb.BatchGetItem, dynamodb.UpdateItem]),",
        ),
        tests=LEAST_PRIVILEGE_TESTS,
    ),
    bug(
        "sms-deny-dropped",
        "least privilege",
        "the SMS sender's Deny on topics dropped: its sns:Publish on * reaches every topic",
        "tapstack/policies.py",
        (
            "        Statement(\n            Effect=Deny,\n            Action=[sns.Publish],\n"
            '            Resource=[Sub("arn:${AWS::Partition}:sns:*:*:*")],\n        ),\n',
            "",
        ),
        tests=LEAST_PRIVILEGE_TESTS,
    ),
    bug(
        "sms-region-dropped",
        "least privilege",
        "the SMS sender's region condition dropped: SMS from any region",
        "tapstack/policies.py",
        (
            '            Resource=["*"],\n'
            '            Condition=Condition(StringEquals("aws:RequestedRegion", Region)),\n',
            '            Resource=["*"],\n',
        ),
        tests=LEAST_PRIVILEGE_TESTS,
    ),
]


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def tracked_files() -> list[str]:
    """The repository's files as a clean clone plus this checkout's new files would have them."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    return [name for name in listed.split("\0") if name and (ROOT / name).is_file()]


def copy_repository(into: Path) -> None:
    for name in tracked_files():
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    # The installed package maps tapstack.handlers to handlers/ (setup.cfg, package_dir); with the
    # copy first on sys.path, a link makes tapstack.handlers the copy's handlers/ as well.
    (into / "tapstack" / "handlers").symlink_to(Path("..") / "handlers")


def environment(copy: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}


def check_imports_from(copy: Path) -> None:
    """The copy, not this checkout, is what the tests import (tapstack and its handlers)."""
    code = "import tapstack, tapstack.handlers; print(tapstack.__file__); print(tapstack.handlers.__path__[0])"
    shown = subprocess.run(
        [sys.executable, "-c", code], cwd=copy, env=environment(copy), check=True, capture_output=True, text=True
    ).stdout.split()
    resolved = [Path(p).resolve() for p in shown]
    if not all(p.is_relative_to(copy.resolve()) for p in resolved):
        raise SystemExit(f"the copy's tests would import {shown}, not the copy: refusing to go on")


def apply(copy: Path, planted: Bug) -> int:
    """Edit the copy's file; the line of the first edit in the unedited file."""
    path = copy / planted.file
    text = path.read_text(encoding="utf-8")
    line = 0
    for original, replacement in planted.edits:
        found = text.count(original)
        if found != 1:
            raise SystemExit(f"{planted.name}: {planted.file} holds the text to edit {found} times, not once")
        if not line:
            line = text[: text.index(original)].count("\n") + 1
        text = text.replace(original, replacement)
    path.write_text(text, encoding="utf-8")
    return line


@dataclass
class Result:
    name: str
    area: str
    what: str
    where: str
    caught_by: str | None
    seconds: float
    note: str = ""


def run_tests(copy: Path, tests: tuple[str, ...], timeout: int) -> tuple[int, str]:
    command = [sys.executable, "-m", "pytest", *tests, "-x", "-q", "-rfE", "-n0", "--no-cov", "-p", "no:randomly"]
    try:
        done = subprocess.run(
            command, cwd=copy, env=environment(copy), capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return -1, "timed out"
    return done.returncode, done.stdout + done.stderr


def first_failure(output: str) -> str:
    match = re.search(r"^(?:FAILED|ERROR) (.+?)(?: - .*)?$", output, re.MULTILINE)
    return match.group(1) if match else "(no test named: see the output)"


def control(tests: set[str], timeout: int) -> None:
    """The tests pass on the unedited copy, or the table would mean nothing."""
    with tempfile.TemporaryDirectory(prefix="tapstack-control-") as directory:
        copy = Path(directory)
        copy_repository(copy)
        check_imports_from(copy)
        progress(f"control: {len(tests)} test files on the unedited copy")
        code, output = run_tests(copy, tuple(sorted(tests)), timeout)
        if code != 0:
            print(output[-5000:], file=sys.stderr)
            raise SystemExit("the tests fail without any planted bug: fix that first")


def plant(planted: Bug, timeout: int) -> Result:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"tapstack-{planted.name}-") as directory:
        copy = Path(directory)
        copy_repository(copy)
        line = apply(copy, planted)
        code, output = run_tests(copy, planted.tests, timeout)
    if code not in (-1, 0, 1):
        tail = "\n".join(output.splitlines()[-30:])
        raise SystemExit(f"{planted.name}: pytest exited {code} (not a test failure):\n{tail}")
    # A run that timed out caught nothing in time: reported missed, with the reason.
    caught_by = first_failure(output) if code == 1 else None
    note = "timed out" if code == -1 else ""
    return Result(
        planted.name, planted.area, planted.what, f"{planted.file}:{line}", caught_by, time.monotonic() - started, note
    )


def show(results: list[Result]) -> None:
    print("| bug | what is wrong | where | caught by |")
    print("|---|---|---|---|")
    for r in results:
        verdict = f"`{r.caught_by}`" if r.caught_by else "**missed**" + (f" ({r.note})" if r.note else "")
        print(f"| `{r.name}` | {r.what} | `{r.where}` | {verdict} |")
    caught = sum(1 for r in results if r.caught_by)
    print(
        f"\n{caught} of {len(results)} planted bugs caught; missed: "
        + (", ".join(r.name for r in results if not r.caught_by) or "none")
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated bug names")
    parser.add_argument("--list", action="store_true", help="list the bugs and where each is planted")
    parser.add_argument("--no-control", action="store_true", help="skip the control run")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per test run (default 1800)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    options = parser.parse_args()
    chosen = BUGS
    if options.only:
        names = options.only.split(",")
        unknown = set(names) - {b.name for b in BUGS}
        if unknown:
            parser.error(f"no such bug: {', '.join(sorted(unknown))}")
        chosen = [next(b for b in BUGS if b.name == name) for name in names]  # in the order given
    if options.list:
        for planted in chosen:
            print(f"{planted.name:32} {planted.area:16} {planted.file}: {planted.what}")
        return 0
    if not options.no_control:
        control({test for planted in chosen for test in planted.tests}, options.timeout)
    results = []
    for number, planted in enumerate(chosen, 1):
        progress(f"{number}/{len(chosen)} {planted.name}")
        results.append(plant(planted, options.timeout))
        outcome = results[-1].caught_by or f"MISSED {results[-1].note}".strip()
        progress(f"  {outcome} ({results[-1].seconds:.0f} s)")
    show(results)
    if options.json:
        options.json.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
