"""Fuzz the sheet parsers through the write API (hypothesis): JSON, NDJSON and CSV bodies that are
almost right, plainly wrong, or random bytes. Never a 5xx; the sheets stored are exactly the ones
acknowledged as accepted; the live tally always equals a recount of the store."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandik.api import Settings, create_app
from sandik.auth.tokens import TokenStore
from sandik.ingest.pipeline import build_tally
from sandik.store.repository import open_store
from tests.web_support import as_json, elections, sheet

E = "/api/elections/t-2024"
ODD = st.one_of(st.integers(-(2**70), 2**70), st.text(max_size=8), st.none(), st.floats(allow_nan=True), st.booleans(), st.lists(st.integers(), max_size=3))


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    store = open_store(str(tmp_path_factory.mktemp("pfuzz") / "p.sqlite"))
    prev, cur = elections()
    store.save_election(prev)
    store.save_election(cur)
    _t, secret = TokenStore(store).create(name="fuzz", role="admin")
    with TestClient(create_app(Settings(), store=store)) as client:
        yield client, store, cur, secret
    store.close()


def _valid_dicts(cur):
    boxes = [(rid, int(b)) for rid, bs in cur.race_boxes.items() for b in bs]
    return st.builds(lambda i, seed: as_json(sheet(cur, boxes[i % len(boxes)][0], boxes[i % len(boxes)][1], seed=seed)), st.integers(0, 10_000), st.integers(0, 10_000))


def _mutated(cur):
    """A valid sheet with some fields changed, dropped or added."""

    def mutate(d, changes, drops, extra):
        d = dict(d)
        keys = sorted(d)
        for i, v in changes:
            d[keys[i % len(keys)]] = v
        for i in drops:
            d.pop(keys[i % len(keys)], None)
        d.update(extra)
        return d

    return st.builds(mutate, _valid_dicts(cur), st.lists(st.tuples(st.integers(0, 100), ODD), max_size=3), st.lists(st.integers(0, 100), max_size=2), st.dictionaries(st.text(max_size=6), ODD, max_size=2))


def _body(cur):
    sheets = st.lists(st.one_of(_valid_dicts(cur), _mutated(cur)), min_size=1, max_size=6)

    def as_csv(ds):
        cols = sorted({k for d in ds for k in d})
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(cols)
        for d in ds:
            w.writerow([json.dumps(d[c]) if isinstance(d.get(c), (list, dict)) else d.get(c, "") for c in cols])
        return out.getvalue().encode()

    return st.one_of(
        sheets.map(lambda ds: ("application/json", json.dumps(ds, default=str).encode())),
        sheets.map(lambda ds: ("application/x-ndjson", "\n".join(json.dumps(d, default=str) for d in ds).encode())),
        sheets.map(lambda ds: ("text/csv", as_csv(ds))),
        st.tuples(st.sampled_from(["application/json", "application/x-ndjson", "text/csv"]), st.binary(max_size=300)),
        st.tuples(st.sampled_from(["application/json", "text/csv"]), st.text(max_size=200).map(str.encode)),
    )


def test_parsers_never_5xx_and_store_exactly_what_they_acknowledge(api):
    client, store, cur, secret = api

    @settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(_body(cur))
    def run(body):
        ctype, data = body
        before = store.count_sheets(cur.id)
        r = client.post(f"{E}/sheets", content=data, headers={"Authorization": f"Bearer {secret}", "Content-Type": ctype})
        assert r.status_code < 500, (r.status_code, r.text[:300], data[:300])
        out = r.json()
        report = out.get("report") or out.get("error", {}).get("report") or {}
        stored = store.count_sheets(cur.id) - before
        assert stored == (report.get("accepted", 0) if r.status_code in (200, 422) else 0), (r.status_code, out)

    run()
    # After all that, what the server counts is a recount of what it stored.
    svc = client.app.state.sandik.registry.get(cur.id)
    fresh, _ = build_tally(store, cur)
    for rid, rt in fresh.races.items():
        assert np.array_equal(svc.tally.races[rid].agg, rt.agg), rid
