"""Several sandik processes on one database: following the sheet log, and never going backwards.

Every process counts from the same append-only log (``sheets``, ordered by ``seq``).
A process that writes applies its own batch at once; sheets written by the other
processes reach it through ``LogFollower``:

* on PostgreSQL it LISTENs on ``store.repository.NOTIFY_CHANNEL``; every committed
  batch NOTIFYs in its own transaction (``Store.append_sheets``), so the wake-up
  arrives only once the rows are visible;
* whatever the backend it also wakes every ``interval`` seconds (a lost notification,
  a dropped LISTEN connection, or SQLite, which has no NOTIFY);

and each wake-up queues one catch-up on the service's writer thread, which reads the
log after the last seq it counted and applies it in log order (``LiveService._catch_up_now``).
A gap (a restart, a dropped connection, minutes of silence) is caught up the same way:
the log, not the notifications, is the truth; notifications only say "look now".

Versions across processes: a service's version is the highest seq of the election it
has counted (all lower ones included), so the same number means the same state in
every process. A client that has seen version v may send ``X-Sandik-Min-Version: v``;
a process behind v catches up from the log before answering (``gate``), or, if it
cannot within ``MIN_VERSION_WAIT`` seconds, answers 503 with ``Retry-After: 1``
and never an older state.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from sandik.store.repository import NOTIFY_CHANNEL

if TYPE_CHECKING:
    from sandik.live.service import LiveService

log = logging.getLogger("sandik.follow")

MIN_VERSION_HEADER = b"x-sandik-min-version"
MIN_VERSION_WAIT = 2.0  # seconds a request may wait for its process to catch up
RECONNECT_WAIT = 1.0  # seconds between two attempts to LISTEN again after an error


class LogFollower:
    """Wakes a service up when other processes store sheets (NOTIFY, or every ``interval`` s)."""

    def __init__(self, svc: LiveService, interval: float = 0.1) -> None:
        self.svc = svc
        self.interval = interval
        self.notifications = 0  # how many NOTIFYs woke us (for tests and /api/health)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sandik-follow-{svc.election.id}", daemon=True)
        self._conn: Any = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        pg = self.svc.store.dialect == "postgresql"
        while not self._stop.is_set():
            try:
                if pg:
                    self._listen()
                else:
                    while not self._stop.wait(self.interval):
                        self.svc.request_catch_up()
            except Exception as exc:  # the database went away for a moment: poll until LISTEN works again
                log.warning("log follower of %s: %s; retrying", self.svc.election.id, type(exc).__name__)
                self._close()
                self.svc.request_catch_up()
                self._stop.wait(RECONNECT_WAIT)
        self._close()

    def _listen(self) -> None:
        import psycopg

        url = self.svc.store.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._conn = psycopg.connect(url, autocommit=True)
        self._conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
        # Anything committed before the LISTEN took effect is in the log: look once now.
        self.svc.request_catch_up()
        me = self.svc.election.id
        while not self._stop.is_set():
            for n in self._conn.notifies(timeout=self.interval):
                if n.payload.split(":", 1)[0] == me:
                    self.notifications += 1
                    break
            # Woken or timed out, look at the log: the timeout is the fallback for a lost NOTIFY.
            self.svc.request_catch_up()

    def _close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None


async def wait_for_version(svc: LiveService, version: int, timeout: float = MIN_VERSION_WAIT) -> bool:
    """True once ``svc`` has counted up to ``version`` (asking it to catch up now); False after ``timeout``."""
    if svc.version >= version:
        return True
    deadline = time.monotonic() + timeout
    while svc.version < version:
        if time.monotonic() > deadline:
            return False
        svc.request_catch_up()
        await asyncio.sleep(0.005)
    return True


def _election_of(path: str) -> str | None:
    parts = path.split("/")
    if len(parts) >= 4 and parts[1] == "api" and parts[2] == "elections":
        return parts[3]
    return None


async def gate(state: Any, scope: dict[str, Any], receive: Any, send: Any, app: Any) -> bool:
    """Honour ``X-Sandik-Min-Version`` before a request is answered; True if it was answered here.

    Without the header (or outside ``/api/elections/<id>/...``) nothing happens. With it,
    the request waits until this process has counted that version (it catches up from
    the log at once), or gets 503 + Retry-After. It then skips the hot path if the cached
    snapshot there is older than the version the client has seen.
    """
    if state is None or scope["type"] != "http":
        return False
    raw = None
    for k, v in scope["headers"]:
        if k == MIN_VERSION_HEADER:
            raw = v
            break
    if raw is None:
        return False
    eid = _election_of(scope["path"])
    try:
        want = int(raw)
    except ValueError:
        await _answer(send, 400, b'{"error":{"code":"bad_request","message":"X-Sandik-Min-Version must be an integer"}}')
        return True
    if eid is None:
        return False
    from sandik.api.deps import CURRENT

    try:
        eid = state.default_election_id() if eid == CURRENT else eid
    except Exception:
        return False
    svc = state.registry._services.get(eid)
    if svc is None:
        return False  # not loaded yet: loading reads the whole log, newer than anything seen
    if not await wait_for_version(svc, want):
        await _answer(
            send, 503, b'{"error":{"code":"behind","message":"this server has not yet counted the version you have seen; retry"}}',
            [(b"retry-after", b"1"), (b"x-sandik-version", str(svc.version).encode())],
        )
        return True
    # The hot path may serve the previous snapshot while a new one is built: not to this client.
    hit = state.hot.get((scope["path"], scope.get("query_string", b"")))
    if hit is not None:
        snap = hit[0]._cache.get(hit[1])
        if snap is not None and snap.version < want:
            await app(scope, receive, send)
            return True
    return False


async def _answer(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    hdrs = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body})
