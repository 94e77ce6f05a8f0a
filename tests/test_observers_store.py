"""Observers' entries, confirmation and the discrepancy workflow on real SQLite and PostgreSQL."""

import json
import random
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner

from sandik.core.discrepancy import ObserverError
from sandik.errors import NotFound
from sandik.ingest.pipeline import Ingestor
from sandik.observers import service
from sandik.observers.forensics_store import forensics_report, pvt_report
from tests.factories import make_election, make_sheet

ORG = "oyveotesi"


@pytest.fixture
def counted(store):
    e = make_election(11, provinces=2, districts=3, boxes=4)
    store.save_election(e)
    rng = random.Random(5)
    sheets = [make_sheet(e, rid, b, rng) for rid, idx in e.race_boxes.items() for b in idx.tolist()]
    ing = Ingestor(store, e.id)
    assert ing.submit(sheets).accepted == len(sheets)
    return store, e, sheets, ing


def _swap(s):
    ids = sorted(s.votes, key=lambda c: -s.votes[c])
    v = dict(s.votes)
    v[ids[0]], v[ids[1]] = v[ids[1]], v[ids[0]]
    return v


def test_k_entries_confirm_a_copy_that_is_never_counted(counted):
    store, e, sheets, ing = counted
    s = next(x for x in sheets if x.race_id == "x.01:metro" and len(set(x.votes.values())) == len(x.votes))
    copy = replace(s, source=ORG, votes=_swap(s))
    r1 = service.add_entries(store, e.id, ORG, "v1", [copy], k=3)
    r2 = service.add_entries(store, e.id, ORG, "v2", [copy], k=3)
    assert (r1.stored, r1.ingested, r2.ingested) == (1, 0, 0) and r2.confirmations[0]["status"] == "pending"
    r3 = service.add_entries(store, e.id, ORG, "v3", [copy], k=3)
    assert r3.ingested == 1 and r3.confirmations[0]["status"] == "confirmed"
    hist = store.history(e.id, s.box_id, s.race_id, ORG)
    assert len(hist) == 1 and hist[0].submitted_by.startswith(f"{ORG}:k=3:")
    # the organisation's copy is not counted: a fresh tally equals the official sheets only
    from sandik.ingest.pipeline import build_tally

    rebuilt, _ = build_tally(store, e)
    assert np.array_equal(rebuilt.races[s.race_id].agg, ing.tally.races[s.race_id].agg)
    b = e.box_index[s.box_id]
    assert rebuilt.box_row(s.race_id, b)[7:].tolist() == [s.votes[c.id] for c in e.races[s.race_id].candidates]


def test_bad_observer_input_is_refused_or_quarantined(counted):
    store, e, sheets, _ = counted
    s = replace(sheets[0], source=ORG)
    other_race = next(r for r in e.races if e.box_index[s.box_id] not in e.race_box_set[r])
    rep = service.add_entries(store, e.id, ORG, "v1", [replace(s, box_id="x.99.nowhere.1"), replace(s, race_id=other_race), replace(s, race_id="nope")], k=1)
    assert rep.stored == 0 and len(rep.refused) == 3
    assert "does not exist" in rep.refused[0]["error"] and "does not vote in race" in rep.refused[1]["error"]
    with pytest.raises(ObserverError):
        service._check_entry(e, s, "official")
    # a copy contradicting itself (candidates do not add up to valid) is confirmed but quarantined, never stored as a sheet
    bad = replace(s, valid=s.valid + 5, valid_unchallenged=s.valid_unchallenged + 5)
    rep = service.add_entries(store, e.id, ORG, "v1", [bad], k=1)
    assert rep.ingested == 0 and rep.quarantined and "E6" in rep.quarantined[0]["rules"]
    assert store.history(e.id, s.box_id, s.race_id, ORG) == []
    # a duplicate entry is harmless: the confirmed copy is ingested once
    good = replace(s, votes=_swap(s)) if len(set(s.votes.values())) > 1 else s
    service.add_entries(store, e.id, ORG, "v1", [good], k=1)
    service.add_entries(store, e.id, ORG, "v1", [good], k=1)
    assert len(store.history(e.id, s.box_id, s.race_id, ORG)) == 1


def test_discrepancy_workflow_and_history(counted):
    store, e, sheets, ing = counted
    cands = [x for x in sheets if len(set(x.votes.values())) == len(x.votes)][:3]
    for s in cands:
        service.add_entries(store, e.id, ORG, "v1", [replace(s, source=ORG, votes=_swap(s))], k=1)
    same = next(x for x in sheets if x not in cands)
    service.add_entries(store, e.id, ORG, "v1", [replace(same, source=ORG)], k=1)
    counts = service.sync_discrepancies(store, e.id)
    assert counts["opened"] == 3
    assert service.sync_discrepancies(store, e.id)["opened"] == 0
    rows = service.discrepancy_list(store, e.id)
    assert len(rows) == 3 and all(r["kind"] == "candidates_swapped" and r["status"] == "open" for r in rows)
    assert [abs(r["effect_on_margin"]) for r in rows] == sorted((abs(r["effect_on_margin"]) for r in rows), reverse=True)
    d = rows[0]
    with pytest.raises(ObserverError):
        service.transition(store, d["id"], "resolved", by="ana")  # no reason
    service.transition(store, d["id"], "under_review", by="ana")
    # the board corrects the official sheet: the next sync settles the discrepancy by itself
    s = next(x for x in cands if x.box_id == d["box_id"] and x.race_id == d["race_id"])
    ing.submit([replace(s, votes=_swap(s), reason="columns swapped")])
    assert service.sync_discrepancies(store, e.id)["auto_resolved"] == 1
    got = service.discrepancy(store, d["id"])
    assert got["status"] == "resolved" and [h["to_status"] for h in got["history"]] == ["open", "under_review", "resolved"]
    assert got["history"][-1]["corrected_version"] == 2
    other = rows[1]
    service.transition(store, other["id"], "dismissed", by="ana", reason="photo unreadable")
    with pytest.raises(ObserverError):
        service.transition(store, other["id"], "under_review", by="ana")  # dismissed -> only reopen
    with pytest.raises(ObserverError):
        service.transition(store, rows[2]["id"], "resolved", by="ana", reason="x", corrected_version=9)
    with pytest.raises(NotFound):
        service.transition(store, 99999, "open", by="ana")
    assert len(service.discrepancy_list(store, e.id)) == 2  # open and resolved stay; the dismissed one is not "real"
    csv_text = service.export_csv(service.discrepancy_list(store, e.id, status="open"))
    assert csv_text.splitlines()[0].startswith("id,box_id") and len(csv_text.splitlines()) == 2
    impacts = service.race_impacts(store, e.id)
    assert impacts and all("could" in r["wording"] for r in impacts)
    side = service.box_sheets(store, e.id, rows[2]["box_id"])
    race = next(r for r in side["races"] if r["race_id"] == rows[2]["race_id"])
    assert set(race["copies"]) == {"official", ORG} and race["differs"][ORG]


def test_forensics_report_and_cli_json(counted, tmp_path):
    store, e, sheets, _ = counted
    rep = forensics_report(store, e.id)
    assert rep["sheets"] == len(sheets) and all(f["note"] and f["method_version"] for f in rep["flags"])
    if store.dialect != "sqlite":
        return
    from sandik.cli import main

    db = str(store.engine.url.database)
    res = CliRunner().invoke(main, ["forensics", "--db", db, "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["sheets"] == len(sheets) and {"flags", "races", "method_version"} <= set(data)
    res = CliRunner().invoke(main, ["observers", "discrepancies", "--db", db, "--csv", "-"])
    assert res.exit_code == 0 and res.output.startswith("id,box_id")


def test_pvt_report_from_confirmed_copies(counted):
    store, e, sheets, _ = counted
    rid = "x.01:metro"
    mine = [replace(s, source=ORG) for s in sheets if s.race_id == rid]
    service.add_entries(store, e.id, ORG, "v1", mine, k=1)
    rep = pvt_report(store, e.id, rid, ORG, n=len(mine), seed=1, strata="parent")
    # every box sampled and identical copies: the estimate equals the official shares
    for c in rep["candidates"]:
        assert c["pvt"] == pytest.approx(c["official"]) and not c["outside"]
    assert rep["counted_share"] == pytest.approx(1.0)
    with pytest.raises(NotFound):
        pvt_report(store, e.id, "x.02:metro", ORG, n=5, seed=1)


def test_cli_enter_refuses_unknown_box_and_confirms_the_rest(tmp_path):
    # The command line on an SQLite file (the service itself is tested on both backends above).
    from sandik.cli import main
    from sandik.store.repository import open_store

    store = open_store(str(tmp_path / "cli.sqlite"))
    e = make_election(11, provinces=2, districts=3, boxes=4)
    store.save_election(e)
    rng = random.Random(5)
    sheets = [make_sheet(e, rid, b, rng) for rid, idx in e.race_boxes.items() for b in idx.tolist()]
    Ingestor(store, e.id).submit(sheets)
    from sandik.formats.sheet_files import write_csv

    s = replace(sheets[0], source=ORG, submitted_by="")
    f = tmp_path / "obs.csv"
    with open(f, "w") as fh:
        write_csv([s, replace(s, box_id="x.01.nowhere.1")], fh)
    db = str(store.engine.url.database)
    res = CliRunner().invoke(main, ["observers", "enter", str(f), "--org", ORG, "--entrant", "v1", "--k", "1", "--db", db, "--json"])
    assert res.exit_code == 1
    rep = json.loads(res.output)
    assert rep["stored"] == 1 and rep["ingested"] == 1 and "does not exist" in rep["refused"][0]["error"]
    assert len(store.history(e.id, s.box_id, s.race_id, ORG)) == 1
