"""What every handler shares: its log line, the names of AWS errors, and which of them are worth another try.

The build bundles this module into each handler that imports it (``from .common import ...``), so the
inlined ``index.py`` still stands alone.
"""

import json
import re
import time
from collections.abc import Mapping
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


def log(level: str, event: str, /, **fields: Any) -> None:
    """One JSON line of ids, outcomes and error codes: never contact data or message text."""
    print(json.dumps({"level": level, "event": event, **fields}))


def emit_metrics(namespace: str, values: Mapping[str, float], unit: str | None = None, **fields: Any) -> None:
    """One CloudWatch embedded-metric-format line: each value a metric of ``namespace``, no
    dimensions; ``fields`` are logged with them (ids only, never contact data)."""
    metrics = [{"Name": name, **({"Unit": unit} if unit else {})} for name in values]
    directive = {"Namespace": namespace, "Dimensions": [[]], "Metrics": metrics}
    print(
        json.dumps(
            {"_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [directive]}, **values, **fields}
        )
    )


def error_code(error: BaseException, /) -> str:
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


def typed(value: Any) -> dict[str, Any]:
    """A value as DynamoDB writes it: a string, a number, a set of strings, or already typed."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (set, frozenset, list)):
        return {"SS": sorted(value)}
    return {"N": str(value)}


def conditional_update(
    client: Any,
    table: str,
    key: dict[str, Any],
    expression: str,
    condition: str,
    names: dict[str, str],
    /,
    **values: Any,
) -> tuple[bool, dict[str, Any]]:
    """One conditional UpdateItem: (True, the item as written) or, when the condition refused it,
    (False, the item as it was; ``{}`` when there was none). ``names`` may hold more than the
    expressions use; ``values`` are named as in the expressions, without their colon (any name:
    the parameters before them are positional)."""
    try:
        response = client.update_item(
            TableName=table,
            Key=key,
            UpdateExpression=expression,
            ConditionExpression=condition,
            # DynamoDB refuses a name or a value that the expressions do not use.
            ExpressionAttributeNames={name: names[name] for name in set(re.findall(r"#\w+", expression + condition))},
            ExpressionAttributeValues={f":{name}": typed(value) for name, value in values.items()},
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except client.exceptions.ConditionalCheckFailedException as refused:
        return False, refused.response.get("Item", {})
    return True, response["Attributes"]
