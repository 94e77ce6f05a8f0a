"""The write API: tally sheets, one or a batch, as JSON, NDJSON or a CSV upload.

Same path as the CLI (formats.sheet_files -> ingest pipeline, through the live
service's single writer): validated, stored with their history, bad rows
quarantined with reasons. Before anything is written the whole request is
checked (size, content type, parse, token, role, source and area of every
sheet): a request refused for any of those writes nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sandik.api.deps import app_state, read_body, remote_of, require_token, service_for
from sandik.api.errors import ApiError, error_body, status_of
from sandik.auth.tokens import AuthError, Token, area_allows
from sandik.core.sheet import OFFICIAL, TallySheet
from sandik.errors import SandikError
from sandik.formats.sheet_files import read_sheets
from sandik.ingest.pipeline import BadRow, Item

router = APIRouter(tags=["write"])

FORMATS = {"application/json": "json", "application/x-ndjson": "ndjson", "application/ndjson": "ndjson", "text/csv": "csv"}


def _authorise(tok: Token, election_id: str, items: list[Item], box_area: Any) -> None:
    """Refuse the whole request if any sheet is outside what the token may write."""
    if tok.election_id and tok.election_id != election_id:
        raise AuthError(f"token {tok.id} is for election {tok.election_id}, not {election_id}", status=403, code="forbidden")
    for n, it in enumerate(items, start=1):
        if isinstance(it, BadRow):
            continue  # unreadable: it will be quarantined, never counted
        s: TallySheet = it
        if tok.role == "clerk" and s.source != OFFICIAL:
            raise AuthError(f"sheet {n}: a clerk enters official sheets, not source {s.source!r}", status=403, code="forbidden")
        if tok.role == "observer" and s.source != tok.source:
            raise AuthError(f"sheet {n}: observer token of {tok.source!r} cannot enter sheets of source {s.source!r}", status=403, code="forbidden")
        if tok.role == "clerk":
            area = box_area(s.box_id)
            if area is not None and not area_allows(tok.areas, area):
                raise AuthError(
                    f"sheet {n}: box {s.box_id} lies in {area}, outside this clerk's areas ({', '.join(tok.areas)})",
                    status=403,
                    code="out_of_area",
                    box_id=s.box_id,
                )


@router.post(
    "/api/elections/{election_id}/sheets",
    summary="Submit tally sheets (JSON object or list, NDJSON, or CSV); needs a clerk, observer or admin token",
    status_code=200,
)
async def submit_sheets(request: Request, election_id: str) -> JSONResponse:
    st = app_state(request)
    tok: Token | None = None
    eid = election_id
    detail: dict[str, Any] = {"content_type": request.headers.get("content-type")}
    status = 500
    try:
        tok = await require_token(request, "clerk", "observer", "admin")
        svc = await service_for(request, election_id)
        eid = svc.election.id
        ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        fmt = FORMATS.get(ctype)
        if fmt is None:
            raise ApiError(415, "unsupported_media_type", f"send sheets as application/json, application/x-ndjson or text/csv, not {ctype or 'no content type'!r}")
        body = await read_body(request, st.settings.max_body_bytes)
        if not body.strip():
            raise ApiError(400, "empty_body", "the request has no sheets")
        default_source = tok.source
        items = list(read_sheets(body, name="api", fmt=fmt, default_source=default_source))
        if not items:
            raise ApiError(400, "empty_body", "the request has no sheets")
        if len(items) > st.settings.max_batch_sheets:
            raise ApiError(413, "batch_too_large", f"{len(items):,} sheets in one request; the limit is {st.settings.max_batch_sheets:,}")
        e = svc.election

        def box_area(box_id: str) -> str | None:
            b = e.box_index.get(box_id)
            return e.box_area_ids[b] if b is not None else None

        _authorise(tok, e.id, items, box_area)
        # Who wrote a version is the authenticated token, whatever the sheet itself claims.
        items = [replace(it, submitted_by=tok.name) if isinstance(it, TallySheet) else it for it in items]
        detail.update(sheets=len(items), boxes=sorted({it.box_id for it in items if isinstance(it, TallySheet)})[:50])
        report = await asyncio.wrap_future(svc.submit(items, origin=f"api:{tok.id}", submitted_by=tok.name))
        detail["report"] = {k: v for k, v in report.to_dict(limit=20).items() if k != "warnings"}
        body_out = {"election_id": e.id, "version": svc.version, "report": report.to_dict()}
        if report.quarantined:
            status = 422
            return JSONResponse(
                error_body("sheets_quarantined", f"{report.quarantined} of {report.received} sheet(s) refused and quarantined; {report.accepted} accepted", **body_out),
                status_code=status,
            )
        status = 200
        return JSONResponse(body_out, status_code=status)
    except SandikError as exc:
        status = status_of(exc)
        detail["error"] = exc.to_dict()
        raise
    finally:
        # Every write attempt, accepted or refused, is in the audit log.
        await asyncio.to_thread(
            st.tokens.audit,
            token=tok,
            actor="anonymous" if tok is None else tok.name,
            action="sheets.submit",
            election_id=eid,
            remote=remote_of(request),
            status=status,
            detail=detail,
        )
