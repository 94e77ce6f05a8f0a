"""Election-wide views: the overview (home page), party scoreboards, the comparison with the previous election."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from sandik.api.deps import cached, service_for
from sandik.api.errors import ApiError
from sandik.live import views

router = APIRouter(tags=["results"])


@router.get("/api/elections/{election_id}/overview", summary="National figures, the leader of every top race (the map), scoreboards, flips")
async def overview(request: Request, election_id: str) -> Response:
    svc = await service_for(request, election_id)
    return await cached(request, svc, "overview", lambda: views.overview(svc.election, svc.tally, svc.previous()) | {"version": svc.version, "updated_at": svc.updated_at})


@router.get("/api/elections/{election_id}/scoreboard", summary="Races won (complete) and leading (counting) per party, per office")
async def scoreboard(request: Request, election_id: str, office: str | None = None) -> Response:
    svc = await service_for(request, election_id)
    return await cached(request, svc, f"scoreboard:{office}", lambda: views.scoreboard_view(svc.election, svc.tally, office))


@router.get("/api/elections/{election_id}/compare", summary="Comparison with the previous election: flips, swing, strongholds")
async def comparison(request: Request, election_id: str, office: str | None = None) -> Response:
    svc = await service_for(request, election_id)
    prev = svc.previous()
    if prev is None:
        raise ApiError(404, "no_previous_election", f"election {svc.election.id} has no previous election in the store")
    pid = svc.election.info.previous_id or ""
    return await cached(request, svc, f"compare:{office}", lambda: views.comparison_view(svc.election, svc.tally, prev, pid, office))
