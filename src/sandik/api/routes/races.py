"""Races, candidates, results at any level, the boxes of a race, the comparison with the previous election."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from sandik.api.deps import cached, service_for
from sandik.api.errors import ApiError
from sandik.core.results import box_result
from sandik.live import views

router = APIRouter(tags=["races"])


@router.get("/api/elections/{election_id}/races", summary="Races, optionally of one office or inside one area")
async def list_races(request: Request, election_id: str, office: str | None = None, area: str | None = Query(None, description="Races whose own area is this area or lies under it")) -> Response:
    svc = await service_for(request, election_id)
    e = svc.election
    if area:
        e.area(area)

    def build() -> dict:
        rs = e.races_in(area) if area else list(e.races.values())
        return {"election_id": e.id, "races": [{k: v for k, v in views.race_def(e, r).items() if k != "candidates"} for r in rs if office is None or r.office == office]}

    return await cached(request, svc, f"races:{office}:{area}", build)


@router.get("/api/elections/{election_id}/races/{race_id}", summary="A race: office, area, seats, candidates")
async def get_race(request: Request, election_id: str, race_id: str) -> Response:
    svc = await service_for(request, election_id)
    race = svc.election.race(race_id)
    return await cached(request, svc, f"race:{race_id}", lambda: views.race_def(svc.election, race))


@router.get("/api/elections/{election_id}/races/{race_id}/candidates", summary="The candidates of a race")
async def candidates(request: Request, election_id: str, race_id: str) -> dict:
    svc = await service_for(request, election_id)
    race = svc.election.race(race_id)
    return {"election_id": svc.election.id, "race_id": race.id, "candidates": views.race_def(svc.election, race)["candidates"]}


@router.get(
    "/api/elections/{election_id}/races/{race_id}/results",
    summary="Results of a race at its own area or any area below it (or one box), with child areas and the previous election",
)
async def race_results(request: Request, election_id: str, race_id: str, area: str | None = None, box: str | None = None) -> Response:
    svc = await service_for(request, election_id)
    e = svc.election
    e.race(race_id)
    if box is not None:
        if area is not None:
            raise ApiError(422, "invalid_request", "give either area or box, not both")
        b = e.box(box)
        if b not in e.race_box_set[race_id]:
            raise ApiError(404, "not_found", f"box {box!r} does not vote in race {race_id!r}", kind="box", id=box)
        return await cached(request, svc, f"boxres:{race_id}:{box}", lambda: {"election_id": e.id, "result": views.result_dict(box_result(e, svc.tally, race_id, box)) | {"box_id": box}})
    if area is not None:
        e.area(area)
    return await cached(request, svc, f"results:{race_id}:{area}", lambda: views.race_view(e, svc.tally, race_id, area, svc.previous()))


@router.get("/api/elections/{election_id}/races/{race_id}/boxes", summary="The boxes of a race (under an area), with what was counted in each")
async def race_boxes(request: Request, election_id: str, race_id: str, area: str | None = None, offset: int = Query(0, ge=0), limit: int = Query(200, ge=1, le=5000)) -> Response:
    svc = await service_for(request, election_id)
    e = svc.election
    e.race(race_id)
    if area is not None:
        e.area(area)
    return await cached(request, svc, f"boxes:{race_id}:{area}:{offset}:{limit}", lambda: views.boxes_view(e, svc.tally, race_id, area, offset, limit))
