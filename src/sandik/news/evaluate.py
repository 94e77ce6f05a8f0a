"""Score an article check against hand-written expected verdicts (tests and the accuracy script).

An expected file lists claims by a piece of their text (``contains``), with
the expected ``verdict``, optionally the ``kind`` and a piece of the ``actual``
figure, plus entities that must be linked and the foreign places to flag:

    {"claims": [{"contains": "won 36 of", "kind": "count_won", "verdict": "contradicted", "actual": "35 of 81"}],
     "entities": [{"text": "Mansour Yabas", "id": "tr.06:metropolitan_mayor:CHP"}],
     "foreign_places": ["Japan"]}

A claim is classified correctly when a claim found at that place (overlapping
the ``contains`` text, of that kind) has the expected verdict and actual
figure. Checkable claims found where none was expected count as errors too,
so the score cannot be raised by finding claims everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sandik.news.claims import ArticleCheck, Claim


@dataclass
class Score:
    expected: int = 0
    correct: int = 0
    spurious: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.expected + self.spurious

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 1.0

    def merge(self, other: Score) -> None:
        self.expected += other.expected
        self.correct += other.correct
        self.spurious += other.spurious
        self.errors += other.errors


def _overlaps(c: Claim, lo: int, hi: int) -> bool:
    return c.start < hi and lo < c.end


def score(text: str, check: ArticleCheck, expected: dict[str, Any], *, name: str = "") -> Score:
    sc = Score()
    used: set[int] = set()
    for exp in expected["claims"]:
        lo = text.find(exp["contains"])
        if lo < 0:
            raise ValueError(f"{name}: expected text {exp['contains']!r} is not in the article")
        hi = lo + len(exp["contains"])
        found = [i for i, c in enumerate(check.claims) if _overlaps(c, lo, hi) and ("kind" not in exp or c.kind == exp["kind"])]
        if exp.get("optional") and not found:
            continue
        sc.expected += 1
        good = [i for i in found if check.claims[i].verdict == exp["verdict"] and ("actual" not in exp or exp["actual"] in (check.claims[i].actual or ""))]
        if good:
            sc.correct += 1
            used.update(found)
        else:
            used.update(found)
            got = [(check.claims[i].kind, check.claims[i].verdict, check.claims[i].actual) for i in found]
            sc.errors.append(f"{name}: {exp['contains']!r}: expected {exp.get('kind', '')} {exp['verdict']} {exp.get('actual', '')!r}, got {got or 'nothing'}")
    for i, c in enumerate(check.claims):
        if i not in used and c.verdict != "not_checkable":
            sc.spurious += 1
            sc.errors.append(f"{name}: unexpected {c.kind} {c.verdict} claim {c.text!r}")
    for ent in expected.get("entities", []):
        lo = text.find(ent["text"])
        ms = [m for m in check.mentions if m.start <= lo < m.end or (m.start >= lo and m.end <= lo + len(ent["text"]))]
        if not any(m.ref.id == ent["id"] for m in ms):
            sc.errors.append(f"{name}: entity {ent['text']!r} not linked to {ent['id']} (got {[m.ref.id for m in ms]})")
    if "foreign_places" in expected and sorted(check.foreign_places) != sorted(expected["foreign_places"]):
        sc.errors.append(f"{name}: foreign places {check.foreign_places} != {expected['foreign_places']}")
    return sc
