"""CSV and JSON exports: every race's results (cached per version) and every stored sheet version (streamed)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import select

from sandik.api.deps import cached, service_for
from sandik.api.errors import ApiError
from sandik.live import views
from sandik.live.service import LiveService
from sandik.store import schema

router = APIRouter(tags=["exports"])

RESULT_COLUMNS = (
    "race_id", "race_name", "office", "area_id", "area_name", "status", "boxes_opened", "boxes_total", "registered",
    "votes_cast", "valid", "invalid", "turnout", "leader", "leader_party", "margin_votes", "margin_points",
    "candidate_id", "candidate", "party", "votes", "share",
)  # fmt: skip


def _result_rows(svc: LiveService) -> list[dict[str, Any]]:
    rows = []
    for r in views.results_at(svc.election, svc.tally).values():
        base = views.result_dict(r)
        for c in base["candidates"]:
            rows.append({k: base.get(k) for k in RESULT_COLUMNS[:17]} | {"candidate_id": c["id"], "candidate": c["name"], "party": c["party"] or "", "votes": c["votes"], "share": c["share"]})
    return rows


def _csv(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


@router.get("/api/elections/{election_id}/export/results.{fmt}", summary="Every race's results at its own area, one row per candidate (csv or json)")
async def export_results(request: Request, election_id: str, fmt: str) -> Response:
    svc = await service_for(request, election_id)
    if fmt == "json":
        return await cached(request, svc, "export:results", lambda: {"election_id": svc.election.id, "version": svc.version, "rows": _result_rows(svc)},
                            extra={"Content-Disposition": f'attachment; filename="{svc.election.id}-results.json"'})  # fmt: skip
    if fmt == "csv":
        # Cached as a JSON string, served as its text: one build per version like the others.
        resp = await cached(request, svc, "export:results.csv", lambda: _csv(_result_rows(svc), RESULT_COLUMNS), hot=False)
        if resp.status_code == 304:
            return resp
        text = json.loads(resp.body)
        headers = {k: v for k, v in resp.headers.items() if k.lower() in ("etag", "x-sandik-version", "cache-control")}
        headers["Content-Disposition"] = f'attachment; filename="{svc.election.id}-results.csv"'
        return Response(text.encode(), media_type="text/csv; charset=utf-8", headers=headers)
    raise ApiError(404, "not_found", f"unknown export format {fmt!r} (csv or json)")


@router.get("/api/elections/{election_id}/export/sheets.{fmt}", summary="Every stored sheet version, in acceptance order (csv or ndjson/json)")
async def export_sheets(request: Request, election_id: str, fmt: str) -> StreamingResponse:
    svc = await service_for(request, election_id)
    if fmt not in ("csv", "json", "ndjson"):
        raise ApiError(404, "not_found", f"unknown export format {fmt!r} (csv, json or ndjson)")
    eid = svc.election.id
    t = schema.sheets
    cols = [c.name for c in t.columns]

    def rows() -> Iterator[dict[str, Any]]:
        with svc.store.engine.connect() as conn:
            res = conn.execution_options(yield_per=5000).execute(select(t).where(t.c.election_id == eid).order_by(t.c.seq))
            for m in res.mappings():
                yield dict(m)

    def gen() -> Iterator[bytes]:
        if fmt == "csv":
            buf = io.StringIO()
            w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
            w.writeheader()
            for i, r in enumerate(rows()):
                w.writerow(r)
                if i % 1000 == 999:
                    yield buf.getvalue().encode()
                    buf.seek(0)
                    buf.truncate()
            yield buf.getvalue().encode()
        elif fmt == "ndjson":
            for r in rows():
                yield (json.dumps(r, ensure_ascii=False) + "\n").encode()
        else:
            yield b"["
            for i, r in enumerate(rows()):
                yield (("," if i else "") + json.dumps(r, ensure_ascii=False)).encode()
            yield b"]\n"

    media = {"csv": "text/csv; charset=utf-8", "json": "application/json", "ndjson": "application/x-ndjson"}[fmt]
    return StreamingResponse(gen(), media_type=media, headers={"Content-Disposition": f'attachment; filename="{eid}-sheets.{fmt}"', "X-Sandik-Version": str(svc.version)})
