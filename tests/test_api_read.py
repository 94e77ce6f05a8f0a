"""The public read API on real SQLite and PostgreSQL: every endpoint, ETag/304, versions, changes, errors."""

from __future__ import annotations

import csv
import io
import json

import pytest
from fastapi.testclient import TestClient

from sandik.api import Settings, create_app
from sandik.auth.tokens import TokenStore
from sandik.core.results import final_results, race_result
from sandik.ingest.pipeline import build_tally
from tests.web_support import as_json, elections, sheet

E = "/api/elections/t-2024"


@pytest.fixture
def api(store):
    prev, cur = elections()
    store.save_election(prev)
    store.save_election(cur)
    app = create_app(Settings(max_body_bytes=50_000), store=store)
    with TestClient(app) as client:
        yield client, store, cur


def _admin(store) -> dict[str, str]:
    _tok, secret = TokenStore(store).create(name="admin", role="admin")
    return {"Authorization": f"Bearer {secret}"}


def _post(client, headers, sheets) -> dict:
    r = client.post(f"{E}/sheets", content=json.dumps([as_json(s) for s in sheets]), headers=headers | {"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    return r.json()


def test_elections_and_election(api):
    client, _store, cur = api
    d = client.get("/api/elections").json()
    ids = [x["id"] for x in d["elections"]]
    assert ids == ["t-2019", "t-2024"]
    assert [x["default"] for x in d["elections"]] == [False, True]
    one = client.get(E).json()
    assert one["previous_id"] == "t-2019" and one["boxes"] == len(cur.box_ids) and one["version"] == 0
    assert client.get("/api/elections/current").json()["id"] == "t-2024"
    parties = client.get(f"{E}/parties").json()["parties"]
    assert {p["code"] for p in parties} == {"A", "B", "C"} and all(p["colour"].startswith("#") for p in parties)


def test_unknown_ids_are_404_in_one_shape(api):
    client, _store, _cur = api
    for path in ("/api/elections/nope", f"{E}/races/nope", f"{E}/areas/nope", f"{E}/boxes/nope", f"{E}/races/x.01:metro/results?area=nope", "/api/nothing-here"):
        r = client.get(path)
        assert r.status_code == 404, path
        err = r.json()["error"]
        assert err["code"] == "not_found" and err["message"], path
    # A real area where the race has no boxes.
    r = client.get(f"{E}/races/x.01:metro/results?area=x.02")
    assert r.status_code == 404 and "no boxes there" in r.json()["error"]["message"]
    r = client.get(f"{E}/changes?since=abc")
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"


@pytest.mark.parametrize("query", ["İstanbul", "Istanbul", "İSTANBUL", "istanbul", "ISTANBUL", "ıstanbul", "Ä°stanbul", "Ã\x84Â°stanbul"[:0] + "Ä°STANBUL"])
def test_area_search_is_turkish_aware(api, query):
    client, _store, _cur = api
    d = client.get(f"{E}/areas", params={"q": query}).json()
    assert d["areas"] and d["areas"][0]["id"] == "x.01", query


def test_area_search_other_names(api):
    client, _store, _cur = api
    assert [a["id"] for a in client.get(f"{E}/areas", params={"q": "KIRIKKALE"}).json()["areas"]] == ["x.02"]
    assert [a["id"] for a in client.get(f"{E}/areas", params={"q": "KadÄ±kÃ¶y"}).json()["areas"]] == ["x.01.d1"]
    assert [a["id"] for a in client.get(f"{E}/areas", params={"q": "uskudar"}).json()["areas"]] == ["x.01.d2"]
    assert client.get(f"{E}/areas", params={"q": "Ankara"}).json()["areas"] == []


def test_area_tree_and_summary(api):
    client, _store, cur = api
    top = client.get(f"{E}/areas").json()
    assert [a["id"] for a in top["areas"]] == ["x.01", "x.02"]
    kids = client.get(f"{E}/areas", params={"parent": "x.01"}).json()
    assert {a["name"] for a in kids["areas"]} == {"Kadıköy", "Üsküdar", "Beşiktaş"}
    s = client.get(f"{E}/areas/x.01.d1").json()
    assert s["area"]["name"] == "Kadıköy" and [p["id"] for p in s["parents"]] == ["x", "x.01"]
    # Every race on the ballot there: the district's own mayor and the province's metro race, at the district.
    assert {r["race_id"] for r in s["races"]} == {"x.01.d1:mayor", "x.01:metro"}
    assert all(r["area_id"] == "x.01.d1" for r in s["races"])
    assert s["main_race_id"] == "x.01.d1:mayor"
    assert client.get(f"{E}/areas/x.01").json()["main_race_id"] == "x.01:metro"


def test_races_candidates_results_at_every_level(api):
    client, store, cur = api
    h = _admin(store)
    boxes = cur.race_boxes["x.01:metro"].tolist()
    sheets = [sheet(cur, "x.01:metro", b, seed=b) for b in boxes[:3]] + [sheet(cur, "x.01.d1:mayor", boxes[0], seed=99)]
    _post(client, h, sheets)
    races = client.get(f"{E}/races", params={"office": "metro_mayor"}).json()["races"]
    assert [r["id"] for r in races] == ["x.01:metro", "x.02:metro"]
    assert {r["id"] for r in client.get(f"{E}/races", params={"area": "x.01.d1"}).json()["races"]} == {"x.01.d1:mayor"}
    race = client.get(f"{E}/races/x.01:metro").json()
    assert [c["id"] for c in race["candidates"]] == ["A", "B", "I"] and race["candidates"][1]["name"] == "B"
    assert client.get(f"{E}/races/x.01:metro/candidates").json()["candidates"] == race["candidates"]

    tally, _ = build_tally(store, cur)
    want = race_result(cur, tally, "x.01:metro")
    d = client.get(f"{E}/races/x.01:metro/results").json()
    r = d["result"]
    assert r["boxes_opened"] == 3 and r["boxes_total"] == len(boxes) and r["status"] == "counting"
    assert r["valid"] == want.valid and [c["votes"] for c in r["candidates"]] == [c.votes for c in want.candidates]
    assert r["leader"] == want.leader and r["margin_votes"] == want.margin_votes
    assert {c["area_id"] for c in d["children"]} == {a for a in ("x.01.d1", "x.01.d2", "x.01.d3") if a in tally.races["x.01:metro"].row_of}
    # The previous (aggregate-only) election beside it, with swing.
    assert d["previous"]["valid"] == cur_prev_valid(store, "x.01:metro")
    assert set(d["comparison"]["swing_points"]) >= {"A", "B"}
    # District level and box level.
    dist = cur.box_area_ids[boxes[0]]
    rd = client.get(f"{E}/races/x.01:metro/results", params={"area": dist}).json()["result"]
    assert rd["area_id"] == dist and rd["valid"] == race_result(cur, tally, "x.01:metro", dist).valid
    rb = client.get(f"{E}/races/x.01:metro/results", params={"box": cur.box_ids[boxes[0]]}).json()["result"]
    assert rb["boxes_total"] == 1 and rb["valid"] == sheets[0].valid
    r = client.get(f"{E}/races/x.01:metro/results", params={"box": cur.box_ids[cur.race_boxes['x.02:metro'][0]]})
    assert r.status_code == 404 and "does not vote" in r.json()["error"]["message"]
    assert client.get(f"{E}/races/x.01:metro/results", params={"box": cur.box_ids[boxes[0]], "area": "x.01"}).status_code == 422


def cur_prev_valid(store, rid: str) -> int:
    return store.election("t-2019").aggregate_results[rid].valid


def test_boxes_of_a_race_and_a_box_with_every_sheet_version(api):
    client, store, cur = api
    h = _admin(store)
    b = int(cur.race_boxes["x.01:metro"][0])
    box_id = cur.box_ids[b]
    s1 = sheet(cur, "x.01:metro", b, seed=1)
    _post(client, h, [s1])
    s2 = sheet(cur, "x.01:metro", b, seed=2, reason="recount")
    _post(client, h, [s2])
    _post(client, h, [sheet(cur, "x.01:metro", b, seed=3, source="oyveotesi")])
    lst = client.get(f"{E}/races/x.01:metro/boxes", params={"limit": 2}).json()
    assert lst["total"] == len(cur.race_boxes["x.01:metro"]) and len(lst["boxes"]) == 2
    first = next(x for x in lst["boxes"] if x["box_id"] == box_id)
    assert first["opened"] and first["valid"] == s2.valid
    d = client.get(f"{E}/boxes/{box_id}").json()
    metro = [s for s in d["sheets"] if s["race_id"] == "x.01:metro"]
    assert [(s["source"], s["version"], s["counted"]) for s in metro] == [("official", 1, False), ("official", 2, True), ("oyveotesi", 1, False)]
    assert metro[1]["reason"] == "recount" and metro[1]["votes"] == s2.votes
    assert d["box"]["area_id"] == cur.box_area_ids[b] and {r["id"] for r in d["races"]} == set(cur.box_races[b])
    assert [s["race_id"] for s in client.get(f"{E}/boxes/{box_id}", params={"race": "x.01:metro"}).json()["sheets"]] == ["x.01:metro"] * 3


def test_overview_scoreboard_compare(api):
    client, store, cur = api
    h = _admin(store)
    _post(client, h, [sheet(cur, rid, int(b), seed=int(b)) for rid in ("x.01:metro", "x.02:metro") for b in cur.race_boxes[rid]])
    ov = client.get(f"{E}/overview").json()
    assert {a["area_id"] for a in ov["areas"]} == {"x.01", "x.02"}
    assert all(a["status"] == "complete" for a in ov["areas"])
    assert ov["boxes_opened"] == ov["boxes_total"] == len(cur.box_ids)
    tally, _ = build_tally(store, cur)
    res = final_results(cur, tally)
    assert sum(p["votes"] for p in ov["party_votes"]) == sum(res[r].valid for r in ("x.01:metro", "x.02:metro"))
    sb = client.get(f"{E}/scoreboard", params={"office": "metro_mayor"}).json()["scoreboards"]
    assert sum(p["won"] for p in sb[0]["parties"]) == 2
    assert client.get(f"{E}/scoreboard", params={"office": "nope"}).status_code == 404
    cmp = client.get(f"{E}/compare", params={"office": "metro_mayor"}).json()
    assert cmp["previous_id"] == "t-2019" and {c["race_id"] for c in cmp["races"]} == {"x.01:metro", "x.02:metro"}
    assert client.get("/api/elections/t-2019/compare").status_code == 404


def test_etag_304_version_and_changes(api):
    client, store, cur = api
    h = _admin(store)
    r1 = client.get(f"{E}/races/x.01:metro/results")
    etag = r1.headers["etag"]
    assert r1.headers["x-sandik-version"] == "0"
    r2 = client.get(f"{E}/races/x.01:metro/results", headers={"If-None-Match": etag})
    assert r2.status_code == 304 and r2.content == b""
    b = int(cur.race_boxes["x.02:metro"][0])
    out = _post(client, h, [sheet(cur, "x.02:metro", b, seed=5)])
    assert out["version"] == 1
    # ETags hash the content: a write in another province leaves this view's ETag as it was...
    r3 = client.get(f"{E}/races/x.01:metro/results", headers={"If-None-Match": etag})
    assert r3.status_code == 304 and r3.headers["x-sandik-version"] == "1"
    # ...while a view that includes the written box changes.
    r4 = client.get(f"{E}/races/x.02:metro/results", headers={"If-None-Match": etag})
    assert r4.status_code == 200 and r4.json()["result"]["boxes_opened"] == 1
    e5 = r4.headers["etag"]
    assert client.get(f"{E}/races/x.02:metro/results", headers={"If-None-Match": f'W/"zzz", {e5}'}).status_code == 304
    ch = client.get(f"{E}/changes", params={"since": 0}).json()
    assert ch["version"] == 1 and ch["races"] == ["x.02:metro"] and "x.02" in ch["areas"] and not ch["reset"]
    assert client.get(f"{E}/changes", params={"since": 1}).json()["races"] == []
    assert client.get(f"{E}/changes", params={"since": 7}).status_code == 400
    assert client.get(f"{E}/version").json()["version"] == 1


def test_exports(api):
    client, store, cur = api
    h = _admin(store)
    b = int(cur.race_boxes["x.01:metro"][0])
    s = sheet(cur, "x.01:metro", b, seed=5)
    _post(client, h, [s])
    rows = list(csv.DictReader(io.StringIO(client.get(f"{E}/export/results.csv").text)))
    metro = [r for r in rows if r["race_id"] == "x.01:metro"]
    assert {r["candidate_id"]: int(r["votes"]) for r in metro} == s.votes
    js = client.get(f"{E}/export/results.json").json()
    assert len(js["rows"]) == len(rows)
    sh = list(csv.DictReader(io.StringIO(client.get(f"{E}/export/sheets.csv").text)))
    assert len(sh) == 1 and sh[0]["box_id"] == s.box_id and int(sh[0]["valid"]) == s.valid
    assert [r["box_id"] for r in client.get(f"{E}/export/sheets.json").json()] == [s.box_id]
    assert [json.loads(line)["box_id"] for line in client.get(f"{E}/export/sheets.ndjson").text.splitlines()] == [s.box_id]
    assert client.get(f"{E}/export/results.xml").status_code == 404


def test_openapi_documents_every_route(api):
    client, _store, _cur = api
    spec = client.get("/openapi.json").json()
    paths = set(spec["paths"])
    for p in ("/api/elections/{election_id}/races/{race_id}/results", "/api/elections/{election_id}/sheets", "/api/elections/{election_id}/events", "/api/tokens"):
        assert p in paths
    assert client.get("/docs").status_code == 200
    assert "sandık" in client.get("/").text


def test_hot_path_serves_the_same_bytes_until_the_version_changes(api):
    client, store, cur = api
    url = f"{E}/races/x.01:metro/results"
    first = client.get(url)
    st = client.app.state.sandik
    assert (url, b"") in st.hot
    again = client.get(url)  # answered from the hot path
    assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
    assert again.headers["content-type"] == "application/json" and int(again.headers["content-length"]) == len(first.content)
    _post(client, _admin(store), [sheet(cur, "x.01:metro", int(cur.race_boxes["x.01:metro"][0]))])
    fresh = client.get(url)  # new version: through FastAPI again, rebuilt
    assert fresh.json()["result"]["boxes_opened"] == 1 and fresh.headers["x-sandik-version"] == "1"


def test_under_a_stream_of_writes_readers_get_the_last_snapshot_at_once_unless_they_ask_for_more(api):
    """Stale while revalidating: during a stream of writes a hot read is answered from the
    previous snapshot (saying its version) while the new one is built; X-Sandik-Min-Version waits."""
    import random
    import time

    from tests.factories import make_sheet

    client, store, cur = api
    url = f"{E}/races/x.01:metro/results"
    assert client.get(url).headers["x-sandik-version"] == "0"  # the URL is now on the hot path
    svc = client.app.state.sandik.registry.get(cur.id)
    rng = random.Random(8)
    boxes = cur.race_boxes["x.01:metro"].tolist()
    for i in range(8):  # eight changes within a second (first sheets, then corrections): a stream
        svc.submit_sync([make_sheet(cur, "x.01:metro", boxes[i % len(boxes)], rng)])
    assert svc.version == 8 and svc.writes_streaming()
    r = client.get(url)
    assert r.status_code == 200 and r.headers["x-sandik-version"] == "0"  # the previous snapshot, at once
    # ... whose rebuild has started: soon the same URL answers with the new version.
    end = time.monotonic() + 30
    while client.get(url).headers["x-sandik-version"] != "8":
        assert time.monotonic() < end
        time.sleep(0.01)
    svc.submit_sync([make_sheet(cur, "x.01:metro", boxes[0], rng)])
    fresh = client.get(url, headers={"X-Sandik-Min-Version": "9"})
    assert fresh.headers["x-sandik-version"] == "9"
    assert fresh.json()["result"]["valid"] == sum(int(svc.tally.box_row("x.01:metro", b)[4]) for b in boxes)


def test_readers_of_a_stale_snapshot_share_one_rebuild_and_each_gets_its_version(api):
    """Single flight (api/deps.py): however many readers find a snapshot stale at once, it is
    rebuilt once, on the snapshot threads, and each gets a version at least as new as the one
    current when it asked, even when the rebuild in flight had read an older one."""
    import asyncio
    import threading

    from sandik.api.deps import current_snapshot, rebuild
    from sandik.live import views

    client, store, cur = api
    st = client.app.state.sandik
    svc = st.registry.get(cur.id)
    race = "x.01:metro"
    builds: list[int] = []
    entered, release = threading.Event(), threading.Event()

    def build():
        builds.append(svc.version)
        entered.set()
        assert release.wait(10)
        return views.race_view(cur, svc.tally, race, None, None)

    async def scenario():
        loop = asyncio.get_running_loop()
        v0 = svc.version
        first = rebuild(st, svc, "k", build)  # takes the lock and reads v0, then waits
        assert await loop.run_in_executor(None, entered.wait, 10)
        readers = [asyncio.ensure_future(current_snapshot(st, svc, "k", build)) for _ in range(20)]
        await asyncio.sleep(0)
        assert all(st.rebuilds[(cur.id, "k")] is first for _ in readers)  # they wait for the one in flight
        release.set()
        same = await asyncio.gather(*readers)
        assert {s.version for s in same} == {v0} and len(builds) == 1  # one build served all twenty
        # A reader whose version is newer than the rebuild in flight has read waits for another.
        entered.clear()
        release.clear()
        svc.version = v0 + 1  # what a write committed meanwhile would have done (under the lock)
        old = rebuild(st, svc, "k2", build)
        assert await loop.run_in_executor(None, entered.wait, 10)
        svc.version = v0 + 2
        newer = asyncio.ensure_future(current_snapshot(st, svc, "k2", build))
        await asyncio.sleep(0)
        release.set()
        assert (await old).version == v0 + 1
        assert (await newer).version == v0 + 2 and builds[-2:] == [v0 + 1, v0 + 2]

    asyncio.run(scenario())


def test_the_default_election_is_kept_briefly_and_forgotten_when_this_store_saves_one(tmp_path, monkeypatch):
    from dataclasses import replace

    from sandik.store import repository
    from sandik.store.repository import open_store

    prev, cur = elections()
    a = open_store(str(tmp_path / "x.sqlite"))
    b = open_store(str(tmp_path / "x.sqlite"))  # another process on the same file
    try:
        a.save_election(prev)
        assert a.default_election_id() == prev.id
        a.save_election(cur)  # saved here: known at once
        assert a.default_election_id() == cur.id
        later = replace(cur, info=replace(cur.info, id="t-2029", date=cur.info.date.replace(year=2029), previous_id=cur.id))
        b.save_election(later)  # saved by the other process: seen once the kept answer is older than the TTL
        monkeypatch.setattr(repository, "DEFAULT_ID_TTL", 3600.0)
        assert a.default_election_id() == cur.id
        monkeypatch.setattr(repository, "DEFAULT_ID_TTL", 0.0)
        assert a.default_election_id() == "t-2029"
    finally:
        a.close()
        b.close()
