"""``create_app(settings)``: the API under /api (OpenAPI at /docs) and the website at /."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from sandik.api import errors
from sandik.api.deps import SNAPSHOT_THREADS, AppState, app_state
from sandik.api.hotpath import try_hot
from sandik.api.security import Guard
from sandik.api.routes import admin, areas, boxes, elections, exports, forensics, live, news, projection, races, results, sheets
from sandik.api.settings import Settings
from sandik.auth.tokens import TokenStore
from sandik.errors import NotFound
from sandik.live.follow import gate
from sandik.live.service import ServiceRegistry
from sandik.store.repository import Store, open_store

STATIC = resources.files("sandik.web") / "static"


class SandikAPI(FastAPI):
    """FastAPI, with the hot path (``api/hotpath.py``) in front of the whole middleware stack."""

    _guard: Guard  # security headers, rate limits (api/security.py); one per app

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] == "http":
            await self._guard(scope, receive, send, self._serve)
        else:
            await self._serve(scope, receive, send)

    async def _serve(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        state = getattr(self.state, "sandik", None)
        if scope["type"] == "http" and await gate(state, scope, receive, send, super().__call__):
            return  # X-Sandik-Min-Version: answered after catching up, or 503 (live/follow.py)
        if await try_hot(state, scope, send):
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, *, store: Store | None = None, registry: ServiceRegistry | None = None) -> FastAPI:
    """The ASGI app. ``store``/``registry`` let a process that already owns them (the demo) share them."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        st = store or await run_in_threadpool(open_store, settings.db)
        reg = registry or ServiceRegistry(st)
        state = AppState(settings=settings, store=st, registry=reg, tokens=TokenStore(st), loop=asyncio.get_running_loop())
        app.state.sandik = state
        # Start the snapshot threads now (each submit while the others are busy starts one).
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(state.snapshot_pool, time.sleep, 0.01) for _ in range(SNAPSHOT_THREADS)))
        try:
            # Load the default election now, so that the first visitor does not wait for it.
            await run_in_threadpool(reg.get, state.default_election_id())
        except NotFound:
            pass  # an empty store: the API answers, with 404s, until an election is loaded
        yield
        for b in state.broadcasters.values():
            await b.stop()
        state.snapshot_pool.shutdown(wait=False)
        if registry is None:
            await run_in_threadpool(reg.stop)
        if store is None:
            st.close()

    app = SandikAPI(
        title="sandik",
        version="1",
        summary="Live election results: elections, areas, races, results at every level, boxes and their sheets; write API for clerks and observers.",
        lifespan=lifespan,
    )
    app._guard = Guard()
    errors.install(app)
    for mod in (elections, areas, races, results, boxes, live, exports, sheets, admin, projection, forensics, news):
        app.include_router(mod.router)

    @app.get("/api", tags=["meta"], summary="What this server offers")
    async def index(request: Request) -> dict:
        st = app_state(request)
        return {"name": "sandik", "docs": "/docs", "openapi": "/openapi.json", "default_election": st.settings.election_id or _default(st)}

    @app.get("/api/health", tags=["meta"], summary="Liveness: the server answers and sees its store")
    async def health(request: Request) -> JSONResponse:
        st = app_state(request)
        return JSONResponse({"ok": True, "pid": os.getpid(), "versions": {s.election.id: s.version for s in st.registry.loaded()}, "elections_loaded": [s.election.id for s in st.registry.loaded()], "sse_clients": {k: b.clients for k, b in st.broadcasters.items()}})

    if settings.web:
        app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

        @app.get("/", include_in_schema=False)
        async def home() -> Response:
            return FileResponse(str(STATIC / "index.html"), media_type="text/html", headers={"Cache-Control": "no-cache"})

    return app


def _default(st: AppState) -> str | None:
    try:
        return st.default_election_id()
    except NotFound:
        return None
