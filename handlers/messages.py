"""What the customer reads: the business's templates filled in, the date and time in the customer's
language, and an SMS that costs what it should. Pure functions, standard library only.

The build inlines this module into the processor's single index.py (one namespace with it, hence
the distinctive top-level names) and minifies it: its data and code count against the template's
51,200 bytes, its comments and docstrings do not.

Templates. ``{name}`` is a placeholder (a name is an identifier: a letter or ``_`` of any script,
then letters, digits or ``_``); ``{{`` and ``}}`` are literal braces; any other brace is refused
with a ``TemplateError`` (a ``ValueError``) that names it and its position. A value is text: it is
inserted once (never expanded again, never seen by str.format), its control characters (Unicode
category C*, bidi overrides included) are removed and its line breaks and runs of spaces become one
space; in HTML it is escaped. A placeholder without a value (missing, None, empty or blank) renders
empty, and only the text touching it is tidied (the business's own typography elsewhere, such as
French spaces before ``!``, stays):
- before anything but a letter or a digit (a space, a mark, a line end, the end of the text), the
  spaces before it go: "Hello {customerName}, see you" -> "Hello, see you", "with {providerName}
  at 9" -> "with at 9" (the business's words stay: write optional values where a gap reads well);
- a comma before it goes too when a closing mark (``,;:.!?)``), a line end or the end of the text
  follows it: "with Dr Lee, {location}, at 9" -> "with Dr Lee, at 9";
- parentheses that hold only it go, with the spaces before them: "Dr Lee ({location}) at 9" ->
  "Dr Lee at 9";
- at the start of a line, the spaces and separators (``,;:``) after it go, and so does the line
  break when the line held nothing else: "{customerName}, see you" -> "see you".
Nothing else changes, so a few rare gaps stay visible: square brackets or parentheses around two
placeholders ("[{location}]", "({room} {floor})") stay when empty, a line held only by a gap leaves
its blank neighbours (two blank lines where it stood between two; one at the start of the text),
and the rules do not see through HTML tags. Write such templates so that a gap reads well.

Dates and times come from CLDR 47 as shipped in Babel 2.18.0 (weekday and month names, full date
pattern, short time pattern, AM/PM marks); the text joining date and time is CLDR 47's "atTime"
variant of the full date-time pattern ("{1} 'at' {0}"), which Babel does not import, taken from
CLDR 47's JSON release (cldr-json 47.0.0, ca-gregorian.json, dateTimeFormats-atTime). Deliberate
differences from CLDR: a normal space where CLDR puts U+202F (narrow no-break space) before AM/PM,
because U+202F is not in the GSM alphabet and would make every SMS a UCS-2 one (70 characters per
segment, not 160); and en-GB's full date without CLDR's comma after the weekday ("Tuesday 3 March
2026", as the reminders always read). tests/test_messages.py checks every name and pattern against
Babel.

Locales (resolve_locale): en-US for "en" without a region, the US and Canada (CLDR writes Canada's
English like the US's but for "p.m."); en-GB for every other English. fr, de, es, it, pt and nl as
written in France, Germany, Spain, Italy, Brazil and the Netherlands, for every region of the
language: regional variants are not carried (fr-CA's "12 h 00", de-AT's "Jänner", the 12-hour
clock of Latin American Spanish), to keep the template small. pt-BR and pt-PT read the same in these
formats in CLDR 47.

SMS. AWS bills every part of a long SMS as one message: 160 GSM-7 characters fit in one, 153 in
each part of a longer one; a single character outside the GSM alphabet (an emoji, a curly
apostrophe, "ç", "ê", "á", "û": French "août", Spanish and Portuguese "sábado", Portuguese "março"
and "terça-feira" among them) makes the whole message UCS-2: 70 characters in one, 67 in each part
(https://docs.aws.amazon.com/sms-voice/latest/userguide/sms-limitations-character.html,
https://docs.aws.amazon.com/end-user-messaging/latest/userguide/nx-features-message-part-preview.html).
fit_sms keeps an SMS within a number of segments, so within a known price.
"""

import collections.abc
import html as markup  # render_template's html parameter would hide a module named html
import re
from datetime import datetime


class TemplateError(ValueError):
    pass


def parse_template(template: str) -> list[str]:
    """The template as literal text (even indexes) around placeholder names (odd indexes).

    Raises TemplateError, naming the brace and its position (from 1), for any brace that is neither
    doubled nor part of a placeholder ("{0}", "{a.b}", "{x!r}", "{}", an unclosed "{", a lone "}").
    The library validates its templates with it at build time, the processor its parameters at cold
    start.
    """
    parts = [""]
    # Each match: the literal text up to a brace, then a placeholder (an identifier: a letter or _,
    # then letters, digits or _), a doubled brace, any other brace (refused), or the end of the
    # text. (A brace that cannot start a repetition needs no backslash in a regular expression.)
    for token in re.finditer(r"([^{}]*)({([^\W\d]\w*)}|{{|}}|[{}]|$)", template):
        parts[-1] += token[1]
        if token[3]:
            parts += [token[3], ""]
        elif len(token[2]) != 1:  # a doubled brace ("{{" or "}}"), or the end of the text ("")
            parts[-1] += token[2][:1]
        else:
            raise TemplateError(f"stray {token[2]!r} at {token.end()}")
    return parts


def render_template(template: str, values: collections.abc.Mapping[str, str | None], *, html: bool = False) -> str:
    """The template with each placeholder replaced by its value, in one pass (see the module's rules)."""
    parts = parse_template(template)
    for index in range(1, len(parts), 2):
        # The value as one line of text (None as nothing; str() for a caller that passes a number):
        # not printable and not a space is exactly Unicode's C* (controls, format characters such
        # as bidi overrides, surrogates, private use, unassigned).
        text = " ".join(
            "".join(c for c in str(values.get(parts[index]) or "") if c.isprintable() or c.isspace()).split()
        )
        # An empty placeholder is marked with NUL, which no value holds (it is a control character;
        # a NUL in the template itself goes like an empty placeholder).
        parts[index] = (markup.escape(text) if html else text) or "\0"
    # What an empty placeholder takes with it, by the module's rules, one alternative each: at the
    # start of a line, the spaces and separators after it, and the line break when the line held
    # nothing else; before a closing mark or a line end, the spaces and a comma before it; the
    # parentheses that hold nothing else, with the spaces before them; before anything but a
    # letter or a digit, the spaces before it; anywhere else, only itself.
    return re.sub(r"(?m)^\0[ ,;:]*\n?|,? *\0(?=[,;:.!?)]|$)| *(\(\0\)|\0(?!\w))|\0", "", "".join(parts))


# CLDR's format-wide names of a language: the weekdays from Monday, then the months from January.
CLDR_NAMES = {
    "en": "Monday Tuesday Wednesday Thursday Friday Saturday Sunday"
    " January February March April May June July August September October November December",
    "fr": "lundi mardi mercredi jeudi vendredi samedi dimanche"
    " janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
    "de": "Montag Dienstag Mittwoch Donnerstag Freitag Samstag Sonntag"
    " Januar Februar März April Mai Juni Juli August September Oktober November Dezember",
    "es": "lunes martes miércoles jueves viernes sábado domingo"
    " enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre",
    "it": "lunedì martedì mercoledì giovedì venerdì sabato domenica"
    " gennaio febbraio marzo aprile maggio giugno luglio agosto settembre ottobre novembre dicembre",
    "pt": "segunda-feira terça-feira quarta-feira quinta-feira sexta-feira sábado domingo"
    " janeiro fevereiro março abril maio junho julho agosto setembro outubro novembro dezembro",
    "nl": "maandag dinsdag woensdag donderdag vrijdag zaterdag zondag"
    " januari februari maart april mei juni juli augustus september oktober november december",
}
# Each supported locale (its first two letters name its language), with "|" between the parts:
# CLDR's full date pattern, the text between date and time in its atTime date-time pattern, and its
# short time pattern. In a pattern, each word that names a field (see describe_time) is that field;
# any other word (at, de, alle, ore, um) is text, as CLDR writes it between quotes.
LOCALES = {
    "en-US": "EEEE, MMMM d, y| at |h:mm a",
    "en-GB": "EEEE d MMMM y| at |HH:mm",
    "fr": "EEEE d MMMM y| à |HH:mm",
    "de": "EEEE, d. MMMM y| um |HH:mm",
    "es": "EEEE, d de MMMM de y|, |H:mm",
    "it": "EEEE d MMMM y| alle ore |HH:mm",
    "pt": "EEEE, d de MMMM de y| às |HH:mm",
    "nl": "EEEE d MMMM y| om |HH:mm",
}


def resolve_locale(tag: str | None) -> str | None:
    """The supported locale for a language tag (fr-FR, de, en_US, EN-gb), or None when unknown."""
    # The language and the region (en-US, en_US.UTF-8); the "-" added makes the region "" when the
    # tag has none. A script subtag (en-Latn-US), rare for these languages, takes the region's
    # place: such English reads as British.
    language, region, *_ = re.split("[-_]", (tag or "").lower() + "-")
    if language == "en":
        # "" (no region) is in every string too.
        language += "-US" if region[:2] in "us ca" else "-GB"
    return language if language in LOCALES else None


def describe_time(moment: datetime, zone_label: str, locale: str) -> dict[str, str]:
    """The moment (aware, in the customer's zone) in the words of ``locale`` (a supported locale):
    ``date``, ``time``, ``timeZone`` and ``when`` (date and time joined as CLDR joins them, then the zone)."""
    names = CLDR_NAMES[locale[:2]].split()
    hour = moment.hour
    # The values of CLDR's date field symbols that the patterns use
    # (https://unicode.org/reports/tr35/tr35-dates.html#Date_Field_Symbol_Table).
    fields = dict(
        EEEE=names[moment.weekday()],
        MMMM=names[6 + moment.month],
        d=moment.day,
        y=moment.year,
        H=hour,
        HH=f"{moment:%H}",
        h=hour % 12 or 12,
        mm=f"{moment:%M}",
        a="PM" if hour > 11 else "AM",  # US English's, the only 12-hour clock here
    )
    # Each run of letters that names a field is the field's value; any other is the pattern's text.
    date, joining, clock = re.sub(r"\w+", lambda run: str(fields.get(run[0], run[0])), LOCALES[locale]).split("|")
    return dict(when=f"{date}{joining}{clock} {zone_label}", date=date, time=clock, timeZone=zone_label)


# GSM 03.38 (3GPP TS 23.038): a text of GSM-7 characters, as a regular expression. Its default
# alphabet and extension table hold every printable ASCII character but the backquote (the ranges
# space to underscore and a to tilde), line feed, carriage return, form feed and these others. The
# extension table's characters take two septets each (ESC, then the character). The same tables:
# https://docs.aws.amazon.com/sms-voice/latest/userguide/sms-limitations-character.html
GSM_TEXT = "[ -_a-~\n\r\f£¥èéùìòÇØøÅåΔΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà€]*"
GSM_EXTENSION = "\f^{}\\[~]|€"


def sms_segments(text: str) -> tuple[str, int]:
    """The SMS's encoding ("GSM-7" or "UCS-2") and how many segments (billed parts) it takes.

    An empty text is one segment: what a carrier bills for it. A character is never split between
    two parts (an extension character's two septets, a surrogate pair's two UTF-16 units): AWS does
    not say how it splits, and this count is never below the one that splits them.
    """
    gsm = re.fullmatch(GSM_TEXT, text)
    # Septets in GSM-7, UTF-16 code units in UCS-2.
    sizes = [1 + (c in GSM_EXTENSION if gsm else ord(c) > 0xFFFF) for c in text]
    single, part = (160, 153) if gsm else (70, 67)
    segments, used = 1, 0
    for size in sizes:
        used += size
        if used > part:
            segments, used = segments + 1, size
    return "GSM-7" if gsm else "UCS-2", segments if sum(sizes) > single else 1


def fit_sms(text: str, max_segments: int) -> str:
    """The text when it fits in ``max_segments``; else cut at a word boundary (a single word too long
    is cut where it must) and ended with an ellipsis of its encoding ("..." in GSM-7, "…" in UCS-2).

    A cap below one segment is one: every SMS takes at least one (and a setting of 0 must not stop
    the processor).
    """
    cap = max(max_segments, 1)
    ellipsis = "..." if re.fullmatch(GSM_TEXT, text) else "…"
    # No segment holds more than 160 characters: from there, one character less at a time until the
    # text up to the end of its last whole word (one that a space follows in the text) fits with the
    # ellipsis, without the punctuation that would dangle before it. A single word is cut where it
    # must be.
    fitted, end = text, 160 * cap
    while sms_segments(fitted)[1] > cap:
        end -= 1
        fitted = (re.sub(r"[\s,;:.]*\S*\Z", "", text[: end + 1]) or text[:end]) + ellipsis
    return fitted
