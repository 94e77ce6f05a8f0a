"""Turkish-aware name handling: match keys, ids and title case.

Python's ``str.lower()`` and ``str.title()`` get Turkish wrong: ``"I".lower()``
is ``"i"`` (Turkish: ``"ı"``) and ``"İ".lower()`` is ``"i̇"`` (an ``i`` plus a
combining dot). Sources disagree on spelling (``"KIRIKKALE"``, ``"kirikkale"``,
``"Kırıkkale"``, and sometimes a dotless ``I`` where ``İ`` was meant), so names
from different files are matched on :func:`fold`, an ASCII key that forgets
every distinction those sources get wrong.

    >>> fold("İSTANBUL"), fold("Kırıkkale"), fold("AFYONKARAHISAR")
    ('istanbul', 'kirikkale', 'afyonkarahisar')
    >>> slug("Şehitkamil"), title_tr("EKREM İMAMOĞLU")
    ('sehitkamil', 'Ekrem İmamoğlu')
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["fold", "slug", "lower_tr", "upper_tr", "title_tr"]

_LOWER = str.maketrans({"İ": "i", "I": "ı"})
_UPPER = str.maketrans({"i": "İ", "ı": "I"})
_ASCII = str.maketrans(
    {
        "ç": "c",
        "ğ": "g",
        "ı": "i",
        "ö": "o",
        "ş": "s",
        "ü": "u",
        "â": "a",
        "î": "i",
        "û": "u",
    }
)
_APOSTROPHES = re.compile(r"['’`´]")
_NON_WORD = re.compile(r"[^a-z0-9 ]+")
_SPACES = re.compile(r"\s+")
# Title case starts a new word after these (not after an apostrophe: "O'nun").
_WORD_START = re.compile(r"(^|[\s\-/(.])(\w)")


def lower_tr(s: str) -> str:
    """Turkish lower case: ``I`` -> ``ı``, ``İ`` -> ``i``."""
    return s.translate(_LOWER).lower()


def upper_tr(s: str) -> str:
    """Turkish upper case: ``i`` -> ``İ``, ``ı`` -> ``I``."""
    return s.translate(_UPPER).upper()


def fold(s: str) -> str:
    """ASCII match key: Turkish lower case, letters without diacritics, no punctuation, single spaces."""
    s = lower_tr(s).translate(_ASCII)
    # Anything else with a diacritic (é, a stray combining dot) loses it.
    s = unicodedata.normalize("NFKD", s)
    s = "".join(ch for ch in s if not unicodedata.combining(ch))
    s = _APOSTROPHES.sub("", s)
    s = _NON_WORD.sub(" ", s)
    return _SPACES.sub(" ", s).strip()


def slug(s: str) -> str:
    """Id fragment: ``fold`` with spaces turned into ``-`` (``"Yeni Şehir"`` -> ``"yeni-sehir"``)."""
    return fold(s).replace(" ", "-")


def title_tr(s: str) -> str:
    """Turkish title case: ``"EKREM İMAMOĞLU"`` -> ``"Ekrem İmamoğlu"``, ``"KIRIKKALE"`` -> ``"Kırıkkale"``."""
    s = _SPACES.sub(" ", lower_tr(s)).strip()
    return _WORD_START.sub(lambda m: m.group(1) + upper_tr(m.group(2)), s)
