"""Real server processes for the scale-out and crash tests: start, talk HTTP (a new connection
per request, so that the kernel spreads them over --workers), kill -9, check against a recount."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from sandik.core.results import race_result
from sandik.ingest.pipeline import build_tally
from sandik.live import views
from sandik.store.repository import open_store
from tests.web_support import as_json, free_port

SANDIK = [sys.executable, "-m", "sandik.cli"]


class Server:
    """``sandik serve`` (optionally ``--workers N``) in its own process group."""

    def __init__(self, db: str, *, workers: int = 1, port: int | None = None) -> None:
        self.db = db
        self.workers = workers
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> Server:
        cmd = [*SANDIK, "serve", "--db", self.db, "--port", str(self.port)]
        cmd += ["--workers", str(self.workers)] if self.workers > 1 else ["--follow"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        end = time.monotonic() + timeout
        while True:
            try:
                if get(self, "/api/health")[0] == 200:
                    return self
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            if time.monotonic() > end:
                raise RuntimeError("server did not answer")
            time.sleep(0.1)

    def kill9(self) -> None:
        """SIGKILL the whole process group (the supervisor and every worker)."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def request(srv: Server, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None, timeout: float = 30) -> tuple[int, dict[str, str], Any]:
    req = urllib.request.Request(srv.base + path, data=body, method=method, headers={"Connection": "close", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), json.loads(r.read() or b"null")
    except urllib.error.HTTPError as exc:
        data = exc.read()
        return exc.code, dict(exc.headers), json.loads(data) if data else None


def get(srv: Server, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    return request(srv, "GET", path, headers=headers)


def post_sheets(srv: Server, election_id: str, secret: str, sheets: list) -> tuple[int, Any]:
    body = json.dumps([as_json(s) for s in sheets]).encode()
    status, _h, out = request(srv, "POST", f"/api/elections/{election_id}/sheets", body, {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"})
    return status, out


def worker_pids(srv: Server, want: int, timeout: float = 60) -> dict[int, int]:
    """pid -> version, from /api/health over fresh connections until ``want`` distinct processes answered."""
    seen: dict[int, int] = {}
    end = time.monotonic() + timeout
    while len(seen) < want and time.monotonic() < end:
        try:
            _s, _h, h = get(srv, "/api/health")
        except OSError:  # a worker that was just killed: its accepted connections die with it
            continue
        seen[h["pid"]] = max(h["versions"].values(), default=0)
    return seen


def expected_results(db: str, election_id: str) -> dict[str, Any]:
    """Every race's result at its own area, recounted from the stored log (the oracle)."""
    st = open_store(db)
    try:
        e = st.election(election_id)
        tally, _ = build_tally(st, e)
        return {rid: json.loads(json.dumps(views.result_dict(race_result(e, tally, rid, r.area_id)))) for rid, r in e.races.items()}
    finally:
        st.close()


def served_results(srv: Server, election_id: str, races: list[str], min_version: int) -> dict[str, Any]:
    out = {}
    for rid in races:
        status, _h, body = get(srv, f"/api/elections/{election_id}/races/{rid}/results", {"X-Sandik-Min-Version": str(min_version)})
        assert status == 200, (status, body)
        out[rid] = body["result"]
    return out
