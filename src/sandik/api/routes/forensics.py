"""Observers and forensics: discrepancies between official sheets and observers' copies, their workflow,
observers' entries, forensic flags, the turnout x winner-share fingerprint and the parallel vote tabulation.

Every figure here says what it is: a discrepancy is two copies of one sheet that
differ; a forensic flag is a sheet unusual enough to look at again, not an accusation.
The slow views are cached per version of the election (live/analytics.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from sandik.api.deps import app_state, etag_matches, read_body, remote_of, require_token, service_for
from sandik.api.errors import ApiError, status_of
from sandik.auth.tokens import Token
from sandik.core.discrepancy import ObserverError
from sandik.core.forensics.boxchecks import NOT_AN_ACCUSATION, TIER_RANK
from sandik.core.sheet import TallySheet
from sandik.errors import SandikError
from sandik.formats.sheet_files import read_sheets
from sandik.live.analytics import Entry, cache_for
from sandik.live.service import LiveService
from sandik.observers import forensics_store, service

router = APIRouter(tags=["observers and forensics"])

FINGERPRINT_MAX_AGE = 60.0  # seconds: the integer test takes seconds, so the picture is redrawn at most this often
FORENSICS_MAX_AGE = 5.0
MAX_ENTRIES = 500  # sheets per observer request
CONFIRM_K = 3  # identical entries by different volunteers that confirm an observer's copy (observers/service.py)
JSON = {"application/json": "json", "application/x-ndjson": "ndjson", "application/ndjson": "ndjson", "text/csv": "csv"}


def _respond(request: Request, ent: Entry, media_type: str = "application/json", extra: dict[str, str] | None = None) -> Response:
    headers = {"ETag": ent.etag, "Cache-Control": "no-cache", **(extra or {})}
    if etag_matches(request, ent.etag):
        return Response(status_code=304, headers=headers)
    return Response(ent.body, media_type=media_type, headers=headers)


def _stamp(svc: LiveService) -> tuple[int, int]:
    return (svc.version, cache_for(svc).generation)


async def _get(svc: LiveService, key: str, build: Any, *, max_age: float = 0.0, raw: bool = False) -> Entry:
    return await asyncio.to_thread(cache_for(svc).get, key, _stamp(svc), build, max_age=max_age, raw=raw)


SYNC_MAX_AGE = 10.0  # seconds: comparing every sheet with its copies reads the whole log; new official versions wait this long at most


async def _synced(svc: LiveService, *, now: bool = False) -> None:
    """Bring the discrepancy table up to date with the sheets: at most every SYNC_MAX_AGE s as official
    sheets arrive, at once after observers' entries or a transition (``now``, called before the bump)."""
    c = cache_for(svc)
    if now:
        await asyncio.to_thread(service.sync_discrepancies, svc.store, svc.election.id)
        return
    await asyncio.to_thread(c.get, "sync", _stamp(svc), lambda: service.sync_discrepancies(svc.store, svc.election.id), max_age=SYNC_MAX_AGE)


# --- discrepancies ------------------------------------------------------------------
@router.get("/api/elections/{election_id}/discrepancies", summary="Discrepancies between official sheets and observers' confirmed copies, largest effect on the margin first")
async def discrepancies(
    request: Request,
    election_id: str,
    status: str | None = Query(None, description=f"one of {', '.join(service.STATUSES)}"),
    org: str | None = None,
    race: str | None = None,
    kind: str | None = None,
    all: bool = Query(False, description="also dismissed and header-only ones"),
    limit: int = Query(200, ge=1, le=10_000),
) -> Response:
    svc = await service_for(request, election_id)
    if status is not None and status not in service.STATUSES:
        raise ApiError(422, "invalid_request", f"status must be one of {', '.join(service.STATUSES)}, not {status!r}")
    if race is not None:
        svc.election.race(race)
    await _synced(svc)
    e = svc.election

    def build() -> dict[str, Any]:
        rows = service.discrepancy_list(svc.store, e.id, status=status, org=org, race_id=race, kind=kind, real_only=not all)
        for r in rows:
            b = e.box_index.get(r["box_id"])
            r["area_id"] = e.box_area_ids[b] if b is not None else None
            r["area_name"] = e.areas[r["area_id"]].name if r["area_id"] else None
            r["box_number"] = e.box_numbers[b] if b is not None else None
        return {"election_id": e.id, "total": len(rows), "discrepancies": rows[:limit], "impacts": service.race_impacts(svc.store, e.id)}

    return _respond(request, await _get(svc, f"disc:{status}:{org}:{race}:{kind}:{all}:{limit}", build))


@router.get("/api/elections/{election_id}/discrepancies.csv", summary="The discrepancies as CSV (same filters)")
async def discrepancies_csv(request: Request, election_id: str, status: str | None = None, org: str | None = None, race: str | None = None, kind: str | None = None, all: bool = False) -> Response:
    svc = await service_for(request, election_id)
    if status is not None and status not in service.STATUSES:
        raise ApiError(422, "invalid_request", f"status must be one of {', '.join(service.STATUSES)}, not {status!r}")
    await _synced(svc)
    rows = await asyncio.to_thread(service.discrepancy_list, svc.store, svc.election.id, status=status, org=org, race_id=race, kind=kind, real_only=not all)
    return Response(service.export_csv(rows), media_type="text/csv; charset=utf-8", headers={"Content-Disposition": f'attachment; filename="{svc.election.id}-discrepancies.csv"'})


async def _one(svc: LiveService, discrepancy_id: int) -> dict[str, Any]:
    d = await asyncio.to_thread(service.discrepancy, svc.store, discrepancy_id)
    if d["election_id"] != svc.election.id:
        raise ApiError(404, "not_found", f"discrepancy {discrepancy_id} is not of election {svc.election.id}", kind="discrepancy", id=str(discrepancy_id))
    return d


@router.get("/api/elections/{election_id}/discrepancies/{discrepancy_id}", summary="One discrepancy: both copies' differing fields, its effect on the margin, its history")
async def one_discrepancy(request: Request, election_id: str, discrepancy_id: int) -> dict[str, Any]:
    svc = await service_for(request, election_id)
    await _synced(svc)
    return {"election_id": svc.election.id, "discrepancy": await _one(svc, discrepancy_id), "transitions": service.TRANSITIONS}


class TransitionRequest(BaseModel):
    to: str = Field(description=f"one of {', '.join(service.STATUSES)}")
    reason: str = Field(default="", max_length=2000, description="required to resolve or dismiss")
    corrected_version: int | None = Field(default=None, description="resolving: the official sheet version that corrected it")


@router.post("/api/elections/{election_id}/discrepancies/{discrepancy_id}/transition", summary="Move a discrepancy through its workflow (admin; reason to resolve or dismiss; audited)")
async def transition(request: Request, election_id: str, discrepancy_id: int) -> dict[str, Any]:
    st = app_state(request)
    tok: Token | None = None
    eid = election_id
    status = 500
    detail: dict[str, Any] = {"discrepancy_id": discrepancy_id}
    try:
        tok = await require_token(request, "admin")
        svc = await service_for(request, election_id)
        eid = svc.election.id
        if (request.headers.get("content-type") or "").split(";")[0].strip() != "application/json":
            raise ApiError(415, "unsupported_media_type", "send the transition as application/json")
        try:
            req = TransitionRequest.model_validate_json(await read_body(request, 64 * 1024))
        except ValueError as exc:
            raise ApiError(422, "invalid_request", f"invalid transition: {exc}".splitlines()[0]) from None
        detail.update(to=req.to, reason=req.reason, corrected_version=req.corrected_version)
        await _one(svc, discrepancy_id)
        try:
            d = await asyncio.to_thread(service.transition, svc.store, discrepancy_id, req.to, by=tok.name, reason=req.reason, corrected_version=req.corrected_version)
        except ObserverError as exc:
            raise ApiError(409 if "can move to" in str(exc) else 422, "bad_transition", str(exc)) from None
        cache_for(svc).bump()
        status = 200
        return {"election_id": eid, "discrepancy": d}
    except SandikError as exc:
        status = status_of(exc)
        detail["error"] = exc.to_dict()
        raise
    finally:
        await asyncio.to_thread(st.tokens.audit, token=tok, actor="anonymous" if tok is None else tok.name, action="discrepancies.transition", election_id=eid, remote=remote_of(request), status=status, detail=detail)


# --- observers' entries ---------------------------------------------------------------
@router.post("/api/elections/{election_id}/observer-entries", summary=f"Observers' typed copies of sheets, for their own organisation; {CONFIRM_K} identical entries by different volunteers confirm a copy (observer token; audited)")
async def observer_entries(request: Request, election_id: str) -> dict[str, Any]:
    st = app_state(request)
    tok: Token | None = None
    eid = election_id
    status = 500
    detail: dict[str, Any] = {"content_type": request.headers.get("content-type")}
    try:
        tok = await require_token(request, "observer")
        svc = await service_for(request, election_id)
        eid = svc.election.id
        if tok.election_id and tok.election_id != eid:
            raise ApiError(403, "forbidden", f"this token is for election {tok.election_id}, not {eid}")
        org = tok.source  # an observer writes for its own organisation only, whatever the sheets say
        fmt = JSON.get((request.headers.get("content-type") or "").split(";")[0].strip().lower())
        if fmt is None:
            raise ApiError(415, "unsupported_media_type", "send entries as application/json, application/x-ndjson or text/csv")
        body = await read_body(request, st.settings.max_body_bytes)
        items = [it for it in read_sheets(body, name="api", fmt=fmt, default_source=org)] if body.strip() else []
        if not items:
            raise ApiError(400, "empty_body", "the request has no entries")
        if len(items) > MAX_ENTRIES:
            raise ApiError(413, "batch_too_large", f"{len(items):,} entries in one request; the limit is {MAX_ENTRIES:,}")
        bad = [it for it in items if not isinstance(it, TallySheet)]
        if bad:
            raise ApiError(400, "bad_request", f"{len(bad)} entr{'y' if len(bad) == 1 else 'ies'} could not be read", rows=[getattr(b, "to_dict", lambda: str(b))() for b in bad[:10]])
        other = sorted({it.source for it in items if it.source not in (org, "official")})  # type: ignore[union-attr]
        if other:
            raise ApiError(403, "forbidden", f"an observer of {org!r} cannot enter copies for {', '.join(other)}", org=org)
        detail.update(org=org, entries=len(items))
        # Confirmed copies go through the live writer, like every other write of this process.
        rep = await asyncio.to_thread(service.add_entries, svc.store, eid, org, tok.name, items, k=CONFIRM_K, ingest=lambda xs, origin, by: svc.submit_sync(xs, origin=origin, submitted_by=by))  # type: ignore[arg-type]
        if rep.ingested:
            await _synced(svc, now=True)
        cache_for(svc).bump()
        detail["report"] = {k: v for k, v in rep.to_dict().items() if k != "confirmations"}
        status = 200
        return {"election_id": eid, "org": org, "report": rep.to_dict()}
    except SandikError as exc:
        status = status_of(exc)
        detail["error"] = exc.to_dict()
        raise
    finally:
        await asyncio.to_thread(st.tokens.audit, token=tok, actor="anonymous" if tok is None else tok.name, action="observers.entries", election_id=eid, remote=remote_of(request), status=status, detail=detail)


@router.get("/api/elections/{election_id}/boxes/{box_id}/observers", summary="One box: the official sheet and each organisation's copy side by side, differing fields marked")
async def box_copies(request: Request, election_id: str, box_id: str) -> Response:
    svc = await service_for(request, election_id)
    e = svc.election
    b = e.box(box_id)
    await _synced(svc)

    def build() -> dict[str, Any]:
        d = service.box_sheets(svc.store, e.id, box_id)
        d["box"] = {"id": box_id, "number": e.box_numbers[b], "area_id": e.box_area_ids[b], "area_name": e.areas[e.box_area_ids[b]].name, "registered": int(e.box_registered[b])}
        for r in d["races"]:
            race = e.races[r["race_id"]]
            r["office"] = race.office
            r["candidate_names"] = {c.id: c.name for c in race.candidates}
            r["candidate_parties"] = {c.id: c.party for c in race.candidates}
        return d

    return _respond(request, await _get(svc, f"box:{box_id}", build))


# --- forensics ------------------------------------------------------------------------
@router.get("/api/elections/{election_id}/forensics", summary="Forensic flags of the counted sheets (signals, tier, effect on the margin), ranked; a flag is not an accusation")
async def flags(request: Request, election_id: str, min_tier: str = Query("low", description=f"one of {', '.join(TIER_RANK)}"), race: str | None = None, limit: int = Query(200, ge=1, le=10_000)) -> Response:
    svc = await service_for(request, election_id)
    if min_tier not in TIER_RANK:
        raise ApiError(422, "invalid_request", f"min_tier must be one of {', '.join(TIER_RANK)}, not {min_tier!r}")
    if race is not None:
        svc.election.race(race)

    def build() -> dict[str, Any]:
        rep = forensics_store.forensics_report(svc.store, svc.election.id, min_tier=min_tier)
        fl = [f for f in rep["flags"] if race is None or f.get("race_id") == race]
        rep["total"] = len(fl)
        rep["flags"] = fl[:limit]
        rep["as_of_version"] = svc.version
        return rep

    return _respond(request, await _get(svc, f"flags:{min_tier}:{race}:{limit}", build, max_age=FORENSICS_MAX_AGE))


def _fingerprint(svc: LiveService) -> dict[str, Any]:
    v = svc.version
    d = forensics_store.fingerprint_page(svc.store, svc.election.id)
    d["as_of_version"] = v
    d["note"] = NOT_AN_ACCUSATION
    return d


@router.get("/api/elections/{election_id}/forensics/fingerprint", summary="The turnout x winner-share fingerprint (2-D histogram and SVG), integer and last-digit tests; redrawn at most once a minute")
async def fingerprint(request: Request, election_id: str) -> Response:
    svc = await service_for(request, election_id)
    ent = await _get(svc, "fingerprint", lambda: _fingerprint(svc), max_age=FINGERPRINT_MAX_AGE)
    return _respond(request, ent)


@router.get("/api/elections/{election_id}/forensics/fingerprint.svg", summary="The fingerprint picture alone (SVG)")
async def fingerprint_svg(request: Request, election_id: str) -> Response:
    svc = await service_for(request, election_id)
    ent = await _get(svc, "fingerprint", lambda: _fingerprint(svc), max_age=FINGERPRINT_MAX_AGE)
    svg = ent.value["svg"].encode()
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-cache"})


@router.get("/api/elections/{election_id}/races/{race_id}/pvt", summary="Parallel vote tabulation: a stratified sample of an organisation's confirmed copies vs the official running shares")
async def pvt(request: Request, election_id: str, race_id: str, org: str = Query(..., min_length=1), n: int = Query(100, ge=1, le=100_000), seed: int = 0, strata: str = Query("area", description="area, parent or size")) -> Response:
    svc = await service_for(request, election_id)
    svc.election.race(race_id)
    if strata not in ("area", "parent", "size"):
        raise ApiError(422, "invalid_request", f"strata must be area, parent or size, not {strata!r}")
    ent = await _get(svc, f"pvt:{race_id}:{org}:{n}:{seed}:{strata}", lambda: forensics_store.pvt_report(svc.store, svc.election.id, race_id, org, n=n, seed=seed, strata=strata))
    return _respond(request, ent)
