"""The hot path: cached GETs answered before FastAPI sees them.

A FastAPI route that serves a per-version snapshot (``deps.cached``) records
its URL. The next requests for the same URL are answered here from the cached
bytes (or with 304), skipping routing, parameter parsing and response classes:
the same bytes, a fraction of the cost. When the version has moved, the snapshot
is rebuilt once for all readers (``deps.rebuild``); they get the previous bytes
meanwhile under a stream of writes, or wait for the new ones after a lone write.
Anything else (first request, other methods, other URLs, a failed rebuild) goes
through FastAPI, which builds the snapshot and records the URL again.
"""

from __future__ import annotations

from typing import Any

from sandik.api.deps import AppState, current_snapshot, rebuild

Scope = dict[str, Any]


async def try_hot(state: AppState | None, scope: Scope, send: Any) -> bool:
    """Answer a GET from the cache if its URL is known and its snapshot current; False to fall through."""
    if state is None or scope["type"] != "http" or scope["method"] != "GET":
        return False
    hit = state.hot.get((scope["path"], scope.get("query_string", b"")))
    if hit is None:
        return False
    svc, key, media_type, extra, build = hit
    snap = svc._cache.get(key)
    if snap is None:
        return False
    if snap.version != svc.version:
        if svc.writes_streaming():
            # Stale while revalidating: under a stream of writes the version moves every few tens
            # of ms, and making readers wait for each rebuild is what made read p99 long. The new
            # snapshot is built on a snapshot thread (one rebuild however many readers ask) and
            # this request gets the previous one at once (its ETag and version header say which
            # it is). A client that must see at least version v sends X-Sandik-Min-Version
            # (live/follow.py gate): it waits for it.
            rebuild(state, svc, key, build)
        else:
            # A lone write (a clerk's upload, a correction): readers wait for the new snapshot,
            # all of them for the same rebuild; an error is reported by the route.
            try:
                snap = await current_snapshot(state, svc, key, build)
            except Exception:
                return False
    await HotPath._send(scope, send, snap, media_type, extra)
    return True


class HotPath:
    """Namespace of the fast response; ``api.app.SandikAPI`` calls ``try_hot`` before any middleware."""

    @staticmethod
    async def _send(scope: Scope, send: Any, snap: Any, media_type: str, extra: tuple[tuple[bytes, bytes], ...]) -> None:
        etag = snap.etag.encode()
        headers = [(b"etag", etag), (b"x-sandik-version", str(snap.version).encode()), (b"cache-control", b"no-cache"), *extra]
        inm = None
        for k, v in scope["headers"]:
            if k == b"if-none-match":
                inm = v
                break
        if inm is not None and (inm.strip() == b"*" or etag in [t.strip().removeprefix(b"W/") for t in inm.split(b",")]):
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        headers += [(b"content-type", media_type.encode()), (b"content-length", str(len(snap.body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": snap.body})
