"""What every handler shares: its log line, the names of AWS errors, and which of them are worth another try.

The build bundles this module into each handler that imports it (``from .common import ...``), so the
inlined ``index.py`` still stands alone.
"""

import json
import re
from typing import Any

from botocore.exceptions import BotoCoreError

# Nothing was done, so another try is safe: throttling (DynamoDB's, SES's, SNS's and KMS's own names
# for it), a 5xx answer, or a connection that was never made.
NOTHING_DONE = re.compile(
    r"Thrott|TooMany|RequestLimit|ThroughputExceeded|Internal|Unavailable|EndpointConnection|ConnectTimeout"
)
# The request may have been done and only its answer lost: safe to repeat only when the call is
# idempotent (a conditional write), never for a send.
ANSWER_LOST = re.compile(r"ReadTimeout|ConnectionClosed")


class RetryableError(Exception):
    """A failure worth another try: Step Functions retries the task by this name, with backoff."""


def log(level: str, event: str, **fields: Any) -> None:
    """One JSON line of ids, outcomes and error codes: never contact data or message text."""
    print(json.dumps({"level": level, "event": event, **fields}))


def error_code(error: BaseException) -> str:
    """The AWS error code of a ClientError, else the exception's class name (``ReadTimeoutError``)."""
    response = getattr(error, "response", None) or {}
    code: str = response.get("Error", {}).get("Code") or type(error).__name__
    return code


def is_transient(error: BaseException, idempotent: bool) -> bool:
    """Whether repeating the call may succeed without doing its work twice."""
    code = error_code(error)
    if NOTHING_DONE.search(code):
        return True
    return idempotent and (bool(ANSWER_LOST.search(code)) or isinstance(error, BotoCoreError))
