"""The area tree, search by name, and the area summary (every race on the ballot there)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from sandik.api.deps import cached, service_for
from sandik.live.search import search_areas, tr_sort_key
from sandik.live import views

router = APIRouter(tags=["areas"])


@router.get("/api/elections/{election_id}/areas", summary="Areas: the tree's top, children of one area, or a search by name")
async def list_areas(
    request: Request,
    election_id: str,
    q: str | None = Query(None, max_length=200, description="Name to search for (Turkish-aware: 'Istanbul', 'İSTANBUL', mojibake 'Ä°stanbul' all match)"),
    parent: str | None = Query(None, description="Only the children of this area"),
    kind: str | None = Query(None, description="Only areas of this kind (province, district, belde, ...)"),
    limit: int = Query(20, ge=1, le=2000),
) -> dict:
    svc = await service_for(request, election_id)
    e = svc.election
    if q is not None:
        hits = search_areas(e, q, kind=kind, limit=limit)
        return {"election_id": e.id, "query": q, "areas": [_area(e, h.area_id) | {"score": h.score} for h in hits]}
    pid = parent or e.root_id
    e.area(pid)
    ids = sorted((c for c in e.children.get(pid, []) if kind is None or e.areas[c].kind == kind), key=lambda c: tr_sort_key(e.areas[c].name))
    return {"election_id": e.id, "parent": _area(e, pid), "areas": [_area(e, c) for c in ids[:limit]], "total": len(ids)}


def _area(e, aid: str) -> dict:
    a = e.areas[aid]
    return {"id": a.id, "kind": a.kind, "name": a.name, "parent_id": a.parent_id, "children": len(e.children.get(aid, []))}


@router.get("/api/elections/{election_id}/areas/{area_id}", summary="An area with its parents, children and every race on the ballot there, with results")
async def area_summary(request: Request, election_id: str, area_id: str) -> Response:
    svc = await service_for(request, election_id)
    svc.election.area(area_id)  # 404 before building anything
    return await cached(request, svc, f"area:{area_id}", lambda: views.area_view(svc.election, svc.tally, area_id))
