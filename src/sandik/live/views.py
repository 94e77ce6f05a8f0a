"""What the API and the website show, as plain JSON-ready dicts.

Pure functions of an election, its live tally and (for swing) the previous
election's final results: no I/O, no clock. The live service calls them under
its lock and caches their serialisation per version.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from sandik.core.model import Election, Race
from sandik.core.results import INDEPENDENT_KEY, RaceResult, compare, flips_summary, race_result, scoreboards
from sandik.core.tally import I_OPENED, I_VALID, NB, LiveTally
from sandik.errors import NotFound
from sandik.live.search import tr_sort_key


def _r(x: float | None, nd: int = 6) -> float | None:
    return None if x is None else round(float(x), nd)


def result_dict(r: RaceResult, *, candidates: int | None = None) -> dict[str, Any]:
    """A race result at one area: every figure a results page shows."""
    cands = r.candidates if candidates is None else r.candidates[:candidates]
    return {
        "race_id": r.race_id,
        "race_name": r.race_name,
        "office": r.office,
        "area_id": r.area_id,
        "area_name": r.area_name,
        "status": r.status,
        "boxes_opened": r.boxes_opened,
        "boxes_total": r.boxes_total,
        "boxes_opened_share": _r(r.boxes_opened_share),
        "registered": r.registered_total,
        "registered_opened": r.registered_opened,
        "expected_vote_share": _r(r.expected_vote_share),
        "votes_cast": r.total_voters,
        "ballots_used": r.ballots_used,
        "valid": r.valid,
        "invalid": r.invalid,
        "voted_by_law": r.voted_by_law,
        "turnout": _r(r.turnout),
        "invalid_rate": _r(r.invalid_rate),
        "leader": r.leader,
        "leader_party": r.leader_party,
        "runner_up": r.runner_up,
        "tied": r.tied,
        "margin_votes": r.margin_votes,
        "margin_points": _r(r.margin_points, 3),
        "candidates": [{"id": c.id, "name": c.name, "party": c.party, "votes": c.votes, "share": _r(c.share)} for c in cands],
    }


def results_at(e: Election, tally: LiveTally) -> dict[str, RaceResult]:
    """Every race at its own area (live), like core.results.final_results but only for races with boxes."""
    out = {}
    for rid in e.races:
        if len(e.race_boxes[rid]):
            out[rid] = race_result(e, tally, rid)
    return out


def race_view(e: Election, tally: LiveTally, race_id: str, area_id: str | None, previous: dict[str, RaceResult] | None) -> dict[str, Any]:
    """A race at one of its areas, with the result in each child area and the previous election beside it."""
    race = e.race(race_id)
    rt = tally.races[race.id]
    aid = area_id or race.area_id
    if aid not in rt.row_of:
        e.area(aid)
        raise NotFound("area of race", f"{aid} (race {race_id} has no boxes there)", election_id=e.id)
    res = race_result(e, tally, race_id, aid)
    children = [race_result(e, tally, race_id, c) for c in sorted(e.children.get(aid, []), key=lambda c: tr_sort_key(e.areas[c].name)) if c in rt.row_of]
    out: dict[str, Any] = {
        "election_id": e.id,
        "race": race_def(e, race),
        "result": result_dict(res),
        "children": [result_dict(c, candidates=3) for c in children],
        "parents": [{"id": a, "name": e.areas[a].name, "kind": e.areas[a].kind} for a in reversed(e.ancestors(aid)[1:])],
        "previous": None,
        "comparison": None,
    }
    if previous is not None and aid == race.area_id and race_id in previous:
        prev = previous[race_id]
        out["previous"] = result_dict(prev)
        comp = compare({race_id: res}, {race_id: prev})
        out["comparison"] = comp[0].to_dict() if comp else None
    return out


def race_def(e: Election, race: Race) -> dict[str, Any]:
    return {
        "id": race.id,
        "office": race.office,
        "name": race.name,
        "area_id": race.area_id,
        "area_name": e.areas[race.area_id].name,
        "seats": race.seats,
        "boxes": int(len(e.race_boxes[race.id])),
        "candidates": [{"id": c.id, "name": c.label(e.parties), "party": c.party} for c in race.candidates],
    }


def area_view(e: Election, tally: LiveTally, area_id: str) -> dict[str, Any]:
    """An area, its place in the tree, and every race on the ballot there at the most local level counted."""
    a = e.area(area_id)
    races = []
    for race in e.races_on_ballot(area_id):
        rt = tally.races[race.id]
        if not len(e.race_boxes[race.id]):
            continue
        at = area_id if area_id in rt.row_of else race.area_id
        races.append(result_dict(race_result(e, tally, race.id, at), candidates=3) | {"race_area_id": race.area_id})
    return {
        "election_id": e.id,
        "main_race_id": main_race(e, area_id),
        "area": {"id": a.id, "kind": a.kind, "name": a.name, "parent_id": a.parent_id},
        "parents": [{"id": p, "name": e.areas[p].name, "kind": e.areas[p].kind} for p in reversed(e.ancestors(area_id)[1:])],
        "children": [{"id": c, "name": e.areas[c].name, "kind": e.areas[c].kind} for c in sorted(e.children.get(area_id, []), key=lambda c: tr_sort_key(e.areas[c].name))],
        "races": races,
    }


def main_race(e: Election, area_id: str) -> str | None:
    """The race a page about this area leads with: its own race (a top office first), else a top race below it.

    A Turkish non-metropolitan province's mayor race sits on its central district
    ("tr.02.merkez"), so the province page leads with that one.
    """
    top = e.info.top_offices
    own = [r for r in e.races.values() if r.area_id == area_id and len(e.race_boxes[r.id])]
    own.sort(key=lambda r: (r.office not in top, r.id))
    if own:
        return own[0].id
    below = [r for r in e.races_in(area_id) if r.office in top and len(e.race_boxes[r.id])]
    return sorted(below, key=lambda r: r.id)[0].id if below else None


def top_area_of(e: Election, area_id: str) -> str:
    """The ancestor of the election's top-area kind (the province), or the area itself."""
    for a in e.ancestors(area_id):
        if e.areas[a].kind == e.info.top_area_kind:
            return a
    return area_id


def party_totals(e: Election, results: dict[str, RaceResult], offices: tuple[str, ...]) -> list[dict[str, Any]]:
    """Votes per party summed over the races of some offices (the national figure of a local election)."""
    votes: dict[str, int] = defaultdict(int)
    valid = 0
    for r in results.values():
        if r.office not in offices:
            continue
        valid += r.valid
        for c in r.candidates:
            votes[c.party or INDEPENDENT_KEY] += c.votes
    lines = sorted(votes.items(), key=lambda kv: (-kv[1], kv[0]))
    return [{"party": p, "votes": v, "share": _r(v / valid) if valid else 0.0} for p, v in lines]


@dataclass(frozen=True)
class LeaderLine:
    """What a scoreboard needs of a race (office, leading party, status), without building its full result."""

    race_id: str
    office: str
    leader_party: str | None
    status: str


def leader_lines(e: Election, tally: LiveTally) -> dict[str, LeaderLine]:
    """Leader and status of every race with boxes, straight from the tally rows (same rules as core.results)."""
    out = {}
    for rid, race in e.races.items():
        if not len(e.race_boxes[rid]):
            continue
        rt = tally.races[rid]
        r = rt.row_of[race.area_id]
        row = rt.agg[r]
        votes = row[NB:]
        opened = int(row[I_OPENED])
        status = "not_started" if opened == 0 else ("complete" if opened >= int(rt.boxes_total[r]) else "counting")
        party = None
        if len(votes):
            i = int(np.argmax(votes))  # first index among the highest, as the stable sort in core.results
            first = int(votes[i])
            tied = len(votes) > 1 and first > 0 and int(np.sort(votes)[-2]) == first
            if first > 0 and not tied:
                party = race.candidates[i].party or INDEPENDENT_KEY
        out[rid] = LeaderLine(rid, race.office, party, status)
    return out


def overview(e: Election, tally: LiveTally, previous: dict[str, RaceResult] | None) -> dict[str, Any]:
    """The home page: national figures, the map (one top race per top area), scoreboards, flips."""
    top_offices = e.info.top_offices or tuple(sorted({r.office for r in e.races.values()}))
    # Full results only for the top races (the map); every other race only as a scoreboard line.
    results = {rid: race_result(e, tally, rid) for rid, r in e.races.items() if r.office in top_offices and len(e.race_boxes[rid])}
    top = list(results.values())
    opened = sum(r.boxes_opened for r in top)
    boxes = sum(r.boxes_total for r in top)
    registered = sum(r.registered_total for r in top)
    reg_open = sum(r.registered_opened for r in top)
    cast = sum(r.total_voters for r in top)
    areas = []
    for r in sorted(top, key=lambda r: top_area_of(e, r.area_id)):
        lead = next((c for c in r.candidates if c.id == r.leader), None)
        prev = previous.get(r.race_id) if previous else None
        areas.append(
            {
                "area_id": top_area_of(e, r.area_id),  # the map's key: the province, even when the race sits on its centre
                "area_name": e.areas[top_area_of(e, r.area_id)].name,
                "race_area_id": r.area_id,
                "race_id": r.race_id,
                "office": r.office,
                "status": r.status,
                "boxes_opened_share": _r(r.boxes_opened_share, 4),
                "leader_party": r.leader_party,
                "leader_name": lead.name if lead else None,
                "leader_share": _r(lead.share, 4) if lead else None,
                "margin_points": _r(r.margin_points, 2),
                "previous_winner": prev.leader_party if prev else None,
            }
        )
    comps = compare({r.race_id: r for r in top}, {k: v for k, v in (previous or {}).items()}) if previous else []
    return {
        "election": election_info(e),
        "boxes_opened": opened,
        "boxes_total": boxes,
        "boxes_opened_share": _r(opened / boxes) if boxes else 0.0,
        "registered": registered,
        "expected_vote_share": _r(reg_open / registered) if registered else 0.0,
        "votes_cast": cast,
        "turnout": _r(cast / reg_open) if reg_open else None,
        "top_offices": list(top_offices),
        "party_votes": party_totals(e, results, top_offices),
        "areas": areas,
        "scoreboards": [b.to_dict() for b in scoreboards(e, leader_lines(e, tally))],  # type: ignore[arg-type]
        "flips": flips_summary([c for c in comps if c.status_now != "not_started"]) if previous else None,
    }


def election_info(e: Election) -> dict[str, Any]:
    return {
        "id": e.id,
        "name": e.info.name,
        "date": e.info.date.isoformat(),
        "country": e.info.country,
        "previous_id": e.info.previous_id,
        "top_offices": list(e.info.top_offices),
        "top_area_kind": e.info.top_area_kind,
        "notes": e.info.notes,
        "races": len(e.races),
        "boxes": len(e.box_ids),
        "areas": len(e.areas),
        "parties": parties_list(e),
    }


def parties_list(e: Election) -> list[dict[str, Any]]:
    return [{"code": p.code, "name": p.name, "short_name": p.short_name, "colour": p.colour} for p in e.parties.values()]


def scoreboard_view(e: Election, tally: LiveTally, office: str | None) -> dict[str, Any]:
    boards = [b.to_dict() for b in scoreboards(e, leader_lines(e, tally))]  # type: ignore[arg-type]
    if office:
        boards = [b for b in boards if b["group"] == office]
        if not boards:
            raise NotFound("office", office, election_id=e.id)
    return {"election_id": e.id, "scoreboards": boards}


def comparison_view(e: Election, tally: LiveTally, previous: dict[str, RaceResult], previous_id: str, office: str | None) -> dict[str, Any]:
    now = results_at(e, tally)
    if office:
        now = {k: v for k, v in now.items() if v.office == office}
    comps = compare(now, previous)
    return {"election_id": e.id, "previous_id": previous_id, "summary": flips_summary(comps), "races": [c.to_dict() for c in comps]}


def boxes_view(e: Election, tally: LiveTally, race_id: str, area_id: str | None, offset: int, limit: int) -> dict[str, Any]:
    """The boxes of a race under an area, with the figures counted for each (official, latest version)."""
    race = e.race(race_id)
    rt = tally.races[race.id]
    aid = area_id or race.area_id
    if aid not in rt.row_of:
        e.area(aid)
        raise NotFound("area of race", f"{aid} (race {race_id} has no boxes there)", election_id=e.id)
    prefix = aid + "."
    locs = [j for j, b in enumerate(rt.box_global.tolist()) if (e.box_area_ids[b] == aid or e.box_area_ids[b].startswith(prefix))]
    page = locs[offset : offset + limit]
    rows = []
    for j in page:
        b = int(rt.box_global[j])
        v = rt.box_vals[j]
        opened = bool(v[I_OPENED])
        votes = v[NB:]
        lead = int(np.argmax(votes)) if opened and votes.sum() else None
        rows.append(
            {
                "box_id": e.box_ids[b],
                "number": e.box_numbers[b],
                "area_id": e.box_area_ids[b],
                "area_name": e.areas[e.box_area_ids[b]].name,
                "registered": int(e.box_registered[b]),
                "opened": opened,
                "valid": int(v[I_VALID]) if opened else None,
                "leader": race.candidates[lead].id if lead is not None else None,
                "leader_party": (race.candidates[lead].party or INDEPENDENT_KEY) if lead is not None else None,
                "votes": [int(x) for x in votes] if opened else None,
            }
        )
    return {"election_id": e.id, "race_id": race_id, "area_id": aid, "total": len(locs), "offset": offset, "limit": limit, "candidates": [c.id for c in race.candidates], "boxes": rows}
