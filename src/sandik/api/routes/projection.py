"""Projections (estimates from partial results, with intervals and P(win)) and race calls.

Projections are computed by the election's ``ProjectionWorker`` (live/projections.py)
on a timer, only for races whose tally changed; these routes serve its cached bytes.
Hand calls and withdrawals are an admin's, with a reason, and audited like every write.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from sandik.api.deps import app_state, etag_matches, read_body, remote_of, require_token, service_for
from sandik.api.errors import ApiError, status_of
from sandik.auth.tokens import Token
from sandik.errors import SandikError
from sandik.live.broadcast import Broadcaster
from sandik.live.projections import Cached, ProjectionWorker, worker_for
from sandik.live.service import LiveService
from sandik.store import race_calls

router = APIRouter(tags=["projections"])


def ensure_projections(svc: LiveService, b: Broadcaster | None = None) -> ProjectionWorker:
    """The election's projection worker (started on first use), publishing to the SSE broadcaster ``b``."""
    w = worker_for(svc)
    if b is not None and not getattr(b, "_sandik_projections", False):
        b._sandik_projections = True  # type: ignore[attr-defined]
        w.listeners.append(lambda ev: b.publish("projection", ev))
    return w


def _respond(request: Request, snap: Cached) -> Response:
    headers = {"ETag": snap.etag, "X-Sandik-Projection-Version": str(snap.version), "Cache-Control": "no-cache"}
    if etag_matches(request, snap.etag):
        return Response(status_code=304, headers=headers)
    return Response(snap.body, media_type="application/json", headers=headers)


def _pending(w: ProjectionWorker) -> ApiError:
    return ApiError(503, "projection_pending", "the first projection pass of this election is still running; try again in a moment", passes=w.passes)


@router.get("/api/elections/{election_id}/projections", summary="Projections of every race with boxes (leader, share and margin with 90% intervals, P(win), call); estimates, not results")
async def all_projections(request: Request, election_id: str) -> Response:
    svc = await service_for(request, election_id)
    w = ensure_projections(svc)
    if not w.outcomes:
        raise _pending(w)
    return _respond(request, w.all_bytes())


@router.get("/api/elections/{election_id}/races/{race_id}/projection", summary="Projection of one race: projected votes and shares with 80/90/95/99% intervals, P(win), margin, the model's call")
async def race_projection(request: Request, election_id: str, race_id: str) -> Response:
    svc = await service_for(request, election_id)
    race = svc.election.race(race_id)
    w = ensure_projections(svc)
    if not len(svc.election.race_boxes[race.id]):
        raise ApiError(404, "not_found", f"race {race_id} has no ballot boxes: nothing to project", kind="projection", id=race_id)
    if race_id not in w.outcomes:
        if w.passes == 0 or race_id not in (w._frames or {}):
            raise _pending(w)
        raise ApiError(404, "not_found", f"race {race_id} has no projection", kind="projection", id=race_id, error=w.errors.get(race_id))
    return _respond(request, w.race_bytes(race_id))


@router.get("/api/elections/{election_id}/calls", summary="Standing race calls (automatic: lock or statistical; or by hand), with how each was made")
async def standing_calls(request: Request, election_id: str) -> dict[str, Any]:
    svc = await service_for(request, election_id)
    ensure_projections(svc)
    cur = await asyncio.to_thread(race_calls.current, svc.store, svc.election.id)
    e = svc.election
    rows = []
    for rid, rec in sorted(cur.items()):
        race = e.races.get(rid)
        cand = race.candidates[race.candidate_index[rec.candidate]] if race and rec.candidate in race.candidate_index else None
        rows.append(rec.to_dict() | {"office": race.office if race else None, "area_id": race.area_id if race else None, "area_name": e.areas[race.area_id].name if race else None, "candidate_name": cand.name if cand else None, "party": cand.party if cand else None})
    return {"election_id": e.id, "calls": rows}


@router.get("/api/elections/{election_id}/calls/history", summary="The call log: every call and withdrawal, oldest first (optionally of one race)")
async def calls_history(request: Request, election_id: str, race: str | None = None) -> dict[str, Any]:
    svc = await service_for(request, election_id)
    if race is not None:
        svc.election.race(race)
    recs = await asyncio.to_thread(race_calls.history, svc.store, svc.election.id, race)
    return {"election_id": svc.election.id, "race_id": race, "history": [r.to_dict() for r in recs]}


class CallRequest(BaseModel):
    action: str = Field(description="'call' or 'withdraw'")
    candidate: str | None = Field(default=None, description="the candidate called as the winner (action 'call')")
    reason: str = Field(min_length=1, max_length=2000, description="why; kept in the call log")


@router.post("/api/elections/{election_id}/races/{race_id}/call", summary="Call a race by hand, or withdraw its standing call, with a reason (admin; audited)", status_code=201)
async def hand_call(request: Request, election_id: str, race_id: str) -> dict[str, Any]:
    st = app_state(request)
    tok: Token | None = None
    eid = election_id
    status = 500
    detail: dict[str, Any] = {"race_id": race_id}
    try:
        tok = await require_token(request, "admin")
        svc = await service_for(request, election_id)
        eid = svc.election.id
        race = svc.election.race(race_id)
        if (request.headers.get("content-type") or "").split(";")[0].strip() != "application/json":
            raise ApiError(415, "unsupported_media_type", "send the call as application/json")
        raw = await read_body(request, 64 * 1024)
        try:
            req = CallRequest.model_validate_json(raw)
        except ValueError as exc:
            raise ApiError(422, "invalid_request", f"invalid call: {exc}".splitlines()[0]) from None
        detail.update(action=req.action, candidate=req.candidate, reason=req.reason)
        if req.action not in ("call", "withdraw"):
            raise ApiError(422, "invalid_request", f"action must be 'call' or 'withdraw', not {req.action!r}")
        if req.action == "call" and req.candidate not in race.candidate_index:
            raise ApiError(422, "invalid_request", f"race {race_id} has no candidate {req.candidate!r}", candidates=list(race.candidate_index))
        if req.action == "withdraw" and req.candidate:
            raise ApiError(422, "invalid_request", "a withdrawal names no candidate")
        cur = await asyncio.to_thread(race_calls.current, svc.store, eid)
        if req.action == "withdraw" and race_id not in cur:
            raise ApiError(409, "conflict", f"race {race_id} has no standing call to withdraw")
        w = ensure_projections(svc)
        seen = w.outcomes.get(race_id)
        # The projection the admin saw is kept with a hand call: what the model said at that moment.
        model = {"projection_seen": {k: seen[k] for k in ("mode", "pct_expected_vote_counted", "leader", "margin_points", "margin_points_interval", "call")}} if seen else {}
        rec = await asyncio.to_thread(
            race_calls.record, svc.store, eid, race_id, action=req.action, candidate=req.candidate, kind="manual", reason=req.reason, actor=tok.name,
            pct_expected_counted=seen["pct_expected_vote_counted"] if seen else None, model=model,
        )  # fmt: skip
        status = 201
        b = st.broadcasters.get(eid)
        if b is not None:
            b.publish("projection", {"projection_version": w.version, "tally_version": w.tally_version, "races": [race_id], "races_truncated": False, "calls": [rec.to_dict()]})
        return {"election_id": eid, "call": rec.to_dict()}
    except SandikError as exc:
        status = status_of(exc)
        detail["error"] = exc.to_dict()
        raise
    finally:
        await asyncio.to_thread(st.tokens.audit, token=tok, actor="anonymous" if tok is None else tok.name, action="calls.record", election_id=eid, remote=remote_of(request), status=status, detail=detail)
