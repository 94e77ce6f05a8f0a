"""What readers want from the tallies: shares, leaders, margins, scoreboards, swing.

Pure functions of an ``Election`` and a ``LiveTally`` (or, for an election
known only in aggregate, its ``aggregate_results``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from sandik.core.model import Election, Race, RaceTotals
from sandik.core.tally import I_BALLOTS_USED, I_BY_LAW, I_INVALID, I_OPENED, I_REGISTERED, I_TOTAL_VOTERS, I_VALID, NB, LiveTally

Status = Literal["not_started", "counting", "complete"]
INDEPENDENT_KEY = "IND"  # scoreboard key for candidates without a party


@dataclass(frozen=True)
class CandidateResult:
    id: str
    name: str
    party: str | None
    votes: int
    share: float  # of valid votes, 0..1


@dataclass(frozen=True)
class RaceResult:
    election_id: str
    race_id: str
    office: str
    race_name: str
    area_id: str
    area_name: str
    status: Status
    boxes_opened: int
    boxes_total: int
    registered_opened: int
    registered_total: int
    total_voters: int
    ballots_used: int
    valid: int
    invalid: int
    voted_by_law: int
    candidates: list[CandidateResult]  # by votes, highest first
    leader: str | None  # candidate id; None before any vote or on a tie for first
    runner_up: str | None
    margin_votes: int
    margin_points: float  # percentage points of valid votes
    tied: bool
    turnout: float | None  # of registered voters in opened boxes
    invalid_rate: float | None
    boxes_opened_share: float
    expected_vote_share: float  # registered voters in opened boxes / all registered voters

    @property
    def leader_party(self) -> str | None:
        for c in self.candidates:
            if c.id == self.leader:
                return c.party or INDEPENDENT_KEY
        return None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["leader_party"] = self.leader_party
        return d


def _result(election: Election, race: Race, area_id: str, vec: np.ndarray, boxes_total: int, registered_total: int) -> RaceResult:
    votes = vec[NB:]
    valid = int(vec[I_VALID])
    order = sorted(range(len(race.candidates)), key=lambda i: (-int(votes[i]), i))
    cands = [
        CandidateResult(c.id, c.label(election.parties), c.party, int(votes[i]), (int(votes[i]) / valid) if valid else 0.0)
        for i in order
        for c in (race.candidates[i],)
    ]
    first = cands[0].votes if cands else 0
    second = cands[1].votes if len(cands) > 1 else 0
    tied = first > 0 and first == second
    leader = cands[0].id if first > 0 and not tied else None
    runner = cands[1].id if len(cands) > 1 and first > 0 else None
    opened = int(vec[I_OPENED])
    reg_open = int(vec[I_REGISTERED])
    used = int(vec[I_BALLOTS_USED])
    status: Status = "not_started" if opened == 0 else ("complete" if opened >= boxes_total else "counting")
    return RaceResult(
        election_id=election.id,
        race_id=race.id,
        office=race.office,
        race_name=race.name,
        area_id=area_id,
        area_name=election.areas[area_id].name,
        status=status,
        boxes_opened=opened,
        boxes_total=boxes_total,
        registered_opened=reg_open,
        registered_total=registered_total,
        total_voters=int(vec[I_TOTAL_VOTERS]),
        ballots_used=used,
        valid=valid,
        invalid=int(vec[I_INVALID]),
        voted_by_law=int(vec[I_BY_LAW]),
        candidates=cands,
        leader=leader,
        runner_up=runner,
        margin_votes=first - second,
        margin_points=(100.0 * (first - second) / valid) if valid else 0.0,
        tied=tied,
        turnout=(int(vec[I_TOTAL_VOTERS]) / reg_open) if reg_open else None,
        invalid_rate=(int(vec[I_INVALID]) / used) if used else None,
        boxes_opened_share=(opened / boxes_total) if boxes_total else 0.0,
        expected_vote_share=(reg_open / registered_total) if registered_total else 0.0,
    )


def race_result(election: Election, tally: LiveTally, race_id: str, area_id: str | None = None) -> RaceResult:
    """Result of a race at its own area, or at any area below it that holds some of its boxes."""
    race = election.race(race_id)
    rt = tally.races[race.id]
    aid = area_id or race.area_id
    if aid not in rt.row_of:
        election.area(aid)  # NotFound if the area does not exist at all
        raise KeyError(f"race {race_id} has no boxes in area {aid}")
    r = rt.row_of[aid]
    return _result(election, race, aid, rt.agg[r], int(rt.boxes_total[r]), int(rt.registered_total[r]))


def box_result(election: Election, tally: LiveTally, race_id: str, box_id: str) -> RaceResult:
    race = election.race(race_id)
    b = election.box(box_id)
    vec = tally.box_row(race.id, b)
    return _result(election, race, election.box_area_ids[b], vec, 1, int(election.box_registered[b]))


def aggregate_result(election: Election, race_id: str) -> RaceResult:
    """Final result of a race known only in aggregate (e.g. the previous election)."""
    race = election.race(race_id)
    t: RaceTotals = election.aggregate_results[race_id]
    vec = np.zeros(NB + len(race.candidates), dtype=np.int64)
    vec[:NB] = (1, t.registered, t.total_voters, t.valid + t.invalid, t.valid, t.invalid, 0)
    vec[NB:] = t.votes
    return _result(election, race, race.area_id, vec, 1, t.registered)


def final_results(election: Election, tally: LiveTally | None) -> dict[str, RaceResult]:
    """Every race's result at its own area: live where boxes exist, else from aggregates."""
    out = {}
    for rid, race in election.races.items():
        if tally is not None and len(election.race_boxes[rid]):
            out[rid] = race_result(election, tally, rid)
        elif rid in election.aggregate_results:
            out[rid] = aggregate_result(election, rid)
    return out


# --- scoreboards ------------------------------------------------------------------
@dataclass
class ScoreLine:
    party: str
    won: int = 0
    leading: int = 0

    @property
    def total(self) -> int:
        return self.won + self.leading


@dataclass
class Scoreboard:
    group: str  # an office, or "top:<area kind>" for the one-race-per-top-area line
    races: int
    reporting: int
    lines: list[ScoreLine] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "races": self.races,
            "races_reporting": self.reporting,
            "parties": [{"party": line.party, "won": line.won, "leading": line.leading, "total": line.total} for line in self.lines],
        }


def scoreboards(election: Election, results: dict[str, RaceResult]) -> list[Scoreboard]:
    """Per office (and per top-area group): races won (complete) and leading (counting), per party."""
    groups: dict[str, list[RaceResult]] = defaultdict(list)
    for res in results.values():
        groups[res.office].append(res)
        if res.office in election.info.top_offices:
            groups[f"top:{election.info.top_area_kind or 'area'}"].append(res)
    boards = []
    for group, rs in groups.items():
        lines: dict[str, ScoreLine] = {}
        for res in rs:
            p = res.leader_party
            if p is None:
                continue
            line = lines.setdefault(p, ScoreLine(p))
            if res.status == "complete":
                line.won += 1
            else:
                line.leading += 1
        ordered = sorted(lines.values(), key=lambda s: (-s.total, -s.won, s.party))
        boards.append(Scoreboard(group, len(rs), sum(1 for r in rs if r.status != "not_started"), ordered))
    boards.sort(key=lambda b: (not b.group.startswith("top:"), b.group))
    return boards


# --- comparison with the previous election ---------------------------------------
STRONGHOLD_MARGIN_POINTS = 20.0  # a party's previous win by at least this margin makes the race its stronghold


@dataclass(frozen=True)
class RaceComparison:
    race_id: str
    race_name: str
    office: str
    winner_then: str | None  # party key
    leader_now: str | None
    status_now: Status
    flipped: bool  # the party leading now is not the party that won then
    margin_then_points: float
    margin_now_points: float
    swing_points: dict[str, float]  # party -> share now - share then, in points
    stronghold_of: str | None  # party whose stronghold this was
    stronghold_held: bool | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _party_shares(res: RaceResult) -> dict[str, float]:
    shares: Counter[str] = Counter()
    for c in res.candidates:
        shares[c.party or INDEPENDENT_KEY] += c.share
    return dict(shares)


def compare(now: dict[str, RaceResult], then: dict[str, RaceResult]) -> list[RaceComparison]:
    """Race-by-race comparison for the races both elections share (matched by race id)."""
    out = []
    for rid, res in now.items():
        prev = then.get(rid)
        if prev is None:
            continue
        w_then, w_now = prev.leader_party, res.leader_party
        s_now, s_then = _party_shares(res), _party_shares(prev)
        parties = sorted(set(s_now) | set(s_then))
        swing = {p: round(100.0 * (s_now.get(p, 0.0) - s_then.get(p, 0.0)), 2) for p in parties} if res.valid else {}
        strong = w_then if (w_then and prev.margin_points >= STRONGHOLD_MARGIN_POINTS) else None
        out.append(
            RaceComparison(
                race_id=rid,
                race_name=res.race_name,
                office=res.office,
                winner_then=w_then,
                leader_now=w_now,
                status_now=res.status,
                flipped=bool(w_then and w_now and w_then != w_now),
                margin_then_points=round(prev.margin_points, 2),
                margin_now_points=round(res.margin_points, 2),
                swing_points=swing,
                stronghold_of=strong,
                stronghold_held=(None if strong is None or w_now is None else w_now == strong),
            )
        )
    return out


def flips_summary(comparisons: list[RaceComparison]) -> dict[str, Any]:
    """Counts of flips (then -> now) and of strongholds held or lost, per party."""
    flips: Counter[str] = Counter()
    held: Counter[str] = Counter()
    lost: Counter[str] = Counter()
    for c in comparisons:
        if c.flipped:
            flips[f"{c.winner_then}->{c.leader_now}"] += 1
        if c.stronghold_of and c.stronghold_held is not None:
            (held if c.stronghold_held else lost)[c.stronghold_of] += 1
    return {"flips": dict(flips.most_common()), "strongholds_held": dict(held), "strongholds_lost": dict(lost)}
