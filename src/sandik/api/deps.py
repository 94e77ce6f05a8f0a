"""Shared pieces of the routes: the app state, the election's live service, auth, bodies, cached responses."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from sandik.api.errors import ApiError
from sandik.api.settings import Settings
from sandik.auth.tokens import AuthError, Token, TokenStore
from sandik.live.broadcast import Broadcaster
from sandik.live.service import LiveService, ServiceRegistry, Snapshot
from sandik.store.repository import Store

CURRENT = "current"  # alias of the default election in every URL
PREWARM_MAX = 20  # the URLs most recently rebuilt for readers are rebuilt again ahead of each SSE frame
SNAPSHOT_THREADS = 2


@dataclass
class AppState:
    settings: Settings
    store: Store
    registry: ServiceRegistry
    tokens: TokenStore
    broadcasters: dict[str, Broadcaster] = field(default_factory=dict)
    loop: asyncio.AbstractEventLoop | None = None
    # (path, query) of a cached GET -> (service, cache key, media type, extra headers); read by the hot path.
    hot: dict[tuple[str, bytes], tuple[LiveService, str, str, tuple[tuple[bytes, bytes], ...], Any]] = field(default_factory=dict)
    # Snapshots are rebuilt on these threads, started once: a thread started on demand made
    # the event loop wait for its start (tens of ms under load) in the middle of a burst of reads.
    snapshot_pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(SNAPSHOT_THREADS, thread_name_prefix="sandik-snapshot"))
    rebuilds: dict[tuple[str, str], asyncio.Future] = field(default_factory=dict)  # (election, key) -> the rebuild in flight

    def default_election_id(self) -> str:
        return self.settings.election_id or self.store.default_election_id()


def app_state(request: Request) -> AppState:
    return request.app.state.sandik


async def service_for(request: Request, election_id: str) -> LiveService:
    st = app_state(request)
    eid = st.default_election_id() if election_id == CURRENT else election_id
    svc = st.registry._services.get(eid)
    if svc is None:
        # Loading an election (and rebuilding its tally from the log) takes seconds: off the loop.
        svc = await run_in_threadpool(st.registry.get, eid)
    return svc


def broadcaster_for(request: Request, svc: LiveService) -> Broadcaster:
    st = app_state(request)
    b = st.broadcasters.get(svc.election.id)
    if b is None:
        def prewarm() -> None:
            # The views people asked for recently are rebuilt before the frame goes out,
            # so a client that refetches on the event gets the new bytes at once.
            entries = [(key, build) for (s, key, _m, _h, build) in list(st.hot.values())[-PREWARM_MAX:] if s is svc]
            svc.prewarm(entries)

        b = st.broadcasters[svc.election.id] = Broadcaster(svc, min_interval=st.settings.sse_min_interval, prewarm=prewarm)
        b.start(asyncio.get_running_loop())
    return b


def etag_matches(request: Request, etag: str) -> bool:
    inm = request.headers.get("if-none-match")
    if not inm:
        return False
    return inm.strip() == "*" or etag in [t.strip().removeprefix("W/") for t in inm.split(",")]


def snapshot_response(request: Request, snap: Snapshot, media_type: str = "application/json", extra: dict[str, str] | None = None) -> Response:
    headers = {"ETag": snap.etag, "X-Sandik-Version": str(snap.version), "Cache-Control": "no-cache"}
    if extra:
        headers.update(extra)
    if etag_matches(request, snap.etag):
        return Response(status_code=304, headers=headers)
    return Response(snap.body, media_type=media_type, headers=headers)


def rebuild(state: AppState, svc: LiveService, key: str, build: Any) -> asyncio.Future[Snapshot]:
    """Rebuild a snapshot on the snapshot threads; readers asking meanwhile share the one rebuild (single flight)."""
    k = (svc.election.id, key)
    fut = state.rebuilds.get(k)
    if fut is not None and not fut.done():
        return fut
    # A miss builds under the writer's lock: on a snapshot thread, never on the loop.
    fut = asyncio.get_running_loop().run_in_executor(state.snapshot_pool, svc.cached, key, build)
    state.rebuilds[k] = fut

    def done(f: asyncio.Future) -> None:
        if state.rebuilds.get(k) is f:
            del state.rebuilds[k]
        if not f.cancelled():
            f.exception()  # marked as seen: a reader served the old bytes ignores it, a waiting one re-raises it

    fut.add_done_callback(done)
    return fut


async def current_snapshot(state: AppState, svc: LiveService, key: str, build: Any) -> Snapshot:
    """The snapshot of ``key`` at the service's version as of this call, or a newer one."""
    want = svc.version
    while True:
        snap = svc._cache.get(key)
        if snap is not None and snap.version >= want:
            return snap
        # A rebuild already in flight may have read an older version than ours: then once more.
        snap = await rebuild(state, svc, key, build)
        if snap.version >= want:
            return snap


HOT_MAX = 20_000  # remembered URLs; the map is cleared when full (it refills from the next requests)


async def cached(request: Request, svc: LiveService, key: str, build: Any, media_type: str = "application/json", extra: dict[str, str] | None = None, hot: bool = True) -> Response:
    st = app_state(request)
    snap = await current_snapshot(st, svc, key, build)
    if hot:
        if len(st.hot) >= HOT_MAX:
            st.hot.clear()
        hdrs = tuple((k.lower().encode(), v.encode()) for k, v in (extra or {}).items())
        url = (request.scope["path"], request.scope.get("query_string", b""))
        st.hot.pop(url, None)  # re-inserted at the end: the map's order is "most recently rebuilt for a reader"
        st.hot[url] = (svc, key, media_type, hdrs, build)
    return snapshot_response(request, snap, media_type, extra)


def bearer(request: Request) -> str | None:
    h = request.headers.get("authorization")
    if not h:
        return None
    scheme, _, value = h.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise AuthError("the Authorization header must be 'Bearer <token>'", code="bad_token")
    return value.strip()


async def require_token(request: Request, *roles: str) -> Token:
    raw = bearer(request)
    if raw is None:
        raise AuthError("this endpoint needs an API token (Authorization: Bearer <token>)", code="token_missing")
    tok = await run_in_threadpool(app_state(request).tokens.verify, raw)
    if roles and tok.role not in roles:
        raise AuthError(f"a {tok.role} token cannot do this (needs {' or '.join(roles)})", status=403, code="forbidden", role=tok.role)
    return tok


def remote_of(request: Request) -> str:
    host = f"{request.client.host}:{request.client.port}" if request.client else "?"
    fwd = request.headers.get("x-forwarded-for")
    return f"{host} (forwarded for {fwd})" if fwd else host


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            n = int(declared)
        except ValueError:
            raise ApiError(400, "bad_request", f"Content-Length {declared!r} is not a number") from None
        if n > limit:
            raise ApiError(413, "body_too_large", f"request body of {n:,} bytes is over the limit of {limit:,} bytes", limit=limit)
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "body_too_large", f"request body is over the limit of {limit:,} bytes", limit=limit)
        chunks.append(chunk)
    return b"".join(chunks)
