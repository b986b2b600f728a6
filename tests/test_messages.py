"""The message renderer (handlers/messages.py): templates, dates and times from CLDR, SMS length.

The locale data is checked against Babel (CLDR 47), the GSM alphabet against 3GPP TS 23.038's table
typed out here column by column, and the template and SMS rules with examples and with Hypothesis.
"""

from __future__ import annotations

import ast
import sys
import unicodedata
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import babel
import pytest
from babel import Locale, dates
from babel.core import get_cldr_version
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers import messages
from handlers.messages import (
    CLDR_FORMATS,
    CLDR_NAMES,
    GSM_ALPHABET,
    GSM_EXTENSION,
    TemplateError,
    describe_time,
    fit_sms,
    parse_template,
    render_template,
    resolve_locale,
    sms_segments,
    template_placeholders,
)

HANDLERS = Path(messages.__file__).parent
# No example database written into the checkout; no per-example deadline on a busy CI machine; the
# first draw of st.text builds Hypothesis's Unicode tables, which is slow once.
PROPERTIES = settings(database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NARROW_NO_BREAK_SPACE = "\u202f"
PARIS = ZoneInfo("Europe/Paris")

# ---------------------------------------------------------------------------------------------
# Templates
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "parts"),
    [
        ("", [""]),
        ("no placeholder", ["no placeholder"]),
        ("Hello {customerName}!", ["Hello ", "customerName", "!"]),
        ("{a}{b}", ["", "a", "", "b", ""]),
        ("{_x1} {Y_2}", ["", "_x1", " ", "Y_2", ""]),
        ("{{literal}} and }}", ["{literal} and }"]),
        ("{{{name}}}", ["{", "name", "}"]),
        ("line\n{a}\n", ["line\n", "a", "\n"]),
    ],
)
def test_a_template_is_literal_text_around_placeholder_names(template: str, parts: list[str]) -> None:
    assert parse_template(template) == parts


@pytest.mark.parametrize(
    ("template", "position", "fault"),
    [
        ("{0}", 1, "'{0}'"),  # positional field
        ("Hi {a.b}", 4, "'{a.b}'"),  # attribute access
        ("{x[0]}", 1, "'{x[0]}'"),  # index access
        ("{x!r}", 1, "'{x!r}'"),  # conversion
        ("{x:>9}", 1, "'{x:>9}'"),  # format spec
        ("{}", 1, "'{}'"),  # automatic numbering
        ("{ name }", 1, "'{ name }'"),  # spaces are not part of a name
        ("{1abc}", 1, "'{1abc}'"),  # a name does not start with a digit
        ("{naïve}", 1, "'{naïve}'"),  # ASCII names only
        ("Hello {customerName", 7, "'{customerName'"),  # never closed
        ("{a{b}", 1, "'{a'"),  # closed only after another opens
        ("Hello }", 7, "'}'"),  # closes nothing
        ("{a}}", 4, "'}'"),
    ],
)
def test_a_malformed_template_is_refused_with_the_position_and_the_fault(
    template: str, position: int, fault: str
) -> None:
    with pytest.raises(TemplateError, match=rf"^character {position}: ") as raised:
        parse_template(template)
    assert fault in str(raised.value)
    with pytest.raises(TemplateError):
        render_template(template, {})
    with pytest.raises(TemplateError):
        template_placeholders(template)


def test_a_template_error_is_a_value_error() -> None:
    assert issubclass(TemplateError, ValueError)


def test_placeholders_are_the_names_used() -> None:
    assert template_placeholders("{when}: {customerName}, {when} {{not}} {location}") == {
        "when",
        "customerName",
        "location",
    }
    assert template_placeholders("plain") == set()


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        # Values are text: never expanded again, never given to Python's format machinery.
        ("{customerPhone}", "Hello {customerPhone}!"),
        ("{0.__class__}", "Hello {0.__class__}!"),
        ("{customerName.__init__.__globals__}", "Hello {customerName.__init__.__globals__}!"),
        ("%s %(customerPhone)s", "Hello %s %(customerPhone)s!"),
        ("$customerPhone ${customerPhone}", "Hello $customerPhone ${customerPhone}!"),
        ("{{x}}", "Hello {{x}}!"),
        # Text mode: markup is text (the text part of an email is plain text).
        ("<script>alert(1)</script>", "Hello <script>alert(1)</script>!"),
        # Control characters go; line breaks and runs of spaces become one space.
        ("Pat\nExample", "Hello Pat Example!"),
        ("Pat\r\n\r\nExample\t ", "Hello Pat Example!"),
        ("Pat\x00\x07\x1b[31mExample", "Hello Pat[31mExample!"),
        ("Pat\u2028Example\u0085", "Hello Pat Example!"),
        # A bidi override would reverse the text after it on the customer's screen.
        ("\u202etxt.exe", "Hello txt.exe!"),
        ("Pat\u200b\u2066Example\u2069\u00ad", "Hello PatExample!"),
        # Letters of any script stay.
        ("Zoë Ñúñez 李", "Hello Zoë Ñúñez 李!"),
    ],
)
def test_a_value_is_inserted_as_text(value: str, rendered: str) -> None:
    values = {"customerName": value, "customerPhone": "+15555550123", "x": "X"}
    assert render_template("Hello {customerName}!", values) == rendered


def test_html_mode_escapes_values_and_leaves_the_template_alone() -> None:
    values = {"customerName": "<script>alert(1)</script>", "location": "A & B \"quoted\" 'single'"}
    rendered = render_template("<p>Hello <b>{customerName}</b>, at {location}.</p>", values, html=True)
    assert rendered == (
        "<p>Hello <b>&lt;script&gt;alert(1)&lt;/script&gt;</b>, at A &amp; B &quot;quoted&quot; &#x27;single&#x27;.</p>"
    )


def test_html_mode_removes_control_characters_before_escaping() -> None:
    rendered = render_template("<p>{n}</p>", {"n": "a\u202e<\nb"}, html=True)
    assert rendered == "<p>a&lt; b</p>"


def test_a_value_is_replaced_once_even_when_it_names_another_placeholder() -> None:
    values = {"a": "{b}", "b": "{a}"}
    assert render_template("{a} {b}", values) == "{b} {a}"


def test_a_number_renders_as_its_text() -> None:
    assert render_template("Room {room}.", {"room": 12}) == "Room 12."  # type: ignore[dict-item]


@pytest.mark.parametrize("empty", [None, "", "   ", "\n\t", "\u202e\u200b"])
def test_missing_empty_and_blank_values_render_alike(empty: str | None) -> None:
    values = {} if empty is None else {"customerName": empty}
    assert render_template("Hello {customerName}, see you", values) == "Hello, see you"


@pytest.mark.parametrize(
    ("template", "rendered"),
    [
        # No space before what closes a phrase, a line end or the end of the text.
        ("Hello {customerName}, see you", "Hello, see you"),
        ("Hello {customerName}!", "Hello!"),
        ("Reminder: {location}", "Reminder:"),
        ("Location: {location}\nSee you", "Location:\nSee you"),
        # ... and no doubled space.
        ("Dear {title} {name},\n", "Dear Pat,\n"),
        ("See {providerName} soon", "See soon"),
        ("{title} {name}", "Pat"),
        ("{title}\t{name}", "Pat"),
        # The business's words stay: this gap cannot be closed without knowing the language.
        ("with {providerName} at {place}.", "with at Main St."),
        # A comma gives way to the punctuation after the gap, or to the end of the text.
        ("Hello {name}, {title}, welcome", "Hello Pat, welcome"),
        ("on Tuesday, {room}.", "on Tuesday."),
        ("on Tuesday, {room}", "on Tuesday"),
        ("Dear {name}, {title}\nNext", "Dear Pat,\nNext"),
        # Empty brackets go, with one of the spaces around them.
        ("Dr Smith ({location}) tomorrow", "Dr Smith tomorrow"),
        ("Dr Smith ({location}), tomorrow", "Dr Smith, tomorrow"),
        ("Dr Smith [{location}].", "Dr Smith."),
        ("({room} {floor})", ""),
        ("Lee ({room} {floor}) at 9", "Lee at 9"),
        # At a line's start, a separator after the gap goes too.
        ("{title}, your appointment", "your appointment"),
        ("Hi\n{title}: your appointment", "Hi\nyour appointment"),
        # A line that held only the placeholder goes, without doubling a blank line.
        ("Hello,\n{location}\nSee you", "Hello,\nSee you"),
        ("Hello,\n\n{location}\n\nSee you", "Hello,\n\nSee you"),
        ("{location}\n\nSee you", "See you"),
        ("Hello\n{location}", "Hello\n"),
        # Two gaps in a row.
        ("{title} {room} {floor}", ""),
        ("Pat {title} {room}.", "Pat."),
    ],
)
def test_an_empty_placeholder_leaves_no_doubled_space_or_dangling_punctuation(template: str, rendered: str) -> None:
    # customerName, providerName and title are missing; location, room and floor are blank.
    values = {"name": "Pat", "place": "Main St", "location": "", "room": "  ", "floor": "\u202e"}
    assert render_template(template, values) == rendered


@pytest.mark.parametrize(
    ("template", "rendered"),
    [
        # French puts a (narrow) space before ! ? : ; the text around a gap keeps it.
        ("Bonjour {customerName} !", "Bonjour !"),
        ("Bonjour {customerName}\u202f!", "Bonjour\u202f!"),
        ("Lieu : {location}\n", "Lieu :\n"),
        ("Rendez-vous le {date} : {location} ?", "Rendez-vous le mardi : ?"),
        # Nothing away from a gap changes: doubled spaces, leading spaces, its own brackets.
        ("  Hello  there, {customerName}.  ( ) [] ,,", "  Hello  there.  ( ) [] ,,"),
        ("Hello {{customerName}}, {customerName}", "Hello {customerName}"),
    ],
)
def test_the_business_typography_away_from_a_gap_is_kept(template: str, rendered: str) -> None:
    assert render_template(template, {"date": "mardi"}) == rendered


def test_the_html_template_keeps_its_markup_around_a_gap() -> None:
    rendered = render_template("<p>Hello {customerName},</p>\n<p>See you</p>", {}, html=True)
    assert rendered == "<p>Hello,</p>\n<p>See you</p>"


# The template pieces a business writes, and values from every corner of Unicode (lone surrogates,
# unassigned and private-use code points included), numbers and nothing.
TEMPLATE_PIECES = st.sampled_from(
    ["Hello", " ", "  ", ",", ".", "!", " :", "(", ")", "[", "]", "\n", "\n\n", "{{", "}}", "{a}", "{b}", "{c}", "é"]
)
TEMPLATES = st.lists(TEMPLATE_PIECES, max_size=12).map("".join)
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=20)
VALUES = st.dictionaries(
    st.sampled_from("abc"),
    ANY_TEXT | st.sampled_from(["{a}", "{b}", "<b>", "\u202e"]) | st.integers() | st.none(),
)


@PROPERTIES
@given(TEMPLATES, VALUES, st.booleans())
def test_rendering_never_raises_and_no_control_character_comes_from_a_value(
    template: str, values: dict[str, str], html: bool
) -> None:
    rendered = render_template(template, values, html=html)
    controls = [c for c in rendered if unicodedata.category(c)[0] == "C"]
    # The template's own line breaks are its only control characters (and none are added).
    assert set(controls) <= {"\n"}
    assert len(controls) <= template.count("\n")
    rendered.encode("utf-8")  # no lone surrogate: the message can be sent


@PROPERTIES
@given(TEMPLATES, VALUES)
def test_html_output_has_no_markup_from_a_value(template: str, values: dict[str, str]) -> None:
    rendered = render_template(template, values, html=True)
    assert not {"<", ">", '"', "'"} & set(rendered)


@PROPERTIES
@given(ANY_TEXT | st.sampled_from(["{b}", "{{b}}", "{0.__class__}"]))
def test_a_value_is_never_expanded(value: str) -> None:
    rendered = render_template("[{a}]", {"a": value, "b": "SECRET"})
    assert ("SECRET" in rendered) == ("SECRET" in value)


# ---------------------------------------------------------------------------------------------
# Languages: locale tags, and dates and times from CLDR
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "locale"),
    [
        ("en", "en-US"),
        ("en-US", "en-US"),
        ("en_US", "en-US"),
        ("en_US.UTF-8", "en-US"),
        ("en-us", "en-US"),
        ("en-CA", "en-US"),  # Canada: the US date order and 12-hour clock in CLDR
        ("en-PR", "en-US"),
        ("en-US-u-ca-gregory", "en-US"),
        ("en-GB", "en-GB"),
        ("EN-gb", "en-GB"),
        ("en-IE", "en-GB"),
        ("en-AU", "en-GB"),
        ("en-001", "en-GB"),
        ("fr-FR", "fr"),
        ("fr", "fr"),
        ("FR_be", "fr"),
        ("fr-CA", "fr"),
        ("de", "de"),
        ("de-AT", "de"),
        ("de-CH", "de"),
        ("es-ES", "es"),
        ("es-MX", "es"),
        ("es-419", "es"),
        ("it-IT", "it"),
        ("pt-BR", "pt"),
        ("pt-PT", "pt"),
        ("nl-NL", "nl"),
        ("nl-BE", "nl"),
        (" fr-FR ", "fr"),
        ("ja-JP", None),
        ("english", None),
        ("fra", None),
        ("x", None),
        ("", None),
        (None, None),
    ],
)
def test_a_language_tag_resolves_to_a_supported_locale_or_none(tag: str | None, locale: str | None) -> None:
    assert resolve_locale(tag) == locale


def test_every_supported_locale_resolves_to_itself_and_has_names() -> None:
    for locale in CLDR_FORMATS:
        assert resolve_locale(locale) == locale
        assert len(CLDR_NAMES[locale[:2]].split()) == 12 + 7


@pytest.mark.parametrize(
    ("locale", "when"),
    [
        # What every reminder said before there were languages.
        ("en-GB", "Tuesday 3 March 2026 at 12:00 CET (Europe/Paris)"),
        ("en-US", "Tuesday, March 3, 2026 at 12:00 PM CET (Europe/Paris)"),
        ("fr", "mardi 3 mars 2026 à 12:00 CET (Europe/Paris)"),
        ("de", "Dienstag, 3. März 2026 um 12:00 CET (Europe/Paris)"),
        ("es", "martes, 3 de marzo de 2026, 12:00 CET (Europe/Paris)"),
        ("it", "martedì 3 marzo 2026 alle ore 12:00 CET (Europe/Paris)"),
        ("pt", "terça-feira, 3 de março de 2026 às 12:00 CET (Europe/Paris)"),
        ("nl", "dinsdag 3 maart 2026 om 12:00 CET (Europe/Paris)"),
    ],
)
def test_the_time_reads_in_the_customers_language(locale: str, when: str) -> None:
    described = describe_time(datetime(2026, 3, 3, 12, 0, tzinfo=PARIS), "CET (Europe/Paris)", locale)
    assert described["when"] == when
    assert described["timeZone"] == "CET (Europe/Paris)"
    assert described["date"] in when
    assert described["time"] in when


@pytest.mark.parametrize(
    ("hour", "minute", "clock"),
    [(0, 0, "12:00 AM"), (0, 5, "12:05 AM"), (9, 5, "9:05 AM"), (11, 59, "11:59 AM"), (12, 0, "12:00 PM"),
     (13, 1, "1:01 PM"), (23, 59, "11:59 PM")],
)  # fmt: skip
def test_the_us_clock_has_twelve_hours(hour: int, minute: int, clock: str) -> None:
    assert describe_time(datetime(2026, 7, 4, hour, minute, tzinfo=ZoneInfo("America/New_York")), "EDT", "en-US") == {
        "when": f"Saturday, July 4, 2026 at {clock} EDT",
        "date": "Saturday, July 4, 2026",
        "time": clock,
        "timeZone": "EDT",
    }


def test_the_time_is_the_moments_own_wall_clock_time_in_its_zone() -> None:
    moment = datetime(2026, 3, 29, 1, 30, tzinfo=ZoneInfo("UTC")).astimezone(PARIS)  # just after the DST change
    assert describe_time(moment, "CEST (Europe/Paris)", "en-GB")["when"] == (
        "Sunday 29 March 2026 at 03:30 CEST (Europe/Paris)"
    )


def test_an_unsupported_locale_is_the_callers_mistake() -> None:
    with pytest.raises(KeyError):
        describe_time(datetime(2026, 3, 3, tzinfo=PARIS), "UTC", "ja")


#: CLDR 47's "atTime" full date-time patterns: cldr-json 47.0.0,
#: cldr-json/cldr-dates-full/main/<locale>/ca-gregorian.json, dateTimeFormats-atTime.standard.full.
#: Babel 2.18.0 imports only the standard pattern ("{1}, {0}"), so the expected values are copied here.
CLDR47_AT_TIME = {
    "en": "{1} 'at' {0}",
    "en_GB": "{1} 'at' {0}",
    "fr": "{1} 'à' {0}",
    "de": "{1} 'um' {0}",
    "es": "{1}, {0}",
    "it": "{1} 'alle' 'ore' {0}",
    "pt": "{1} 'às' {0}",
    "pt_PT": "{1} 'às' {0}",
    "nl": "{1} 'om' {0}",
}
#: Each supported locale and the CLDR locales it stands for (pt-BR and pt-PT read the same in CLDR 47).
CLDR_LOCALES = [
    ("en-US", "en"),
    ("en-GB", "en_GB"),
    ("fr", "fr"),
    ("de", "de"),
    ("es", "es"),
    ("it", "it"),
    ("pt", "pt"),
    ("pt", "pt_PT"),
    ("nl", "nl"),
]
#: Every month and weekday, in the morning, the afternoon, and at both midnights and noon.
MOMENTS = [
    datetime(2026, month, day, hour, minute)
    for month in range(1, 13)
    for day in range(1, 8)
    for hour, minute in ((0, 0), (9, 5), (12, 0), (15, 30), (23, 59))
]


def test_the_data_is_from_the_pinned_cldr() -> None:
    # A new Babel brings a new CLDR: check the data again, and name the version in the module.
    assert (babel.__version__, get_cldr_version()) == ("2.18.0", "47")
    assert "CLDR 47" in (messages.__doc__ or "")
    assert "Babel 2.18.0" in (messages.__doc__ or "")


def expected_patterns(locale: str, cldr_locale: str) -> tuple[str, str, str, str]:
    """CLDR's patterns for the locale, with our deliberate differences applied (and named)."""
    data = Locale.parse(cldr_locale)
    date = data.date_formats["full"].pattern
    if locale == "en-GB":
        # Deliberate: no comma after the weekday, as every reminder read before (CLDR: "EEEE, d MMMM y").
        assert date == "EEEE, d MMMM y"
        date = "EEEE d MMMM y"
    # Deliberate: a normal space for U+202F before AM/PM, which would make every SMS UCS-2.
    time = data.time_formats["short"].pattern.replace(NARROW_NO_BREAK_SPACE, " ")
    periods = data.day_periods["format"]["abbreviated"]
    marks = f"{periods['am']} {periods['pm']}" if "a" in time else ""
    return date, time, CLDR47_AT_TIME[cldr_locale], marks


@pytest.mark.parametrize(("locale", "cldr_locale"), CLDR_LOCALES)
def test_the_names_and_patterns_are_cldrs(locale: str, cldr_locale: str) -> None:
    data = Locale.parse(cldr_locale)
    months = [data.months["format"]["wide"][m] for m in range(1, 13)]
    weekdays = [data.days["format"]["wide"][d] for d in range(7)]  # Babel counts from Monday
    assert CLDR_NAMES[locale[:2]].split() == months + weekdays
    assert CLDR_FORMATS[locale] == expected_patterns(locale, cldr_locale)


@pytest.mark.parametrize(("locale", "cldr_locale"), CLDR_LOCALES)
def test_every_date_and_time_reads_as_babel_formats_it(locale: str, cldr_locale: str) -> None:
    date_pattern, time_pattern, joining, _ = expected_patterns(locale, cldr_locale)
    when_pattern = joining.replace("{1}", date_pattern).replace("{0}", time_pattern)
    for moment in MOMENTS:
        described = describe_time(moment.replace(tzinfo=PARIS), "CET", locale)
        assert described == {
            "when": dates.format_datetime(moment, when_pattern, locale=cldr_locale) + " CET",
            "date": dates.format_date(moment.date(), date_pattern, locale=cldr_locale),
            "time": dates.format_time(moment.time(), time_pattern, locale=cldr_locale),
            "timeZone": "CET",
        }, moment
        # Babel's own full date and short time, but for the differences named above.
        full_date = dates.format_date(moment.date(), "full", locale=cldr_locale)
        short_time = dates.format_time(moment.time(), "short", locale=cldr_locale)
        assert described["time"] == short_time.replace(NARROW_NO_BREAK_SPACE, " ")
        if locale != "en-GB":
            assert described["date"] == full_date
        else:
            assert described["date"] == full_date.replace(",", "", 1)


# ---------------------------------------------------------------------------------------------
# SMS length
# ---------------------------------------------------------------------------------------------

#: 3GPP TS 23.038 section 6.2.1, the GSM 7-bit default alphabet, one string per column (0x00, 0x10,
#: ... 0x70), rows 0x0 to 0xF; \x1b (ESC) announces the extension table and is not a character.
GSM_COLUMNS = [
    "@£$¥èéùìòÇ\nØø\rÅå",
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ",
    " !\"#¤%&'()*+,-./",
    "0123456789:;<=>?",
    "¡ABCDEFGHIJKLMNO",
    "PQRSTUVWXYZÄÖÑÜ§",
    "¿abcdefghijklmno",
    "pqrstuvwxyzäöñüà",
]
#: Its extension table (each sent as ESC and the code): form feed, ^ { } \ [ ~ ] | €.
GSM_EXTENSION_TABLE = {0x0A: "\f", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\", 0x3C: "[", 0x3D: "~", 0x3E: "]",
                       0x40: "|", 0x65: "€"}  # fmt: skip


def test_the_gsm_alphabet_is_the_standards() -> None:
    assert all(len(column) == 16 for column in GSM_COLUMNS)
    assert sorted(GSM_ALPHABET) == sorted("".join(GSM_COLUMNS).replace("\x1b", ""))
    assert len(set(GSM_ALPHABET)) == 127
    assert sorted(GSM_EXTENSION) == sorted(GSM_EXTENSION_TABLE.values())


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("", "GSM-7", 1),  # an empty message is still billed as one
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),  # then 153 a part
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("€" * 80, "GSM-7", 1),  # extension characters take two septets
        ("€" * 81, "GSM-7", 2),
        ("a" * 159 + "€", "GSM-7", 2),
        ("a" * 158 + "\f", "GSM-7", 1),
        (GSM_ALPHABET, "GSM-7", 1),
        ("Tuesday, March 3, 2026 at 12:00 PM", "GSM-7", 1),
        # The two septets of an extension character stay in one part: 152 + [2 + 151] + 1.
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 3),
        ("ç", "UCS-2", 1),  # lower-case c cedilla is not in the GSM alphabet (upper case is)
        ("a" * 159 + "\u2019", "UCS-2", 3),  # one curly apostrophe: UCS-2 for the whole message
        ("ê" * 70, "UCS-2", 1),
        ("ê" * 71, "UCS-2", 2),  # then 67 a part
        ("ê" * 134, "UCS-2", 2),
        ("ê" * 135, "UCS-2", 3),
        ("12:00\u202fPM", "UCS-2", 1),  # why describe_time writes a normal space
        ("😀" * 35, "UCS-2", 1),  # outside the BMP: two UTF-16 units each
        ("😀" * 36, "UCS-2", 2),
        # A surrogate pair stays in one part: 66 + [2 + 65] + 1.
        ("x" * 66 + "😀" + "x" * 66, "UCS-2", 3),
        ("\x1b", "UCS-2", 1),  # ESC alone is not a character of the alphabet
    ],
)
def test_an_sms_is_counted_in_segments(text: str, encoding: str, segments: int) -> None:
    assert sms_segments(text) == (encoding, segments)


def test_the_names_that_make_an_sms_ucs2_are_those_the_module_names() -> None:
    names = {name for language in CLDR_NAMES.values() for name in language.split()}
    assert {name for name in names if sms_segments(name)[0] == "UCS-2"} == {
        "août",
        "sábado",
        "março",
        "terça-feira",
    }
    for name in ("août", "sábado", "março", "terça-feira"):
        assert f'"{name}"' in (messages.__doc__ or "")


@pytest.mark.parametrize("character", sorted(GSM_EXTENSION))
def test_every_extension_character_takes_two_septets(character: str) -> None:
    assert sms_segments(character * 80) == ("GSM-7", 1)
    assert sms_segments(character * 80 + "a") == ("GSM-7", 2)


@pytest.mark.parametrize(
    ("text", "max_segments", "fitted"),
    [
        ("short", 1, "short"),
        ("a" * 160, 1, "a" * 160),
        # Cut at a word boundary, with an ellipsis that keeps the encoding.
        ("word " * 40, 1, ("word " * 31).rstrip() + "..."),  # 154 + 3 septets
        ("word " * 80, 2, ("word " * 60).rstrip() + "..."),  # 299 + 3 of 306 septets
        ("wörd " * 40, 1, ("wörd " * 31).rstrip() + "..."),  # ö is GSM
        ("mot " * 32, 1, "mot " * 32),  # 128 characters fit
        ("ça " * 30, 1, ("ça " * 23).rstrip() + "…"),
        # Punctuation that would dangle before the ellipsis goes with the cut.
        ("See you, " * 20, 1, "See you, " * 17 + "See..."),
        ("A sentence. " * 20, 1, "A sentence. " * 13 + "A..."),
        # A single enormous word is cut where it must be.
        ("x" * 500, 1, "x" * 157 + "..."),
        ("Hi " + "x" * 500, 1, "Hi..."),
        ("😀" * 100, 1, "😀" * 34 + "…"),  # never half a surrogate pair
        ("€" * 100, 1, "€" * 78 + "..."),
    ],
)
def test_a_long_sms_is_shortened_to_fit(text: str, max_segments: int, fitted: str) -> None:
    result = fit_sms(text, max_segments)
    assert result == fitted
    assert sms_segments(result)[1] <= max_segments


def test_fitting_needs_at_least_one_segment() -> None:
    with pytest.raises(ValueError, match="max_segments"):
        fit_sms("text", 0)


SMS_TEXT = st.text(
    st.sampled_from(["a", "b", " ", "\n", "€", "{", "ç", "ê", "😀", "…", ".", ","]) | st.characters(), max_size=700
)


@PROPERTIES
@given(SMS_TEXT, st.integers(min_value=1, max_value=4))
def test_a_fitted_sms_always_fits_and_keeps_its_encoding(text: str, max_segments: int) -> None:
    fitted = fit_sms(text, max_segments)
    encoding, segments = sms_segments(fitted)
    assert segments <= max_segments
    if sms_segments(text)[1] <= max_segments:
        assert fitted == text
    else:
        ellipsis = "..." if encoding == "GSM-7" else "…"
        assert encoding == sms_segments(text)[0]
        assert fitted.endswith(ellipsis)
        assert text.startswith(fitted[: -len(ellipsis)])
        fitted.encode("utf-16")  # no lone surrogate


# ---------------------------------------------------------------------------------------------
# What the bundle into the processor's index.py needs
# ---------------------------------------------------------------------------------------------


def top_level_names(source: str) -> dict[str, str]:
    """Each name a module binds at its top level, and what binds it (an import names its origin)."""
    names: dict[str, str] = {}
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names[node.name] = "definition"
        elif isinstance(node, ast.Assign):
            names.update((n.id, "definition") for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, ast.Import):
            names.update((a.asname or a.name, f"import {a.name}") for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.update((a.asname or a.name, f"from {node.module} import {a.name}") for a in node.names)
    return names


@pytest.mark.parametrize(
    "handler", sorted(p.stem for p in HANDLERS.glob("*.py") if p.stem not in ("messages", "__init__"))
)
def test_no_top_level_name_clashes_with_a_handlers(handler: str) -> None:
    ours = top_level_names((HANDLERS / "messages.py").read_text(encoding="utf-8"))
    theirs = top_level_names((HANDLERS / f"{handler}.py").read_text(encoding="utf-8"))
    # The same import twice binds the same object; anything else of the same name would be overwritten.
    assert {name for name in ours.keys() & theirs.keys() if ours[name] != theirs[name]} == set()


def test_the_module_is_standard_library_only_and_never_formats_text() -> None:
    tree = ast.parse((HANDLERS / "messages.py").read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, "a relative import cannot work in a bundled index.py"
            imported.add((node.module or "").split(".")[0])
        elif isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        # Values never reach str.format, format_map, string.Template or %-formatting.
        assert not (isinstance(node, ast.Attribute) and node.attr in ("format", "format_map", "substitute"))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):  # arithmetic only: x % 12
            assert isinstance(node.right, ast.Constant) and type(node.right.value) is int
    assert imported <= set(sys.stdlib_module_names)
    assert "string" not in imported
