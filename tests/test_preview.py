"""``python -m tapstack preview`` and ``simulate``'s messages: what the deployed handlers would send,
rendered by the template's own inlined code without AWS, and the same as what the local runner sends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer

from tapstack import ReminderProps, build_template
from tapstack.__main__ import main
from tapstack.local import LocalDeployment
from tapstack.local.preview import PreviewError, load_item, preview
from tapstack.messages import MessageProps, MessageTemplates
from tests.support import DAY, HOUR, SENDER, appointment, put_appointment, sent_sms

SALON = {
    "SenderName": "Salon Émile",
    "EmailSubjectTemplate": "{serviceName} : {when}",
    "SmsTextTemplate": "Salon Émile : {serviceName}, {when}.",
}


@pytest.fixture
def template_file(tmp_path: Path, template_text: str) -> Path:
    path = tmp_path / "TapStack.yml"
    path.write_text(template_text)
    return path


def item_file(tmp_path: Path, item: Any, name: str = "item.json") -> Path:
    path = tmp_path / name
    path.write_text(item if isinstance(item, str) else json.dumps(item))
    return path


def french_booking(**fields: Any) -> dict[str, Any]:
    return appointment("demo-1", DAY - HOUR, **{"locale": "fr-FR", "serviceName": "Coupe", **fields})


def test_preview_prints_the_email_and_the_sms_as_the_customer_reads_them(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, template_file: Path
) -> None:
    item = item_file(tmp_path, french_booking())
    parameters = [f"--parameter={name}={value}" for name, value in SALON.items()]

    assert main(["preview", "--template", str(template_file), "--item", str(item), *parameters]) == 0

    out = capsys.readouterr().out
    assert out.startswith(
        "locale: fr (the appointment's fr-FR)\ntime:   mardi 3 mars 2026 à 09:00 CET (Europe/Paris)\n"
    )
    assert "email to demo-1@example.com\n" in out
    # A mail client shows the name; SES gets it as an RFC 2047 encoded-word.
    assert "From:     Salon Émile <reminders@example.com>  (sent as =?utf-8?q?Salon_=C3=89mile?=" in out
    assert "Subject:  Coupe : mardi 3 mars 2026 à 09:00 CET (Europe/Paris)\n" in out
    assert "  Hello Pat Example,\n\n  This is a reminder of your appointment on mardi 3 mars 2026" in out
    # "É" and "à" are in the GSM alphabet: one GSM-7 part.
    assert "sms to +15555550123 (GSM-7, 1 segment, at most 2)\n" in out
    assert "  Salon Émile : Coupe, mardi 3 mars 2026 à 09:00 CET (Europe/Paris).\n" in out


def test_preview_reads_dynamodb_json_and_shows_warnings_without_contact_data(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, template_file: Path
) -> None:
    serializer = TypeSerializer()
    booking = french_booking(locale="tlh", notificationChannels={"sms"})
    item = item_file(tmp_path, {"Item": {name: serializer.serialize(value) for name, value in booking.items()}})

    assert (
        main(["preview", "--template", str(template_file), "--item", str(item), "--parameter=SmsTextTemplate={"]) == 0
    )

    out = capsys.readouterr().out
    assert out.startswith("locale: en-GB (DefaultLocale: the appointment's tlh is not supported)\n")
    assert "email: not requested (notificationChannels)\n" in out
    assert "sms to +15555550123 (GSM-7, 1 segment, at most 2)\n" in out
    assert "  This is a reminder of your appointment on Tuesday 3 March 2026 at 09:00 CET (Europe/Paris).\n" in out
    assert "warning: invalid_template (template=SMS_TEXT, " in out
    assert "warning: unknown_locale (appointmentId=demo-1)\n" in out


@pytest.mark.parametrize(
    ("arguments", "item", "message"),
    [
        ([], None, "no such item file"),
        ([], "{not json", "not JSON"),
        ([], "[1, 2]", "expected an appointment item"),
        ([], {"customerName": "Pat Example"}, "the item has no appointmentId"),
        ([], {"appointmentId": "a1"}, "this appointment gets no reminder"),
        (["--parameter=SenderNam=Example"], {}, "unknown parameter SenderNam"),
        (["--parameter", "SenderName"], {}, "--parameter expects Name=value"),
    ],
)
def test_preview_refuses_clearly_with_exit_code_2(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    template_file: Path,
    arguments: list[str],
    item: Any,
    message: str,
) -> None:
    path = tmp_path / "missing.json" if item is None else item_file(tmp_path, item or french_booking())

    assert main(["preview", "--template", str(template_file), "--item", str(path), *arguments]) == 2

    assert message in capsys.readouterr().err


def test_preview_without_a_template_says_how_to_make_one(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    item = item_file(tmp_path, french_booking())

    assert main(["preview", "--template", str(tmp_path / "none.yml"), "--item", str(item)]) == 2

    assert "no such template (run python build.py first)" in capsys.readouterr().err


def test_a_plain_json_item_is_typed_as_dynamodb_stores_it(tmp_path: Path) -> None:
    item = load_item(item_file(tmp_path, {"appointmentId": "a1", "appointmentTime": 1772532000, "tags": ["x"]}))

    assert item == {"appointmentId": {"S": "a1"}, "appointmentTime": {"N": "1772532000"}, "tags": {"SS": ["x"]}}
    with pytest.raises(PreviewError, match="no such item file"):
        load_item(tmp_path / "nope.json")


def test_preview_is_what_the_deployed_handlers_send(clock: Any) -> None:
    """The same template, the same item: preview's SendEmail request and SMS are the local runner's."""
    messages = MessageProps(
        templates=MessageTemplates(
            email_text="Hello {customerName}, {serviceName} at {location}.",
            email_html="<p>Hello <b>{customerName}</b></p><p>{serviceName} at {location}, {when}</p>",
            sms_text="{serviceName}: {when}, {location}",
        ),
        appointment_attributes=frozenset({"serviceName", "location"}),
        reply_to_email="desk@example.com",
        sender_name="Example Clinic",
    )
    template = build_template(ReminderProps(messages=messages)).to_dict()
    booking = appointment("a1", DAY - HOUR, locale="en-US", serviceName="Check-up", location="<b>Room 4</b> & co")
    serializer = TypeSerializer()

    shown = preview(
        template,
        {name: serializer.serialize(value) for name, value in booking.items()},
        {"SenderEmail": SENDER},
    )

    with LocalDeployment(template, {"SenderEmail": SENDER}) as deployment:
        put_appointment(deployment, booking)
        deployment.run_pipe()
        assert {execution["status"] for execution in deployment.wait()} == {"SUCCEEDED"}
        (sent,) = [call.params for call in deployment.monitor.calls if call.operation == "SendEmail"]
        ((_, sms),) = sent_sms(deployment)
    assert shown.email == sent
    assert shown.email is not None and shown.email["Message"]["Body"]["Html"]["Data"] == (
        "<p>Hello <b>Pat Example</b></p><p>Check-up at &lt;b&gt;Room 4&lt;/b&gt; &amp; co,"
        " Tuesday, March 3, 2026 at 9:00 AM CET (Europe/Paris)</p>"
    )
    assert shown.sms is not None and shown.sms["text"] == sms
    assert (shown.sms_encoding, shown.sms_segments) == ("GSM-7", 1)


# ---- simulate ------------------------------------------------------------------------------------


def test_simulate_the_messages_scenario_prints_what_each_customer_reads(
    capsys: pytest.CaptureFixture[str], template_file: Path
) -> None:
    assert main(["simulate", "messages", "--template", str(template_file)]) == 0

    out = capsys.readouterr().out
    assert "\nmessages sent\n" in out
    assert "  From:     Example Salon <reminders@example.com>\n" in out
    assert "  Subject:  Coupe: mardi 3 mars 2026 à 11:00 CET (Europe/Paris)\n" in out
    assert "  Subject:  Farbe: Dienstag, 3. März 2026 um 12:00 CET (Europe/Berlin)\n" in out
    assert "Tuesday, March 3, 2026 at 7:00 AM EST (America/New_York)" in out
    # The unknown locale reads in DefaultLocale's language.
    assert "  Example Salon: Wash with Kim, Tuesday 3 March 2026 at 11:00 GMT (Europe/London)" in out
    assert "  (GSM-7, 1 segment)\n" in out
    assert "FAILED execution" not in out


def test_simulate_prints_messages_only_when_asked(capsys: pytest.CaptureFixture[str], template_file: Path) -> None:
    assert main(["simulate", "--template", str(template_file)]) == 0
    assert "messages sent" not in capsys.readouterr().out

    assert main(["simulate", "--messages", "--template", str(template_file), "--parameter=SenderName=Clinic"]) == 0
    out = capsys.readouterr().out
    assert "\nmessages sent\n" in out and "  From:     Clinic <reminders@example.com>\n" in out


def test_an_unknown_scenario_lists_the_shipped_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "nope"]) == 2
    assert "shipped scenario: default, messages" in capsys.readouterr().err
