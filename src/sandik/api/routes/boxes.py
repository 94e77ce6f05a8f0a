"""A ballot box: where it is, the races it votes in, and every sheet from every source in every version."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from sandik.api.deps import service_for

router = APIRouter(tags=["boxes"])


@router.get("/api/elections/{election_id}/boxes/{box_id}", summary="A box with every stored sheet version, from every source (official and observers)")
async def get_box(request: Request, election_id: str, box_id: str, race: str | None = None) -> dict:
    svc = await service_for(request, election_id)
    e = svc.election
    b = e.box(box_id)
    if race is not None:
        e.race(race)
    versions = await run_in_threadpool(svc.store.history, e.id, box_id, race)
    cands = {rid: [c.id for c in e.races[rid].candidates] for rid in e.box_races[b]}
    sheets = []
    for v in versions:
        d = v.to_dict()
        ids = cands.get(v.race_id) or [c.id for c in e.races[v.race_id].candidates]
        d["votes"] = dict(zip(ids, v.votes))
        d["counted"] = False
        sheets.append(d)
    # The counted version of each race is the latest official one.
    latest: dict[str, dict] = {}
    for d in sheets:
        if d["source"] == "official":
            latest[d["race_id"]] = d
    for d in latest.values():
        d["counted"] = True
    area = e.box_area_ids[b]
    return {
        "election_id": e.id,
        "box": {"id": box_id, "number": e.box_numbers[b], "area_id": area, "area_name": e.areas[area].name, "registered": int(e.box_registered[b])},
        "parents": [{"id": a, "name": e.areas[a].name, "kind": e.areas[a].kind} for a in reversed(e.ancestors(area))],
        "races": [{"id": rid, "name": e.races[rid].name, "office": e.races[rid].office, "candidates": ids} for rid, ids in cands.items()],
        "sheets": sheets,
    }
