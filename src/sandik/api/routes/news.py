"""News: check an article's claims against the results, and factual summaries with the figures behind each sentence.

The facts come from the live tally of the election (or its official final results
when nothing has been counted), rebuilt at most every ``FACTS_MAX_AGE`` seconds
and said with every verdict (``source``), never per request.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from sandik.api.deps import read_body, service_for
from sandik.api.errors import ApiError
from sandik.errors import NotFound
from sandik.live.analytics import Entry, cache_for
from sandik.live.service import LiveService
from sandik.news.claims import Checker
from sandik.news.facts import Facts
from sandik.news.summary import summarize

router = APIRouter(tags=["news"])

FACTS_MAX_AGE = 5.0  # seconds: building the facts walks every race's results
MAX_ARTICLE_BYTES = 200_000


def _build_checker(svc: LiveService) -> tuple[Facts, Checker]:
    e = svc.election
    prev = None
    if e.info.previous_id:
        try:
            prev = svc.store.election(e.info.previous_id)
        except NotFound:
            prev = None
    if svc.version == 0 and e.aggregate_results:
        facts = Facts.build(e, None, prev)
    else:
        # Under the writer's lock: the facts of one version, never half a batch.
        with svc.lock:
            v = svc.version
            facts = Facts.build(e, svc.tally, prev, source=f"{e.id}: live tally (version {v:,})")
    return facts, Checker(facts)


async def checker_for(svc: LiveService) -> tuple[Facts, Checker]:
    c = cache_for(svc)
    ent = await asyncio.to_thread(c.get, "news:checker", svc.version, lambda: _build_checker(svc), max_age=FACTS_MAX_AGE, raw=True)
    return ent.value


@router.post(
    "/api/elections/{election_id}/news/check",
    summary="Check an article (text/plain, or JSON {\"text\": ...}): its claims with verdicts (supported, contradicted, not checkable) and the figures, linked entities, unlinked names, foreign places",
)
async def check(request: Request, election_id: str) -> dict[str, Any]:
    svc = await service_for(request, election_id)
    ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    body = await read_body(request, MAX_ARTICLE_BYTES)
    if ctype == "application/json":
        try:
            obj = json.loads(body)
        except ValueError:
            raise ApiError(400, "bad_request", "the body is not valid JSON") from None
        text = obj.get("text") if isinstance(obj, dict) else None
        if not isinstance(text, str):
            raise ApiError(422, "invalid_request", 'send {"text": "<the article>"}')
    elif ctype in ("text/plain", ""):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, "bad_request", "the article is not UTF-8 text") from None
    else:
        raise ApiError(415, "unsupported_media_type", f"send the article as text/plain or application/json, not {ctype!r}")
    if not text.strip():
        raise ApiError(400, "empty_body", "the article is empty")
    facts, checker = await checker_for(svc)
    result = await asyncio.to_thread(checker.check, text)
    return {"election_id": svc.election.id, "facts_mode": facts.mode, "text": text, **result.to_dict()}


@router.get("/api/elections/{election_id}/news/summary", summary="A short factual report of the election or of an area, in Turkish or English, with the figures behind each sentence")
async def summary(request: Request, election_id: str, area: str | None = None, lang: str = Query("tr", description="tr or en")) -> Response:
    svc = await service_for(request, election_id)
    if lang not in ("tr", "en"):
        raise ApiError(422, "invalid_request", f"lang must be tr or en, not {lang!r}")
    if area is not None:
        svc.election.area(area)
    facts, _ = await checker_for(svc)
    c = cache_for(svc)
    ent: Entry = await asyncio.to_thread(c.get, f"news:summary:{area}:{lang}", id(facts), lambda: summarize(facts, area, lang).to_dict())  # type: ignore[arg-type]
    headers = {"ETag": ent.etag, "Cache-Control": "no-cache"}
    inm = request.headers.get("if-none-match")
    if inm and inm.strip() == ent.etag:
        return Response(status_code=304, headers=headers)
    return Response(ent.body, media_type="application/json", headers=headers)
