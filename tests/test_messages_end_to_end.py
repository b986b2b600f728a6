"""What the customer reads, end to end on the local runner: the business's templates (stack parameters,
or the library's, with HTML and a set per language) filled in by the inlined processor, sent by the
inlined senders, checked in the requests SES and SNS received; the customer's language; values that
stay inert text; a malformed template that falls back; the SMS cap and its metric."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from email.header import decode_header, make_header
from email.utils import parseaddr
from typing import Any

import pytest

from tapstack import ReminderProps, build_template
from tapstack.local import LocalDeployment, load_template
from tapstack.messages import MessageProps, MessageTemplates
from tests.support import DAY, HOUR, SENDER, appointment, put_appointment, reminder, sent_sms

PROCESSOR = "AppointmentProcessorFunction"
#: A booking 23 hours ahead: inside the default 24-hour offset, so the pipe's own run sends it.
SOON = DAY - HOUR
#: Tuesday 3 March 2026, 08:00 UTC: NOW + SOON.
SALON_TEMPLATES = {
    "EmailSubjectTemplate": "{serviceName} with {providerName}: {when}",
    "EmailTextTemplate": "Hello {customerName},\\n\\nYour {serviceName} is on {date} at {time} {timeZone},"
    " at {location} (room {room}).\\n\\nExample Salon",
    "SmsTextTemplate": "Example Salon: {serviceName} with {providerName}, {when}, {location}.",
}
SALON_ATTRIBUTES = {"serviceName": "Cut", "providerName": "Lea", "location": "12 Example Street", "room": 4}


@pytest.fixture
def stack(deploy: Callable[..., LocalDeployment]) -> Callable[..., LocalDeployment]:
    """The stand-alone template as generated, its handlers as inlined, with these parameters."""
    return lambda **parameters: deploy(inlined=True, **parameters)


@pytest.fixture
def library_stack(clock: Any) -> Iterator[Callable[..., LocalDeployment]]:
    """A template built by the library with these message props, deployed with its handlers inlined."""
    with ExitStack() as stack:

        def make(messages: MessageProps, **parameters: str) -> LocalDeployment:
            template = load_template(build_template(ReminderProps(messages=messages)).to_dict())
            return stack.enter_context(LocalDeployment(template, {"SenderEmail": SENDER, **parameters}))

        yield make


def deliver(deployment: LocalDeployment, appointment_id: str = "a1", starts_in: int = SOON, **fields: Any) -> None:
    """Book an appointment inside its reminder window; the pipe's execution renders and sends it."""
    put_appointment(deployment, appointment(appointment_id, starts_in, **fields))
    deployment.run_pipe()
    executions = deployment.wait()
    assert {execution["status"] for execution in executions} == {"SUCCEEDED"}


def email_requests(deployment: LocalDeployment) -> list[dict[str, Any]]:
    """Every SendEmail request SES received (moto keeps one body part only; the request has both)."""
    return [call.params for call in deployment.monitor.calls if call.operation == "SendEmail"]


def the_email(deployment: LocalDeployment) -> dict[str, Any]:
    (request,) = email_requests(deployment)
    return request


def email_text(request: dict[str, Any]) -> str:
    text: str = request["Message"]["Body"]["Text"]["Data"]
    return text


def subject(request: dict[str, Any]) -> str:
    value: str = request["Message"]["Subject"]["Data"]
    return value


def the_sms(deployment: LocalDeployment) -> str:
    ((_, text),) = sent_sms(deployment)
    return text


def processor_log(deployment: LocalDeployment) -> list[dict[str, Any]]:
    return [json.loads(line) for function, line in deployment.monitor.logs if function.endswith(PROCESSOR)]


def warnings(deployment: LocalDeployment) -> list[dict[str, Any]]:
    return [line for line in processor_log(deployment) if line.get("level") == "WARNING"]


def all_logs(deployment: LocalDeployment) -> str:
    return "\n".join(line for _, line in deployment.monitor.logs)


# ---- templates with the appointment's attributes ---------------------------------------------


def test_custom_templates_fill_in_appointment_attributes_in_email_and_sms(
    stack: Callable[..., LocalDeployment],
) -> None:
    deployment = stack(**SALON_TEMPLATES)

    deliver(deployment, **SALON_ATTRIBUTES)

    request = the_email(deployment)
    assert subject(request) == "Cut with Lea: Tuesday 3 March 2026 at 09:00 CET (Europe/Paris)"
    assert email_text(request) == (
        "Hello Pat Example,\n\nYour Cut is on Tuesday 3 March 2026 at 09:00 CET (Europe/Paris),"
        " at 12 Example Street (room 4).\n\nExample Salon"
    )
    assert "Html" not in request["Message"]["Body"], "no HTML template: plain text only"
    assert the_sms(deployment) == (
        "Example Salon: Cut with Lea, Tuesday 3 March 2026 at 09:00 CET (Europe/Paris), 12 Example Street."
    )
    assert reminder(deployment, "a1#1440")["state"] == "SENT"


def test_a_missing_attribute_renders_empty_without_a_gap(stack: Callable[..., LocalDeployment]) -> None:
    deployment = stack(**SALON_TEMPLATES)

    deliver(deployment, serviceName="Cut", providerName="Lea", customerName=None)

    assert email_text(the_email(deployment)).startswith("Hello,\n\nYour Cut is on")
    assert "at  (room )" not in email_text(the_email(deployment))
    assert the_sms(deployment) == "Example Salon: Cut with Lea, Tuesday 3 March 2026 at 09:00 CET (Europe/Paris)."


def test_the_default_templates_read_like_the_reminders_always_did(stack: Callable[..., LocalDeployment]) -> None:
    deployment = stack()

    deliver(deployment)

    request = the_email(deployment)
    when = "Tuesday 3 March 2026 at 09:00 CET (Europe/Paris)"
    assert request["Source"] == SENDER, "no SenderName: the bare address"
    assert "ReplyToAddresses" not in request
    assert subject(request) == f"Reminder: your appointment on {when}"
    assert email_text(request) == f"Hello Pat Example,\n\nThis is a reminder of your appointment on {when}.\n"
    assert the_sms(deployment) == f"This is a reminder of your appointment on {when}."


# ---- the sender's name -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("Example Clinic", f"Example Clinic <{SENDER}>"),
        ("Dr. Lee, Example Clinic", f'"Dr. Lee, Example Clinic" <{SENDER}>'),
        # Not ASCII: an RFC 2047 encoded-word, as SES requires of a friendly name.
        ("Cabinet Émile", f"=?utf-8?q?Cabinet_=C3=89mile?= <{SENDER}>"),
        # A name that tries to be an address, or to add a header, stays a name.
        (
            "Evil <boss@example.net>\r\nBcc: all@example.net",
            f'"Evil <boss@example.net>Bcc: all@example.net" <{SENDER}>',
        ),
    ],
)
def test_the_sender_name_is_in_the_from_header(stack: Callable[..., LocalDeployment], name: str, source: str) -> None:
    deployment = stack(SenderName=name)

    deliver(deployment)

    request = the_email(deployment)
    assert request["Source"] == source
    assert parseaddr(request["Source"])[1] == SENDER, "the address SES authorises is the sender identity"
    shown = str(make_header(decode_header(parseaddr(request["Source"])[0])))
    assert shown == "".join(c for c in name if c.isprintable())


# ---- the customer's language -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "when"),
    [
        ("fr-FR", "mardi 3 mars 2026 à 09:00 CET (Europe/Paris)"),
        ("de-DE", "Dienstag, 3. März 2026 um 09:00 CET (Europe/Paris)"),
        ("en-US", "Tuesday, March 3, 2026 at 9:00 AM CET (Europe/Paris)"),
        ("en-GB", "Tuesday 3 March 2026 at 09:00 CET (Europe/Paris)"),
        (None, "Tuesday 3 March 2026 at 09:00 CET (Europe/Paris)"),
    ],
)
def test_the_date_and_time_are_in_the_customers_language(
    stack: Callable[..., LocalDeployment], locale: str | None, when: str
) -> None:
    deployment = stack(SmsTextTemplate="{when}")

    deliver(deployment, locale=locale)

    assert the_sms(deployment) == when
    assert subject(the_email(deployment)) == f"Reminder: your appointment on {when}"
    assert warnings(deployment) == []


def test_the_twelve_hour_clock_of_us_english(stack: Callable[..., LocalDeployment]) -> None:
    deployment = stack(SmsTextTemplate="{date}|{time}|{timeZone}")

    # 08:00 UTC: 3 in the morning in New York, 5 in the afternoon in Tokyo.
    deliver(deployment, "ny", locale="en-US", timeZone="America/New_York")
    deliver(deployment, "tokyo", locale="en", timeZone="Asia/Tokyo")

    assert sorted(text for _, text in sent_sms(deployment)) == [
        "Tuesday, March 3, 2026|3:00 AM|EST (America/New_York)",
        "Tuesday, March 3, 2026|5:00 PM|JST (Asia/Tokyo)",
    ]


def test_an_unknown_locale_falls_back_to_the_default_locale_with_a_warning(
    stack: Callable[..., LocalDeployment],
) -> None:
    deployment = stack(SmsTextTemplate="{when}", DefaultLocale="de-DE")

    deliver(deployment, locale="tlh-Latn")
    deliver(deployment, "a2", locale=None)

    assert sorted(text for _, text in sent_sms(deployment)) == [
        "Dienstag, 3. März 2026 um 09:00 CET (Europe/Paris)",
        "Dienstag, 3. März 2026 um 09:00 CET (Europe/Paris)",
    ]
    assert warnings(deployment) == [{"level": "WARNING", "event": "unknown_locale", "appointmentId": "a1"}]


def test_an_unknown_default_locale_is_british_english_with_a_warning(stack: Callable[..., LocalDeployment]) -> None:
    deployment = stack(SmsTextTemplate="{when}", DefaultLocale="Klingon")

    deliver(deployment)

    assert the_sms(deployment) == "Tuesday 3 March 2026 at 09:00 CET (Europe/Paris)"
    assert {"level": "WARNING", "event": "unknown_default_locale"} in warnings(deployment)


# ---- values are inert text ---------------------------------------------------------------------

HOSTILE = {
    # A name that is a placeholder: never expanded again, so no phone number.
    "customerName": "{customerPhone}",
    "providerName": "<script>alert('x')</script>",
    # Control characters (escape, bidi override, NUL) and a line break.
    "location": "Main St\x1b[2J\u202e\x00\nFloor 2",
    "notes": "{0.__class__} {when!r} %s ${x}",
}


def test_a_hostile_value_is_rendered_as_inert_text_in_email_and_sms(stack: Callable[..., LocalDeployment]) -> None:
    deployment = stack(
        EmailTextTemplate="Hello {customerName},\\nwith {providerName} at {location}. {notes}",
        SmsTextTemplate="{customerName}: {providerName}, {location}, {notes}",
    )

    deliver(deployment, **HOSTILE)

    text = email_text(the_email(deployment))
    assert text == (
        "Hello {customerPhone},\nwith <script>alert('x')</script> at Main St[2J Floor 2. {0.__class__} {when!r} %s ${x}"
    )
    sms = the_sms(deployment)
    assert sms == "{customerPhone}: <script>alert('x')</script>, Main St[2J Floor 2, {0.__class__} {when!r} %s ${x}"
    for rendered in (text, sms, subject(the_email(deployment))):
        assert "+15555550123" not in rendered
        assert not [c for c in rendered if unicodedata.category(c).startswith("C") and c != "\n"]


def test_the_html_email_escapes_every_value_and_goes_with_the_text_part(
    library_stack: Callable[..., LocalDeployment],
) -> None:
    messages = MessageProps(
        templates=MessageTemplates(
            email_text="Hello {customerName}, see {providerName} at {location}.",
            email_html="<p>Hello <b>{customerName}</b>,</p><p>{providerName} at {location}, {when}</p>",
        ),
        appointment_attributes=frozenset({"providerName", "location"}),
        reply_to_email="desk@example.com",
    )
    deployment = library_stack(messages, SenderName="Example Clinic")

    deliver(deployment, **HOSTILE)

    request = the_email(deployment)
    body = request["Message"]["Body"]
    assert body["Html"]["Data"] == (
        "<p>Hello <b>{customerPhone}</b>,</p><p>&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; at"
        " Main St[2J Floor 2, Tuesday 3 March 2026 at 09:00 CET (Europe/Paris)</p>"
    )
    assert body["Text"]["Data"] == "Hello {customerPhone}, see <script>alert('x')</script> at Main St[2J Floor 2."
    assert body["Html"]["Charset"] == body["Text"]["Charset"] == "UTF-8"
    assert request["ReplyToAddresses"] == ["desk@example.com"]
    assert request["Source"] == f"Example Clinic <{SENDER}>"


# ---- a malformed template falls back -----------------------------------------------------------


def test_a_malformed_template_parameter_falls_back_to_the_built_in_one_with_a_warning(
    stack: Callable[..., LocalDeployment],
) -> None:
    deployment = stack(
        EmailSubjectTemplate="Reminder {when",
        EmailTextTemplate="Hello {customerName}, {location}",
        SmsTextTemplate="{when.year} {}",
    )

    deliver(deployment, location="12 Example Street")
    deliver(deployment, "a2")

    when = "Tuesday 3 March 2026 at 09:00 CET (Europe/Paris)"
    assert {subject(request) for request in email_requests(deployment)} == {f"Reminder: your appointment on {when}"}
    assert sorted(email_text(request) for request in email_requests(deployment)) == [
        "Hello Pat Example",  # the comma before an empty placeholder at the end goes
        "Hello Pat Example, 12 Example Street",
    ], "the well-formed template is kept"
    assert {text for _, text in sent_sms(deployment)} == {f"This is a reminder of your appointment on {when}."}
    # Once per container, when it loads its templates; never any contact data.
    assert [(w["event"], w["template"], w["error"]) for w in warnings(deployment)] == [
        ("invalid_template", "EMAIL_SUBJECT", "stray '{' at 10"),
        ("invalid_template", "SMS_TEXT", "stray '{' at 1"),
    ]
    assert reminder(deployment, "a1#1440")["state"] == reminder(deployment, "a2#1440")["state"] == "SENT"


def test_a_job_stays_bounded_whatever_the_template_repeats(stack: Callable[..., LocalDeployment]) -> None:
    """An attribute's value is cut to 200 characters and each rendered part to 5,000, so that one job
    always fits the jobs' payload limit (handlers/README.md)."""
    deployment = stack(EmailTextTemplate="{notes}|" * 40, EmailSubjectTemplate="{notes}")

    deliver(deployment, notes="x" * 1000)

    request = the_email(deployment)
    assert subject(request) == "x" * 200
    assert email_text(request) == ("x" * 200 + "|") * 24 + "x" * 176
    (job,) = [
        job
        for i in deployment.monitor.invocations
        if i.function.endswith(PROCESSOR)
        for job in (i.result or {}).get("jobs", [])
    ]
    assert len(json.dumps(job)) < 12_000


def test_a_line_break_in_a_parameter_is_written_backslash_n(stack: Callable[..., LocalDeployment]) -> None:
    deployment = stack(EmailTextTemplate="Hello {customerName},\\n\\nSee you {when}.", EmailSubjectTemplate="A\\nB")

    deliver(deployment)

    request = the_email(deployment)
    assert email_text(request) == "Hello Pat Example,\n\nSee you Tuesday 3 March 2026 at 09:00 CET (Europe/Paris)."
    assert subject(request) == "A B", "a subject is one line"


# ---- languages of the library ------------------------------------------------------------------

FRENCH = MessageTemplates(
    email_subject="Rappel : {when}",
    email_text="Bonjour {customerName},\n\nVotre rendez-vous : {when}, {location}.\n",
    sms_text="Rappel : rendez-vous {when}, {location}.",
    email_html="<p>Bonjour {customerName}</p>",
)


def test_each_language_gets_its_own_templates_and_the_others_the_default_set(
    library_stack: Callable[..., LocalDeployment],
) -> None:
    messages = MessageProps(
        languages={"fr": FRENCH},
        appointment_attributes=frozenset({"location"}),
        templates=MessageTemplates(sms_text="Reminder: {when}, {location}."),
    )
    deployment = library_stack(messages)

    deliver(deployment, "fr", locale="fr-CA", location="Montréal")
    deliver(deployment, "de", locale="de-AT", location="Wien")
    deliver(deployment, "none", location="Paris")

    texts = {phone_text for _, phone_text in sent_sms(deployment)}
    assert texts == {
        "Rappel : rendez-vous mardi 3 mars 2026 à 09:00 CET (Europe/Paris), Montréal.",
        "Reminder: Dienstag, 3. März 2026 um 09:00 CET (Europe/Paris), Wien.",
        "Reminder: Tuesday 3 March 2026 at 09:00 CET (Europe/Paris), Paris.",
    }
    by_address = {request["Destination"]["ToAddresses"][0]: request for request in email_requests(deployment)}
    french = by_address["fr@example.com"]
    assert subject(french) == "Rappel : mardi 3 mars 2026 à 09:00 CET (Europe/Paris)"
    assert french["Message"]["Body"]["Html"]["Data"] == "<p>Bonjour Pat Example</p>"
    assert "Html" not in by_address["de@example.com"]["Message"]["Body"], "the default set has no HTML"
    assert (
        subject(by_address["de@example.com"])
        == "Reminder: your appointment on Dienstag, 3. März 2026 um 09:00 CET (Europe/Paris)"
    )


# ---- the SMS cap and its metric ----------------------------------------------------------------

LONG_NOTE = "Please arrive ten minutes early and bring your insurance card and a list of your medicines. " * 4


def sms_metrics(deployment: LocalDeployment) -> list[dict[str, Any]]:
    return [line for line in processor_log(deployment) if "SmsSegments" in line]


def test_a_long_sms_is_cut_to_two_segments_at_a_word_and_counted(stack: Callable[..., LocalDeployment]) -> None:
    deployment = stack(SmsTextTemplate="{when}. {notes} {notes}")
    notes = LONG_NOTE.strip()[:200]  # an attribute's value is cut to 200 characters: twice, 451 in all

    deliver(deployment, notes=notes)
    deliver(deployment, "a2", notes=None)

    by_id = {metric["reminderId"]: metric for metric in sms_metrics(deployment)}
    full = f"Tuesday 3 March 2026 at 09:00 CET (Europe/Paris). {notes} {notes}"
    long_text = next(text for _, text in sent_sms(deployment) if "Please" in text)
    kept = long_text.removesuffix("...")
    assert long_text.endswith("...") and full.startswith(kept), "the start of the text, then an ellipsis"
    assert full[len(kept)] == " " and not kept.endswith(" "), "cut at a word boundary"
    assert 2 * 153 - 10 < len(long_text) <= 2 * 153, "as much as two GSM-7 parts hold, no more"
    assert long_text.endswith("medicines. Please arrive te Please arrive ten minutes early and bring your...")
    namespace = deployment.functions[deployment.resources[PROCESSOR].ref].environment["METRICS_NAMESPACE"]
    assert (by_id["a1#1440"]["SmsSegments"], by_id["a1#1440"]["encoding"]) == (2, "GSM-7")
    # One CloudWatch embedded-metric-format line per SMS, in the processor's namespace, no dimensions.
    assert by_id["a1#1440"]["_aws"]["CloudWatchMetrics"] == [
        {"Namespace": namespace, "Dimensions": [[]], "Metrics": [{"Name": "SmsSegments", "Unit": "Count"}]}
    ]
    assert (by_id["a2#1440"]["SmsSegments"], by_id["a2#1440"]["encoding"]) == (1, "GSM-7")
    assert "Please" not in json.dumps(sms_metrics(deployment)), "the count, never the text"


def test_a_message_outside_the_gsm_alphabet_is_counted_in_ucs2_segments(stack: Callable[..., LocalDeployment]) -> None:
    # "ç" is not in the GSM alphabet (only "Ç" is): the whole SMS is UCS-2, 70 characters a segment.
    deployment = stack(SmsTextTemplate="{customerName}, {when}")

    deliver(deployment, customerName="François Example")

    assert the_sms(deployment) == "François Example, Tuesday 3 March 2026 at 09:00 CET (Europe/Paris)"
    ((metric),) = sms_metrics(deployment)
    assert (metric["encoding"], metric["SmsSegments"]) == ("UCS-2", 1)


def test_the_library_sets_the_cap(library_stack: Callable[..., LocalDeployment]) -> None:
    deployment = library_stack(
        MessageProps(
            sms_max_segments=1,
            appointment_attributes=frozenset({"notes"}),
            templates=MessageTemplates(sms_text="{when}. {notes}"),
        )
    )

    deliver(deployment, notes=LONG_NOTE[:200])

    text = the_sms(deployment)
    assert len(text) <= 160 and text.endswith("...")
    assert [metric["SmsSegments"] for metric in sms_metrics(deployment)] == [1]


def test_no_metric_without_an_sms(stack: Callable[..., LocalDeployment]) -> None:
    deployment = stack()

    deliver(deployment, notificationChannels={"email"})
    deliver(deployment, "a2", customerPhone=None)

    assert sms_metrics(deployment) == []


# ---- nothing private where operators read -------------------------------------------------------


def test_the_message_warnings_and_metrics_hold_no_contact_data(stack: Callable[..., LocalDeployment]) -> None:
    deployment = stack(EmailSubjectTemplate="{when", SmsTextTemplate="{customerName} {when}")

    deliver(deployment, locale="xx", customerName="Camille Example-0042", location="12 Example Street")

    logs = all_logs(deployment)
    assert '"unknown_locale"' in logs and '"invalid_template"' in logs and '"SmsSegments"' in logs
    for private in ("Camille", "a1@example.com", "5555550123", "Example Street", "Tuesday 3 March"):
        assert private not in logs


def test_the_appointment_time_is_shown_as_the_job_says(stack: Callable[..., LocalDeployment]) -> None:
    """The job's localTime (what simulate shows) is the {when} of the customer's language."""
    deployment = stack()

    deliver(deployment, locale="it-IT")

    (job,) = [
        job
        for i in deployment.monitor.invocations
        if i.function.endswith(PROCESSOR)
        for job in (i.result or {}).get("jobs", [])
    ]
    assert job["localTime"] == "martedì 3 marzo 2026 alle ore 09:00 CET (Europe/Paris)"
