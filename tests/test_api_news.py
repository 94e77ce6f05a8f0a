"""News on the API: an article's claims checked against the live tally (verdicts, figures, entities), and
summaries with the figures behind each sentence. SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from sandik.api import Settings, create_app
from sandik.auth.tokens import TokenStore
from tests.web_support import as_json, elections, sheet

E = "/api/elections/t-2024"
METRO = "x.01:metro"


@pytest.fixture
def api(store):
    prev, cur = elections()
    store.save_election(prev)
    store.save_election(cur)
    _t, clerk = TokenStore(store).create(name="clerk", role="clerk", areas=["x"])
    app = create_app(Settings(), store=store)
    with TestClient(app) as client:
        sheets = [sheet(cur, METRO, int(b), seed=i) for i, b in enumerate(cur.race_boxes[METRO].tolist())]
        r = client.post(f"{E}/sheets", content=json.dumps([as_json(s) for s in sheets]), headers={"Authorization": f"Bearer {clerk}", "Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        yield client, cur


def winner(client) -> dict:
    res = client.get(f"{E}/races/{METRO}/results").json()["result"]
    return next(c for c in res["candidates"] if c["id"] == res["leader"]) | {"valid": res["valid"]}


def test_check_finds_a_contradicted_share_with_the_right_figure(api):
    client, _cur = api
    w = winner(client)
    wrong = min(99, round(100 * w["share"]) + 20)
    text = f"{w['name']} won İstanbul with {wrong}% of the vote."
    r = client.post(f"{E}/news/check", content=text.encode(), headers={"Content-Type": "text/plain; charset=utf-8"})
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["text"] == text and d["language"] == "en" and d["facts_mode"] == "live"
    bad = [c for c in d["claims"] if c["verdict"] == "contradicted"]
    assert bad, d["claims"]
    c = bad[0]
    assert text[c["start"] : c["end"]] == c["text"] and f"{wrong}%" in c["text"]
    assert f"({w['votes']} of {w['valid']})" in c["actual"]
    assert any(m["id"] == "x.01" for m in d["entities"])
    assert d["counts"]["contradicted"] >= 1


def test_check_supported_and_json_body(api):
    client, _cur = api
    w = winner(client)
    text = f"{w['name']} won İstanbul with {100 * w['share']:.1f}% of the vote."
    d = client.post(f"{E}/news/check", json={"text": text}).json()
    assert d["counts"]["contradicted"] == 0 and d["counts"]["supported"] >= 1


def test_check_bad_input(api):
    client, _cur = api
    assert client.post(f"{E}/news/check", content=b"", headers={"Content-Type": "text/plain"}).status_code == 400
    assert client.post(f"{E}/news/check", json={"txt": "x"}).status_code == 422
    assert client.post(f"{E}/news/check", content=b"{", headers={"Content-Type": "application/json"}).status_code == 400
    assert client.post(f"{E}/news/check", content=b"<p>x</p>", headers={"Content-Type": "text/html"}).status_code == 415
    assert client.post(f"{E}/news/check", content=b"\xff\xfe", headers={"Content-Type": "text/plain"}).status_code == 400
    r = client.post(f"{E}/news/check", content=b"x" * 300_000, headers={"Content-Type": "text/plain"})
    assert r.status_code == 413
    assert client.post("/api/elections/nope/news/check", json={"text": "x"}).status_code == 404


def test_summary_of_an_area_with_the_figures_behind_each_sentence(api):
    client, _cur = api
    w = winner(client)
    for lang in ("tr", "en"):
        r = client.get(f"{E}/news/summary?area=x.01&lang={lang}")
        assert r.status_code == 200, r.text
        d = r.json()
        assert d["lang"] == lang and d["area_id"] == "x.01" and d["mode"] == "live"
        first = d["sentences"][0]
        assert w["name"] in first["text"] and first["source"]
        assert first["facts"], first
        assert d["text"].startswith(first["text"])
    nat = client.get(f"{E}/news/summary?lang=en").json()
    assert nat["area_id"] == "x" and nat["sentences"]
    assert client.get(f"{E}/news/summary?lang=de").status_code == 422
    assert client.get(f"{E}/news/summary?area=x.77").status_code == 404
