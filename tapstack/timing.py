"""How long each part of an execution may take, and why the whole fits Express's five minutes.

An Express execution runs at most 5 minutes; a Standard one is given the same limit, so that the
claim lease means the same for both.
https://docs.aws.amazon.com/step-functions/latest/dg/concepts-standard-vs-express.html

The worst case of a Task is every attempt running into its ``TimeoutSeconds``, with the longest
wait between attempts (``JitterStrategy: FULL`` only shortens them). One execution runs the
processor, then its reminders in waves of ``max_concurrency`` (each wave: both senders side by side,
then the status updater), then maybe the continuation; the props refuse settings whose worst case
does not fit, so that no execution is cut off by the limit in the middle of its retries.
"""

from __future__ import annotations

import math

#: Express's limit, and the workflow's TimeoutSeconds.
EXECUTION_TIMEOUT_SECONDS = 300
#: A claim lasts as long as the execution that made it can, and a minute more: no other run takes
#: a reminder while a sender may still be working on it.
CLAIM_LEASE_SECONDS = EXECUTION_TIMEOUT_SECONDS + 60

#: The processor reads the due index and claims a batch; the senders and the updater make a few calls.
PROCESSOR_TIMEOUT_SECONDS = 25
DELIVERY_TIMEOUT_SECONDS = 8
#: A Task waits this much longer than its function's own timeout, so that Lambda reports it first.
TASK_TIMEOUT_MARGIN_SECONDS = 5
CONTINUATION_TIMEOUT_SECONDS = 10

#: Retries inside an execution (Lambda's own transient errors, the handlers' RetryableError): few and
#: short; what still fails is retried by the next run (a deferred channel, a reminder left due) or by
#: the pipe (a stream batch), not by a long wait here.
RETRY_ATTEMPTS = 2
RETRY_INTERVAL_SECONDS = 1
RETRY_BACKOFF_RATE = 2


def task_timeout(function_timeout: int) -> int:
    return function_timeout + TASK_TIMEOUT_MARGIN_SECONDS


def worst_case_seconds(timeout: int, attempts: int = RETRY_ATTEMPTS) -> int:
    """A Task whose every attempt times out: each attempt's timeout, and each wait before a retry."""
    waits: int = sum(RETRY_INTERVAL_SECONDS * RETRY_BACKOFF_RATE**retry for retry in range(attempts))
    return (attempts + 1) * timeout + waits


def execution_worst_case_seconds(claim_batch_size: int, max_concurrency: int) -> int:
    """The longest an execution can take: processor, every wave of deliveries, continuation."""
    waves = math.ceil(claim_batch_size / max_concurrency)
    delivery = worst_case_seconds(task_timeout(DELIVERY_TIMEOUT_SECONDS))
    return (
        worst_case_seconds(task_timeout(PROCESSOR_TIMEOUT_SECONDS))
        + waves * 2 * delivery  # a sender (both run side by side), then the status updater
        + worst_case_seconds(CONTINUATION_TIMEOUT_SECONDS)
    )
