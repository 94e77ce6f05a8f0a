"""Plain-text plumbing for claim extraction: sentences, quotes, numbers, language.

Everything keeps character offsets into the original article so that a claim's
``text`` is the exact span it was read from (the web page highlights it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sandik.core.names import fold

# --- sentences and quotes ---------------------------------------------------------
_SENT_END = re.compile(r"(?<=[.!?…])[”\"’]?\s+(?=[“\"'‘(«]?[A-ZÇĞİÖŞÜ0-9“\"«])|\n+")


@dataclass(frozen=True)
class Span:
    start: int
    end: int


def sentences(text: str) -> list[Span]:
    """Sentence spans: split after . ! ? before a capital or a quote, and at line breaks."""
    out = []
    pos = 0
    for m in _SENT_END.finditer(text):
        # The separator (and a closing quote after the full stop) stays with its sentence.
        seg = text[pos : m.end()].rstrip()
        if seg.strip():
            s = pos + (len(text[pos : m.end()]) - len(text[pos : m.end()].lstrip()))
            out.append(Span(s, pos + len(seg)))
        pos = m.end()
    seg = text[pos:]
    if seg.strip():
        s = pos + (len(seg) - len(seg.lstrip()))
        out.append(Span(s, pos + len(seg.rstrip())))
    return out


_QUOTE_PAIRS = {"“": "”", "«": "»", '"': '"', "„": "“"}


def quotes(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Spans of quoted speech (including the quote marks) within text[start:end].

    An opening mark without a closing one quotes to the end of the range: a
    quote that runs over a sentence end is still a quote.
    """
    end = len(text) if end is None else end
    out = []
    i = start
    while i < end:
        ch = text[i]
        close = _QUOTE_PAIRS.get(ch)
        if close is None:
            i += 1
            continue
        j = text.find(close, i + 1, end)
        if j < 0:
            j = end - 1
        out.append(Span(i, j + 1))
        i = j + 1
    return out


def mask(text: str, spans: list[Span]) -> str:
    """Text with the spans blanked out (same length, so offsets stay valid)."""
    chars = list(text)
    for s in spans:
        for k in range(s.start, s.end):
            if chars[k] != "\n":
                chars[k] = " "
    return "".join(chars)


def fold_chars(text: str) -> str:
    """A folded copy of ``text`` of the same length (one character per character), for offset-preserving search."""
    out = []
    for ch in text:
        f = _FOLD_CHAR.get(ch)
        if f is None:
            k = fold(ch) if not ch.isspace() else " "
            f = _FOLD_CHAR[ch] = k[0] if k else " "
        out.append(f)
    return "".join(out)


_FOLD_CHAR: dict[str, str] = {}


# --- language ------------------------------------------------------------------
_TR_HINTS = re.compile(r"\b(ve|bir|bu|için|ile|oy|seçim\w*|belediye\w*|yüzde|kazandı|milyon|olarak|oldu|da|de)\b", re.I)
_EN_HINTS = re.compile(r"\b(the|and|of|in|to|was|won|votes?|election\w*|percent|million|with|has|that)\b", re.I)


def language(text: str) -> str:
    """'tr' or 'en', by counting frequent function words of each."""
    return "tr" if len(_TR_HINTS.findall(text)) > len(_EN_HINTS.findall(text)) else "en"


# --- numbers ---------------------------------------------------------------------
@dataclass(frozen=True)
class Number:
    value: float
    precision: float  # the unit of the last written digit: 1,006,856 -> 1; 4.4 million -> 100,000; 812,000 -> 1,000
    percent: bool
    qualifier: str  # "" | "more" | "at_least" | "less" | "about" | "nearly"
    start: int
    end: int
    text: str


_WORDS = {
    "one": 1,
    "a": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "bir": 1,
    "iki": 2,
    "üç": 3,
    "dört": 4,
    "beş": 5,
    "altı": 6,
    "yedi": 7,
    "sekiz": 8,
    "dokuz": 9,
    "on": 10,
}
_MULT = {"million": 1e6, "milyon": 1e6, "mn": 1e6, "m": 1e6, "billion": 1e9, "milyar": 1e9, "thousand": 1e3, "bin": 1e3}
_NUM = re.compile(
    r"(?P<pct1>%\s?|yüzde\s+|percent\s+)?"
    r"(?P<num>\d{1,3}(?:[.,]\d{3})+(?![.,]?\d)|\d+(?:[.,]\d+)?|(?<![\w'’])(?:one|two|three|four|five|six|seven|eight|nine|ten|a|bir|iki|üç|dört|beş|altı|yedi|sekiz|dokuz)(?=\s+(?:million|milyon|billion|milyar|thousand)))"
    r"(?:['’][a-zçğıöşü]+)?"
    r"(?P<mult>\s*(?:(?:million|milyon|billion|milyar|thousand)[a-zçğıöşü]*|bin(?:den|de|e|i|in|lik)?\b|mn\b)(?:['’][a-zçğıöşü]+)?)?"
    r"(?P<pct2>\s?%|\s*(?:percent|per\s+cent)\b|\s*pc\b)?",
    re.I,
)
_BEFORE = (
    ("more", r"(?:more than|over|above|in excess of|upwards of|exceeding|greater than)"),
    ("at_least", r"(?:at least|en az)"),
    ("less", r"(?:less than|fewer than|under|below)"),
    ("nearly", r"(?:nearly|almost|close to|just under|neredeyse)"),
    ("about", r"(?:around|about|approximately|roughly|some|an estimated|yaklaşık|tahminen|kabaca)"),
)
_AFTER = (
    ("more", r"^(?:['’]?[dt][ae]n)?\s*(?:fazla|aşkın|üzerinde|üstünde)|^\s*\+"),
    ("less", r"^(?:['’]?[dt][ae]n)?\s*(?:az|altında)\b"),
    ("nearly", r"^(?:['’]?y?[ae])?\s*yakın"),
    ("about", r"^\s*(?:civarında|dolayında)"),
)
_BEFORE_RE = [(q, re.compile(p + r"\s+(?:the\s+)?$", re.I)) for q, p in _BEFORE]
_AFTER_RE = [(q, re.compile(p, re.I)) for q, p in _AFTER]


def _parse_num(raw: str, has_mult: bool) -> tuple[float, float]:
    """Value and precision of a written number, English or Turkish separators."""
    w = raw.lower()
    if w in _WORDS:
        return float(_WORDS[w]), 1.0
    if re.fullmatch(r"\d{1,3}(?:[.,]\d{3})+", raw):
        digits = re.sub(r"[.,]", "", raw)
        v = float(digits)
        return v, _trailing_precision(digits)
    if re.fullmatch(r"\d+[.,]\d+", raw):
        whole, frac = re.split(r"[.,]", raw)
        return float(f"{whole}.{frac}"), 10.0 ** (-len(frac))
    return float(raw), _trailing_precision(raw) if not has_mult else 1.0


def _trailing_precision(digits: str) -> float:
    """812000 -> 1000: a round figure is as precise as its last non-zero digit (but at least 1)."""
    stripped = digits.rstrip("0")
    zeros = len(digits) - len(stripped)
    # Small numbers are counts ("40 provinces"), never rounded figures.
    if not stripped or zeros == 0 or len(digits) < 4:
        return 1.0
    return float(10**zeros)


def numbers(text: str, start: int = 0, end: int | None = None) -> list[Number]:
    end = len(text) if end is None else end
    out = []
    for m in _NUM.finditer(text, start, end):
        raw = m.group("num")
        mult_raw = (m.group("mult") or "").strip().lower()
        mult = next((f for w, f in _MULT.items() if len(w) > 2 and mult_raw.startswith(w)), _MULT.get(mult_raw, 1.0))
        # "a" and "bir" count only in front of a multiplier ("a million votes").
        value, prec = _parse_num(raw, mult != 1.0)
        value *= mult
        prec *= mult
        percent = bool(m.group("pct1") or m.group("pct2"))
        if re.fullmatch(r"(19|20)\d\d", raw) and not percent and mult == 1.0:
            continue  # a year, not a figure
        before = text[max(start, m.start() - 40) : m.start()]
        after = text[m.end() : min(end, m.end() + 30)]
        q = ""
        for name, rx in _BEFORE_RE:
            if rx.search(before):
                q = name
                break
        if not q:
            for name, rx in _AFTER_RE:
                if rx.search(after):
                    q = name
                    break
        out.append(Number(value, prec, percent, q, m.start(), m.end(), m.group(0)))
    return out


def compare(claimed: Number, actual: float) -> bool:
    """Does ``actual`` make the written figure true, given its qualifier and precision?

        Unqualified round figures ("4.4 million", "51%") are true within one unit
        of their last digit (half a unit below, a whole unit above: rounding or
    truncation); exact
        figures ("1,006,856", "35") must match exactly.
    """
    v = claimed.value
    if claimed.qualifier == "more":
        return actual > v
    if claimed.qualifier == "at_least":
        return actual >= v
    if claimed.qualifier == "less":
        return actual < v
    if claimed.qualifier == "nearly":
        return v - min(claimed.precision, 0.1 * v) <= actual <= v
    if claimed.qualifier == "about":
        return abs(actual - v) <= max(claimed.precision / 2, 0.02 * v)
    p = claimed.precision
    if p == 1.0 and not claimed.percent:
        return actual == v  # an exact count
    return v - p / 2 <= actual < v + p
