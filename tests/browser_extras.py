"""A small live site for the browser tests of projections, observers and news: a real server on SQLite,
the small Turkish-named election of web_support, some sheets counted, and real Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from sandik.api import Settings, create_app
from sandik.ingest.pipeline import Ingestor
from sandik.observers import service
from sandik.store.repository import open_store
from tests.web_support import ServerThread, checked_page, chromium, elections, sheet

PARTIAL = "x.01:metro"  # two boxes counted: a projection, no call
COMPLETE = "x.02:metro"  # every box counted: called by lock
ORG = "oyveotesi"


def swapped(s):
    ids = sorted(s.votes, key=lambda c: -s.votes[c])
    v = dict(s.votes)
    v[ids[0]], v[ids[1]] = v[ids[1]], v[ids[0]]
    return v


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[dict]:
    st = open_store(str(tmp_path_factory.mktemp("extras") / "site.sqlite"))
    prev, cur = elections()
    st.save_election(prev)
    st.save_election(cur)
    part = [sheet(cur, PARTIAL, int(b), seed=i) for i, b in enumerate(cur.race_boxes[PARTIAL].tolist()[:2])]
    full = [sheet(cur, COMPLETE, int(b), seed=10 + i) for i, b in enumerate(cur.race_boxes[COMPLETE].tolist())]
    Ingestor(st, cur.id).submit(part + full, origin="test", submitted_by="test")
    # An injected discrepancy: three volunteers of one organisation typed the same copy, with the top two swapped.
    s = next(x for x in part if len(set(x.votes.values())) == len(x.votes))
    copy = replace(s, source=ORG, votes=swapped(s))
    for who in ("v1", "v2", "v3"):
        service.add_entries(st, cur.id, ORG, who, [copy], k=3)
    app = create_app(Settings(sse_min_interval=0.05), store=st)
    with ServerThread(app) as srv:
        yield {"url": srv.url, "election": cur, "store": st, "discrepant": s, "copy": copy}
    st.close()


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser, site):
    # Generous waits: under a loaded CI machine the projection worker's first pass can take a while.
    with checked_page(browser, site["url"], timeout_ms=60_000) as pg:
        yield pg
