"""What the customer reads: the business's templates filled in, the date and time in the customer's
language, and an SMS that costs what it should. Pure functions, standard library only.

The build inlines this module into the processor's single index.py (one namespace with it, hence
the distinctive top-level names) and minifies it: every byte here counts against the template's
51,200.

Templates. ``{name}`` is a placeholder (a name is ``[A-Za-z_][A-Za-z0-9_]*``); ``{{`` and ``}}`` are
literal braces; anything else in braces is refused with a ``TemplateError``. A value is text: it is
inserted once (never expanded again, never seen by str.format), its control characters (Unicode
category C*) are removed and its line breaks and runs of spaces become one space; in HTML it is
escaped. A placeholder without a value renders empty, and only the text touching it is tidied, by
these rules (the business's own typography elsewhere, such as French spaces before ``!``, stays):
- no space is left before what closes a phrase (``,;:.!?)]``), a line end or the end of the text:
  "Hello {customerName}, see you" -> "Hello, see you";
- a comma before it gives way to the punctuation after it: "Pat, {x}." -> "Pat.";
- brackets left empty go: "Dr Lee ({location}) at 9" -> "Dr Lee at 9";
- between two spaces, the one before it goes: "with {providerName} at 9" -> "with at 9" (the
  business's words stay: write optional values where a gap reads well);
- at a line's start the spaces and a separator after it go: "{customerName}, see you" -> "see you";
- a line that held only the placeholder goes, with a blank line that it would double.
Lines end with "\\n"; in HTML the rules do not see through tags.

Dates and times come from CLDR 47 as shipped in Babel 2.18.0 (names, full date format, short time
format, AM/PM marks); the pattern joining date and time is CLDR 47's "atTime" variant of the full
date-time format ("{1} 'at' {0}"), which Babel does not import, taken from CLDR 47's JSON release
(cldr-json 47.0.0, ca-gregorian.json, dateTimeFormats-atTime). Deliberate differences from CLDR:
a normal space where CLDR puts U+202F (narrow no-break space) before AM/PM, because U+202F is not
in the GSM alphabet and would make every SMS a UCS-2 one (70 characters per segment, not 160); and
en-GB's full date without CLDR's comma after the weekday ("Tuesday 3 March 2026", as the reminders
always read). tests/test_messages.py checks every pattern and name against Babel.

Locales (resolve_locale): en-US for "en", the US and the regions CLDR writes alike (AS GU MH MP PH
PR UM VI), and Canada (CLDR differs there only in writing "p.m."); en-GB for every other English.
fr, de, es, it, pt and nl as written in France, Germany, Spain, Italy, Brazil and the Netherlands,
for every region of the language: regional variants are not carried (fr-CA's "12 h 00", de-AT's
"Jänner", the 12-hour clock of Latin American Spanish), to keep the template small. pt-BR and pt-PT
read the same in these formats in CLDR 47.

SMS. AWS bills every part of a long SMS as one message: 160 GSM-7 characters fit in one, 153 in
each part of a longer one; a single character outside the GSM alphabet (an emoji, a curly
apostrophe, "ç", "ê", "á", "û": French "août", Spanish and Portuguese "sábado", Portuguese "março"
and "terça-feira" among them) makes the whole message UCS-2: 70 characters in one, 67 in each part
(https://docs.aws.amazon.com/sms-voice/latest/userguide/sms-limitations-character.html,
https://docs.aws.amazon.com/end-user-messaging/latest/userguide/nx-features-message-part-preview.html).
"""

import re
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from html import escape as escape_html


class TemplateError(ValueError):
    pass


# A doubled brace, a placeholder, or any other brace (refused).
TEMPLATE_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}|\{[^{}]*\}?|\}")
# What closes a phrase: no space before it.
TEMPLATE_CLOSERS = ",;:.!?)]"


def parse_template(template: str, /) -> list[str]:
    """The template as literal text (even indexes) around placeholder names (odd indexes).

    Raises TemplateError, naming the position (from 1) and the fault, for any brace that is neither
    doubled nor part of a placeholder.
    """
    parts, start = [""], 0
    for token in TEMPLATE_TOKEN.finditer(template):
        parts[-1] += template[start : token.start()]
        start = token.end()
        if token[1]:
            parts += [token[1], ""]
        elif token[0] in ("{{", "}}"):
            parts[-1] += token[0][0]
        else:
            raise TemplateError(
                f"character {token.start() + 1}: {token[0]!r} is neither {{name}} (letters, digits, _) nor {{{{ or }}}}"
            )
    parts[-1] += template[start:]
    return parts


def template_placeholders(template: str, /) -> set[str]:
    """The names of the template's placeholders (TemplateError when it is malformed)."""
    return set(parse_template(template)[1::2])


def render_template(template: str, values: Mapping[str, str], /, *, html: bool = False) -> str:
    """The template with each placeholder replaced by its value, in one pass (see the module's rules)."""
    parts = parse_template(template)
    rendered = parts[0]
    for name, literal in zip(parts[1::2], parts[2::2], strict=True):
        value = clean_template_value(values.get(name))
        if value:
            rendered += (escape_html(value) if html else value) + literal
        else:
            rendered, literal = tidy_empty_placeholder(rendered, literal)
            rendered += literal
    return rendered


def clean_template_value(value: object, /) -> str:
    """The value as one line of text: control characters (Unicode C*) removed, spaces and line breaks
    as single spaces. Bidi overrides are Cf: a value cannot reorder the text around it."""
    text = "" if value is None else str(value)
    return " ".join("".join(c for c in text if c.isspace() or unicodedata.category(c)[0] != "C").split())


def tidy_empty_placeholder(left: str, right: str, /) -> tuple[str, str]:
    """The text before (all rendered so far) and after an empty placeholder, tidied by the module's rules.

    ``x[:1]`` is "" at an end of the text, and "" is in every string: ``left[-1:] in "\\n"`` holds at
    the start of a line or of the text, ``right[:1] in TEMPLATE_CLOSERS`` at a closer or the text's end.
    """
    if right[:1] in "\n" + TEMPLATE_CLOSERS:
        left = left.rstrip(" \t")
        if left[-1:] + right[:1] in ("()", "[]"):
            return tidy_empty_placeholder(left[:-1], right[1:])
        if left[-1:] == "," and right[:1] in TEMPLATE_CLOSERS:
            left = left[:-1]
    elif right[:1].isspace():
        # The space after the gap stays (it may be French's before "!"); the one before it goes.
        left = left.rstrip(" \t")
    if left[-1:] in "\n":
        right = right.lstrip(",;: \t")
        if right[:1] == "\n":
            # The line goes; so does the blank line after it when one comes before it (or it opened the text).
            right = right[1 + (right[1:2] == "\n" and left[-2:] in ("", "\n\n")) :]
    return left, right


# CLDR's format-wide names of a language: the months from January, then the weekdays from Monday.
CLDR_NAMES = {
    "en": "January February March April May June July August September October November December"
    " Monday Tuesday Wednesday Thursday Friday Saturday Sunday",
    "fr": "janvier février mars avril mai juin juillet août septembre octobre novembre décembre"
    " lundi mardi mercredi jeudi vendredi samedi dimanche",
    "de": "Januar Februar März April Mai Juni Juli August September Oktober November Dezember"
    " Montag Dienstag Mittwoch Donnerstag Freitag Samstag Sonntag",
    "es": "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre"
    " lunes martes miércoles jueves viernes sábado domingo",
    "it": "gennaio febbraio marzo aprile maggio giugno luglio agosto settembre ottobre novembre dicembre"
    " lunedì martedì mercoledì giovedì venerdì sabato domenica",
    "pt": "janeiro fevereiro março abril maio junho julho agosto setembro outubro novembro dezembro"
    " segunda-feira terça-feira quarta-feira quinta-feira sexta-feira sábado domingo",
    "nl": "januari februari maart april mei juni juli augustus september oktober november december"
    " maandag dinsdag woensdag donderdag vrijdag zaterdag zondag",
}
# Each supported locale (its first two letters name its language): CLDR's full date pattern, short
# time pattern, atTime date-time pattern and, for a 12-hour clock, the AM and PM marks.
CLDR_FORMATS = {
    "en-US": ("EEEE, MMMM d, y", "h:mm a", "{1} 'at' {0}", "AM PM"),
    "en-GB": ("EEEE d MMMM y", "HH:mm", "{1} 'at' {0}", ""),
    "fr": ("EEEE d MMMM y", "HH:mm", "{1} 'à' {0}", ""),
    "de": ("EEEE, d. MMMM y", "HH:mm", "{1} 'um' {0}", ""),
    "es": ("EEEE, d 'de' MMMM 'de' y", "H:mm", "{1}, {0}", ""),
    "it": ("EEEE d MMMM y", "HH:mm", "{1} 'alle' 'ore' {0}", ""),
    "pt": ("EEEE, d 'de' MMMM 'de' y", "HH:mm", "{1} 'às' {0}", ""),
    "nl": ("EEEE d MMMM y", "HH:mm", "{1} 'om' {0}", ""),
}
# English of these regions (as a substring: entries are 2 letters, and a tag without a region
# matches too) reads as in the US; English of any other region, as in Britain.
US_ENGLISH_REGIONS = "US AS GU MH MP PH PR UM VI CA"
# A quoted literal, or a run of one pattern letter.
CLDR_FIELD = re.compile(r"'([^']*)'|([A-Za-z])\2*")


def resolve_locale(tag: str | None, /) -> str | None:
    """The supported locale for a language tag (fr-FR, de, en_US, EN-gb), or None when unknown."""
    # language-region (en-US, en_US.UTF-8). A script subtag (en-Latn-US), rare for these languages,
    # hides the region: such English reads as British.
    language, _, region = (tag or "").strip().replace("_", "-").partition("-")
    language = language.lower()
    if language == "en":
        return "en-US" if region[:2].upper() in US_ENGLISH_REGIONS else "en-GB"
    return language if language in CLDR_FORMATS else None


def describe_time(moment: datetime, zone_label: str, locale: str, /) -> dict[str, str]:
    """The moment (aware, in the customer's zone) in the words of ``locale`` (a supported locale):
    ``date``, ``time``, ``timeZone`` and ``when`` (date and time joined as CLDR joins them, then the zone)."""
    *patterns, day_periods = CLDR_FORMATS[locale]
    names = CLDR_NAMES[locale[:2]].split()
    hour = moment.hour
    fields = {
        "EEEE": names[12 + moment.weekday()],
        "MMMM": names[moment.month - 1],
        "d": moment.day,
        "y": moment.year,
        "H": hour,
        "HH": f"{hour:02}",
        "h": (hour - 1) % 12 + 1,
        "mm": f"{moment.minute:02}",
        # A 24-hour clock has no marks (and no "a" in its patterns).
        "a": (day_periods or " ").split(" ")[hour > 11],
    }
    date, clock, when = (
        CLDR_FIELD.sub(lambda field: str(fields[field[0]]) if field[2] else field[1], pattern) for pattern in patterns
    )
    when = when.replace("{1}", date).replace("{0}", clock)
    return {"when": f"{when} {zone_label}", "date": date, "time": clock, "timeZone": zone_label}


# The GSM 03.38 default alphabet (without ESC, which only announces the extension table), and the
# extension table's characters, which take two septets (ESC and the character). The same table:
# https://docs.aws.amazon.com/sms-voice/latest/userguide/sms-limitations-character.html
GSM_ALPHABET = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = "\f^{}\\[~]|€"


def sms_segments(text: str, /) -> tuple[str, int]:
    """The SMS's encoding ("GSM-7" or "UCS-2") and how many segments (billed parts) it takes.

    An empty text is one segment: what a carrier bills for it. A character is never split between
    two parts (an extension character's two septets, a surrogate pair's two UTF-16 units): AWS does
    not say how it splits, and this count is never below the one that splits them.
    """
    gsm = all(c in GSM_ALPHABET + GSM_EXTENSION for c in text)
    sizes = [1 + (c in GSM_EXTENSION if gsm else ord(c) > 0xFFFF) for c in text]
    single, part = (160, 153) if gsm else (70, 67)
    segments, used = 1, 0
    if sum(sizes) > single:
        for size in sizes:
            if used + size > part:
                segments, used = segments + 1, 0
            used += size
    return "GSM-7" if gsm else "UCS-2", segments


def fit_sms(text: str, max_segments: int, /) -> str:
    """The text when it fits in ``max_segments``; else cut at a word boundary (a single word too long
    is cut where it must) and ended with an ellipsis of its encoding ("..." in GSM-7, "…" in UCS-2)."""
    if max_segments < 1:
        raise ValueError("max_segments < 1")
    encoding, segments = sms_segments(text)
    if segments <= max_segments:
        return text
    ellipsis = "..." if encoding == "GSM-7" else "…"
    # No segment holds more than 160 GSM-7 or 70 UCS-2 characters: shorten from there.
    head = text[: (160 if encoding == "GSM-7" else 70) * max_segments]
    while sms_segments(head + ellipsis)[1] > max_segments:
        head = head[:-1]
    words = head if text[len(head)].isspace() else re.sub(r"\S*$", "", head)
    return (words.rstrip(" \t\r\n,;:.") or head) + ellipsis
