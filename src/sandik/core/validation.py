"""Tally-sheet rules (methods.md §3.2): hard errors and warnings.

A sheet with any error is quarantined with its reasons and not counted; a
sheet with only warnings is counted and flagged. Every issue names the box,
race, rule, fields and values, in words a clerk understands.

Rules (rule code, what it checks):

    S1  the race exists                      S4  every candidate on the sheet stands in the race
    S2  the box exists                       S5  every candidate of the race has a count
    S3  the box votes in this race           S6  K equals the box list's registered voters
    E1  every count is a whole number >= 0
    E2  (1) <= K
    E3  (3) = (1) + (2)
    E4  (4) - (5) <= (3); (5) > 0 only if (4) > (3), and then (4) - (5) = (3)
    E5  (9) = (7) + (8)
    E6  sum of candidates' votes = (9)
    E7  ballots used = valid + invalid
    E8  ballots used <= (3) <= K + (2)
    W1  envelopes/ballots received - unused = (3)
    W2  |(3) - ballots used| >= 2% of (3) or >= 15
    W3  turnout (3)/K >= 98%
    W4  invalid >= 10% of ballots used, or voters by law >= 10% of (3) and >= 10
    W5  (3) differs from the same box's (3) in another race by >= 2% or >= 15

The S rules are structural (the sheet does not fit the election definition);
W4's fixed thresholds are a starting point (the forensics module ranks
outliers against their district instead).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sandik.core.model import Election, Race
from sandik.core.sheet import FIELD_LABELS, OPTIONAL_COUNT_FIELDS, TallySheet

try:
    from sandik.core._fastcheck import check_clean as _c_check_clean
except ImportError:  # built without a C compiler: the pure-Python reference (clean_votes) decides
    _c_check_clean = None

Severity = Literal["error", "warning"]

RULES: dict[str, str] = {
    "S1": "the race must exist in this election",
    "S2": "the ballot box must exist in this election",
    "S3": "the ballot box must vote in this race",
    "S4": "every candidate on the sheet must stand in this race",
    "S5": "every candidate of the race must have a count",
    "S6": "registered voters must equal the box list",
    "E1": "every count must be a whole number, zero or more",
    "E2": "listed voters who voted (1) cannot exceed registered voters (K)",
    "E3": "total voters (3) must equal listed voters (1) plus voters by law (2)",
    "E4": "envelopes out of the box (4) minus destroyed (5) must reconcile with total voters (3)",
    "E5": "valid votes (9) must equal unchallenged (7) plus challenged (8)",
    "E6": "the candidates' votes must add up to the valid votes (9)",
    "E7": "ballots used must equal valid plus invalid votes",
    "E8": "ballots used <= total voters (3) <= registered (K) + voters by law (2)",
    "W1": "envelopes and ballots received minus unused should equal total voters (3)",
    "W2": "total voters (3) and ballots used differ by 2% or 15 or more",
    "W3": "turnout is 98% or more",
    "W4": "unusually many invalid votes or voters by law",
    "W5": "total voters (3) differ from this box's sheet for another race",
}


@dataclass(frozen=True, slots=True)
class Issue:
    rule: str
    severity: Severity
    box_id: str
    race_id: str
    message: str
    fields: tuple[str, ...] = ()
    values: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"[{self.rule}] {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "box_id": self.box_id,
            "race_id": self.race_id,
            "fields": list(self.fields),
            "values": self.values,
            "message": self.message,
        }


def _lab(f: str) -> str:
    return FIELD_LABELS.get(f, f)


class _Collector:
    __slots__ = ("issues", "box", "race")

    def __init__(self, box: str, race: str) -> None:
        self.issues: list[Issue] = []
        self.box = box
        self.race = race

    def add(self, rule: str, severity: Severity, detail: str, fields: tuple[str, ...], values: dict[str, Any]) -> None:
        msg = f"box {self.box}, race {self.race}: {RULES[rule]} ({detail})"
        self.issues.append(Issue(rule, severity, self.box, self.race, msg, fields, values))


def validate(sheet: TallySheet, election: Election, *, other_race_voters: dict[str, int] | None = None) -> list[Issue]:
    """All issues of one sheet. ``other_race_voters``: race id -> (3) of this box's accepted sheets in other races (W5)."""
    s = sheet
    c = _Collector(s.box_id, s.race_id)
    race = election.races.get(s.race_id)
    box_idx = election.box_index.get(s.box_id)
    if race is None:
        c.add("S1", "error", f"race {s.race_id!r} is not defined", ("race_id",), {"race_id": s.race_id})
    if box_idx is None:
        c.add("S2", "error", f"box {s.box_id!r} is not defined", ("box_id",), {"box_id": s.box_id})
    if race is not None and box_idx is not None and box_idx not in election.race_box_set[race.id]:
        c.add("S3", "error", f"box {s.box_id} votes in {', '.join(election.box_races[box_idx]) or 'no race'}", ("box_id", "race_id"), {})
    if race is not None:
        idx = race.candidate_index
        unknown = [k for k in s.votes if k not in idx]
        if unknown:
            c.add("S4", "error", f"unknown candidate(s) {', '.join(map(repr, unknown))}; this race has {', '.join(idx)}", ("votes",), {"unknown": unknown})
        missing = [k for k in idx if k not in s.votes]
        if missing:
            c.add("S5", "error", f"no count for {', '.join(map(repr, missing))}", ("votes",), {"missing": missing})
    if box_idx is not None:
        listed = int(election.box_registered[box_idx])
        if s.registered != listed:
            c.add("S6", "error", f"sheet says K = {s.registered}, the box list says {listed}", ("registered",), {"registered": s.registered, "box_list": listed})

    # E1: counts must be non-negative integers (parsers already turned text into int or raised).
    negatives = {f: getattr(s, f) for f in ("registered", "voted_listed", "voted_by_law", "total_voters", "ballots_used", "valid_unchallenged", "valid_challenged", "valid", "invalid") if not _nonneg(getattr(s, f))}
    negatives.update({f: getattr(s, f) for f in OPTIONAL_COUNT_FIELDS if getattr(s, f) is not None and not _nonneg(getattr(s, f))})
    negatives.update({f"votes[{k}]": v for k, v in s.votes.items() if not _nonneg(v)})
    if negatives:
        c.add("E1", "error", ", ".join(f"{_lab(k)} = {v}" for k, v in negatives.items()), tuple(negatives), negatives)
        return c.issues  # arithmetic on bad numbers would only repeat the same complaint

    K, l1, l2, l3 = s.registered, s.voted_listed, s.voted_by_law, s.total_voters
    used, v7, v8, v9, inv = s.ballots_used, s.valid_unchallenged, s.valid_challenged, s.valid, s.invalid
    if l1 > K:
        c.add("E2", "error", f"(1) = {l1} > K = {K}", ("voted_listed", "registered"), {"voted_listed": l1, "registered": K})
    if l3 != l1 + l2:
        c.add("E3", "error", f"(3) = {l3}, but (1) + (2) = {l1} + {l2} = {l1 + l2}", ("total_voters", "voted_listed", "voted_by_law"), {"total_voters": l3, "voted_listed": l1, "voted_by_law": l2})
    e4, e5 = s.envelopes_out, s.envelopes_destroyed
    if e4 is not None:
        d5 = e5 or 0
        bad = e4 - d5 > l3 or (d5 > 0 and (e4 <= l3 or e4 - d5 != l3))
        if bad:
            c.add("E4", "error", f"(4) = {e4}, (5) = {d5}, (3) = {l3}", ("envelopes_out", "envelopes_destroyed", "total_voters"), {"envelopes_out": e4, "envelopes_destroyed": d5, "total_voters": l3})
    if v9 != v7 + v8:
        c.add("E5", "error", f"(9) = {v9}, but (7) + (8) = {v7} + {v8} = {v7 + v8}", ("valid", "valid_unchallenged", "valid_challenged"), {"valid": v9, "valid_unchallenged": v7, "valid_challenged": v8})
    total_votes = sum(s.votes.values())
    if total_votes != v9:
        c.add("E6", "error", f"candidates' votes add up to {total_votes}, valid votes (9) = {v9}, difference {total_votes - v9:+d}", ("votes", "valid"), {"sum_votes": total_votes, "valid": v9})
    if used != v9 + inv:
        c.add("E7", "error", f"ballots used = {used}, valid + invalid = {v9} + {inv} = {v9 + inv}", ("ballots_used", "valid", "invalid"), {"ballots_used": used, "valid": v9, "invalid": inv})
    if not (used <= l3 <= K + l2):
        c.add("E8", "error", f"ballots used = {used}, (3) = {l3}, K + (2) = {K + l2}", ("ballots_used", "total_voters", "registered", "voted_by_law"), {"ballots_used": used, "total_voters": l3, "registered": K, "voted_by_law": l2})

    # Warnings: the sheet is counted, and flagged for a human to look at.
    for recv, unused, name in (("envelopes_received", "envelopes_unused", "envelopes"), ("ballots_received", "ballots_unused", "ballots")):
        r_, u_ = getattr(s, recv), getattr(s, unused)
        if r_ is not None and u_ is not None and r_ - u_ != l3:
            c.add("W1", "warning", f"{name}: received {r_} - unused {u_} = {r_ - u_}, (3) = {l3}", (recv, unused, "total_voters"), {recv: r_, unused: u_, "total_voters": l3})
    gap = abs(l3 - used)
    if gap and (gap >= 15 or gap >= 0.02 * l3):
        c.add("W2", "warning", f"(3) = {l3}, ballots used = {used}", ("total_voters", "ballots_used"), {"total_voters": l3, "ballots_used": used})
    if K > 0 and l3 >= 0.98 * K:
        c.add("W3", "warning", f"turnout {100 * l3 / K:.1f}% ((3) = {l3}, K = {K})", ("total_voters", "registered"), {"turnout": round(l3 / K, 4)})
    if used and inv >= 0.10 * used:
        c.add("W4", "warning", f"invalid {inv} of {used} ballots ({100 * inv / used:.1f}%)", ("invalid",), {"invalid": inv, "ballots_used": used})
    elif l3 and l2 >= 10 and l2 >= 0.10 * l3:
        c.add("W4", "warning", f"{l2} of {l3} voters voted by law", ("voted_by_law",), {"voted_by_law": l2, "total_voters": l3})
    if other_race_voters:
        for other, n in other_race_voters.items():
            if other == s.race_id:
                continue
            if w5_fires(l3, {other: n}):
                c.add("W5", "warning", f"(3) = {l3} here, {n} on the sheet for {other}", ("total_voters",), {"total_voters": l3, "other_race": other, "other_total_voters": n})
    return c.issues


def _nonneg(v: object) -> bool:
    # bool is an int subclass: True counts as 1, as it does in the bulk fast path
    return isinstance(v, int) and v >= 0


def has_errors(issues: list[Issue]) -> bool:
    return any(i.severity == "error" for i in issues)


def is_clean(s: TallySheet, race: Race, registered: int) -> bool:
    """True only when ``validate`` would report nothing for this sheet (W5 aside)."""
    return clean_votes(s, race, registered) is not None


def clean_votes(s: TallySheet, race: Race, registered: int) -> list[int] | None:
    """The sheet's votes in the race's candidate order if ``validate`` would report nothing (W5 aside), else None.

    The fast path of bulk ingest: the same arithmetic as E1-E8 and W2-W4 (same
    formulas and float thresholds), without building messages, and the ordered
    votes the caller stores and counts, so that they are read once. Anything
    unusual (optional fields, other candidates, non-integers) returns None and
    goes through ``validate`` for the worded verdict. Tested against ``validate``.
    """
    votes = s.votes
    if list(votes) == race.candidate_ids:
        vs = list(votes.values())
    elif votes.keys() == race.candidate_index.keys():
        vs = [votes[c] for c in race.candidate_ids]
    else:
        return None
    K, l1, l2, l3, used = s.registered, s.voted_listed, s.voted_by_law, s.total_voters, s.ballots_used
    if K != registered:
        return None
    if not (s.envelopes_out is None and s.envelopes_destroyed is None and s.envelopes_received is None
            and s.envelopes_unused is None and s.ballots_received is None and s.ballots_unused is None):  # fmt: skip
        return None
    v7, v8, v9, inv = s.valid_unchallenged, s.valid_challenged, s.valid, s.invalid
    total = sum(vs)
    # A float or numpy number among the votes makes their sum non-int (bools count as ints,
    # as in ``_nonneg``); the header fields are checked one by one, which short-circuits.
    if not (type(total) is int and type(K) is int and type(l1) is int and type(l2) is int and type(l3) is int
            and type(used) is int and type(v7) is int and type(v8) is int and type(v9) is int and type(inv) is int):  # fmt: skip
        return None
    if min(K, l1, l2, l3, used, v7, v8, v9, inv) < 0 or min(vs) < 0:
        return None
    if l1 > K or l3 != l1 + l2 or v9 != v7 + v8 or total != v9 or used != v9 + inv or used > l3 or l3 > K + l2:
        return None
    gap = l3 - used  # >= 0 here
    if gap and (gap >= 15 or gap >= 0.02 * l3):
        return None
    if K > 0 and l3 >= 0.98 * K:
        return None
    if used and inv >= 0.10 * used:
        return None
    if l3 and l2 >= 10 and l2 >= 0.10 * l3:
        return None
    return vs


def clean_votes_and_text(s: TallySheet, race: Race, registered: int) -> tuple[list[int], str] | None:
    """``clean_votes`` and the votes as the text "a,b,c", through the C fast path when it was compiled.

    The C module (``_fastcheck.c``) decides exactly as ``clean_votes`` does or hands the
    sheet back (NotImplemented) for the Python reference to decide.
    """
    if _c_check_clean is not None:
        out = _c_check_clean(s, race.candidate_ids, registered)
        if out is not NotImplemented:
            return out  # type: ignore[no-any-return]
    vs = clean_votes(s, race, registered)
    return None if vs is None else (vs, ",".join(map(str, vs)))


def w5_fires(total_voters: int, others: dict[str, int]) -> bool:
    for n in others.values():
        d = abs(n - total_voters)
        if d and (d >= 15 or d >= 0.02 * max(n, total_voters)):
            return True
    return False
