"""The message renderer (handlers/messages.py): templates, dates and times from CLDR, SMS length.

The locale data is checked against Babel (CLDR 47), the GSM alphabet against 3GPP TS 23.038's table
typed out here column by column, the template and SMS rules with examples and with Hypothesis, and
the module as the build minifies it against its byte budget and its source's behaviour.
"""

from __future__ import annotations

import ast
import re
import sys
import types
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
    CLDR_NAMES,
    GSM_EXTENSION,
    GSM_TEXT,
    LOCALES,
    TemplateError,
    describe_time,
    fit_sms,
    parse_template,
    render_template,
    resolve_locale,
    sms_segments,
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
        # A name is an identifier, in any script (DynamoDB attribute names are any text).
        ("{naïve} {ubicación} {場所}", ["", "naïve", " ", "ubicación", " ", "場所", ""]),
    ],
)
def test_a_template_is_literal_text_around_placeholder_names(template: str, parts: list[str]) -> None:
    assert parse_template(template) == parts


@pytest.mark.parametrize(
    ("template", "brace", "position"),
    [
        ("{0}", "{", 1),  # positional field
        ("Hi {a.b}", "{", 4),  # attribute access
        ("{x[0]}", "{", 1),  # index access
        ("{x!r}", "{", 1),  # conversion
        ("{x:>9}", "{", 1),  # format spec
        ("{}", "{", 1),  # automatic numbering
        ("{ name }", "{", 1),  # spaces are not part of a name
        ("{1abc}", "{", 1),  # a name does not start with a digit
        ("{٣x}", "{", 1),  # ... of any script
        ("{a-b}", "{", 1),  # nor holds a hyphen
        ("Hello {customerName", "{", 7),  # never closed
        ("{a{b}", "{", 1),  # closed only after another opens
        ("Hello }", "}", 7),  # closes nothing
        ("{a}}", "}", 4),
        ("{{{a}}}}", "}", 8),
    ],
)
def test_a_malformed_template_is_refused_with_the_brace_and_its_position(
    template: str, brace: str, position: int
) -> None:
    with pytest.raises(TemplateError) as raised:
        parse_template(template)
    assert str(raised.value) == f"stray {brace!r} at {position}"
    assert template[position - 1] == brace
    with pytest.raises(TemplateError):
        render_template(template, {})


def test_a_template_error_is_a_value_error() -> None:
    assert issubclass(TemplateError, ValueError)


def test_the_placeholders_are_the_odd_parts() -> None:
    # How the library finds the names a template uses (to refuse an unknown computed one).
    assert set(parse_template("{when}: {customerName}, {when} {{not}} {location}")[1::2]) == {
        "when",
        "customerName",
        "location",
    }
    assert parse_template("plain")[1::2] == []


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


def test_a_value_that_is_not_text_renders_as_its_text() -> None:
    # Values are text (the processor passes a DynamoDB number as its digits); anything else is a
    # caller's mistake, which must not fail the batch.
    assert render_template("Room {room}.", {"room": 12}) == "Room 12."  # type: ignore[dict-item]


@pytest.mark.parametrize("empty", [None, "", "   ", "\n\t", "\u202e\u200b"])
def test_missing_empty_and_blank_values_render_alike(empty: str | None) -> None:
    values = {} if empty is None else {"customerName": empty}
    assert render_template("Hello {customerName}, see you", values) == "Hello, see you"


@pytest.mark.parametrize(
    ("template", "rendered"),
    [
        # Before anything but a letter or a digit, the spaces before the gap go ...
        ("Hello {customerName}, see you", "Hello, see you"),
        ("Hello {customerName}!", "Hello!"),
        ("Reminder: {location}", "Reminder:"),
        ("Location: {location}\nSee you", "Location:\nSee you"),
        ("Call {customerName}'s phone", "Call's phone"),
        # ... so no space is doubled.
        ("Dear {title} {name},\n", "Dear Pat,\n"),
        ("See {providerName} soon", "See soon"),
        ("Pat {title} {room}.", "Pat."),
        ("{title} {room} {floor}", ""),
        # The business's words stay: this gap cannot be closed without knowing the language.
        ("with {providerName} at {place}.", "with at Main St."),
        # Before a closing mark, a line end or the end of the text, a comma before the gap goes too.
        ("Hello {name}, {title}, welcome", "Hello Pat, welcome"),
        ("with Dr Lee, {location}, at 9", "with Dr Lee, at 9"),
        ("on Tuesday, {room}.", "on Tuesday."),
        ("on Tuesday, {room}", "on Tuesday"),
        ("with Dr Lee, {location}\nSee you", "with Dr Lee\nSee you"),
        ("(Dr Lee, {location})", "(Dr Lee)"),
        ("Hello {name}, {title} welcome", "Hello Pat, welcome"),  # a word follows: the comma stays
        # Parentheses that hold only the gap go, with the spaces before them.
        ("Dr Smith ({location}) tomorrow", "Dr Smith tomorrow"),
        ("Dr Smith ({location}), tomorrow", "Dr Smith, tomorrow"),
        ("Dr Smith ({location}).", "Dr Smith."),
        ("({location})", ""),
        # At a line's start, the spaces and separators after the gap go ...
        ("{title}, your appointment", "your appointment"),
        ("{title} {name}", "Pat"),
        ("Hi\n{title}: your appointment", "Hi\nyour appointment"),
        ("Hi\n{title} {name},", "Hi\nPat,"),
        # ... and the line break of a line that held only the gap.
        ("Hello,\n{location}\nSee you", "Hello,\nSee you"),
        ("Hello,\n{location}\n\nSee you", "Hello,\n\nSee you"),
        ("Hello\n{location}", "Hello\n"),
        ("{location}\nSee you", "See you"),
        # What the rules leave (rare; the module's docstring says so).
        ("Dr Smith [{location}].", "Dr Smith []."),
        ("Lee ({room} {floor}) at 9", "Lee () at 9"),
        ("Hello,\n\n{location}\n\nSee you", "Hello,\n\n\nSee you"),
        ("{location}\n\nSee you", "\nSee you"),
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
        ("Hello {customerName}\t, ok", "Hello\t, ok"),
    ],
)
def test_the_business_typography_away_from_a_gap_is_kept(template: str, rendered: str) -> None:
    assert render_template(template, {"date": "mardi"}) == rendered


def test_a_nul_in_a_template_goes_like_an_empty_placeholder() -> None:
    # NUL marks an empty placeholder while rendering; no value holds one, and a template's own has
    # no meaning in a message.
    assert render_template("Hello \0, {name}\0!", {"name": "Pat"}) == "Hello, Pat!"


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
        ("en-US-u-ca-gregory", "en-US"),
        ("en-PR", "en-GB"),  # the simple rule: only the US and Canada read as the US
        ("en-Latn-US", "en-GB"),  # a script subtag hides the region (documented)
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
        ("ja-JP", None),
        (" fr-FR ", None),  # not a BCP 47 tag: the caller's default applies
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
    for locale in LOCALES:
        assert resolve_locale(locale) == locale
        assert len(CLDR_NAMES[locale[:2]].split()) == 7 + 12


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


#: The CLDR field symbols that describe_time fills in (wide weekday and month, day, year, the 24-hour
#: hour unpadded and padded, the 12-hour hour, minutes, AM/PM).
FIELD_SYMBOLS = {"EEEE", "MMMM", "d", "y", "H", "HH", "h", "mm", "a"}


def expected_patterns(locale: str, cldr_locale: str) -> tuple[str, str, str]:
    """CLDR's full date, short time and atTime date-time patterns for the locale, with our
    deliberate differences applied (and named)."""
    data = Locale.parse(cldr_locale)
    date = data.date_formats["full"].pattern
    if locale == "en-GB":
        # Deliberate: no comma after the weekday, as every reminder read before (CLDR: "EEEE, d MMMM y").
        assert date == "EEEE, d MMMM y"
        date = "EEEE d MMMM y"
    # Deliberate: a normal space for U+202F before AM/PM, which would make every SMS UCS-2.
    time = data.time_formats["short"].pattern.replace(NARROW_NO_BREAK_SPACE, " ")
    return date, time, CLDR47_AT_TIME[cldr_locale]


def unquoted(pattern: str) -> str:
    """A CLDR pattern as LOCALES writes it: its quoted text without the quotes."""
    # Safe only while no quoted word is a field symbol (then it would be filled in): checked here.
    assert not set(re.findall(r"'([^']*)'", pattern)) & FIELD_SYMBOLS
    return pattern.replace("'", "")


@pytest.mark.parametrize(("locale", "cldr_locale"), CLDR_LOCALES)
def test_the_names_and_patterns_are_cldrs(locale: str, cldr_locale: str) -> None:
    data = Locale.parse(cldr_locale)
    weekdays = [data.days["format"]["wide"][d] for d in range(7)]  # Babel counts from Monday
    months = [data.months["format"]["wide"][m] for m in range(1, 13)]
    assert CLDR_NAMES[locale[:2]].split() == weekdays + months
    date, time, at_time = expected_patterns(locale, cldr_locale)
    # The atTime pattern is "{1}<text>{0}": the date, the text that joins, the time.
    assert at_time.startswith("{1}") and at_time.endswith("{0}")
    joining = at_time.removeprefix("{1}").removesuffix("{0}")
    assert LOCALES[locale] == "|".join(unquoted(pattern) for pattern in (date, joining, time))
    # Every field the patterns use is one describe_time fills in.
    assert {run[0] for run in re.finditer(r"([A-Za-z])\1*", re.sub(r"'[^']*'", "", date + time))} <= FIELD_SYMBOLS


def test_the_only_twelve_hour_clock_is_us_englishs_with_cldrs_marks() -> None:
    # describe_time writes AM and PM itself: right only while US English is the only 12-hour clock.
    assert [locale for locale, cldr_locale in CLDR_LOCALES if "a" in expected_patterns(locale, cldr_locale)[1]] == [
        "en-US"
    ]
    periods = Locale.parse("en").day_periods["format"]["abbreviated"]
    assert (periods["am"], periods["pm"]) == ("AM", "PM")


@pytest.mark.parametrize(("locale", "cldr_locale"), CLDR_LOCALES)
def test_every_date_and_time_reads_as_babel_formats_it(locale: str, cldr_locale: str) -> None:
    date_pattern, time_pattern, joining = expected_patterns(locale, cldr_locale)
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


GSM_ALPHABET = "".join(GSM_COLUMNS).replace("\x1b", "")


def test_the_gsm_alphabet_is_the_standards() -> None:
    assert all(len(column) == 16 for column in GSM_COLUMNS)
    assert len(set(GSM_ALPHABET)) == 127
    # Every character that GSM_TEXT accepts, and no more: none lies beyond the BMP.
    accepted = {c for c in map(chr, range(0x10000)) if re.fullmatch(GSM_TEXT, c)}
    assert accepted == set(GSM_ALPHABET) | set(GSM_EXTENSION_TABLE.values())
    assert not re.fullmatch(GSM_TEXT, "😀\U0010ffff")
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
        ("word, " * 40, 1, ("word, " * 26).removesuffix(", ") + "..."),  # not "word,..."
        ("Hello world. " * 20, 1, ("Hello world. " * 12).removesuffix(". ") + "..."),  # not "world...."
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


@pytest.mark.parametrize("max_segments", [0, -1])
def test_a_cap_below_one_segment_is_one(max_segments: int) -> None:
    # Every SMS takes a segment; a setting of 0 must not stop (or hang) the processor.
    assert fit_sms("text", max_segments) == "text"
    assert fit_sms("word " * 40, max_segments) == fit_sms("word " * 40, 1)


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
            # "import a.b" binds "a".
            names.update((a.asname or a.name.split(".")[0], f"import {a.name}") for a in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.level, node.module) == (1, "messages"):
            # A handler's names from this module are its very bindings: the bundler drops a sibling's
            # import and runs the sibling first, in the same namespace.
            names.update(
                (a.asname or a.name, "definition" if a.asname in (None, a.name) else f"from .messages import {a.name}")
                for a in node.names
            )
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


# ---------------------------------------------------------------------------------------------
# The module as the build inlines it
# ---------------------------------------------------------------------------------------------

#: The module's share of the template's 51,200 bytes, measured as the build measures it (characters
#: of the minified source; a few of them, such as "é" and "Δ", take two or three bytes in the YAML).
MINIFIED_BUDGET = 3200


@pytest.fixture(scope="module")
def minified() -> types.ModuleType:
    """The module minified as the build minifies it (python-minifier 3.4.0), loaded."""
    python_minifier = pytest.importorskip("python_minifier")
    source = python_minifier.minify(
        (HANDLERS / "messages.py").read_text(encoding="utf-8"),
        remove_literal_statements=True,
        rename_locals=True,
        hoist_literals=False,
        rename_globals=False,
        remove_annotations=True,
        constant_folding=False,
    )
    module = types.ModuleType("minified_messages")
    module.__dict__["source"] = source
    exec(compile(source, "minified_messages", "exec"), module.__dict__)  # noqa: S102 -- our own module
    return module


def test_the_minified_module_fits_its_budget(minified: types.ModuleType) -> None:
    assert len(minified.source) <= MINIFIED_BUDGET


def test_the_minified_module_does_what_the_source_does(minified: types.ModuleType) -> None:
    values = {"name": "Pat <b>", "place": "Main St", "location": "", "bidi": "\u202eevil\n"}
    templates = [
        "Hello {name}, at {place} ({location}).",
        "{title}, your appointment\n{location}\nwith {name}, {location}, {bidi}!",
        "{{literal}} {{{name}}}",
    ]
    for template in templates:
        for html in (False, True):
            assert minified.render_template(template, values, html=html) == render_template(template, values, html=html)
        assert minified.parse_template(template) == parse_template(template)
    with pytest.raises(minified.TemplateError, match=r"^stray '\{' at 4$"):
        minified.parse_template("Hi {a.b}")
    for tag in ("en", "en_US.UTF-8", "en-CA", "en-AU", "pt-BR", "ja", None):
        assert minified.resolve_locale(tag) == resolve_locale(tag)
    for locale in LOCALES:
        for moment in MOMENTS[::7]:
            aware = moment.replace(tzinfo=PARIS)
            assert minified.describe_time(aware, "CET", locale) == describe_time(aware, "CET", locale)
    for text in ("", "a" * 161, "€" * 81, "ç" * 71, "😀" * 36, "See you, " * 40, "x" * 500):
        assert minified.sms_segments(text) == sms_segments(text)
        for cap in (0, 1, 2):
            assert minified.fit_sms(text, cap) == fit_sms(text, cap)
