"""Projections and race calls on the API: timer-computed projections, automatic calls logged, hand calls by admins
(audited), and 'projection' events on the SSE stream. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading

import httpx
import pytest
from fastapi.testclient import TestClient

from sandik.api import Settings, create_app
from sandik.auth.tokens import TokenStore
from sandik.live.projections import MODEL_ACTOR, worker_for
from sandik.store.repository import open_store
from tests.web_support import ServerThread, as_json, elections, sheet

E = "/api/elections/t-2024"
METRO = "x.01:metro"


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def api(store):
    prev, cur = elections()
    store.save_election(prev)
    store.save_election(cur)
    tokens = TokenStore(store)
    _t, admin = tokens.create(name="desk chief", role="admin")
    _t, clerk = tokens.create(name="clerk", role="clerk", areas=["x"])
    app = create_app(Settings(), store=store)
    with TestClient(app) as client:
        yield client, store, cur, {"admin": admin, "clerk": clerk}, app


def count(client, cur, secret, race: str, n: int | None = None) -> int:
    boxes = cur.race_boxes[race].tolist()[: n if n is not None else None]
    sheets = [sheet(cur, race, int(b), seed=i) for i, b in enumerate(boxes)]
    r = client.post(f"{E}/sheets", content=json.dumps([as_json(s) for s in sheets]), headers=bearer(secret) | {"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    return r.json()["version"]


def settled(app, version: int):
    svc = app.state.sandik.registry.get("t-2024")
    w = worker_for(svc)
    assert w.wait_for(version), "the projection worker did not catch up"
    return w


def test_projection_of_a_race_is_marked_and_has_intervals(api):
    client, _store, cur, secrets, app = api
    v = count(client, cur, secrets["clerk"], METRO, n=2)
    settled(app, v)
    r = client.get(f"{E}/races/{METRO}/projection")
    assert r.status_code == 200, r.text
    p = r.json()["projection"]
    assert p["kind"] == "projection" and p["race_id"] == METRO and p["tally_version"] == v
    assert 0 < p["pct_expected_vote_counted"] < 1 and p["mode"] != "complete"
    # two boxes: the swing comes from the other races, and the payload says so in a code a page can translate
    assert p["mode"] == "prior" and p["uncertainty"] == ["few_units"]
    assert {c["id"] for c in p["candidates"]} == {c.id for c in cur.races[METRO].candidates}
    assert abs(sum(c["p_win"] for c in p["candidates"]) - 1) < 1e-6
    for c in p["candidates"]:
        assert set(c["share_interval"]) == {"80", "90", "95", "99"}
        # nested intervals: the 99% one holds the 80% one
        lo80, hi80 = c["share_interval"]["80"]
        lo99, hi99 = c["share_interval"]["99"]
        assert lo99 <= lo80 <= hi80 <= hi99
        # what is counted is a hard floor of the projected final votes
        assert c["votes_interval"]["99"][0] >= c["counted"]
    # cached bytes: the same ETag until the next pass, and a 304 for it
    etag = r.headers["etag"]
    assert client.get(f"{E}/races/{METRO}/projection", headers={"If-None-Match": etag}).status_code == 304
    allp = client.get(f"{E}/projections").json()
    row = next(x for x in allp["races"] if x["race_id"] == METRO)
    assert allp["kind"] == "projection" and row["leader"] == p["leader"] and row["tally_version"] == v


def test_unknown_race_and_errors(api):
    client, *_ = api
    r = client.get(f"{E}/races/nope/projection")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert client.get("/api/elections/nope/projections").status_code == 404
    assert client.get(f"{E}/calls/history?race=nope").status_code == 404


def test_only_changed_races_are_reprojected(api):
    client, _store, cur, secrets, app = api
    v = count(client, cur, secrets["clerk"], METRO, n=2)
    w = settled(app, v)
    other = next(r for r in cur.races if r != METRO and len(cur.race_boxes[r]))
    before = dict(w.outcomes)
    v2 = count(client, cur, secrets["clerk"], other, n=1)
    settled(app, v2)
    assert w.outcomes[other]["tally_version"] == v2
    # METRO's tally did not change: its projection is the one computed before, untouched
    assert w.outcomes[METRO] is before[METRO]


def test_complete_race_is_called_by_lock_and_logged(api):
    client, store, cur, secrets, app = api
    v = count(client, cur, secrets["clerk"], METRO)
    settled(app, v)
    calls = client.get(f"{E}/calls").json()["calls"]
    c = next(x for x in calls if x["race_id"] == METRO)
    result = client.get(f"{E}/races/{METRO}/results").json()["result"]
    assert c["kind"] == "lock" and c["actor"] == MODEL_ACTOR and c["candidate"] == result["leader"]
    assert c["model"]["mode"] == "complete" and c["area_name"] == "İstanbul"
    hist = client.get(f"{E}/calls/history?race={METRO}").json()["history"]
    assert [h["action"] for h in hist] == ["call"]


def test_hand_call_needs_an_admin_a_reason_and_is_audited(api):
    client, store, cur, secrets, app = api
    cand = cur.races[METRO].candidates[1].id
    url = f"{E}/races/{METRO}/call"
    body = {"action": "call", "candidate": cand, "reason": "desk decision"}
    assert client.post(url, json=body).status_code == 401
    r = client.post(url, json=body, headers=bearer(secrets["clerk"]))
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert client.post(url, json={**body, "candidate": "nobody"}, headers=bearer(secrets["admin"])).status_code == 422
    assert client.post(url, json={**body, "reason": ""}, headers=bearer(secrets["admin"])).status_code == 422
    assert client.post(url, json={"action": "withdraw", "reason": "x"}, headers=bearer(secrets["admin"])).status_code == 409
    assert client.post(url, content="action=call", headers=bearer(secrets["admin"]) | {"Content-Type": "text/plain"}).status_code == 415
    r = client.post(url, json=body, headers=bearer(secrets["admin"]))
    assert r.status_code == 201, r.text
    rec = r.json()["call"]
    assert rec["kind"] == "manual" and rec["actor"] == "desk chief" and rec["candidate"] == cand and rec["reason"] == "desk decision"
    assert [c["candidate"] for c in client.get(f"{E}/calls").json()["calls"] if c["race_id"] == METRO] == [cand]
    r = client.post(url, json={"action": "withdraw", "reason": "too early"}, headers=bearer(secrets["admin"]))
    assert r.status_code == 201 and r.json()["call"]["action"] == "withdraw"
    assert all(c["race_id"] != METRO for c in client.get(f"{E}/calls").json()["calls"])
    audit = client.get("/api/audit", headers=bearer(secrets["admin"])).json()["entries"]
    mine = [a for a in audit if a["action"] == "calls.record"]
    assert {(a["status"], a["detail"].get("action")) for a in mine} >= {(201, "call"), (201, "withdraw"), (403, None), (401, None), (409, "withdraw")}
    # The model does not overrule the admin: with the race now complete, no automatic call follows the withdrawal.
    v = count(client, cur, secrets["clerk"], METRO)
    settled(app, v)
    assert all(c["race_id"] != METRO for c in client.get(f"{E}/calls").json()["calls"])
    assert client.get(f"{E}/races/{METRO}/projection").json()["projection"]["call"]["called"] is True


def test_projection_events_on_the_sse_stream(tmp_path):
    st = open_store(str(tmp_path / "sse.sqlite"))
    prev, cur = elections()
    st.save_election(prev)
    st.save_election(cur)
    _t, secret = TokenStore(st).create(name="clerk", role="clerk", areas=["x"])
    app = create_app(Settings(sse_min_interval=0.05), store=st)
    with ServerThread(app) as srv:
        events: list[tuple[str, dict]] = []
        ready, done = threading.Event(), threading.Event()

        def listen() -> None:
            with httpx.stream("GET", f"{srv.url}{E}/events", timeout=30) as r:
                buf = ""
                for chunk in r.iter_text():
                    buf += chunk
                    while "\n\n" in buf:
                        block, buf = buf.split("\n\n", 1)
                        name = next((ln[7:] for ln in block.splitlines() if ln.startswith("event: ")), None)
                        data = next((ln[6:] for ln in block.splitlines() if ln.startswith("data: ")), None)
                        if name and data:
                            events.append((name, json.loads(data)))
                            ready.set()
                            if name == "projection" and any(c["race_id"] == METRO for c in json.loads(data)["calls"]):
                                done.set()
                                return

        t = threading.Thread(target=listen, daemon=True)
        t.start()
        assert ready.wait(20)
        sheets = [as_json(sheet(cur, METRO, int(b), seed=i)) for i, b in enumerate(cur.race_boxes[METRO].tolist())]
        r = httpx.post(f"{srv.url}{E}/sheets", json=sheets, headers=bearer(secret))
        assert r.status_code == 200, r.text
        assert done.wait(30), events
        ev = next(d for n, d in events if n == "projection" and d["calls"])
        assert METRO in ev["races"] and ev["calls"][0]["kind"] == "lock" and ev["tally_version"] >= 1
        t.join(5)
    st.close()


def test_worker_projections_equal_project_election(api):
    """The worker's chunked passes give what ``project_election`` gives on the same counted sheets."""
    from sandik.core.projection.election import project_election
    from sandik.ingest.pipeline import build_tally
    from sandik.live.projections import alliances_of

    client, store, cur, secrets, app = api
    count(client, cur, secrets["clerk"], METRO, n=3)
    v = count(client, cur, secrets["clerk"], "x.02:metro", n=2)
    w = settled(app, v)
    tally, _ = build_tally(store, cur)
    want = project_election(cur, tally, store.election("t-2019"), alliances=alliances_of(cur.info.country))
    assert set(want) == set(w.outcomes)
    for rid, oc in want.items():
        got = {k: x for k, x in w.outcomes[rid].items() if k != "tally_version"}
        assert json.loads(json.dumps(got)) == json.loads(json.dumps(oc.to_dict(), default=float)), rid


def test_worker_with_child_processes_equals_project_election(api, monkeypatch):
    """``SANDIK_PROJECTION_PROCESSES=2``: the worker's passes run in two child processes and give the same outcomes."""
    from sandik.core.projection.election import project_election
    from sandik.ingest.pipeline import build_tally
    from sandik.live.projections import alliances_of

    monkeypatch.setenv("SANDIK_PROJECTION_PROCESSES", "2")
    client, store, cur, secrets, app = api
    v = count(client, cur, secrets["clerk"], METRO, n=3)
    w = settled(app, v)
    assert w.processes == 2 and w._projector is not None, w.errors
    v = count(client, cur, secrets["clerk"], "x.02:metro", n=2)
    settled(app, v)
    tally, _ = build_tally(store, cur)
    want = project_election(cur, tally, store.election("t-2019"), alliances=alliances_of(cur.info.country))
    assert set(want) == set(w.outcomes) and "processes" not in w.errors
    for rid, oc in want.items():
        got = {k: x for k, x in w.outcomes[rid].items() if k != "tally_version"}
        assert json.loads(json.dumps(got)) == json.loads(json.dumps(oc.to_dict(), default=float)), rid


def test_worker_with_child_processes_projects_council_seats_from_the_draws(store, monkeypatch):
    """The children send a race's bootstrap draws back only where the worker needs them (a
    council's seat projection); the seats equal those of ``project_election`` in one process."""
    from dataclasses import replace

    from sandik.core.projection.election import project_election
    from sandik.ingest.pipeline import build_tally
    from sandik.live.projections import alliances_of

    monkeypatch.setenv("SANDIK_PROJECTION_PROCESSES", "2")
    prev, cur = elections()
    council = next(r for r in cur.races if r != METRO)
    cur = replace(cur, races={**cur.races, council: replace(cur.races[council], seats=11)})
    prev = replace(prev, races={**prev.races, council: cur.races[council]})
    store.save_election(prev)
    store.save_election(cur)
    _t, clerk = TokenStore(store).create(name="clerk", role="clerk", areas=["x"])
    app = create_app(Settings(), store=store)
    with TestClient(app) as client:
        count(client, cur, clerk, METRO, n=3)
        w = settled(app, count(client, cur, clerk, council, n=2))
        assert w.processes == 2 and w._projector is not None, w.errors
        assert w._projector.last[council].projection.draws is not None  # a council's draws come back
        assert w._projector.last[METRO].projection.draws is None  # a mayor's stay in its child
        tally, _ = build_tally(store, cur)
        want = project_election(cur, tally, prev, alliances=alliances_of(cur.info.country))[council].to_dict()
        got = w.outcomes[council]
        assert got["seats"] and json.loads(json.dumps(got["seats"])) == json.loads(json.dumps(want["seats"]))


def test_worker_goes_on_in_its_thread_when_a_child_dies(api, monkeypatch):
    from sandik.core.projection.election import project_election
    from sandik.ingest.pipeline import build_tally
    from sandik.live.projections import alliances_of

    monkeypatch.setenv("SANDIK_PROJECTION_PROCESSES", "2")
    client, store, cur, secrets, app = api
    w = settled(app, count(client, cur, secrets["clerk"], METRO, n=2))
    assert w._projector is not None
    w._projector._procs[0].kill()
    w._projector._procs[0].join(timeout=10)
    settled(app, count(client, cur, secrets["clerk"], "x.02:metro", n=2))
    assert w.processes == 1 and w._projector is None and "processes" in w.errors
    tally, _ = build_tally(store, cur)
    want = project_election(cur, tally, store.election("t-2019"), alliances=alliances_of(cur.info.country))
    for rid, oc in want.items():
        got = {k: x for k, x in w.outcomes[rid].items() if k != "tally_version"}
        assert json.loads(json.dumps(got)) == json.loads(json.dumps(oc.to_dict(), default=float)), rid


def test_a_sweep_redoes_the_races_whose_prior_drifted_and_publishes_only_those(api, monkeypatch):
    """A race no sheet reached keeps its outcome while its pooled prior stays within
    ``ModelParams.prior_reuse_sd`` of the one it was made with; the worker's sweep (every pass
    here) redoes it once the prior has drifted past that, and re-publishes nothing else."""
    from sandik.core.projection.model import ModelParams
    from sandik.core.projection.pool import prior_close
    from sandik.live import projections

    monkeypatch.setattr(projections, "PRIOR_EVERY", 0.0)
    client, _store, cur, secrets, app = api
    others = [r for r in cur.races if r != METRO and len(cur.race_boxes[r]) > 1]
    for r in others[:4]:  # a box of four other races: enough of them for a pooled prior
        count(client, cur, secrets["clerk"], r, n=1)
    v = count(client, cur, secrets["clerk"], METRO, n=3)
    w = settled(app, v)
    assert w.wait_for_sweep(v)
    # counted enough for its own model (an earlier sweep took only races in prior mode), not enough to do without the prior
    assert w.outcomes[METRO]["mode"] == "model"
    kept_prior = w._frames[METRO]._outcome_cache[1]
    assert kept_prior is not None  # three boxes: the race still leans on the pooled prior
    before = dict(w.outcomes)
    events: list[dict] = []
    w.listeners.append(events.append)
    for r in others[:4]:  # the same races counted whole: the pooled swing moves a lot
        v = count(client, cur, secrets["clerk"], r)
    settled(app, v)
    assert w.wait_for_sweep(v)
    new_prior = w._frames[METRO]._outcome_cache[1]
    assert not prior_close(kept_prior, new_prior, ModelParams().prior_reuse_sd)
    assert w.outcomes[METRO] is not before[METRO]  # redone by the sweep, though no sheet reached it
    assert METRO in {r for ev in events for r in ev["races"]}
    # one more box of one race, every prior taken as within tolerance: the sweep redoes nothing, and
    # re-sends nothing but the race the box is of
    from sandik.core.projection import pool

    monkeypatch.setattr(pool, "prior_close", lambda kept, new, tol: True)
    events.clear()
    before = dict(w.outcomes)
    target = next(r for r in cur.races if r != METRO and r not in others[:4] and len(cur.race_boxes[r]))
    v = count(client, cur, secrets["clerk"], target, n=1)
    settled(app, v)
    assert w.wait_for_sweep(v)
    assert {r for ev in events for r in ev["races"]} == {target}
    swept = [r for r, d in before.items() if r != target and d["mode"] != "complete"]
    assert swept and all(w.outcomes[r] is before[r] for r in swept)


def test_the_worker_copies_only_the_races_that_changed(api):
    """Each pass works on a copy of the box vectors taken under the writer's lock; a race no sheet
    reached since the pass before keeps its copy (read-only) instead of being copied again."""
    client, _store, cur, secrets, app = api
    v = count(client, cur, secrets["clerk"], METRO, n=2)
    w = settled(app, v)
    before = {rid: kept.box_vals for rid, kept in w._copies.items()}
    assert set(before) == set(w._frames) and not any(a.flags.writeable for a in before.values())
    other = next(r for r in cur.races if r != METRO and len(cur.race_boxes[r]))
    v2 = count(client, cur, secrets["clerk"], other, n=1)
    settled(app, v2)
    assert w._copies[other].box_vals is not before[other]
    assert w._copies[other].box_vals[:, 0].sum() == 1  # the box just counted is in the new copy
    assert all(w._copies[r].box_vals is before[r] for r in before if r != other)


def test_the_worker_hashes_only_the_counts_that_changed(api):
    """In the worker's thread a pass needs every race's count digest (pool.state_key); a race whose
    copy is the one of the pass before keeps its digest, the others get the digest of their new count."""
    from sandik.core.projection.election import race_state
    from sandik.core.projection.pool import state_key
    from sandik.live.projections import _TallyCopy

    client, _store, cur, secrets, app = api
    v = count(client, cur, secrets["clerk"], METRO, n=2)
    w = settled(app, v)
    assert w.processes == 1
    before = {rid: kept.key for rid, kept in w._copies.items()}
    assert set(before) == set(w._frames)
    other = next(r for r in cur.races if r != METRO and len(cur.race_boxes[r]))
    v2 = count(client, cur, secrets["clerk"], other, n=1)
    settled(app, v2)
    for rid, kept in w._copies.items():
        key = kept.key
        if rid == other:
            assert key != before[rid]
        else:
            assert key is before[rid]  # kept, not hashed again
        assert key == state_key(race_state(w._frames[rid], _TallyCopy(w._copies)))
