"""Observers' copies against the official sheet: confirmation, field-by-field comparison, impact.

Pure functions (no I/O), methods.md §3.3.

* :func:`confirm` - an organisation's copy of a sheet counts as *confirmed* only
  when ``k`` different volunteers typed identical figures (Oy ve Ötesi's "T3"
  uses k = 3); otherwise it is pending, or disputed with the disagreeing
  fields shown value by value.
* :func:`compare` - official vs a confirmed copy, field by field, classified:
  ``single_digit``, ``transposed_digits``, ``order_of_magnitude``,
  ``candidates_swapped``, ``column_shift``, ``header_only`` (candidates' counts
  agree), ``missing_official`` / ``missing_observer``, or ``other``; with the
  effect on the race margin.
* :func:`race_impact` - per race, the cumulative effect of the discrepancies
  found so far against the current lead: could they change the winner?

Nothing here ever changes what is counted: only official sheets are tallied.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sandik.core.model import Race
from sandik.core.sheet import COUNT_FIELDS, OFFICIAL, TallySheet
from sandik.errors import SandikError

KINDS = (
    "single_digit",
    "transposed_digits",
    "order_of_magnitude",
    "candidates_swapped",
    "column_shift",
    "header_only",
    "missing_official",
    "missing_observer",
    "other",
)
# How much a kind matters when nothing else tells them apart: counts before headers.
KIND_PRIORITY = {k: i for i, k in enumerate(("candidates_swapped", "column_shift", "order_of_magnitude", "other", "single_digit", "transposed_digits", "missing_official", "missing_observer", "header_only"))}


class ObserverError(SandikError):
    """An observer input that cannot be used (unknown box or race, wrong source, ...)."""

    code = "observer_input"


# --- multiple entry ------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    entrant: str  # the volunteer who typed it
    sheet: TallySheet


@dataclass(frozen=True)
class Confirmation:
    status: str  # "confirmed" | "pending" | "disputed" | "conflict"
    k: int
    entries: int  # distinct entrants
    sheet: TallySheet | None  # the confirmed copy
    agreeing: int  # entrants behind the most common version
    disagreements: dict[str, dict[str, int]] = field(default_factory=dict)  # field -> value -> entrants

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "k": self.k, "entries": self.entries, "agreeing": self.agreeing, "disagreements": self.disagreements}


def _fields(s: TallySheet) -> dict[str, int | None]:
    d: dict[str, int | None] = {f: getattr(s, f) for f in COUNT_FIELDS}
    d.update({f"votes:{c}": v for c, v in sorted(s.votes.items())})
    return d


def confirm(entries: Sequence[Entry], k: int) -> Confirmation:
    """Decide whether one organisation's entries of one (box, race) confirm a copy.

    Each volunteer's latest entry counts once. ``confirmed`` when exactly one
    version has ``k`` or more volunteers behind it; ``conflict`` when two
    versions each have ``k`` (the copy contradicts itself: a second photo?);
    ``disputed`` when volunteers disagree and no version reached ``k``;
    ``pending`` when they agree so far but are fewer than ``k``.
    """
    if k < 1:
        raise ObserverError(f"k must be at least 1, got {k}")
    if not entries:
        return Confirmation("pending", k, 0, None, 0)
    keys = {(e.sheet.box_id, e.sheet.race_id, e.sheet.source) for e in entries}
    if len(keys) != 1:
        raise ObserverError(f"entries of different sheets cannot confirm one another: {sorted(keys)}")
    latest: dict[str, TallySheet] = {}
    for e in entries:
        latest[e.entrant] = e.sheet
    by_hash: dict[str, list[str]] = {}
    sheet_of: dict[str, TallySheet] = {}
    for who, s in latest.items():
        # Entries agree when their figures agree (two volunteers may attach different photos).
        h = repr(sorted(_fields(s).items()))
        by_hash.setdefault(h, []).append(who)
        sheet_of[h] = s
    ranked = sorted(by_hash.items(), key=lambda kv: -len(kv[1]))
    top_hash, top_who = ranked[0]
    reached = [h for h, who in ranked if len(who) >= k]
    disagreements: dict[str, dict[str, int]] = {}
    if len(by_hash) > 1:
        per_field: dict[str, Counter[str]] = {}
        for s in latest.values():
            for f, v in _fields(s).items():
                per_field.setdefault(f, Counter())[str(v)] += 1
        disagreements = {f: dict(c) for f, c in per_field.items() if len(c) > 1}
    n = len(latest)
    if len(reached) > 1:
        return Confirmation("conflict", k, n, None, len(top_who), disagreements)
    if reached:
        return Confirmation("confirmed", k, n, sheet_of[reached[0]], len(by_hash[reached[0]]), disagreements)
    return Confirmation("disputed" if len(by_hash) > 1 else "pending", k, n, None, len(top_who), disagreements)


# --- comparing two copies ------------------------------------------------------------
def classify_value(official: int, observer: int) -> str:
    """How one figure differs: single digit, transposed digits, order of magnitude, or other."""
    a, b = str(official), str(observer)
    if a == b:
        return "same"
    if len(a) != len(b):
        return "order_of_magnitude"
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    if len(diff) == 1:
        return "single_digit"
    if len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]:
        return "transposed_digits"
    return "other"


def _is_rotation(xs: list[int], ys: list[int]) -> bool:
    """ys is xs rotated by one position (either way) over the whole range."""
    return len(xs) >= 3 and (ys == xs[1:] + xs[:1] or ys == xs[-1:] + xs[:-1])


@dataclass(frozen=True)
class FieldDiff:
    field: str  # "valid", "votes:CHP", ...
    official: int | None
    observer: int | None
    kind: str  # classify_value of the pair, or "missing"

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "official": self.official, "observer": self.observer, "kind": self.kind}


@dataclass(frozen=True)
class Discrepancy:
    box_id: str
    race_id: str
    org: str
    kind: str
    diffs: tuple[FieldDiff, ...]
    delta_votes: dict[str, int]  # candidate -> official - observer
    effect_on_margin: int  # (leader - runner-up) on the official sheet minus on the observer's copy

    @property
    def counts_differ(self) -> bool:
        return any(self.delta_votes.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "box_id": self.box_id,
            "race_id": self.race_id,
            "org": self.org,
            "kind": self.kind,
            "diffs": [d.to_dict() for d in self.diffs],
            "delta_votes": self.delta_votes,
            "effect_on_margin": self.effect_on_margin,
        }


def compare(official: TallySheet | None, observer: TallySheet | None, race: Race, *, org: str | None = None, leader: str | None = None, runner_up: str | None = None) -> Discrepancy | None:
    """Official sheet vs an organisation's confirmed copy; None when they agree on every figure.

    ``leader``/``runner_up``: the race's current first two candidates (for the
    effect on the margin); default: the first two candidates of the race.
    """
    if official is None and observer is None:
        raise ObserverError("nothing to compare: both copies are missing")
    ref = official or observer
    assert ref is not None
    org = org or (observer.source if observer is not None else "")
    if observer is not None and observer.source == OFFICIAL:
        raise ObserverError(f"box {ref.box_id}, race {ref.race_id}: the observer copy is marked official")
    for s in (official, observer):
        if s is not None and s.race_id != race.id:
            raise ObserverError(f"box {s.box_id}: sheet of race {s.race_id} compared within race {race.id}")
    if official is not None and observer is not None and official.box_id != observer.box_id:
        raise ObserverError(f"cannot compare box {official.box_id} with box {observer.box_id}")
    cands = [c.id for c in race.candidates]
    lead = leader or (cands[0] if cands else None)
    run = runner_up or (cands[1] if len(cands) > 1 else None)

    def margin(s: TallySheet) -> int:
        if lead is None:
            return 0
        return s.votes.get(lead, 0) - (s.votes.get(run, 0) if run else 0)

    if official is None or observer is None:
        present = official or observer
        assert present is not None
        kind = "missing_official" if official is None else "missing_observer"
        m = margin(present)
        return Discrepancy(ref.box_id, race.id, org, kind, (), {}, m if official is not None else -m)

    diffs: list[FieldDiff] = []
    for f in COUNT_FIELDS:
        a, b = getattr(official, f), getattr(observer, f)
        if a != b:
            diffs.append(FieldDiff(f, a, b, classify_value(a, b)))
    cand_diffs: list[FieldDiff] = []
    for c in cands:
        a, b = official.votes.get(c), observer.votes.get(c)
        if a != b:
            fd = FieldDiff(f"votes:{c}", a, b, "missing" if a is None or b is None else classify_value(a, b))
            cand_diffs.append(fd)
    if not diffs and not cand_diffs:
        return None
    delta = {c: official.votes.get(c, 0) - observer.votes.get(c, 0) for c in cands if official.votes.get(c, 0) != observer.votes.get(c, 0)}
    if not cand_diffs:
        kind = "header_only"
    else:
        xs = [official.votes.get(c, 0) for c in cands]
        ys = [observer.votes.get(c, 0) for c in cands]
        changed = [i for i in range(len(cands)) if xs[i] != ys[i]]
        if sorted(xs) == sorted(ys) and len(changed) == 2:
            kind = "candidates_swapped"
        elif sorted(xs) == sorted(ys) and _is_rotation([xs[i] for i in range(changed[0], changed[-1] + 1)], [ys[i] for i in range(changed[0], changed[-1] + 1)]):
            kind = "column_shift"
        else:
            kinds = {d.kind for d in cand_diffs}
            kind = kinds.pop() if len(kinds) == 1 and "missing" not in kinds else "other"
    return Discrepancy(official.box_id, race.id, org, kind, tuple(diffs + cand_diffs), delta, margin(official) - margin(observer))


# --- impact on a race ----------------------------------------------------------------
def race_impact(totals: Mapping[str, int], discrepancies: Iterable[Discrepancy]) -> dict[str, Any]:
    """What the discrepancies found so far could do to a race.

    ``totals``: the official running votes per candidate. If every discrepancy
    were settled in the observers' favour, each candidate's total would move by
    -(official - observer); ``could_change_winner`` says whether the leader
    would then lose first place. ``sum_abs_effect`` (the summed |effect on the
    margin|) against ``lead`` is the cruder bound a reader can check by hand.
    """
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])
    if not ranked:
        raise ObserverError("a race without candidates has no winner to change")
    leader = ranked[0][0]
    lead = ranked[0][1] - (ranked[1][1] if len(ranked) > 1 else 0)
    corrected = dict(totals)
    n = 0
    cum = 0
    sabs = 0
    kinds: Counter[str] = Counter()
    for d in discrepancies:
        n += 1
        kinds[d.kind] += 1
        cum += d.effect_on_margin
        sabs += abs(d.effect_on_margin)
        for c, dv in d.delta_votes.items():
            if c in corrected:
                corrected[c] -= dv
    new_ranked = sorted(corrected.items(), key=lambda kv: -kv[1])
    new_leader = new_ranked[0][0]
    tie = len(new_ranked) > 1 and new_ranked[0][1] == new_ranked[1][1]
    could = new_leader != leader or tie or sabs >= lead
    return {
        "leader": leader,
        "lead": lead,
        "discrepancies": n,
        "by_kind": dict(kinds),
        "cumulative_effect": cum,
        "sum_abs_effect": sabs,
        "leader_if_observers_right": None if tie else new_leader,
        "lead_if_observers_right": new_ranked[0][1] - (new_ranked[1][1] if len(new_ranked) > 1 else 0),
        "could_change_winner": bool(could),
        "wording": (
            f"the discrepancies found so far ({n}) could change the winner: their summed effect on the margin is {sabs:,} votes against a lead of {lead:,}"
            if could
            else f"the discrepancies found so far ({n}) could not change the winner: their summed effect on the margin is {sabs:,} votes against a lead of {lead:,}"
        ),
    }
