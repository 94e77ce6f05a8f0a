"""Hardening of the API: security headers, rate limits on writes and failed logins, closed CORS,
and the X-Sandik-Min-Version gate. Real app, real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from sandik.api import Settings, create_app
from sandik.auth.tokens import TokenStore
from tests.web_support import as_json, elections, sheet

E = "/api/elections/t-2024"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def api(store, monkeypatch):
    monkeypatch.setenv("SANDIK_WRITE_RATE", "0.001")
    monkeypatch.setenv("SANDIK_WRITE_BURST", "3")
    monkeypatch.setenv("SANDIK_AUTH_FAILURES", "5")
    prev, cur = elections()
    store.save_election(prev)
    store.save_election(cur)
    app = create_app(Settings(), store=store)
    with TestClient(app) as client:
        yield client, store, cur, TokenStore(store)


def test_security_headers_on_pages_api_and_hot_path(api):
    client, *_ = api
    for path in ("/", f"{E}/overview", f"{E}/overview", "/api/nope"):  # the second overview comes from the hot path
        r = client.get(path)
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


def test_cors_is_closed_for_writes(api):
    client, *_ = api
    pre = client.options(f"{E}/sheets", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"})
    assert not any(k.lower().startswith("access-control-allow") for k in pre.headers)
    r = client.get(f"{E}/overview", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_writes_are_rate_limited_per_token(api):
    client, store, cur, tokens = api
    _t, secret = tokens.create(name="board", role="admin")
    _t2, other = tokens.create(name="other board", role="admin")
    boxes = [int(b) for r in ("x.01:metro", "x.02:metro") for b in cur.race_boxes[r]]
    races = ["x.01:metro"] * len(cur.race_boxes["x.01:metro"]) + ["x.02:metro"] * len(cur.race_boxes["x.02:metro"])
    codes = []
    for i in range(5):
        r = client.post(f"{E}/sheets", content=json.dumps([as_json(sheet(cur, races[i], boxes[i], seed=i))]), headers={"Authorization": f"Bearer {secret}"} | JSON)
        codes.append(r.status_code)
    assert codes == [200, 200, 200, 429, 429]
    assert store.count_sheets(cur.id) == 3  # a refused request wrote nothing
    r429 = client.post(f"{E}/sheets", content=b"[]", headers={"Authorization": f"Bearer {secret}"} | JSON)
    assert r429.status_code == 429 and int(r429.headers["retry-after"]) >= 1 and r429.json()["error"]["code"] == "rate_limited"
    # another token is not slowed down by the first one
    r = client.post(f"{E}/sheets", content=json.dumps([as_json(sheet(cur, races[5], boxes[5], seed=9))]), headers={"Authorization": f"Bearer {other}"} | JSON)
    assert r.status_code == 200
    # reads are never rate limited
    assert all(client.get(f"{E}/version").status_code == 200 for _ in range(20))


def test_failed_logins_lock_the_address_out(api):
    client, _store, cur, tokens = api
    _t, secret = tokens.create(name="board", role="admin")
    codes = [client.get("/api/tokens", headers={"Authorization": f"Bearer sdk_{'0' * 12}_wrong{i}"}).status_code for i in range(7)]
    assert codes[:5] == [401] * 5 and codes[5:] == [429, 429]
    # even the right token waits now (the address is locked out), and says why
    r = client.get("/api/tokens", headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_failed_logins"
    # anonymous reads still work
    assert client.get(f"{E}/overview").status_code == 200


def test_min_version_header(api):
    client, _store, cur, tokens = api
    _t, secret = tokens.create(name="board", role="admin")
    r = client.post(f"{E}/sheets", content=json.dumps([as_json(sheet(cur, "x.01:metro", int(cur.race_boxes["x.01:metro"][0]), seed=1))]), headers={"Authorization": f"Bearer {secret}"} | JSON)
    v = r.json()["version"]
    ok = client.get(f"{E}/overview", headers={"X-Sandik-Min-Version": str(v)})
    assert ok.status_code == 200 and int(ok.headers["x-sandik-version"]) >= v
    # a version this process (and the database) has never reached: 503 + Retry-After, never an older state
    ahead = client.get(f"{E}/overview", headers={"X-Sandik-Min-Version": str(v + 1000)})
    assert ahead.status_code == 503 and ahead.headers["retry-after"] == "1" and ahead.json()["error"]["code"] == "behind"
    assert client.get(f"{E}/overview", headers={"X-Sandik-Min-Version": "abc"}).status_code == 400
