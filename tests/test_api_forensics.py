"""Observers and forensics on the API: observers' entries for their own organisation, discrepancies by impact
(filters, CSV, one with its history), the admin's workflow transitions (audited), forensic flags, the
fingerprint and the PVT. SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json

import pytest
from fastapi.testclient import TestClient

from sandik.api import Settings, create_app
from sandik.auth.tokens import TokenStore
from tests.web_support import as_json, elections, sheet

E = "/api/elections/t-2024"
METRO = "x.01:metro"
ORG = "oyveotesi"


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def swapped(s):
    """The observers' copy of a sheet with the top two candidates' votes swapped (a real discrepancy)."""
    ids = sorted(s.votes, key=lambda c: -s.votes[c])
    v = dict(s.votes)
    v[ids[0]], v[ids[1]] = v[ids[1]], v[ids[0]]
    return v


@pytest.fixture
def api(store):
    prev, cur = elections()
    store.save_election(prev)
    store.save_election(cur)
    tokens = TokenStore(store)
    secrets = {"admin": tokens.create(name="admin", role="admin")[1], "clerk": tokens.create(name="clerk", role="clerk", areas=["x"])[1]}
    for i in range(3):
        secrets[f"obs{i}"] = tokens.create(name=f"volunteer {i}", role="observer", organisation=ORG)[1]
    secrets["other"] = tokens.create(name="other org", role="observer", organisation="baskaorg")[1]
    app = create_app(Settings(), store=store)
    with TestClient(app) as client:
        sheets = [sheet(cur, METRO, int(b), seed=i) for i, b in enumerate(cur.race_boxes[METRO].tolist())]
        sheets = [s for s in sheets if len(set(s.votes.values())) == len(s.votes)]
        r = client.post(f"{E}/sheets", content=json.dumps([as_json(s) for s in sheets]), headers=bearer(secrets["clerk"]) | {"Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        yield client, store, cur, secrets, sheets


def enter(client, secret, sheets):
    return client.post(f"{E}/observer-entries", content=json.dumps(sheets), headers=bearer(secret) | {"Content-Type": "application/json"})


def inject(client, secrets, s):
    """Three volunteers type the same differing copy: it is confirmed and becomes a discrepancy."""
    copy = as_json(s) | {"source": ORG}
    copy["votes"] = swapped(s)
    reps = [enter(client, secrets[f"obs{i}"], [copy]) for i in range(3)]
    assert all(r.status_code == 200 for r in reps), [r.text for r in reps]
    return reps


def test_observer_entries_confirm_and_open_a_discrepancy(api):
    client, _store, cur, secrets, sheets = api
    s = sheets[0]
    reps = inject(client, secrets, s)
    assert [r.json()["report"]["ingested"] for r in reps] == [0, 0, 1]
    assert reps[2].json()["org"] == ORG and reps[2].json()["report"]["confirmations"][0]["status"] == "confirmed"
    d = client.get(f"{E}/discrepancies").json()
    assert d["total"] == 1
    row = d["discrepancies"][0]
    assert (row["box_id"], row["race_id"], row["org"], row["status"]) == (s.box_id, METRO, ORG, "open")
    assert row["effect_on_margin"] != 0 and row["area_name"] in ("Kadıköy", "Üsküdar", "Beşiktaş")
    assert row["detail"]["diffs"], row["detail"]
    assert d["impacts"] and d["impacts"][0]["race_id"] == METRO
    # filters
    assert client.get(f"{E}/discrepancies?org=baskaorg").json()["total"] == 0
    assert client.get(f"{E}/discrepancies?race={METRO}&status=open").json()["total"] == 1
    assert client.get(f"{E}/discrepancies?status=weird").status_code == 422
    # CSV
    r = client.get(f"{E}/discrepancies.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 1 and rows[0]["box_id"] == s.box_id and rows[0]["org"] == ORG
    # the box, side by side
    b = client.get(f"{E}/boxes/{s.box_id}/observers").json()
    race = next(x for x in b["races"] if x["race_id"] == METRO)
    assert set(race["copies"]) == {"official", ORG}
    assert race["copies"][ORG]["votes"] == swapped(s) and race["copies"]["official"]["votes"] == s.votes
    assert sorted(race["differs"][ORG]) == sorted(f"votes:{c}" for c in s.votes if swapped(s)[c] != s.votes[c])


def test_observers_write_only_for_their_own_organisation(api):
    client, store, _cur, secrets, sheets = api
    s = sheets[1]
    copy = as_json(s) | {"source": ORG}
    assert enter(client, secrets["clerk"], [copy]).status_code == 403
    r = enter(client, secrets["other"], [copy])
    assert r.status_code == 403 and ORG in r.json()["error"]["message"]
    assert client.post(f"{E}/observer-entries", content=json.dumps([copy])).status_code == 401
    assert client.post(f"{E}/observer-entries", content="x", headers=bearer(secrets["obs0"]) | {"Content-Type": "text/html"}).status_code == 415
    assert enter(client, secrets["obs0"], []).status_code == 400
    # an entry for a box that does not exist is refused in the report, not stored
    rep = enter(client, secrets["obs0"], [as_json(s) | {"box_id": "x.99.nope.1", "source": ORG}])
    assert rep.status_code == 200, rep.text
    assert rep.json()["report"]["stored"] == 0 and "does not exist" in rep.json()["report"]["refused"][0]["error"]
    audit = client.get("/api/audit?limit=50", headers=bearer(secrets["admin"])).json()["entries"]
    assert {a["status"] for a in audit if a["action"] == "observers.entries"} >= {403, 401, 415, 400}


def test_workflow_transitions_by_admin_with_reason(api):
    client, _store, _cur, secrets, sheets = api
    inject(client, secrets, sheets[0])
    did = client.get(f"{E}/discrepancies").json()["discrepancies"][0]["id"]
    url = f"{E}/discrepancies/{did}/transition"
    assert client.post(url, json={"to": "under_review"}).status_code == 401
    assert client.post(url, json={"to": "under_review"}, headers=bearer(secrets["obs0"])).status_code == 403
    r = client.post(url, json={"to": "under_review", "reason": "calling the box"}, headers=bearer(secrets["admin"]))
    assert r.status_code == 200 and r.json()["discrepancy"]["status"] == "under_review"
    r = client.post(url, json={"to": "dismissed"}, headers=bearer(secrets["admin"]))
    assert r.status_code == 422 and "reason" in r.json()["error"]["message"]
    r = client.post(url, json={"to": "dismissed", "reason": "typing error of the observers, photo checked"}, headers=bearer(secrets["admin"]))
    assert r.status_code == 200 and r.json()["discrepancy"]["status"] == "dismissed"
    r = client.post(url, json={"to": "resolved", "reason": "x"}, headers=bearer(secrets["admin"]))
    assert r.status_code == 409 and r.json()["error"]["code"] == "bad_transition"
    one = client.get(f"{E}/discrepancies/{did}").json()["discrepancy"]
    assert [(h["from_status"], h["to_status"]) for h in one["history"]] == [(None, "open"), ("open", "under_review"), ("under_review", "dismissed")]
    assert one["history"][-1]["by"] == "admin" and "photo" in one["history"][-1]["reason"]
    # a dismissed one leaves the default list, stays in ?all=true
    assert client.get(f"{E}/discrepancies").json()["total"] == 0
    assert client.get(f"{E}/discrepancies?all=true").json()["total"] == 1
    assert client.get(f"{E}/discrepancies/999999").status_code == 404
    audit = client.get("/api/audit", headers=bearer(secrets["admin"])).json()["entries"]
    assert [a["status"] for a in audit if a["action"] == "discrepancies.transition"][:3] == [409, 200, 422]


def test_forensics_fingerprint_and_pvt(api):
    client, _store, _cur, secrets, sheets = api
    f = client.get(f"{E}/forensics")
    assert f.status_code == 200
    rep = f.json()
    assert rep["sheets"] == len(sheets) and "not an accusation" in rep["note"].lower() and isinstance(rep["flags"], list)
    assert client.get(f"{E}/forensics?min_tier=nope").status_code == 422
    fp = client.get(f"{E}/forensics/fingerprint")
    assert fp.status_code == 200
    d = fp.json()
    assert d["svg"].lstrip().startswith("<svg") and "integer_test" in d and d["as_of_version"] >= 1
    # the cached picture: the same bytes (ETag) the second time
    assert client.get(f"{E}/forensics/fingerprint", headers={"If-None-Match": fp.headers["etag"]}).status_code == 304
    svg = client.get(f"{E}/forensics/fingerprint.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml") and svg.text == d["svg"]
    # PVT: nothing confirmed yet for the organisation, then a sample of its one confirmed copy
    assert client.get(f"{E}/races/{METRO}/pvt?org={ORG}&n=5").status_code == 404
    inject(client, secrets, sheets[0])
    p = client.get(f"{E}/races/{METRO}/pvt?org={ORG}&n=5&seed=1")
    assert p.status_code == 200, p.text
    assert p.json()["org"] == ORG and p.json()["frame"] == 1
    assert client.get(f"{E}/races/{METRO}/pvt?org={ORG}&strata=zzz").status_code == 422
