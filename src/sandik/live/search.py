"""Area search by name that forgives what people and old files do to Turkish names.

"Istanbul", "İSTANBUL", "istanbul", "ıstanbul" and the mojibake "Ä°stanbul" (UTF-8
bytes read as Latin-1 or cp1252) all find İstanbul: the query is repaired, then
both sides are compared on ``turkish_names.fold`` (an ASCII key).
"""

from __future__ import annotations

from dataclasses import dataclass

from rapidfuzz import fuzz

from sandik.core.model import Election
from sandik.datasets.turkish_names import fold

FUZZY_MIN = 85.0  # below this a fuzzy hit is noise


def repair_mojibake(s: str) -> str:
    """Undo UTF-8 text that was decoded as Latin-1/cp1252 ("Ä°stanbul" -> "İstanbul"); other text is returned as is."""
    for enc in ("cp1252", "latin-1"):
        try:
            fixed = s.encode(enc).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
        if fixed != s:
            return fixed
    return s


@dataclass(frozen=True)
class Hit:
    area_id: str
    score: float


def search_areas(e: Election, query: str, *, kind: str | None = None, limit: int = 20) -> list[Hit]:
    """Areas whose name matches ``query``: exact folded name first, then prefix, substring, then close spellings."""
    key = fold(repair_mojibake(query))
    if not key:
        return []
    hits: list[Hit] = []
    fuzzy: list[Hit] = []
    for a in e.areas.values():
        if kind and a.kind != kind:
            continue
        name = fold(a.name)
        if name == key:
            hits.append(Hit(a.id, 100.0))
        elif name.startswith(key):
            hits.append(Hit(a.id, 95.0))
        elif key in name:
            hits.append(Hit(a.id, 90.0))
        elif len(key) >= 4:
            s = fuzz.ratio(key, name)
            if s >= FUZZY_MIN:
                fuzzy.append(Hit(a.id, round(min(s, 89.0), 1)))
    # Bigger areas first among equals: a province before a district of the same name.
    depth = {"country": 0, "province": 1, "district": 2}
    out = sorted(hits + fuzzy, key=lambda h: (-h.score, depth.get(e.areas[h.area_id].kind, 3), e.areas[h.area_id].name))
    return out[:limit]


_ALPHABET = "abcçdefgğhıijklmnoöprsştuüvwxyz"
_RANK = {ch: i for i, ch in enumerate(_ALPHABET)}


def tr_sort_key(name: str) -> tuple[int, ...]:
    """Turkish alphabetical order (ç after c, ı before i, İstanbul before Kırıkkale); other characters after z."""
    from sandik.datasets.turkish_names import lower_tr

    return tuple(_RANK.get(ch, 100 + ord(ch)) for ch in lower_tr(name))
