"""The Server-Sent Events stream of an election."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from sandik.api.deps import broadcaster_for, service_for
from sandik.api.routes.projection import ensure_projections

router = APIRouter(tags=["live"])


@router.get(
    "/api/elections/{election_id}/events",
    summary="Server-Sent Events: the latest coalesced state, one 'state' event per new version (a slow client skips, never queues)",
    response_class=StreamingResponse,
)
async def events(request: Request, election_id: str) -> StreamingResponse:
    svc = await service_for(request, election_id)
    b = broadcaster_for(request, svc)
    ensure_projections(svc, b)  # projections and calls go out on this stream as 'projection' events
    last = request.headers.get("last-event-id")
    last_version = int(last) if last and last.isdigit() else None
    return StreamingResponse(
        b.stream(last_version),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
