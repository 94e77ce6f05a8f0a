"""Live updates: the single writer, "changes since", and the SSE stream (a slow client gets the latest state, not a backlog)."""

from __future__ import annotations

import asyncio
import json
import threading

import httpx
import pytest

from sandik.api import Settings, create_app
from sandik.auth.tokens import TokenStore
from sandik.live.broadcast import Broadcaster
from sandik.live.service import LiveService
from sandik.store.repository import open_store
from tests.web_support import ServerThread, as_json, elections, sheet


@pytest.fixture
def sqlite_store(tmp_path):
    st = open_store(str(tmp_path / "live.sqlite"))
    prev, cur = elections()
    st.save_election(prev)
    st.save_election(cur)
    yield st, cur
    st.close()


def _frames(text: str) -> list[dict]:
    out = []
    for block in text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if lines.get("event") == "state":
            out.append(json.loads(lines["data"]) | {"_id": lines["id"]})
    return out


def test_writer_thread_serialises_writes_and_versions_grow(sqlite_store):
    st, cur = sqlite_store
    svc = LiveService(st, cur.id)
    svc.start()
    try:
        boxes = [int(b) for b in cur.race_boxes["x.01:metro"]]
        futs = [svc.submit([sheet(cur, "x.01:metro", b, seed=b)]) for b in boxes]
        reports = [f.result(timeout=30) for f in futs]
        assert all(r.accepted == 1 for r in reports)
        assert svc.version == len(boxes) == st.max_seq(cur.id)
        ch = svc.changes(0)
        assert ch["races"] == ["x.01:metro"] and not ch["reset"]
        assert svc.changes(svc.version)["races"] == []
        # A snapshot is built once per version: same object until the next write.
        a = svc.cached("k", lambda: {"v": svc.version})
        assert svc.cached("k", lambda: {"v": -1}) is a
        svc.submit_sync([sheet(cur, "x.02:metro", int(cur.race_boxes["x.02:metro"][0]))])
        assert json.loads(svc.cached("k", lambda: {"v": svc.version}).body) == {"v": svc.version}
        # An error inside the writer reaches the caller instead of killing the thread.
        with pytest.raises(Exception):
            svc.submit_sync([object()])  # type: ignore[list-item]
        assert svc.submit_sync([sheet(cur, "x.02:metro", int(cur.race_boxes["x.02:metro"][1]), seed=9)]).accepted == 1
    finally:
        svc.stop()


def test_slow_sse_client_gets_only_the_latest_state(sqlite_store):
    st, cur = sqlite_store
    svc = LiveService(st, cur.id)
    svc.start()

    async def scenario() -> None:
        b = Broadcaster(svc, min_interval=0.0)
        b.start(asyncio.get_running_loop())
        gen = b.stream()
        assert await anext(gen) == b"retry: 2000\n\n"
        first = _frames((await anext(gen)).decode())[0]
        assert first["version"] == 0
        # The client stops reading while ten batches are written and broadcast.
        boxes = [int(x) for x in cur.race_boxes["x.01:metro"]] + [int(x) for x in cur.race_boxes["x.02:metro"]]
        for i, box in enumerate(boxes[:10]):
            race = "x.01:metro" if box in cur.race_box_set["x.01:metro"] else "x.02:metro"
            await asyncio.to_thread(svc.submit_sync, [sheet(cur, race, box, seed=i)])
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert b.frames_built >= 2  # frames were broadcast while the client slept...
        frame = _frames((await anext(gen)).decode())[0]
        # ...but it gets one frame: the newest, saying which races changed since the last frame built.
        assert frame["version"] == svc.version == 10
        assert frame["boxes_opened"] == 10
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(gen), 0.3)
        await b.stop()
        await gen.aclose()

    try:
        asyncio.run(scenario())
    finally:
        svc.stop()


def test_sse_over_a_real_server(sqlite_store):
    st, cur = sqlite_store
    _t, secret = TokenStore(st).create(name="clerk", role="clerk", areas=["x.01"])
    app = create_app(Settings(sse_min_interval=0.05), store=st)
    with ServerThread(app) as srv:
        got: list[dict] = []
        ready = threading.Event()
        done = threading.Event()

        def listen() -> None:
            with httpx.stream("GET", f"{srv.url}/api/elections/current/events", timeout=30) as r:
                assert r.headers["content-type"].startswith("text/event-stream")
                buf = ""
                for chunk in r.iter_text():
                    buf += chunk
                    while "\n\n" in buf:
                        block, buf = buf.split("\n\n", 1)
                        got.extend(_frames(block + "\n\n"))
                        ready.set()
                        if got and got[-1]["version"] >= 1:
                            done.set()
                            return

        t = threading.Thread(target=listen, daemon=True)
        t.start()
        assert ready.wait(20)
        assert got[0]["version"] == 0 and got[0]["boxes_opened"] == 0
        s = sheet(cur, "x.01:metro", int(cur.race_boxes["x.01:metro"][0]))
        r = httpx.post(f"{srv.url}/api/elections/current/sheets", json=as_json(s), headers={"Authorization": f"Bearer {secret}"})
        assert r.status_code == 200, r.text
        assert done.wait(20)
        last = got[-1]
        assert last["version"] == 1 and last["races"] == ["x.01:metro"] and last["boxes_opened"] == 1 and last["_id"] == "1"
        t.join(5)


def test_follower_counts_what_other_writers_store(sqlite_store, tmp_path):
    st, cur = sqlite_store
    svc = LiveService(st, cur.id)
    svc.start()
    try:
        # Another process (here: its own store connection and ingestor) writes the same file.
        from sandik.ingest.pipeline import Ingestor

        other = open_store(str(tmp_path / "live.sqlite"))
        ing = Ingestor(other, cur.id)
        boxes = [int(b) for b in cur.race_boxes["x.01:metro"]]
        first = [sheet(cur, "x.01:metro", b, seed=b) for b in boxes]
        ing.submit(first)
        fixed = sheet(cur, "x.01:metro", boxes[0], seed=500, reason="recount")
        ing.submit([fixed, sheet(cur, "x.01:metro", boxes[1], seed=6, source="observer-org")])
        assert svc.version == 0
        svc._seen_seq = 0
        n = svc.catch_up()
        assert n == len(boxes) + 1
        from sandik.core.results import race_result

        want = sum(s.valid for s in first[1:]) + fixed.valid
        assert race_result(cur, svc.tally, "x.01:metro").valid == want  # the correction wins, the observer copy is not counted
        assert svc.version == st.max_seq(cur.id)
        assert svc.changes(0)["races"] == ["x.01:metro"]
        assert svc.catch_up() == 0
        # Its own writes and the follower agree: applying them again changes nothing.
        mine = sheet(cur, "x.02:metro", int(cur.race_boxes["x.02:metro"][0]), seed=3)
        svc.submit_sync([mine])
        v = svc.version
        svc.catch_up()
        assert svc.version == st.max_seq(cur.id) >= v
        assert race_result(cur, svc.tally, "x.02:metro").valid == mine.valid
        other.close()
    finally:
        svc.stop()
