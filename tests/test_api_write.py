"""The write API: roles, areas, sources, bad input; nothing half-written; every write audited. SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from sandik.api import Settings, create_app
from sandik.auth.tokens import TokenStore
from sandik.formats.sheet_files import write_csv
from tests.web_support import as_json, elections, sheet

E = "/api/elections/t-2024"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def api(store):
    prev, cur = elections()
    store.save_election(prev)
    store.save_election(cur)
    app = create_app(Settings(max_body_bytes=20_000, max_batch_sheets=50), store=store)
    with TestClient(app) as client:
        yield client, store, cur, TokenStore(store)


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def box_in(cur, district: str, race: str = "x.01:metro") -> int:
    return next(int(b) for b in cur.race_boxes[race] if cur.box_area_ids[int(b)] == district)


def post(client, headers, sheets, **kw):
    return client.post(f"{E}/sheets", content=json.dumps([as_json(s) for s in sheets]), headers=headers | JSON, **kw)


def metro_valid(client, race="x.01:metro") -> int:
    return client.get(f"{E}/races/{race}/results").json()["result"]["valid"]


def unchanged(store, cur, n_before: int) -> bool:
    return store.count_sheets(cur.id) == n_before


def test_clerk_writes_only_in_its_areas(api):
    client, store, cur, tokens = api
    _tok, secret = tokens.create(name="kadıköy clerk", role="clerk", areas=["x.01.d1"])
    b1 = box_in(cur, "x.01.d1")
    s = sheet(cur, "x.01:metro", b1, seed=1)
    r = post(client, bearer(secret), [s])
    assert r.status_code == 200, r.text
    assert r.json()["report"]["accepted"] == 1 and metro_valid(client) == s.valid
    hist = store.history(cur.id, s.box_id)
    assert hist[0].submitted_by == "kadıköy clerk" and hist[0].source == "official"
    # Üsküdar is not Kadıköy: refused, and nothing of the batch is written, not even its Kadıköy sheet.
    b2 = box_in(cur, "x.01.d2")
    n = store.count_sheets(cur.id)
    r = post(client, bearer(secret), [sheet(cur, "x.01.d1:mayor", b1, seed=2), sheet(cur, "x.01:metro", b2, seed=3)])
    assert r.status_code == 403
    err = r.json()["error"]
    assert err["code"] == "out_of_area" and "x.01.d2" in err["message"] and err["box_id"] == cur.box_ids[b2]
    assert unchanged(store, cur, n) and metro_valid(client) == s.valid
    # A clerk enters official sheets only.
    r = post(client, bearer(secret), [sheet(cur, "x.01:metro", b1, seed=4, source="someorg")])
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden" and unchanged(store, cur, n)


def test_clerk_of_a_province_covers_its_districts(api):
    client, _store, cur, tokens = api
    _tok, secret = tokens.create(name="istanbul", role="clerk", areas=["x.01"])
    sheets = [sheet(cur, "x.01:metro", box_in(cur, d), seed=i) for i, d in enumerate(("x.01.d1", "x.01.d2", "x.01.d3"))]
    assert post(client, bearer(secret), sheets).status_code == 200
    assert post(client, bearer(secret), [sheet(cur, "x.02:metro", int(cur.race_boxes["x.02:metro"][0]))]).status_code == 403


def test_observer_copies_are_kept_but_never_counted(api):
    client, store, cur, tokens = api
    _tok, secret = tokens.create(name="volunteer 7", role="observer", organisation="oyveotesi")
    b = box_in(cur, "x.01.d2")
    s = sheet(cur, "x.01:metro", b, seed=5)
    d = dict(as_json(s))
    del d["source"]  # an observer's sheet takes its organisation as source
    r = client.post(f"{E}/sheets", content=json.dumps(d), headers=bearer(secret) | JSON)
    assert r.status_code == 200, r.text
    assert metro_valid(client) == 0
    assert [(v.source, v.submitted_by) for v in store.history(cur.id, s.box_id)] == [("oyveotesi", "volunteer 7")]
    box = client.get(f"{E}/boxes/{s.box_id}").json()
    assert box["sheets"][0]["source"] == "oyveotesi" and box["sheets"][0]["counted"] is False
    n = store.count_sheets(cur.id)
    for src in ("official", "otherorg"):
        r = post(client, bearer(secret), [sheet(cur, "x.01:metro", b, seed=6, source=src)])
        assert r.status_code == 403 and unchanged(store, cur, n)


@pytest.mark.parametrize(
    "header, code",
    [
        (None, "token_missing"),
        ("Basic dXNlcjpwYXNz", "bad_token"),
        ("Bearer nonsense", "bad_token"),
        ("Bearer sdk_000000000000_notthesecret", "bad_token"),
    ],
)
def test_missing_or_malformed_tokens_are_401(api, header, code):
    client, store, cur, _tokens = api
    headers = {"Authorization": header} if header else {}
    r = post(client, headers, [sheet(cur, "x.01:metro", 0)])
    assert r.status_code == 401 and r.json()["error"]["code"] == code and r.headers["www-authenticate"] == "Bearer"
    assert store.count_sheets(cur.id) == 0


def test_wrong_expired_and_revoked_tokens_are_401(api):
    client, store, cur, tokens = api
    tok, secret = tokens.create(name="a", role="admin")
    wrong = secret[:-3] + ("aaa" if not secret.endswith("aaa") else "bbb")
    r = post(client, bearer(wrong), [sheet(cur, "x.01:metro", 0)])
    assert r.status_code == 401 and r.json()["error"]["message"] == "wrong API token"
    _t2, expired = tokens.create(name="old", role="admin", expires_in=timedelta(seconds=-1))
    r = post(client, bearer(expired), [sheet(cur, "x.01:metro", 0)])
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_expired"
    assert post(client, bearer(secret), [sheet(cur, "x.01:metro", 0)]).status_code == 200
    tokens.revoke(tok.id)  # as `sandik token revoke` would, from another process
    r = post(client, bearer(secret), [sheet(cur, "x.01:metro", 1, seed=1)])
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_revoked"
    assert store.count_sheets(cur.id) == 1


def test_token_for_another_election_is_403(api):
    client, store, cur, tokens = api
    _t, secret = tokens.create(name="old clerk", role="clerk", areas=["x.01"], election_id="t-2019")
    r = post(client, bearer(secret), [sheet(cur, "x.01:metro", box_in(cur, "x.01.d1"))])
    assert r.status_code == 403 and "t-2019" in r.json()["error"]["message"] and store.count_sheets(cur.id) == 0


def test_bad_bodies_write_nothing(api):
    client, store, cur, tokens = api
    _t, secret = tokens.create(name="a", role="admin")
    h = bearer(secret)
    cases = [
        ({"Content-Type": "text/plain"}, b"hello", 415, "unsupported_media_type"),
        ({}, json.dumps(as_json(sheet(cur, "x.01:metro", 0))).encode(), 415, "unsupported_media_type"),
        (JSON, b'{"box_id": "x.01.d1.1001", "race_id": ', 400, "bad_format"),
        (JSON, b"", 400, "empty_body"),
        (JSON, b"[]", 400, "empty_body"),
        (JSON, b'"just a string"', 400, "bad_format"),
        (JSON, b"x" * 30_000, 413, "body_too_large"),
        (JSON, b'[{"box_id": "x.01.d1.1001"}, {"box_id": ', 400, "bad_format"),
        ({"Content-Type": "text/csv"}, b"box_id,race_id\nx,y\n", 400, "bad_format"),
    ]
    for headers, body, status, code in cases:
        r = client.post(f"{E}/sheets", content=body, headers=h | headers)
        assert r.status_code == status and r.json()["error"]["code"] == code, (headers, body[:40], r.text)
    # Too many sheets in one request.
    many = [as_json(sheet(cur, "x.01:metro", 0))] * 51
    small = json.dumps(many, separators=(",", ":")).encode()
    assert len(small) <= 20_000
    r = client.post(f"{E}/sheets", content=small, headers=h | JSON)
    assert r.status_code == 413 and r.json()["error"]["code"] == "batch_too_large"
    # A streamed (chunked) body over the limit is cut off too.
    r = client.post(f"{E}/sheets", content=iter([b"[" + b" " * 10_000, b" " * 10_001 + b"]"]), headers=h | JSON)
    assert r.status_code == 413
    assert store.count_sheets(cur.id) == 0 and store.count_quarantined(cur.id) == 0


def test_invalid_sheets_are_quarantined_like_the_cli(api):
    client, store, cur, tokens = api
    _t, secret = tokens.create(name="a", role="admin")
    good = sheet(cur, "x.01:metro", 0, seed=1)
    bad = sheet(cur, "x.01:metro", 1, seed=2)
    d = as_json(bad)
    d["valid"] = d["valid"] + 5  # breaks E5/E6
    r = client.post(f"{E}/sheets", content=json.dumps([as_json(good), d]), headers=bearer(secret) | JSON)
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "sheets_quarantined" and err["report"]["accepted"] == 1 and err["report"]["quarantined"] == 1
    assert "E5" in err["report"]["rejections"][0]["rules"] or "E6" in err["report"]["rejections"][0]["rules"]
    assert store.count_quarantined(cur.id) == 1 and store.count_sheets(cur.id) == 1
    # Unknown box: quarantined with its reason (S2), never counted.
    d2 = as_json(good) | {"box_id": "nowhere"}
    r = client.post(f"{E}/sheets", content=json.dumps(d2), headers=bearer(secret) | JSON)
    assert r.status_code == 422 and "S2" in r.json()["error"]["report"]["rejections"][0]["rules"]


def test_csv_upload_ndjson_and_corrections(api):
    client, store, cur, tokens = api
    _t, secret = tokens.create(name="a", role="admin")
    boxes = [int(b) for b in cur.race_boxes["x.01:metro"][:3]]
    sheets = [sheet(cur, "x.01:metro", b, seed=b) for b in boxes]
    buf = io.StringIO()
    write_csv(sheets, buf)
    r = client.post(f"{E}/sheets", content=buf.getvalue().encode(), headers=bearer(secret) | {"Content-Type": "text/csv; charset=utf-8"})
    assert r.status_code == 200 and r.json()["report"]["accepted"] == 3
    assert metro_valid(client) == sum(s.valid for s in sheets)
    # The same again is a no-op; a changed sheet is a correction (version 2), and the tally follows it.
    again = client.post(f"{E}/sheets", content=buf.getvalue().encode(), headers=bearer(secret) | {"Content-Type": "text/csv"})
    assert again.json()["report"]["duplicates"] == 3 and again.json()["version"] == 3
    fixed = sheet(cur, "x.01:metro", boxes[0], seed=1000, reason="typo")
    nd = (json.dumps(as_json(fixed)) + "\n").encode()
    r = client.post(f"{E}/sheets", content=nd, headers=bearer(secret) | {"Content-Type": "application/x-ndjson"})
    assert r.status_code == 200 and r.json()["report"]["corrections"] == 1 and r.json()["version"] == 4
    assert metro_valid(client) == fixed.valid + sheets[1].valid + sheets[2].valid
    assert [v.version for v in store.history(cur.id, fixed.box_id, "x.01:metro")] == [1, 2]


def test_admin_token_endpoints_and_audit_log(api):
    client, _store, cur, tokens = api
    _t, secret = tokens.create(name="root", role="admin")
    h = bearer(secret)
    r = client.post("/api/tokens", json={"name": "clerk 1", "role": "clerk", "areas": ["x.01.d1"], "election_id": "t-2024"}, headers=h)
    assert r.status_code == 201, r.text
    clerk = r.json()
    assert clerk["secret"].startswith("sdk_") and clerk["token"]["areas"] == ["x.01.d1"]
    # The new token works at once; the list never shows secrets.
    assert post(client, bearer(clerk["secret"]), [sheet(cur, "x.01:metro", box_in(cur, "x.01.d1"))]).status_code == 200
    listed = client.get("/api/tokens", headers=h).json()["tokens"]
    assert {t["name"] for t in listed} == {"root", "clerk 1"} and "secret" not in json.dumps(listed).replace('"secret_', "")
    # Bad token requests.
    assert client.post("/api/tokens", json={"name": "x", "role": "king"}, headers=h).status_code == 422
    assert client.post("/api/tokens", json={"name": "x", "role": "clerk"}, headers=h).json()["error"]["code"] == "bad_token_request"
    assert client.post("/api/tokens", json={"name": "x", "role": "clerk", "areas": ["nowhere"], "election_id": "t-2024"}, headers=h).status_code == 404
    assert client.post("/api/tokens", content=b"{", headers=h | JSON).status_code == 422
    # Only admins manage tokens and read the audit log.
    assert client.get("/api/tokens", headers=bearer(clerk["secret"])).status_code == 403
    assert client.get("/api/audit", headers=bearer(clerk["secret"])).status_code == 403
    assert client.get("/api/tokens").status_code == 401
    # Out-of-area attempt, then revoke.
    assert post(client, bearer(clerk["secret"]), [sheet(cur, "x.01:metro", box_in(cur, "x.01.d3"))]).status_code == 403
    assert client.delete(f"/api/tokens/{clerk['token']['id']}", headers=h).json()["token"]["revoked_at"]
    assert client.delete("/api/tokens/nope", headers=h).status_code == 404
    assert post(client, bearer(clerk["secret"]), [sheet(cur, "x.01:metro", box_in(cur, "x.01.d1"))]).status_code == 401
    post(client, {}, [sheet(cur, "x.01:metro", 0)])
    entries = client.get("/api/audit", headers=h).json()["entries"]
    actions = [(e["action"], e["actor"], e["status"]) for e in reversed(entries)]
    assert actions == [
        ("tokens.create", "root", 201),
        ("sheets.submit", "clerk 1", 200),
        ("sheets.submit", "clerk 1", 403),
        ("tokens.revoke", "root", 200),
        ("sheets.submit", "anonymous", 401),
        ("sheets.submit", "anonymous", 401),
    ]
    ok = [e for e in entries if e["status"] == 200 and e["action"] == "sheets.submit"][0]
    assert ok["remote"] and ok["detail"]["report"]["accepted"] == 1 and ok["detail"]["boxes"] == [cur.box_ids[box_in(cur, "x.01.d1")]]
    refused = [e for e in entries if e["status"] == 403][0]
    assert refused["detail"]["error"]["code"] == "out_of_area" and refused["role"] == "clerk"
