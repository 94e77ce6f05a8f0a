"""Turkish-aware name keys and fuzzy linking of free-text names to known ones.

Reporters spell Turkish names in many ways: without diacritics ("Imamoglu"),
with a dotless/dotted i mix-up ("IMAMOĞLU", "İzmır"), in another language's
transliteration ("Mansour Yabas" for Mansur Yavaş, as Arabic-script sources
write it) or simply garbled ("immamol"). Linking works on three keys, from
strict to loose:

- ``fold``: ASCII, Turkish lower case, no diacritics or punctuation. It is the
  same function the dataset builders use to match source files
  (``sandik.datasets.turkish_names.fold``); we import it rather than keep a
  second copy. The dependency points from core to datasets only because that
  module was written first; it is pure (no I/O), and moving it into core later
  only changes this import.
- ``sound_key``: ``fold`` plus rewrites that undo common transliterations
  (ou->u, sh->s, ch->c, j->c, w->v, b/v merged, the silent ğ dropped, doubled
  letters collapsed), so "Mansour Yabas" and "Mansur Yavaş" share a key.
- fuzzy similarity (rapidfuzz ``ratio``) of sound keys, for garbled forms.

    >>> sound_key("Mansour Yabas") == sound_key("Mansur Yavaş")
    True
    >>> sound_key("Imamoglu"), sound_key("immamol")
    ('imamolu', 'imamol')
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Generic, TypeVar

from rapidfuzz import fuzz, process

from sandik.datasets.turkish_names import fold as _fold
from sandik.datasets.turkish_names import lower_tr, slug, title_tr, upper_tr

__all__ = ["fold", "slug", "lower_tr", "upper_tr", "title_tr", "sound_key", "NameIndex", "NameMatch", "Method"]

T = TypeVar("T")

# Rewrites applied, in order, to a folded key. Both sides of a comparison go
# through them, so a rewrite only has to make variants collide, not be right.
_REWRITES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), r)
    for p, r in (
        (r"ou", "u"),  # French/English/Arabic "Mansour"
        (r"oo", "u"),
        (r"sh", "s"),  # English for ş
        (r"sch", "s"),  # German
        (r"tch|ch", "c"),  # English/French for ç
        (r"dj|dzh|j", "c"),  # "Jemil" for Cemil (Turkish c sounds like English j)
        (r"kh", "h"),
        (r"gh", "g"),
        (r"ph", "f"),
        (r"th", "t"),
        (r"q", "k"),
        (r"x", "ks"),
        (r"w", "v"),
        (r"v", "b"),  # b/v: Arabic script has no v ("Yabas" for Yavaş)
        (r"(?<=[aeiou])g(?![aeiou])", ""),  # ğ after a vowel is silent: "Imamolu", "Erdoan"
        (r"(?<=[aeiou])g(?=[aeiou])", ""),
        (r"(.)\1+", r"\1"),  # doubled letters ("immamol")
    )
)


@lru_cache(maxsize=1 << 16)
def fold(s: str) -> str:
    """``sandik.datasets.turkish_names.fold``, memoised: linking folds the same names again and again."""
    return _fold(s)


@lru_cache(maxsize=1 << 16)
def sound_key(s: str) -> str:
    """A loose key: ``fold`` plus rewrites that merge transliteration variants."""
    k = fold(s)
    for pat, rep in _REWRITES:
        k = pat.sub(rep, k)
    return k


Method = str  # "exact" | "folded" | "transliterated" | "fuzzy"

# How sure a match of each kind is. Fuzzy matches scale with their score.
_CONFIDENCE = {"exact": 1.0, "folded": 0.97, "transliterated": 0.9}


@dataclass(frozen=True)
class NameMatch(Generic[T]):
    value: T
    name: str  # the known name that matched
    method: Method
    score: float  # rapidfuzz ratio of sound keys, 0..100
    confidence: float  # 0..1


@dataclass
class NameIndex(Generic[T]):
    """Known names (each with a value: a candidate, a party, an area...) looked up by free text.

    ``fuzzy_min`` is the lowest rapidfuzz ratio of sound keys accepted as a
    match; keys shorter than ``fuzzy_min_len`` are never matched fuzzily
    because short keys collide too easily ("Ak" vs "Aksu").
    """

    fuzzy_min: float = 80.0
    fuzzy_min_len: int = 5
    _names: list[str] = field(default_factory=list)
    _values: list[T] = field(default_factory=list)
    _by_fold: dict[str, list[int]] = field(default_factory=dict)
    _by_sound: dict[str, list[int]] = field(default_factory=dict)
    _sound_keys: list[str] = field(default_factory=list)
    _sound_owner: list[str] = field(default_factory=list)

    def add(self, name: str, value: T) -> None:
        f = fold(name)
        if not f:
            return
        i = len(self._names)
        self._names.append(name)
        self._values.append(value)
        self._by_fold.setdefault(f, []).append(i)
        sk = sound_key(name)
        if sk not in self._by_sound:
            self._sound_keys.append(sk)
        self._by_sound.setdefault(sk, []).append(i)

    def extend(self, pairs: Iterable[tuple[str, T]]) -> None:
        for name, value in pairs:
            self.add(name, value)

    def __len__(self) -> int:
        return len(self._names)

    def lookup(self, text: str, *, fuzzy: bool = True, limit: int = 5) -> list[NameMatch[T]]:
        """Every known name that ``text`` may stand for, best first (empty if none).

        Exact and transliterated matches are all returned; ``limit`` caps the fuzzy ones.
        """
        f = fold(text)
        if not f:
            return []
        out: list[NameMatch[T]] = []
        seen: set[int] = set()

        def emit(idx: Sequence[int], method: Method, score: float) -> None:
            for i in idx:
                if i in seen:
                    continue
                seen.add(i)
                m = "exact" if method == "folded" and self._names[i] == text else method
                conf = _CONFIDENCE.get(m, round(score / 100.0 * 0.85, 3))
                out.append(NameMatch(self._values[i], self._names[i], m, score, conf))

        emit(self._by_fold.get(f, ()), "folded", 100.0)
        sk = sound_key(text)
        emit(self._by_sound.get(sk, ()), "transliterated", 100.0)
        if fuzzy and len(sk) >= self.fuzzy_min_len and len(out) < limit:
            for key, score, _ in process.extract(sk, self._sound_keys, scorer=fuzz.ratio, score_cutoff=self.fuzzy_min, limit=limit):
                if key == sk or len(key) < self.fuzzy_min_len:
                    continue
                emit(self._by_sound[key], "fuzzy", float(score))
        out.sort(key=lambda m: -m.confidence)
        return out
