"""From an Election, its LiveTally and the previous election to projections and calls.

    frames = build_frames(election, previous)            # once per night
    outcomes = project_election(election, tally, previous, frames=frames)
    outcomes["tr.34:metropolitan_mayor"].to_dict()       # projection + call, JSON-ready

The baseline of a ballot box is the previous election's result at the most
specific place that holds the box and had a race then (the box's district or
belde race), shared to the box by registered voters: box numbers are not stable
between elections, and the previous election may be known only in aggregate.
A race whose boxes have no such place gets no baseline (mode "no_baseline":
wider intervals, no statistical call), and says so.

Units are grouped by the area just below the race (a metropolitan race's
districts). When a race has a single such area (a district race whose boxes
hang off the district), boxes are grouped into runs of ten consecutive box
numbers: box numbers follow the voter list street by street, so neighbouring
numbers are neighbours.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from sandik.core.model import Election, Race
from sandik.core.projection.baseline import candidate_map
from sandik.core.projection.calls import CallRule
from sandik.core.projection.frame import RaceFrame, RaceState, max_voters, size_strata
from sandik.core.projection.model import ModelParams
from sandik.core.projection.pool import RaceOutcome, project_many
from sandik.core.projection.seats import Threshold, seat_intervals
from sandik.core.tally import I_OPENED, I_VALID, NB, LiveTally

DEFAULT_TURNOUT = 0.80
BLOCK = 10  # boxes per pseudo-group when a race has one area below it ...
MAX_PSEUDO_GROUPS = 12  # ... but no more groups than this (the bootstrap costs O(groups))


def _prev_race_by_area(previous: Election) -> dict[str, Race]:
    """Previous races with an aggregate result, by area id (the most local office wins on ties: fewest registered)."""
    out: dict[str, Race] = {}
    for rid, r in previous.races.items():
        t = previous.aggregate_results.get(rid)
        if t is None:
            continue
        cur = out.get(r.area_id)
        if cur is None or previous.aggregate_results[cur.id].registered > t.registered:
            out[r.area_id] = r
    return out


def build_frames(election: Election, previous: Election | None, *, alliances: Iterable[Iterable[str]] = (), races: Iterable[str] | None = None) -> dict[str, RaceFrame]:
    alliances = [tuple(a) for a in alliances]
    prev_by_area = _prev_race_by_area(previous) if previous is not None else {}
    # Baseline vector per previous race, keyed by party (or candidate id for independents).
    base_cache: dict[str, tuple[dict[str, float], float, float]] = {}

    def base_of(area_id: str) -> tuple[dict[str, float], float, float] | None:
        cur: str | None = area_id
        while cur is not None:
            r = prev_by_area.get(cur)
            if r is not None:
                if r.id not in base_cache:
                    t = previous.aggregate_results[r.id]  # type: ignore[union-attr]
                    votes: dict[str, float] = {}
                    for c, v in zip(r.candidates, t.votes):
                        key = c.party or c.id
                        votes[key] = votes.get(key, 0.0) + v
                    base_cache[r.id] = (votes, float(t.valid), float(t.registered))
                return base_cache[r.id]
            cur = election.areas[cur].parent_id if cur in election.areas else None
        return None

    frames: dict[str, RaceFrame] = {}
    for rid in races if races is not None else election.races:
        race = election.races[rid]
        idx = election.race_boxes[rid]
        if not len(idx) or not race.candidates:
            continue  # nothing to project: an aggregate-only race, or a race without candidates
        keys = [c.party or c.id for c in race.candidates]
        n, K = len(idx), len(keys)
        box_areas = [election.box_area_ids[b] for b in idx.tolist()]
        base = np.zeros((n, K))
        has = np.zeros(n, dtype=bool)
        turnout = np.full(n, np.nan)
        maps: dict[int, np.ndarray] = {}
        by_area: dict[str, tuple[np.ndarray, float, bool]] = {}
        for j, a in enumerate(box_areas):
            hit = by_area.get(a)
            if hit is None:
                b = base_of(a)
                if b is None:
                    hit = (np.zeros(K), np.nan, False)
                else:
                    votes, valid, reg = b
                    cols = list(votes)
                    M = maps.setdefault(id(votes), candidate_map(keys, cols, alliances))
                    vec = np.array([votes[c] for c in cols]) @ M / max(valid, 1.0)
                    hit = (vec, valid / max(reg, 1.0), True)
                by_area[a] = hit
            base[j], turnout[j], has[j] = hit
        notes: list[str] = []
        if not has.any():
            notes.append("no previous result for this race's area")
        missing = [c.id for k, c in enumerate(race.candidates) if has.any() and base[has, k].max() == 0]
        if missing:
            notes.append(f"candidates without a previous party result: {', '.join(missing)}")
        mean_t = float(np.nanmean(turnout)) if has.any() else DEFAULT_TURNOUT
        turnout = np.where(np.isnan(turnout), mean_t, turnout)
        reg = election.box_registered[idx]
        groups = _groups(election, race, idx, box_areas)
        gids = sorted(set(groups))
        gi = {g: i for i, g in enumerate(gids)}
        frames[rid] = RaceFrame(
            race_id=rid,
            candidate_ids=tuple(c.id for c in race.candidates),
            candidate_parties=tuple(c.party for c in race.candidates),
            registered=reg,
            expected=reg * np.clip(turnout, 0.2, 1.0),
            cap=max_voters(reg),
            base_share=base,
            has_base=has,
            group=np.array([gi[g] for g in groups], dtype=np.int64),
            group_ids=tuple(gids),
            stratum=size_strata(reg),
            unit_ids=tuple(election.box_ids[b] for b in idx.tolist()),
            notes=tuple(notes),
        )
    return frames


def _groups(election: Election, race: Race, idx: np.ndarray, box_areas: list[str]) -> list[str]:
    below = []
    for a in box_areas:
        chain = a
        cur: str | None = a
        while cur is not None and cur != race.area_id:
            chain = cur
            cur = election.areas[cur].parent_id
        below.append(chain)
    if len(set(below)) > 1:
        return below
    # One area below the race: runs of consecutive box numbers.
    nums = [election.box_numbers[b] for b in idx.tolist()]
    order = sorted(range(len(nums)), key=lambda j: (box_areas[j], len(nums[j]), nums[j]))
    block = max(BLOCK, -(-len(nums) // MAX_PSEUDO_GROUPS))
    out = [""] * len(nums)
    for rank, j in enumerate(order):
        out[j] = f"{box_areas[j]}#{rank // block}"
    return out


def race_state(frame: RaceFrame, tally: LiveTally) -> RaceState:
    """The counted boxes of a race, straight from the live tally's box vectors."""
    rt = tally.races[frame.race_id]
    vals = rt.box_vals
    return RaceState(vals[:, I_OPENED] > 0, vals[:, NB:], vals[:, I_VALID])


def project_election(
    election: Election,
    tally: LiveTally,
    previous: Election | None,
    *,
    frames: dict[str, RaceFrame] | None = None,
    params: ModelParams | None = None,
    rule: CallRule | None = None,
    races: list[str] | None = None,
    alliances: Iterable[Iterable[str]] = (),
    council_threshold: Threshold | float | None = None,
) -> dict[str, RaceOutcome]:
    """Projection and call of every race with ballot boxes (or of ``races``), from the live tally.

    Races with more than one seat (councils) also get a seat projection: D'Hondt
    with ``council_threshold`` (a share of valid votes, or any function of the
    vote vector) applied to every projection draw. A single-winner call is not
    meaningful for them; their ``call`` is left as the model made it.
    """
    if frames is None:
        frames = build_frames(election, previous, alliances=alliances)
    states = {rid: race_state(fr, tally) for rid, fr in frames.items()}
    region_of = {rid: ".".join(election.races[rid].area_id.split(".")[:2]) for rid in frames}
    todo = [r for r in races if r in frames] if races is not None else None
    out = project_many(frames, states, params=params, rule=rule, region_of=region_of, races=todo)
    for rid, oc in out.items():
        seats = election.races[rid].seats
        if seats > 1 and oc.projection.draws is not None:
            oc.seats = seat_intervals(oc.projection.draws, seats, council_threshold)
    return out
