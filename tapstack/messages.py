"""What the customer reads, as the business configures it: the message templates (a default set and
one per language), the sender's display name, a Reply-To address, the default locale and the SMS
cap. Validated when the props are made, with the processor's own parser (``handlers/messages.py``),
so that a template the library accepts is one the processor renders; made into CloudFormation
parameters and into the functions' environment here.

The processor holds the built-in (English) words: an empty template means "the built-in one", so no
message text is written twice. docs/messages.md is the user's guide.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, NoReturn

from troposphere import AWSHelperFn, Template

if TYPE_CHECKING:  # mypy reads handlers/ as the package it is in a checkout
    from handlers.messages import LOCALES, TemplateError, parse_template, resolve_locale
else:  # installed, the handlers ship as tapstack.handlers (setup.cfg)
    from tapstack.handlers.messages import LOCALES, TemplateError, parse_template, resolve_locale

#: The message settings that can become CloudFormation parameters (by parameter name).
MESSAGE_PARAMETER_NAMES = (
    "EmailSubjectTemplate",
    "EmailTextTemplate",
    "SmsTextTemplate",
    "SenderName",
    "DefaultLocale",
)
#: What the processor computes for every appointment; any other placeholder is an attribute of the
#: appointment item, which the library user declares (``MessageProps.appointment_attributes``).
COMPUTED_PLACEHOLDERS = ("customerName", "when", "date", "time", "timeZone")
#: The languages the processor writes dates and times in (``handlers/messages.py``).
LANGUAGES = tuple(sorted({locale[:2] for locale in LOCALES}))
#: AWS refuses an SMS of more than 630 characters outside the GSM alphabet (UCS-2) or 1,530 GSM
#: characters: "The maximum supported size of any message is 1530 GSM characters or 630 non-GSM
#: characters" (https://docs.aws.amazon.com/sms-voice/latest/userguide/sms-limitations-character.html).
#: 9 parts of 67 UCS-2 characters (603) fit both; 10 (670) do not.
MAX_SMS_SEGMENTS = 9
#: "Function environment variables: 4 KB, for all environment variables associated with the
#: function, in aggregate" (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
LAMBDA_ENVIRONMENT_LIMIT = 4096
#: A value CloudFormation resolves at deploy time (a table's name, the metrics namespace) is counted
#: at the most it can be: 255 characters, the longest DynamoDB table name or CloudWatch namespace.
UNRESOLVED_VALUE_BYTES = 255
#: The longest display name accepted in From (it is one header line with the address).
MAX_SENDER_NAME = 100
#: The processor's environment variable of each template, and the key of each part of a language's
#: set in LANGUAGE_TEMPLATES.
TEMPLATE_VARIABLES = {
    "email_subject": "EMAIL_SUBJECT",
    "email_text": "EMAIL_TEXT",
    "sms_text": "SMS_TEXT",
    "email_html": "EMAIL_HTML",
}
_IDENTIFIER = re.compile(r"[^\W\d]\w*")


@dataclass(frozen=True)
class MessageTemplates:
    """One language's words: ``{name}`` placeholders, ``{{`` and ``}}`` for braces (docs/messages.md).

    In the default set (``MessageProps.templates``) an empty template is the processor's built-in
    English one, and an empty ``email_html`` sends plain-text emails. A language's own set is used
    whole: its subject, text and SMS are required.
    """

    email_subject: str = ""
    email_text: str = ""
    sms_text: str = ""
    #: The email's HTML part, sent with the text part (multipart/alternative); values are escaped.
    email_html: str = ""


@dataclass(frozen=True)
class MessageProps:
    """How the reminders read. Every field has a default: today's English reminder, from the bare
    sender address, in British English unless the appointment says otherwise, at most 2 SMS parts.

    ``templates``, ``sender_name`` and ``default_locale`` are the stack parameters
    ``EmailSubjectTemplate``, ``EmailTextTemplate``, ``SmsTextTemplate``, ``SenderName`` and
    ``DefaultLocale`` when ``ReminderProps.parameters`` names them (their defaults are these values);
    baked in otherwise. The rest is the library's only.
    """

    #: The default set of templates: for an appointment whose language has no set of its own.
    templates: MessageTemplates = MessageTemplates()
    #: A set of templates per language (``{"fr": MessageTemplates(...)}``), chosen by the language of
    #: the appointment's locale (``fr-FR`` and ``fr-CA`` both take ``fr``). Given as any mapping; kept
    #: as sorted pairs, so that the props stay hashable.
    languages: Mapping[str, MessageTemplates] | tuple[tuple[str, MessageTemplates], ...] = ()
    #: The appointment attributes the templates may name (``{location}``, ``{providerName}``): a
    #: placeholder that is neither computed nor declared here is taken for a typo and refused.
    appointment_attributes: frozenset[str] = field(default_factory=frozenset)
    #: The display name in From (``Example Clinic <reminders@example.com>``); empty for none.
    sender_name: str = ""
    #: Where the customer's replies go; empty: to the sender address.
    reply_to_email: str = ""
    #: BCP 47 tag of the locale for an appointment without a known ``locale`` of its own.
    default_locale: str = "en-GB"
    #: The most SMS parts one reminder may cost; a longer SMS is shortened at a word boundary.
    sms_max_segments: int = 2

    def __post_init__(self) -> None:
        languages = self.languages.items() if isinstance(self.languages, Mapping) else self.languages
        object.__setattr__(self, "languages", tuple(sorted(languages)))
        object.__setattr__(self, "appointment_attributes", frozenset(self.appointment_attributes))
        self.validate()

    @property
    def language_templates(self) -> dict[str, MessageTemplates]:
        return dict(self.languages)  # pairs once __post_init__ ran

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first setting that is not of the accepted form."""
        for name in sorted(self.appointment_attributes):
            if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name) or name in COMPUTED_PLACEHOLDERS:
                _bad(
                    "appointment_attributes",
                    "attribute names a placeholder can hold (a letter or _, then letters, digits or _), other"
                    f" than the computed {', '.join(COMPUTED_PLACEHOLDERS)}",
                    name,
                )
        self._check_templates("templates", self.templates, whole=False)
        for language, templates in self.language_templates.items():
            if language not in LANGUAGES:
                _bad("languages", f"languages from {', '.join(LANGUAGES)}", language)
            self._check_templates(f"languages[{language!r}]", templates, whole=True)
        name = self.sender_name
        if not isinstance(name, str) or len(name) > MAX_SENDER_NAME or not name.isprintable():
            _bad("sender_name", f"a display name of printable characters, up to {MAX_SENDER_NAME}, or empty", name)
        from tapstack.props import EMAIL_PATTERN  # props imports this module

        if self.reply_to_email and not EMAIL_PATTERN.match(self.reply_to_email):
            _bad("reply_to_email", "an email address or empty", self.reply_to_email)
        if not isinstance(self.default_locale, str) or not resolve_locale(self.default_locale):
            _bad(
                "default_locale",
                f"a BCP 47 tag of a supported language ({', '.join(LANGUAGES)}), e.g. en-US or fr-FR",
                self.default_locale,
            )
        segments = self.sms_max_segments
        if not isinstance(segments, int) or isinstance(segments, bool) or not 1 <= segments <= MAX_SMS_SEGMENTS:
            _bad("sms_max_segments", f"a whole number from 1 to {MAX_SMS_SEGMENTS}", segments)

    def _check_templates(self, where: str, templates: MessageTemplates, whole: bool) -> None:
        if not isinstance(templates, MessageTemplates):
            _bad(where, "MessageTemplates(...)", templates)
        known = set(COMPUTED_PLACEHOLDERS) | self.appointment_attributes
        for part in fields(MessageTemplates):
            name, template = f"messages.{where}.{part.name}", getattr(templates, part.name)
            if not isinstance(template, str):
                _bad(name, "a template (text)", template)
            if whole and part.name != "email_html" and not template.strip():
                _bad(name, "a template: a language's set is used whole", template)
            try:
                placeholders = set(parse_template(template)[1::2])
            except TemplateError as error:
                _bad(name, f"{{name}} placeholders, and {{{{ and }}}} for braces ({error})", template)
            unknown = sorted(placeholders - known)
            if unknown:
                _bad(
                    name,
                    f"placeholders from {', '.join(sorted(known))}"
                    " (declare each appointment attribute a template uses in appointment_attributes)",
                    "{" + "}, {".join(unknown) + "}",
                )


def _bad(name: str, accepted: str, value: object) -> NoReturn:
    if not name.startswith("messages."):
        name = f"messages.{name}"
    raise ValueError(f"{name}: expected {accepted}, got {value!r}")


# ---- parameters and environment -------------------------------------------------------------


def message_parameter_specs(messages: MessageProps) -> dict[str, dict[str, Any]]:
    """The parameters' specs, their defaults the library's values. A template's line breaks are
    written ``\\n``: a parameter value is one line, and the processor reads ``\\n`` as a break."""
    templates = messages.templates

    def template(text: str) -> dict[str, Any]:
        return dict(Description="empty: built-in", Default=text.replace("\n", "\\n"))

    return {
        "EmailSubjectTemplate": template(templates.email_subject),
        "EmailTextTemplate": template(templates.email_text),
        "SmsTextTemplate": template(templates.sms_text),
        "SenderName": dict(Description="From display name; empty: none", Default=messages.sender_name),
        "DefaultLocale": dict(Description="BCP 47", Default=messages.default_locale),
    }


def message_literal_values(messages: MessageProps) -> dict[str, str]:
    """The same settings baked in (when they are not parameters)."""
    templates = messages.templates
    return {
        "EmailSubjectTemplate": templates.email_subject,
        "EmailTextTemplate": templates.email_text,
        "SmsTextTemplate": templates.sms_text,
        "SenderName": messages.sender_name,
        "DefaultLocale": messages.default_locale,
    }


def processor_environment(settings: Any) -> dict[str, Any]:
    """The processor's message settings: each template and the default locale (a parameter's ``Ref``
    or the baked-in text, left out when empty), the SMS cap, the HTML template and the other
    languages' sets (JSON) when there are any."""
    messages: MessageProps = settings.props.messages
    environment = {
        "EMAIL_SUBJECT": settings["EmailSubjectTemplate"],
        "EMAIL_TEXT": settings["EmailTextTemplate"],
        "SMS_TEXT": settings["SmsTextTemplate"],
        "EMAIL_HTML": messages.templates.email_html,
        "DEFAULT_LOCALE": settings["DefaultLocale"],
        "LANGUAGE_TEMPLATES": json.dumps(
            {
                language: {variable: getattr(templates, part) for part, variable in TEMPLATE_VARIABLES.items()}
                for language, templates in messages.language_templates.items()
            },
            ensure_ascii=False,
        )
        if messages.languages
        else "",
        "SMS_MAX_SEGMENTS": str(messages.sms_max_segments),
    }
    return {name: value for name, value in environment.items() if value != ""}


def email_sender_environment(settings: Any) -> dict[str, Any]:
    """The email sender's: the display name and the Reply-To address, when there are any."""
    environment = {"SENDER_NAME": settings["SenderName"], "REPLY_TO_EMAIL": settings.props.messages.reply_to_email}
    return {name: value for name, value in environment.items() if value != ""}


def checked_environment(template: Template, function: str, variables: dict[str, Any]) -> dict[str, Any]:
    """The function's environment, refused with a ``ValueError`` when it could exceed Lambda's 4 KB
    (names and values, in UTF-8). A parameter counts as its default value (a longer value given at
    deploy time makes Lambda refuse the function, and CloudFormation report it); any other value
    resolved at deploy time counts as UNRESOLVED_VALUE_BYTES."""
    size = sum(len(name.encode()) + _value_bytes(template, value) for name, value in variables.items())
    if size > LAMBDA_ENVIRONMENT_LIMIT:
        largest = max(variables, key=lambda name: _value_bytes(template, variables[name]))
        raise ValueError(
            f"{function}: its environment would take up to {size:,} bytes, over the {LAMBDA_ENVIRONMENT_LIMIT:,}"
            f" Lambda accepts for all of a function's variables (the largest is {largest}): shorten the"
            " message templates (docs/messages.md)"
        )
    return variables


def _value_bytes(template: Template, value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, AWSHelperFn):
        reference = value.to_dict().get("Ref")
        parameter = template.parameters.get(reference) if isinstance(reference, str) else None
        if parameter is not None:
            return len(str(parameter.properties.get("Default", "")).encode())
    return UNRESOLVED_VALUE_BYTES
