"""Election night at full speed through the write API, against 2 sandik processes on one PostgreSQL.

    python bench/bench_load.py [--pg postgresql://postgres@127.0.0.1:5432/postgres]
                               [--mode batch|single|both] [--writers 8] [--batch 200]
                               [--single-count N] [--readers 4] [--sse 20]

For each mode, on a fresh database:
1. the 2024 elections are loaded and an admin token made; the night (``registry.get("tr-2024")``:
   337,670 official sheets in arrival order) is turned into request bodies beforehand:
   ``batch``: per district board, a request each time a district has ``--batch`` sheets waiting
   (and its remainder at the end); ``single``: one sheet per request (the first ``--single-count``
   sheets of the night, all by default);
2. two servers, ``sandik serve --follow`` on two ports (what ``--workers 2`` runs, with a port each
   so that the bench knows which process answered); each follows the other's writes (NOTIFY + log);
3. ``--writers`` client processes send the bodies as fast as they are answered (keep-alive
   connections), writer i to server i % 2; ``--readers`` processes poll the Istanbul metropolitan
   race's results and the overview on both servers (one request each ``--read-interval`` s) and
   ``--sse`` clients per server listen to the SSE stream;
4. a monitor polls both servers' version every ~2 ms; the visibility delay of an acknowledged
   write (version v from server s at time t) is when the other server first reported a version
   >= v, minus t (0 if it already had; the polling adds up to a few ms).

Prints sheets/s accepted, requests/s, read p50/p99, errors, visibility p50/p99/max, and each
beside its ratio to the issue's goal (5,000 sheets/s in batches, 0 errors, visibility p99 500 ms,
read p99 50 ms).
"""

from __future__ import annotations

import argparse
import bisect
import http.client
import json
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict

import psycopg

GOAL_RATE, GOAL_VIS_P99, GOAL_READ_P99 = 5000.0, 0.500, 0.050


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def fresh_db(base: str, name: str) -> str:
    with psycopg.connect(base, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{name}"')
    return base.rsplit("/", 1)[0] + "/" + name


def prepare(url: str, mode: str, batch: int, single_count: int | None, seed: int) -> tuple[str, str, str, list[tuple[int, bytes]]]:
    from sandik.auth.tokens import TokenStore
    from sandik.datasets import registry
    from sandik.formats.sheet_files import sheet_to_mapping
    from sandik.store.repository import open_store

    ds = registry.get("tr-2024")
    els = ds.elections()
    st = open_store(url)
    for e in els:
        st.save_election(e)
    e = els[-1]
    _tok, secret = TokenStore(st).create(name="bench board", role="admin")
    st.close()
    sheets = [t.sheet for t in ds.night(e, seed)]
    bodies: list[tuple[int, bytes]] = []
    if mode == "single":
        for s in sheets[: single_count or len(sheets)]:
            bodies.append((1, json.dumps(sheet_to_mapping(s)).encode()))
    else:
        waiting: dict[str, list] = defaultdict(list)
        for s in sheets:
            d = e.box_area_ids[e.box_index[s.box_id]]
            waiting[d].append(s)
            if len(waiting[d]) >= batch:
                bodies.append((len(waiting[d]), json.dumps([sheet_to_mapping(x) for x in waiting.pop(d)]).encode()))
        for group in waiting.values():
            bodies.append((len(group), json.dumps([sheet_to_mapping(x) for x in group]).encode()))
    metro = max((r for r in e.races.values() if r.office == "metropolitan_mayor"), key=lambda r: len(e.race_boxes[r.id]))
    return e.id, secret, metro.id, bodies


def start_server(url: str, port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "sandik.cli", "serve", "--follow", "--db", url, "--port", str(port)]
    # One admin token stands for every board here: the per-token write limit (api/security.py) is off.
    env = {**os.environ, "SANDIK_WRITE_RATE": "0"}
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env)


def wait_up(port: int, timeout: float = 180) -> None:
    end = time.time() + timeout
    while time.time() < end:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/api/health")
            r = c.getresponse()
            body = json.loads(r.read())
            if r.status == 200 and body.get("elections_loaded"):
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server on port {port} did not start")


# --- client processes (each returns its records through a queue) ------------------------------
def writer(ports: list[int], i: int, eid: str, secret: str, bodies: list[tuple[int, bytes]], go: mp.Event, out: mp.Queue) -> None:
    port = ports[i % len(ports)]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    hdr = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    recs = []
    go.wait()
    for n, body in bodies:
        t0 = time.time()
        try:
            conn.request("POST", f"/api/elections/{eid}/sheets", body, hdr)
            r = conn.getresponse()
            data = r.read()
            t1 = time.time()
            v = json.loads(data).get("version", 0) if r.status == 200 else 0
            recs.append((port, t0, t1, r.status, v, n))
        except Exception as exc:  # counted as an error
            recs.append((port, t0, time.time(), repr(exc), 0, n))
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    out.put(("w", recs))


def reader(ports: list[int], i: int, paths: list[str], interval: float, stop: mp.Event, out: mp.Queue) -> None:
    conns = {p: http.client.HTTPConnection("127.0.0.1", p, timeout=30) for p in ports}
    lat, errs, k = [], [], i
    while not stop.is_set():
        p = ports[k % len(ports)]
        path = paths[(k // len(ports)) % len(paths)]
        k += 1
        t0 = time.perf_counter()
        try:
            conns[p].request("GET", path)
            r = conns[p].getresponse()
            r.read()
            lat.append(time.perf_counter() - t0)
            if r.status != 200:
                errs.append(r.status)
        except Exception as exc:
            errs.append(repr(exc))
            conns[p] = http.client.HTTPConnection("127.0.0.1", p, timeout=30)
        time.sleep(interval)
    out.put(("r", (lat, errs)))


def monitor(ports: list[int], eid: str, stop: mp.Event, out: mp.Queue) -> None:
    conns = {p: http.client.HTTPConnection("127.0.0.1", p, timeout=30) for p in ports}
    seen: dict[int, list[tuple[float, int]]] = {p: [] for p in ports}
    errs = []
    while not stop.is_set():
        for p in ports:
            try:
                conns[p].request("GET", f"/api/elections/{eid}/version")
                r = conns[p].getresponse()
                v = json.loads(r.read())["version"]
                seen[p].append((time.time(), v))
            except Exception as exc:
                errs.append(repr(exc))
                conns[p] = http.client.HTTPConnection("127.0.0.1", p, timeout=30)
        time.sleep(0.002)
    out.put(("m", (seen, errs)))


def sse(ports: list[int], eid: str, per_server: int, stop: mp.Event, out: mp.Queue) -> None:
    import asyncio

    frames, errs = [0], []

    async def one(port: int) -> None:
        try:
            # A state frame is one long "data:" line: the default 64 KB line limit is too small for it.
            r, w = await asyncio.open_connection("127.0.0.1", port, limit=64 * 1024 * 1024)
            w.write(f"GET /api/elections/{eid}/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n".encode())
            await w.drain()
            head = await r.readuntil(b"\r\n\r\n")
            if b" 200 " not in head.split(b"\r\n", 1)[0]:
                errs.append(head[:80].decode())
                return
            while not stop.is_set():
                try:
                    line = await asyncio.wait_for(r.readline(), 0.5)
                except TimeoutError:
                    continue
                if not line:
                    errs.append("closed")
                    return
                if line.startswith(b"event:"):
                    frames[0] += 1
            w.close()
        except Exception as exc:
            errs.append(repr(exc))

    async def main() -> None:
        await asyncio.gather(*(one(p) for p in ports for _ in range(per_server)))

    asyncio.run(main())
    out.put(("s", (frames[0], errs)))


def run(args: argparse.Namespace, mode: str) -> dict:
    url = fresh_db(args.pg, f"sandik_bench_load_{mode}")
    t = time.time()
    eid, secret, metro, bodies = prepare(url, mode, args.batch, args.single_count, args.seed)
    n_sheets = sum(n for n, _ in bodies)
    print(f"[{mode}] {n_sheets:,} sheets in {len(bodies):,} requests prepared in {time.time() - t:.0f} s", flush=True)
    ports = [free_port(), free_port()]
    servers = [start_server(url, p) for p in ports]
    try:
        for p in ports:
            wait_up(p)
        ctx = mp.get_context("fork")
        go, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
        paths = [f"/api/elections/{eid}/races/{metro}/results", f"/api/elections/{eid}/overview"]
        side = [ctx.Process(target=monitor, args=(ports, eid, stop, out))]
        side += [ctx.Process(target=reader, args=(ports, i, paths, args.read_interval, stop, out)) for i in range(args.readers)]
        if args.sse:
            side.append(ctx.Process(target=sse, args=(ports, eid, args.sse, stop, out)))
        writers = [ctx.Process(target=writer, args=(ports, i, eid, secret, bodies[i :: args.writers], go, out)) for i in range(args.writers)]
        for p in side + writers:
            p.start()
        time.sleep(1.0)
        t0 = time.time()
        go.set()
        results: dict[str, list] = defaultdict(list)
        got = 0
        while got < len(writers):
            kind, data = out.get()
            results[kind].append(data)
            got += kind == "w"
        time.sleep(1.0)  # let the other process catch up with the last writes before the monitor stops
        stop.set()
        while sum(len(results[k]) for k in ("r", "m", "s")) < len(side):
            kind, data = out.get()
            results[kind].append(data)
        for p in side + writers:
            p.join(30)
    finally:
        for s in servers:
            os.killpg(s.pid, signal.SIGTERM)
        for s in servers:
            s.wait(30)
    wrecs = [r for rs in results["w"] for r in rs]
    werr = [r for r in wrecs if r[3] != 200]
    accepted = sum(r[5] for r in wrecs if r[3] == 200)
    span = max(r[2] for r in wrecs) - t0
    lat = [x for lats, _ in results["r"] for x in lats]
    rerr = [e for _, es in results["r"] for e in es]
    (seen, merr), = results["m"]
    vis = []
    for port, _t0, t_ack, status, v, _n in wrecs:
        if status != 200:
            continue
        other = ports[1 - ports.index(port)]
        tl = seen[other]
        k = bisect.bisect_left([x[1] for x in tl], v) if tl else 0
        if k < len(tl):
            vis.append(max(0.0, tl[k][0] - t_ack))
        else:
            vis.append(float("inf"))  # never seen on the other process within the run
    sse_frames = sum(f for f, _ in results["s"])
    sse_err = [e for _, es in results["s"] for e in es]
    wlat = [r[2] - r[1] for r in wrecs]
    return {
        "mode": mode, "sheets": n_sheets, "requests": len(wrecs), "accepted": accepted, "seconds": span,
        "sheets_per_s": accepted / span, "requests_per_s": len(wrecs) / span,
        "write_p50": pct(wlat, 50), "write_p99": pct(wlat, 99),
        "write_errors": len(werr), "write_error_sample": [str(r[3]) for r in werr[:3]],
        "reads": len(lat), "read_p50": pct(lat, 50), "read_p99": pct(lat, 99), "read_errors": len(rerr) + len(merr),
        "vis_p50": pct(vis, 50), "vis_p99": pct(vis, 99), "vis_max": max(vis) if vis else float("nan"),
        "sse_frames": sse_frames, "sse_errors": len(sse_err), "sse_error_sample": sorted(set(sse_err))[:3], "loadavg_after": os.getloadavg(), "writers": args.writers, "readers": args.readers, "sse_clients": 2 * args.sse,
    }  # fmt: skip


def report(r: dict) -> None:
    ms = 1000
    print(f"[{r['mode']}] {r['accepted']:,} of {r['sheets']:,} sheets accepted in {r['seconds']:.1f} s through {r['requests']:,} requests "
          f"({r['writers']} writers, {r['readers']} readers, {r['sse_clients']} SSE clients, 2 processes on PostgreSQL)")
    ratio = r["sheets_per_s"] / GOAL_RATE
    print(f"  sheets/s accepted   {r['sheets_per_s']:10,.0f}   ({ratio:.2f} x the goal of {GOAL_RATE:,.0f}{'' if r['mode'] == 'batch' else '; the goal is for batches'})")
    print(f"  requests/s          {r['requests_per_s']:10,.0f}   write latency p50 {r['write_p50'] * ms:.1f} ms, p99 {r['write_p99'] * ms:.1f} ms")
    print(f"  write errors        {r['write_errors']:10d}   (goal 0) {r['write_error_sample']}")
    print(f"  reads               {r['reads']:10,d}   p50 {r['read_p50'] * ms:.1f} ms, p99 {r['read_p99'] * ms:.1f} ms ({r['read_p99'] / GOAL_READ_P99:.2f} x the 50 ms goal); errors {r['read_errors']}")
    print(f"  visibility on the other process: p50 {r['vis_p50'] * ms:.0f} ms, p99 {r['vis_p99'] * ms:.0f} ms ({r['vis_p99'] / GOAL_VIS_P99:.2f} x the 500 ms goal), max {r['vis_max'] * ms:.0f} ms")
    print(f"  SSE frames received {r['sse_frames']:10,d}   SSE errors {r['sse_errors']} {r['sse_error_sample']}")
    print(f"  load average at the end (1, 5, 15 min): {', '.join(f'{x:.1f}' for x in r['loadavg_after'])}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pg", default=os.environ.get("SANDIK_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"))
    ap.add_argument("--mode", choices=["batch", "single", "both"], default="both")
    ap.add_argument("--writers", type=int, default=8)
    ap.add_argument("--batch", type=int, default=200, help="sheets a district board sends at once")
    ap.add_argument("--single-count", type=int, default=None, help="single mode: only the first N sheets of the night")
    ap.add_argument("--readers", type=int, default=4)
    ap.add_argument("--read-interval", type=float, default=0.01)
    ap.add_argument("--sse", type=int, default=20, help="SSE clients per server")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}; load average before: {', '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    for mode in (["batch", "single"] if args.mode == "both" else [args.mode]):
        r = run(args, mode)
        report(r)
        if args.json:
            print(json.dumps(r))


if __name__ == "__main__":
    main()
