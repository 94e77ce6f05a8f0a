"""API and SSE under load, while the 2024 night is replayed into the server at full speed.

    python bench/bench_api.py [--duration 10] [--connections 50] [--sse-clients 1000]

Steps (one run, one machine), in two modes (``--mode``, both by default):
1. inprocess: ``sandik serve --replay tr-2024 --speed max`` in a subprocess on a fresh SQLite
   file (the real CLI: the replay goes through the server's live service and single writer);
   follow: ``sandik serve --follow`` and, in another process, ``sandik replay tr-2024 --speed
   max`` writing the same file, the server following the log.
2. As soon as sheets flow, ``wrk`` reads the Istanbul metropolitan race's results
   (cached bytes, changing with every batch) at N concurrent connections.
3. Then 1,000 SSE clients (one asyncio process, raw sockets) connect; each frame's
   delay is its arrival time minus the acceptance time of the oldest batch it carries.
4. After the replay, the same JSON bytes are served by two static servers (a bare ASGI
   app on the same uvicorn, and Python's threaded http.server) and measured with wrk.

Each figure is printed beside its ratio to the issue's limit (5,000 req/s; p99 20 ms;
SSE p99 1 s) and the static servers' throughput. Needs ``wrk`` (Debian package; see
scripts/install-system-deps.sh bench).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SANDIK = str(Path(sys.executable).with_name("sandik"))
RACE_URL = "/api/elections/current/races/tr.34:metropolitan_mayor/results"
SINCE = re.compile(rb'"since":(-?\d+)')
ACCEPTED = re.compile(rb'"accepted_at":([\d.]+)')
LIMIT_RPS, LIMIT_P99_MS, LIMIT_SSE_P99_S = 5000.0, 20.0, 1.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def wait_for(cond, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if cond():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def wrk(url: str, duration: int, connections: int, threads: int = 1) -> dict:
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", url], capture_output=True, text=True, check=True).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            raise SystemExit(f"could not read {label} from wrk:\n{out}")
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p50": ms("50%"), "p99": ms("99%"), "non2xx": int(errors.group(1)) if errors else 0, "socket_errors": sock.group(1) if sock else "", "raw": out}


# --- SSE clients ------------------------------------------------------------------
async def sse_client(host: str, port: int, path: str, delays: list[float], stop: asyncio.Event, connected: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode())
    await writer.drain()
    first = True
    first_frame = [True]  # the frame sent on connecting is the current state, not a new acceptance
    try:
        while not stop.is_set():
            line = await reader.readline()
            if not line:
                return
            if first and line.startswith(b"HTTP/1.1 200"):
                connected[0] += 1
                first = False
            # Chunked transfer: frames arrive inside chunks; "data: {...}" lines are whole.
            if line.startswith(b"data: "):
                now = time.time()
                # Only two fields are needed: a regex keeps the client's own CPU (and so its lag) small.
                since = int(SINCE.search(line).group(1))
                if since >= 0 and not first_frame[0]:
                    delays.append(now - float(ACCEPTED.search(line).group(1)))
                first_frame[0] = False
    finally:
        writer.close()


def run_sse(port: int, n: int, seconds: float) -> dict:
    async def main() -> dict:
        delays: list[float] = []
        stop = asyncio.Event()
        connected = [0]
        tasks = []
        for i in range(n):
            tasks.append(asyncio.create_task(sse_client("127.0.0.1", port, "/api/elections/current/events", delays, stop, connected)))
            if i % 100 == 99:
                await asyncio.sleep(0.05)
        t0 = time.monotonic()
        while connected[0] < n and time.monotonic() - t0 < 30:
            await asyncio.sleep(0.1)
        delays.clear()  # measure only with every client connected
        ok = connected[0]
        await asyncio.sleep(seconds)
        stop.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return {"connected": ok, "delays": sorted(delays)}

    return asyncio.run(main())


def pct(xs: list[float], p: float) -> float:
    return xs[min(len(xs) - 1, int(p * len(xs)))] if xs else float("nan")


# --- static servers of the same bytes ----------------------------------------------
STATIC_ASGI = """
import sys
body = open(sys.argv[1], "rb").read()
headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
import uvicorn
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
"""


def threaded_static(body: bytes, port: int) -> ThreadingHTTPServer:
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a) -> None:
            pass

    class Quiet(ThreadingHTTPServer):
        def handle_error(self, request, client_address) -> None:  # wrk resets connections at the end
            pass

    srv = Quiet(("127.0.0.1", port), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def measure(mode: str, a: argparse.Namespace, tmp: Path) -> dict:
    """One replay of the night with the server under load. mode: 'inprocess' (the replay goes
    through the server's live service) or 'follow' (a `sandik replay` process writes the store,
    the server follows the log)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    db = str(tmp / f"{mode}.sqlite")
    log = open(tmp / f"{mode}-server.log", "w")
    procs = []
    if mode == "inprocess":
        cmd = [SANDIK, "serve", "--db", db, "--port", str(port), "--replay", "tr-2024", "--speed", "max", "--quiet"]
    else:
        subprocess.run([SANDIK, "load", "tr-2024", "--db", db], check=True, capture_output=True)
        cmd = [SANDIK, "serve", "--db", db, "--port", str(port), "--follow"]
    print(f"[{mode}] server: sandik", " ".join(cmd[1:]), flush=True)
    procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    try:
        wait_for(lambda: get_json(base + "/api/health")["ok"], 180, "the server")
        if mode == "follow":
            rcmd = [SANDIK, "replay", "tr-2024", "--db", db, "--speed", "max", "--quiet"]
            print(f"[{mode}] writer: sandik", " ".join(rcmd[1:]), flush=True)
            procs.append(subprocess.Popen(rcmd, stdout=open(tmp / "replay.log", "w"), stderr=subprocess.STDOUT, start_new_session=True))
        wait_for(lambda: get_json(base + "/api/elections/current/version")["version"] > 0, 180, "the replay to start")
        urllib.request.urlopen(base + RACE_URL).read()

        v0, t0 = get_json(base + "/api/elections/current/version")["version"], time.monotonic()
        w = wrk(base + RACE_URL, a.duration, a.connections)
        v1, t1 = get_json(base + "/api/elections/current/version")["version"], time.monotonic()
        sse = run_sse(port, a.sse_clients, a.sse_seconds)
        v2, t2 = get_json(base + "/api/elections/current/version")["version"], time.monotonic()

        def finished() -> bool:
            if mode == "follow":
                return procs[1].poll() is not None
            return procs[0].poll() is not None or "replay finished" in (tmp / f"{mode}-server.log").read_text()

        wait_for(finished, 600, "the replay to finish")
        time.sleep(1.0)  # let a follower read the last rows
        body = urllib.request.urlopen(base + RACE_URL).read()
        final_version = get_json(base + "/api/elections/current/version")["version"]
        idle = wrk(base + RACE_URL, a.duration, a.connections)
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGINT)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
    return {"mode": mode, "w": w, "idle": idle, "sse": sse, "body": body, "final": final_version,
            "read_rate": (v1 - v0) / (t1 - t0), "sse_rate": (v2 - v1) / (t2 - t1), "v": (v0, v1, v2)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=10, help="seconds of each wrk run")
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--sse-clients", type=int, default=1000)
    ap.add_argument("--sse-seconds", type=float, default=12.0)
    ap.add_argument("--mode", choices=["inprocess", "follow", "both"], default="both")
    a = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: sh scripts/install-system-deps.sh bench")
    tmp = Path(tempfile.mkdtemp(prefix="sandik-bench-"))
    load0 = ", ".join(f"{x:.2f}" for x in os.getloadavg())  # other jobs on the machine skew every figure
    runs = [measure(m, a, tmp) for m in (["inprocess", "follow"] if a.mode == "both" else [a.mode])]
    body = runs[-1]["body"]

    (tmp / "body.json").write_bytes(body)
    sport = free_port()
    sp = subprocess.Popen([sys.executable, "-c", STATIC_ASGI, str(tmp / "body.json"), str(sport)], start_new_session=True)
    try:
        wait_for(lambda: urllib.request.urlopen(f"http://127.0.0.1:{sport}/").read() == body, 30, "the static ASGI server")
        s_asgi = wrk(f"http://127.0.0.1:{sport}/", a.duration, a.connections)
    finally:
        os.killpg(sp.pid, signal.SIGTERM)
        sp.wait(10)
    tport = free_port()
    ts = threaded_static(body, tport)
    try:
        s_thr = wrk(f"http://127.0.0.1:{tport}/", a.duration, a.connections)
    finally:
        ts.shutdown()

    print()
    print(f"load average (1, 5, 15 min) at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}; at the start: {load0}")
    print(f"machine: {os.cpu_count()} cores; response {len(body):,} bytes (Istanbul metropolitan race results); wrk -t1 -c{a.connections} -d{a.duration}s")
    print(f"static servers of the same bytes: bare ASGI app on uvicorn {s_asgi['rps']:,.0f} req/s (p50 {s_asgi['p50']:.2f} ms, p99 {s_asgi['p99']:.2f} ms); "
          f"Python ThreadingHTTPServer {s_thr['rps']:,.0f} req/s (p50 {s_thr['p50']:.2f} ms, p99 {s_thr['p99']:.2f} ms)")  # fmt: skip
    for r in runs:
        w, idle, sse = r["w"], r["idle"], r["sse"]
        d = sse["delays"]
        label = {"inprocess": "replay through the server's live service (one process)", "follow": "replay by a `sandik replay` process, server follows the log"}[r["mode"]]
        print(f"\n[{r['mode']}] {label}; final version {r['final']:,}")
        print(f"  writes during the read test: {r['read_rate']:,.0f} sheets/s (version {r['v'][0]:,} -> {r['v'][1]:,}); during the SSE test: {r['sse_rate']:,.0f} sheets/s (-> {r['v'][2]:,})")
        print(f"  reads under replay {w['rps']:9,.0f} req/s  (ratio to 5,000: {w['rps'] / LIMIT_RPS:.2f}; to static ASGI: {w['rps'] / s_asgi['rps']:.2f}; to http.server: {w['rps'] / s_thr['rps']:.2f})"
              f"  p50 {w['p50']:.2f} ms  p99 {w['p99']:.2f} ms (ratio to 20 ms: {w['p99'] / LIMIT_P99_MS:.2f})  non-2xx {w['non2xx']} {w['socket_errors']}")  # fmt: skip
        print(f"  reads after replay {idle['rps']:9,.0f} req/s  (ratio to 5,000: {idle['rps'] / LIMIT_RPS:.2f}; to static ASGI: {idle['rps'] / s_asgi['rps']:.2f})  p50 {idle['p50']:.2f} ms  p99 {idle['p99']:.2f} ms (ratio to 20 ms: {idle['p99'] / LIMIT_P99_MS:.2f})")
        print(f"  SSE: {sse['connected']:,} of {a.sse_clients:,} clients connected; {len(d):,} frames received in {a.sse_seconds:.0f} s")
        if d:
            print(f"  SSE delay acceptance -> client: p50 {pct(d, 0.5) * 1000:.0f} ms  p99 {pct(d, 0.99) * 1000:.0f} ms (ratio to 1 s: {pct(d, 0.99) / LIMIT_SSE_P99_S:.2f})  max {d[-1] * 1000:.0f} ms")
    print(f"\n(logs: {tmp})")


if __name__ == "__main__":
    main()
