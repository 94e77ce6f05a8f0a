"""Hardening in front of the app: security headers, rate limits on writes and on failed logins.

Pure ASGI, called by ``api.app.SandikAPI`` before anything else, so that it also covers the
hot path. Limits are per process (N processes behind a balancer allow N times as much);
they are set from the environment so that an operator can tune them without code:

* ``SANDIK_WRITE_RATE`` (default 100) and ``SANDIK_WRITE_BURST`` (default 300): write requests
  (POST/PUT/PATCH/DELETE) per second per token (per client address if no token), as a token
  bucket; 0 disables the limit. A district board sends a batch every few seconds; a stolen
  token cannot flood the writer thread.
* ``SANDIK_AUTH_FAILURES`` (default 20) per ``SANDIK_AUTH_WINDOW`` seconds (default 60):
  after that many 401 answers to one client address, its requests that carry credentials get
  429 until the window has passed (slows down guessing; the secrets are 24 random bytes anyway).

CORS is closed: no ``Access-Control-Allow-*`` header is ever sent, so a browser refuses a
cross-origin write (its preflight gets none) and cross-origin reads of the answers.
"""

from __future__ import annotations

import os
import time
from collections import deque
from typing import Any

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    ),
]
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _env(name: str, default: float) -> float:
    v = os.environ.get(name)
    return float(v) if v else default


class Guard:
    def __init__(self) -> None:
        self.write_rate = _env("SANDIK_WRITE_RATE", 100)
        self.write_burst = _env("SANDIK_WRITE_BURST", 300)
        self.auth_failures = int(_env("SANDIK_AUTH_FAILURES", 20))
        self.auth_window = _env("SANDIK_AUTH_WINDOW", 60)
        self._buckets: dict[str, tuple[float, float]] = {}  # who -> (tokens left, last refill)
        self._failures: dict[str, deque[float]] = {}  # client host -> times of recent 401s

    def _who(self, scope: dict[str, Any], auth: bytes | None) -> str:
        if auth:
            # "Bearer sdk_<id>_<secret>": the id names the token; the secret never leaves this line.
            parts = auth.split(b" ", 1)[-1].strip().split(b"_", 2)
            if len(parts) == 3:
                return "t:" + parts[1][:40].decode("ascii", "replace")
        client = scope.get("client")
        return "h:" + (client[0] if client else "?")

    def _take(self, who: str, now: float) -> float:
        """0 if a write may go now, else the seconds to wait."""
        tokens, last = self._buckets.get(who, (self.write_burst, now))
        tokens = min(self.write_burst, tokens + (now - last) * self.write_rate)
        if tokens < 1:
            self._buckets[who] = (tokens, now)
            return (1 - tokens) / self.write_rate
        self._buckets[who] = (tokens - 1, now)
        if len(self._buckets) > 100_000:  # bounded memory under a flood of invented token ids
            self._buckets.clear()
        return 0.0

    def _locked_out(self, host: str, now: float) -> float:
        q = self._failures.get(host)
        if not q:
            return 0.0
        while q and q[0] < now - self.auth_window:
            q.popleft()
        if len(q) >= self.auth_failures:
            return q[0] + self.auth_window - now
        return 0.0

    def _failed(self, host: str, now: float) -> None:
        q = self._failures.setdefault(host, deque(maxlen=max(1, self.auth_failures)))
        q.append(now)
        if len(self._failures) > 100_000:
            self._failures.clear()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any, app: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        auth = None
        for k, v in scope["headers"]:
            if k == b"authorization":
                auth = v
                break
        now = time.monotonic()
        host = scope["client"][0] if scope.get("client") else "?"
        if auth is not None and self.auth_failures > 0:
            wait = self._locked_out(host, now)
            if wait > 0:
                await _refuse(send, 429, "too_many_failed_logins", "too many requests with a wrong token from this address; wait", wait)
                return
        if scope["method"] in WRITE_METHODS and self.write_rate > 0:
            wait = self._take(self._who(scope, auth), now)
            if wait > 0:
                await _refuse(send, 429, "rate_limited", "too many write requests for this token; slow down", wait)
                return

        async def guarded_send(msg: dict[str, Any]) -> None:
            if msg["type"] == "http.response.start":
                if msg["status"] == 401 and auth is not None:
                    self._failed(host, time.monotonic())
                msg = {**msg, "headers": [*msg.get("headers", []), *SECURITY_HEADERS]}
            await send(msg)

        await app(scope, receive, guarded_send)


async def _refuse(send: Any, status: int, code: str, message: str, wait: float) -> None:
    import json

    body = json.dumps({"error": {"code": code, "message": message, "retry_after": round(wait, 3)}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"retry-after", str(max(1, int(wait + 0.999))).encode()), *SECURITY_HEADERS]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
