"""The library's message settings (tapstack.messages): what it refuses at build, and how its values
reach the template: stack parameters with the library's values as defaults, or baked into the
functions' environment, within Lambda's 4 KB of environment."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint

from tapstack import ReminderProps, build_template
from tapstack.messages import LAMBDA_ENVIRONMENT_LIMIT, MessageProps, MessageTemplates
from tapstack.render import to_yaml


def variables(data: dict[str, Any], function: str) -> dict[str, Any]:
    found: dict[str, Any] = data["Resources"][function]["Properties"]["Environment"]["Variables"]
    return found


# ---- refused at build ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "field", "accepted"),
    [
        # A typo in a computed placeholder is not taken for an appointment attribute.
        ({"templates": MessageTemplates(sms_text="See you {wen}")}, "templates.sms_text", "placeholders from"),
        # An attribute the library user did not declare is refused the same way (and named).
        ({"templates": MessageTemplates(email_text="At {location}")}, "templates.email_text", "appointment_attributes"),
        ({"templates": MessageTemplates(email_subject="On {when")}, "templates.email_subject", "stray '{' at 4"),
        ({"templates": MessageTemplates(email_html="<p>}</p>")}, "templates.email_html", "stray '}' at 4"),
        # str.format's fields are not placeholders: no index, attribute or conversion.
        ({"templates": MessageTemplates(sms_text="{0}")}, "templates.sms_text", "{name} placeholders"),
        ({"templates": MessageTemplates(sms_text="{when.year}")}, "templates.sms_text", "{name} placeholders"),
        ({"templates": MessageTemplates(sms_text="{when!r}")}, "templates.sms_text", "{name} placeholders"),
        (
            {"languages": {"fr": MessageTemplates(email_subject="Rappel", email_text="Bonjour")}},
            "languages['fr'].sms_text",
            "a language's set is used whole",
        ),
        (
            {"languages": {"fr": MessageTemplates(email_subject="{quand}", email_text="x", sms_text="y")}},
            "languages['fr'].email_subject",
            "placeholders from",
        ),
        ({"languages": {"tlh": MessageTemplates("a", "b", "c")}}, "languages", "languages from de, en, es"),
        ({"appointment_attributes": frozenset({"when"})}, "appointment_attributes", "other than the computed"),
        ({"appointment_attributes": frozenset({"service-name"})}, "appointment_attributes", "a letter or _"),
        ({"sender_name": "Example\r\nBcc: x@example.com"}, "sender_name", "printable characters"),
        ({"sender_name": "x" * 101}, "sender_name", "up to 100"),
        ({"reply_to_email": "desk"}, "reply_to_email", "an email address or empty"),
        ({"default_locale": "tlh"}, "default_locale", "a BCP 47 tag of a supported language"),
        ({"default_locale": ""}, "default_locale", "a BCP 47 tag"),
        ({"sms_max_segments": 0}, "sms_max_segments", "from 1 to 9"),
        # 10 UCS-2 parts are 670 characters: AWS refuses an SMS of more than 630.
        ({"sms_max_segments": 10}, "sms_max_segments", "from 1 to 9"),
        ({"sms_max_segments": True}, "sms_max_segments", "whole number"),
    ],
)
def test_bad_message_settings_are_refused_naming_the_field(settings: dict[str, Any], field: str, accepted: str) -> None:
    with pytest.raises(ValueError, match=f"^messages\\.{re.escape(field)}: expected .*{re.escape(accepted)}"):
        MessageProps(**settings)


def test_declared_attributes_and_every_computed_placeholder_are_accepted() -> None:
    messages = MessageProps(
        templates=MessageTemplates(
            email_subject="{serviceName}: {when}",
            email_text="{customerName} {date} {time} {timeZone} {{literal}}",
            sms_text="{location}",
            email_html="<p>{customerName}</p>",
        ),
        languages={"de": MessageTemplates("Termin {when}", "Hallo {customerName}", "Termin {when}")},
        appointment_attributes={"serviceName", "location"},  # type: ignore[arg-type]
        default_locale="de_AT",
        sms_max_segments=9,
    )
    assert hash(ReminderProps(messages=messages)), "props stay hashable"
    assert messages.language_templates == {
        "de": MessageTemplates("Termin {when}", "Hallo {customerName}", "Termin {when}")
    }


# ---- how the values reach the functions -------------------------------------------------------


def test_the_stand_alone_template_has_the_message_parameters_with_the_built_in_text_as_empty() -> None:
    data = build_template(ReminderProps()).to_dict()

    parameters = data["Parameters"]
    for name in ("EmailSubjectTemplate", "EmailTextTemplate", "SmsTextTemplate", "SenderName"):
        assert parameters[name]["Default"] == "", "empty: the processor's built-in text, written once"
    assert parameters["DefaultLocale"]["Default"] == "en-GB"
    processor = variables(data, "AppointmentProcessorFunction")
    assert processor["EMAIL_SUBJECT"] == {"Ref": "EmailSubjectTemplate"}
    assert processor["SMS_TEXT"] == {"Ref": "SmsTextTemplate"}
    assert processor["DEFAULT_LOCALE"] == {"Ref": "DefaultLocale"}
    assert processor["SMS_MAX_SEGMENTS"] == "2"
    assert "EMAIL_HTML" not in processor and "LANGUAGE_TEMPLATES" not in processor
    sender = variables(data, "EmailSenderFunction")
    assert sender["SENDER_NAME"] == {"Ref": "SenderName"} and "REPLY_TO_EMAIL" not in sender


def test_library_templates_are_the_parameters_defaults_with_line_breaks_written_backslash_n() -> None:
    messages = MessageProps(templates=MessageTemplates(email_text="Hello {customerName},\n\nSee you {when}."))

    data = build_template(ReminderProps(messages=messages)).to_dict()

    assert data["Parameters"]["EmailTextTemplate"]["Default"] == "Hello {customerName},\\n\\nSee you {when}."


def test_baked_in_message_settings_make_no_parameters_and_reach_the_functions() -> None:
    french = MessageTemplates("Rappel : {when}", "Bonjour {customerName}", "Rappel : {when}", "<p>{when}</p>")
    messages = MessageProps(
        templates=MessageTemplates(sms_text="See you {when}", email_html="<p>{when}</p>"),
        languages={"fr": french},
        sender_name="Example Clinic",
        reply_to_email="desk@example.com",
        default_locale="fr-FR",
        sms_max_segments=3,
    )
    template = build_template(ReminderProps(parameters=frozenset(), sender_email="r@example.com", messages=messages))

    data = template.to_dict()
    assert "Parameters" not in data
    processor = variables(data, "AppointmentProcessorFunction")
    assert processor["SMS_TEXT"] == "See you {when}"
    assert "EMAIL_SUBJECT" not in processor, "empty: the built-in text"
    assert processor["EMAIL_HTML"] == "<p>{when}</p>"
    assert processor["DEFAULT_LOCALE"] == "fr-FR" and processor["SMS_MAX_SEGMENTS"] == "3"
    assert json.loads(processor["LANGUAGE_TEMPLATES"]) == {
        "fr": {
            "EMAIL_SUBJECT": "Rappel : {when}",
            "EMAIL_TEXT": "Bonjour {customerName}",
            "SMS_TEXT": "Rappel : {when}",
            "EMAIL_HTML": "<p>{when}</p>",
        }
    }
    sender = variables(data, "EmailSenderFunction")
    assert (sender["SENDER_NAME"], sender["REPLY_TO_EMAIL"]) == ("Example Clinic", "desk@example.com")
    matches = lint(to_yaml(template), config=ManualArgs(regions=["us-east-1"], include_checks=["I"]))
    assert [str(m) for m in matches] == []


def long_template(size: int) -> MessageTemplates:
    text = ("{when} " * (size // 7 + 1))[:size].rsplit(" ", 1)[0]
    return MessageTemplates(text, text, text, text)


def test_an_environment_over_lambdas_4_kb_is_refused_at_build() -> None:
    # Each template counts twice (the default set and French's), plus the other variables.
    fits = MessageProps(templates=long_template(400), languages={"fr": long_template(400)})
    build_template(ReminderProps(parameters=frozenset(), sender_email="r@example.com", messages=fits))

    too_much = MessageProps(templates=long_template(400), languages={"fr": long_template(700)})
    with pytest.raises(ValueError, match=r"AppointmentProcessorFunction: its environment would take up to .* bytes"):
        build_template(ReminderProps(parameters=frozenset(), sender_email="r@example.com", messages=too_much))


def test_a_parameters_default_counts_towards_the_environment() -> None:
    """As parameters, the templates count as their defaults: the library's templates."""
    too_much = MessageProps(templates=long_template(1400))
    with pytest.raises(ValueError, match=f"over the {LAMBDA_ENVIRONMENT_LIMIT:,} Lambda accepts"):
        build_template(ReminderProps(messages=too_much))
