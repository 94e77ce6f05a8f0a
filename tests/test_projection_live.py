"""Projections on a live store, the call log on both backends, and the projection commands."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import pytest
from click.testing import CliRunner

from sandik.cli import main
from sandik.core.model import RaceTotals
from sandik.core.projection.election import build_frames, project_election
from sandik.core.tally import NB
from sandik.ingest.pipeline import Ingestor
from sandik.store import race_calls
from sandik.store.race_calls import CallError
from sandik.store.repository import open_store
from tests.factories import make_election, make_sheet


def elections(seed: int = 3):
    rng = random.Random(seed)
    prev = make_election(seed, districts=4, boxes=30, eid="test-2019")
    agg = {}
    for rid, race in prev.races.items():
        reg = prev.race_registered(rid)
        valid = int(reg * 0.8)
        w = [rng.random() for _ in race.candidates]
        votes = [int(valid * x / sum(w)) for x in w]
        votes[0] += valid - sum(votes)
        agg[rid] = RaceTotals(reg, valid + 10, valid, 10, tuple(votes))
    prev = replace(prev, aggregate_results=agg)
    cur = make_election(seed, districts=4, boxes=30)
    cur = replace(cur, info=replace(cur.info, previous_id=prev.id))
    return prev, cur


def sheets(e, frac: float, seed: int = 5):
    rng = random.Random(seed)
    out = []
    for rid, idx in e.race_boxes.items():
        for b in idx.tolist():
            if rng.random() < frac:
                out.append(make_sheet(e, rid, b, rng))
    return out


def test_project_election_from_a_live_tally(store):
    prev, cur = elections()
    store.save_election(prev)
    store.save_election(cur)
    ing = Ingestor(store, cur.id)
    rep = ing.submit(sheets(cur, 0.5))
    assert rep.quarantined == 0
    frames = build_frames(cur, prev)
    assert set(frames) == set(cur.races)
    assert all(f.has_base.all() for f in frames.values())
    out = project_election(cur, ing.tally, prev, frames=frames)
    for rid, oc in out.items():
        d = oc.to_dict()
        assert d["race_id"] == rid
        for lv, (lo, hi) in d["margin_points_interval"].items():
            assert lo <= d["margin_points"] + 1e-9 <= hi + 2e-9
        counted = {c.id: 0 for c in cur.races[rid].candidates}
        rt = ing.tally.races[rid]
        for k, c in enumerate(cur.races[rid].candidates):
            counted[c.id] = int(rt.box_vals[:, NB + k].sum())
        for c in d["candidates"]:
            assert c["counted"] == counted[c["id"]]
            assert c["bounds"][0] == c["counted"] <= c["votes"] <= c["bounds"][1]


def test_no_previous_election_falls_back_and_says_why(store):
    _, cur = elections()
    store.save_election(cur)
    ing = Ingestor(store, cur.id)
    ing.submit(sheets(cur, 0.4))
    out = project_election(cur, ing.tally, None)
    for oc in out.values():
        if oc.projection.mode != "complete":
            assert oc.projection.mode in ("no_baseline",)
            assert any("no previous result" in n for n in oc.projection.notes)
            assert oc.call.kind != "statistical"


def test_call_log_on_both_backends(store):
    _, cur = elections()
    store.save_election(cur)
    rid = next(iter(cur.races))
    a = race_calls.record(store, cur.id, rid, action="call", candidate="A", kind="manual", reason="desk decision", actor="ed")
    assert race_calls.current(store, cur.id)[rid].candidate == "A"
    race_calls.record(store, cur.id, rid, action="withdraw", candidate=None, kind="manual", reason="recount", actor="ed")
    assert rid not in race_calls.current(store, cur.id)
    hist = race_calls.history(store, cur.id, rid)
    assert [h.action for h in hist] == ["call", "withdraw"] and hist[0].id == a.id
    with pytest.raises(CallError):
        race_calls.record(store, cur.id, rid, action="call", candidate=None, kind="manual", reason="x", actor="ed")
    with pytest.raises(CallError):
        race_calls.record(store, cur.id, rid, action="call", candidate="A", kind="manual", reason="  ", actor="ed")


def test_project_and_call_commands(tmp_path, monkeypatch):
    prev, cur = elections()
    db = str(tmp_path / "p.sqlite")
    st = open_store(db)
    st.save_election(prev)
    st.save_election(cur)
    few = next(rid for rid in cur.races if rid.endswith(":mayor"))  # two of its boxes only: the swing comes from the other races
    sh = sheets(cur, 0.6)
    Ingestor(st, cur.id).submit([s for s in sh if s.race_id != few] + [s for s in sh if s.race_id == few][:2])
    st.close()
    r = CliRunner()
    res = r.invoke(main, ["project", "--json", "--db", db, "--record"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert {d["race_id"] for d in rows} == set(cur.races)
    # why a projection is less certain than usual, as codes: every race leaning on other races says so
    assert next(d for d in rows if d["race_id"] == few)["mode"] == "prior"
    for d in rows:
        assert ("few_units" in d["uncertainty"]) == (d["mode"] == "prior")
        assert d["mode"] != "complete" or d["uncertainty"] == []
    from sandik.commands import projection as projection_cmd

    monkeypatch.setattr(projection_cmd.out, "width", 400)  # the table's console was sized when it was made; wide enough not to wrap
    table = r.invoke(main, ["project", "--db", db])
    assert table.exit_code == 0 and "less certain: why" in table.output and "few_units" in table.output
    rid = rows[0]["race_id"]
    one = json.loads(r.invoke(main, ["project", "--race", rid, "--json", "--db", db]).output)
    assert one["race_id"] == rid and "call" in one and "standing_call" in one
    # recorded automatic calls carry the model state
    for rec in json.loads(r.invoke(main, ["calls", "--json", "--db", db]).output):
        assert rec["kind"] in ("lock", "statistical") and rec["model"]["mode"]
    res = r.invoke(main, ["call", rid, "--candidate", "nobody", "--reason", "x", "--db", db])
    assert res.exit_code != 0 and "no candidate" in res.output
    cand = cur.races[rid].candidates[0].id
    assert r.invoke(main, ["call", rid, "--candidate", cand, "--reason", "desk", "--by", "ed", "--db", db]).exit_code == 0
    assert r.invoke(main, ["call", rid, "--withdraw", "--reason", "too early", "--db", db]).exit_code == 0
    log = json.loads(r.invoke(main, ["calls", "--race", rid, "--json", "--db", db]).output)
    assert [x["action"] for x in log][-2:] == ["call", "withdraw"]
    assert log[-1]["reason"] == "too early"
    res = r.invoke(main, ["call", rid, "--withdraw", "--reason", "again", "--db", db])
    assert res.exit_code != 0 and "no standing call" in res.output


def test_council_seats_by_dhondt_over_draws(store):
    prev, cur = elections()
    rid = next(r for r in cur.races if r.endswith(":mayor"))
    council = replace(cur.races[rid], seats=11)
    cur = replace(cur, races={**cur.races, rid: council})
    store.save_election(cur)
    ing = Ingestor(store, cur.id)
    ing.submit(sheets(cur, 0.5))
    out = project_election(cur, ing.tally, prev, races=[rid], council_threshold=0.10)
    d = out[rid].to_dict()
    for lv, per in d["seats"]["intervals"].items():
        for c, (lo, hi) in per.items():
            assert 0 <= lo <= d["seats"]["median"][c] <= hi <= 11


def test_a_served_replay_projects_and_logs_calls_from_the_start_without_any_reader(tmp_path, monkeypatch):
    # `sandik demo` and `sandik serve --replay`: nobody reads the projections or the live stream here,
    # yet the night's projections run and its calls are logged (the worker used to start with the
    # first reader, and the call log with it).
    import sys
    import time

    from sandik.commands.web import serve_with_replay
    from sandik.datasets import registry
    from sandik.live.gc_steward import GcSteward
    from sandik.live.projections import _WORKERS
    from tests.web_support import free_port

    prev, cur = elections()
    night = [registry.Timed(float(i), s) for i, s in enumerate(sheets(cur, 1.0))]
    ds = registry.Dataset("small", "a small night", lambda: [prev, cur], lambda _e, _seed: night)
    monkeypatch.setattr(registry, "get", lambda name, path=None: ds)
    # The server's GC steward changes the whole interpreter's collector for good (its own test runs it
    # in a process of its own): not in this shared test process.
    monkeypatch.setattr(GcSteward, "start_once", classmethod(lambda cls, *a, **k: None))
    st = open_store(str(tmp_path / "night.sqlite"))
    seen: dict = {}

    def after_replay() -> None:
        workers = [w for svc, w in list(_WORKERS.items()) if svc.store is st]
        seen["workers"] = len(workers)
        if workers:
            w = workers[0]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not (w.passes >= 1 and w.tally_version >= w.svc.version):
                time.sleep(0.05)
            seen["passes"], seen["outcomes"] = w.passes, len(w.outcomes)
        seen["calls"] = race_calls.current(st, cur.id)

    switch = sys.getswitchinterval()
    try:
        serve_with_replay(st, dataset="small", speed="max", seed=1, host="127.0.0.1", port=free_port(), quiet=True, linger=False, after_replay=after_replay)
    finally:
        sys.setswitchinterval(switch)
    assert seen["workers"] == 1
    assert seen["passes"] >= 1 and seen["outcomes"] == len(cur.races)
    # every box is in: every race is called, on its complete count, in the log
    assert set(seen["calls"]) == set(cur.races)
    st.close()
