"""``python -m tapstack preview``: the reminder one appointment would get, rendered by the code the
template holds, without AWS.

The processor's and the email sender's ``index.py`` are resolved from the template as CloudFormation
resolves them (their modules from the mappings, their environment from the parameters), loaded the
way the local runner loads a function (its own ``os.environ``), and asked what they would make of
the item: the processor's ``parse`` and ``render`` (the job it would hand the workflow), the email
sender's ``email_request`` (the SendEmail request, with its From and Reply-To), and the processor's
``sms_segments`` for the SMS. No AWS call is made: clients are created under moto with fake
credentials and never used.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any, TextIO

from tapstack.local.deployment import FAKE_CREDENTIALS, load_template
from tapstack.local.functions import FunctionMonitor, InProcessFunction
from tapstack.local.resolve import Resolver, UnsupportedTemplate
from tapstack.sources import constant_renames

#: What preview assumes for a parameter that has no default (the sender address is only shown).
PREVIEW_PARAMETERS = {"SenderEmail": "reminders@example.com"}
PROCESSOR = "AppointmentProcessorFunction"
EMAIL_SENDER = "EmailSenderFunction"
#: The type descriptors of DynamoDB's attribute values: an item written in DynamoDB JSON.
DYNAMODB_TYPES = {"S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL"}


class PreviewError(ValueError):
    """The template, the item or a parameter cannot be previewed; the message says why."""


@dataclass
class Preview:
    """The rendered reminder: the processor's job fields and what each sender would send."""

    #: The supported locale the dates and times are written in, and the appointment's own ``locale``.
    locale: str
    when: str
    #: SES's SendEmail request (None: not requested or no address, see ``email_skipped``).
    email: dict[str, Any] | None
    email_skipped: str | None
    sms: dict[str, Any] | None
    sms_skipped: str | None
    sms_encoding: str = ""
    sms_segments: int = 0
    sms_max_segments: int = 0
    appointment_locale: str | None = None
    #: The handlers' warnings (a malformed template, an unknown locale or zone): JSON log lines.
    warnings: list[dict[str, Any]] = field(default_factory=list)


def load_item(path: Path) -> dict[str, Any]:
    """The appointment item of a JSON file, as DynamoDB holds it: DynamoDB JSON (``{"S": ...}``,
    what ``aws dynamodb get-item`` prints, with or without its ``Item``) or plain JSON (numbers
    become N, lists of strings SS)."""
    if not path.is_file():
        raise PreviewError(f"{path}: no such item file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise PreviewError(f"{path}: not JSON ({error})") from None
    if isinstance(data, dict) and set(data) == {"Item"}:
        data = data["Item"]
    if not isinstance(data, dict) or not data:
        raise PreviewError(f"{path}: expected an appointment item (a JSON object of its attributes)")
    if all(isinstance(value, dict) and len(value) == 1 and set(value) <= DYNAMODB_TYPES for value in data.values()):
        return data
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()
    try:
        return {
            name: serializer.serialize(set(value) if isinstance(value, list) else value) for name, value in data.items()
        }
    except (TypeError, ValueError) as error:
        raise PreviewError(f"{path}: an attribute DynamoDB cannot hold ({error})") from None


def parameter_values(template: Mapping[str, Any], overrides: Mapping[str, str]) -> dict[str, str]:
    """Every parameter's value: the override, else its default (or what preview assumes)."""
    declared = template.get("Parameters", {})
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise PreviewError(f"unknown parameter {', '.join(unknown)} (the template declares {', '.join(declared)})")
    values = {}
    for name, spec in declared.items():
        value = overrides.get(name, spec.get("Default", PREVIEW_PARAMETERS.get(name)))
        if value is None:
            raise PreviewError(f"parameter {name} has no default: give it with --parameter {name}=...")
        values[name] = str(value)
    return values


def function_id(template: Mapping[str, Any], name: str, prefix: str | None) -> str:
    """The logical ID of the system's function ``name`` (``<prefix><name>``)."""
    resources = template.get("Resources", {})
    if prefix is not None:
        candidates = [f"{prefix}{name}"] if f"{prefix}{name}" in resources else []
    else:
        candidates = [logical_id for logical_id in resources if logical_id.endswith(name)]
    if len(candidates) != 1:
        found = ", ".join(sorted(logical_id for logical_id in resources if logical_id.endswith(name))) or "none"
        raise PreviewError(f"expected one {name} in the template (give --prefix to choose one), found: {found}")
    return candidates[0]


@contextmanager
def offline() -> Iterator[None]:
    """Fake credentials and a region for the handlers' clients, and moto in front of AWS."""
    from moto import mock_aws

    saved = dict(os.environ)
    os.environ.update({**FAKE_CREDENTIALS, "AWS_DEFAULT_REGION": "us-east-1"})
    try:
        with mock_aws():
            yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def load_function(template: Mapping[str, Any], resolver: Resolver, logical_id: str, monitor: FunctionMonitor) -> Any:
    """The function's module, loaded from its inlined code with its resolved environment."""
    properties = template["Resources"][logical_id]["Properties"]
    where = f"Resources/{logical_id}"
    source = resolver.resolve(properties.get("Code", {}).get("ZipFile"), where)
    if not isinstance(source, str):
        raise PreviewError(f"{where}: no inline code (Code.ZipFile) to run")
    variables = resolver.resolve(properties.get("Environment", {}).get("Variables", {}), where)
    function = InProcessFunction(
        logical_id,
        logical_id,
        source,
        f"<{logical_id}>/index.py",
        properties.get("Handler", "index.handler"),
        {name: str(value) for name, value in variables.items()},
        monitor,
    )
    return function.module


def preview(
    template_source: str | Path | Mapping[str, Any],
    item: dict[str, Any],
    parameters: Mapping[str, str] | None = None,
    prefix: str | None = None,
) -> Preview:
    """What the deployed handlers would send for ``item`` (an appointment in DynamoDB JSON)."""
    if isinstance(template_source, Path) and not template_source.is_file():
        raise PreviewError(f"{template_source}: no such template (run python build.py first)")
    template = load_template(template_source)
    values = parameter_values(template, parameters or {})
    # Resources are named by their logical IDs: the handlers only hold on to the names.
    resolver = Resolver(
        template,
        values,
        {
            "AWS::Region": "us-east-1",
            "AWS::Partition": "aws",
            "AWS::AccountId": "123456789012",
            "AWS::StackName": "preview",
        },
        ref=lambda name: name,
        get_att=lambda name, attribute: f"{name}.{attribute}",
    )
    monitor = FunctionMonitor(echo=False)
    with offline():
        processor = load_function(template, resolver, function_id(template, PROCESSOR, prefix), monitor)
        sender = load_function(template, resolver, function_id(template, EMAIL_SENDER, prefix), monitor)
        if not isinstance(item.get("appointmentId"), dict) or "S" not in item["appointmentId"]:
            raise PreviewError("the item has no appointmentId (a string): the booking app's key")
        appointment, reason = processor.parse(item)
        if appointment is None:
            raise PreviewError(f"this appointment gets no reminder: {reason}")
        job = processor.render(appointment)
        result = Preview(
            locale=processor.resolve_locale(appointment["locale"]) or constant(processor, "DEFAULT_LOCALE"),
            when=job["localTime"],
            email=None,
            email_skipped=_skipped(job["email"], "customerEmail"),
            sms=None,
            sms_skipped=_skipped(job["sms"], "customerPhone"),
            sms_max_segments=constant(processor, "SMS_MAX_SEGMENTS"),
            appointment_locale=appointment["locale"],
        )
        if result.email_skipped is None:
            result.email = sender.email_request(job["email"])
        if result.sms_skipped is None:
            result.sms = job["sms"]
            result.sms_encoding, result.sms_segments = processor.sms_segments(job["sms"]["text"])
    for _, line in monitor.logs:
        entry = json.loads(line)
        if entry.get("level") == "WARNING":
            result.warnings.append(entry)
    return result


def _skipped(message: dict[str, Any] | None, attribute: str) -> str | None:
    """Why a channel sends nothing (as its sender would answer), or None."""
    if message is None:
        return "not requested (notificationChannels)"
    if not message.get("to"):
        return f"no address ({attribute})"
    return None


def print_preview(result: Preview, out: TextIO) -> None:
    """The email (From, Reply-To, Subject, text, HTML) and the SMS (its encoding and segments)."""
    out.write(f"locale: {result.locale} ({_locale_source(result)})\ntime:   {result.when}\n\n")
    if result.email is None:
        out.write(f"email: {result.email_skipped}\n")
    else:
        out.write(f"email to {result.email['Destination']['ToAddresses'][0]}\n")
        out.write(email_lines(result.email))
    out.write("\n")
    if result.sms is None:
        out.write(f"sms: {result.sms_skipped}\n")
    else:
        out.write(f"sms to {result.sms['to']} ({sms_size(result.sms_encoding, result.sms_segments)},")
        out.write(f" at most {result.sms_max_segments})\n")
        out.write(_indented(result.sms["text"]))
    for warning in result.warnings:
        details = ", ".join(f"{k}={v}" for k, v in warning.items() if k not in ("level", "event") and v != "")
        out.write(f"\nwarning: {warning['event']}" + (f" ({details})" if details else "") + "\n")


def _locale_source(result: Preview) -> str:
    """Where the locale comes from: the appointment's own, or DefaultLocale's (and why)."""
    asked = result.appointment_locale
    if not asked:
        return "DefaultLocale: the appointment has no locale"
    if any(warning["event"] == "unknown_locale" for warning in result.warnings):
        return f"DefaultLocale: the appointment's {asked} is not supported"
    return f"the appointment's {asked}"


def email_lines(request: Mapping[str, Any]) -> str:
    """A SendEmail request as its recipient reads it: the headers, then each part of the body."""
    message = request["Message"]
    lines = f"  From:     {readable(request['Source'])}\n"
    for reply_to in request.get("ReplyToAddresses", []):
        lines += f"  Reply-To: {reply_to}\n"
    lines += f"  Subject:  {message['Subject']['Data']}\n"
    for part in ("Text", "Html"):
        if part in message["Body"]:
            lines += f"  --- {part.lower()} ---\n" + _indented(message["Body"][part]["Data"])
    return lines


def sms_size(encoding: str, segments: int) -> str:
    return f"{encoding}, {segments} segment{'' if segments == 1 else 's'}"


def readable(header: str) -> str:
    """A header as a mail client shows it (RFC 2047 encoded-words decoded), and as sent when it differs."""
    shown = str(make_header(decode_header(header)))
    return shown if shown == header else f"{shown}  (sent as {header})"


def _indented(text: str) -> str:
    return "".join(f"  {line}\n" if line else "\n" for line in text.splitlines() or [""])


__all__ = [
    "Preview",
    "PreviewError",
    "UnsupportedTemplate",
    "email_lines",
    "load_item",
    "preview",
    "print_preview",
    "sms_size",
]


def constant(module: Any, name: str) -> Any:
    """A module-level constant of the inlined code, which the build gave a short name
    (``tapstack.sources.constant_renames``)."""
    return getattr(module, constant_renames().get(name, name))
