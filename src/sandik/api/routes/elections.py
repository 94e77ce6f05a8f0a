"""Elections, parties, the version counter and "what changed since v"."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from sandik.api.deps import app_state, cached, service_for
from sandik.live import views
from sandik.live.service import dumps

router = APIRouter(tags=["elections"])


@router.get("/api/elections", summary="Every election in the store")
async def list_elections(request: Request) -> Response:
    st = app_state(request)

    def build() -> bytes:
        out = []
        for eid in st.store.election_ids():
            e = st.store.election(eid)
            out.append({k: v for k, v in views.election_info(e).items() if k != "parties"} | {"live": bool(len(e.box_ids)), "default": eid == st.default_election_id()})
        return dumps({"elections": out})

    return Response(await run_in_threadpool(build), media_type="application/json")


@router.get("/api/elections/{election_id}", summary="An election: name, date, previous election, counts, parties")
async def get_election(request: Request, election_id: str) -> Response:
    svc = await service_for(request, election_id)
    return await cached(request, svc, "election", lambda: views.election_info(svc.election) | {"version": svc.version, "updated_at": svc.updated_at})


@router.get("/api/elections/{election_id}/parties", summary="Parties with names and colours")
async def parties(request: Request, election_id: str) -> Response:
    svc = await service_for(request, election_id)
    return await cached(request, svc, "parties", lambda: {"election_id": svc.election.id, "parties": views.parties_list(svc.election)})


@router.get("/api/elections/{election_id}/version", summary="The election's current version (grows with every stored sheet version)")
async def version(request: Request, election_id: str) -> dict:
    svc = await service_for(request, election_id)
    return {"election_id": svc.election.id, "version": svc.version, "updated_at": svc.updated_at}


@router.get("/api/elections/{election_id}/changes", summary="Races and areas changed after a version (for clients that poll)")
async def changes(request: Request, election_id: str, since: int = Query(..., ge=0, description="The version the client has")) -> dict:
    svc = await service_for(request, election_id)
    return {"election_id": svc.election.id} | svc.changes(since)
