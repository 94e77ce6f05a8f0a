"""In real Chromium: when the boxes counted so far are unlike those still out (here: the boxes of the
districts where candidate A did worst last time, counted first), the projection says so, in Turkish
and English. The site is its own: the shared one's races are too small for a clear imbalance."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import numpy as np
import pytest

from sandik.api import Settings, create_app
from sandik.core.projection.election import build_frames
from sandik.core.projection.model import ModelParams
from sandik.ingest.pipeline import Ingestor
from sandik.store.repository import open_store
from tests.browser_extras import browser  # noqa: F401  (fixture)
from tests.web_support import ServerThread, checked_page, elections, sheet

RACE = "x.01:metro"


@pytest.fixture(scope="module")
def skewed_site(tmp_path_factory) -> Iterator[dict]:
    prev, cur = elections(5, provinces=1, districts=6, boxes=14)
    frame = build_frames(cur, prev, races=[RACE])[RACE]
    # The boxes in order of A's baseline share (per district here, as the previous election is by district): the lowest third first.
    order = np.argsort(frame.base_share[:, 0], kind="stable")
    boxes = cur.race_boxes[RACE]
    counted = [sheet(cur, RACE, int(boxes[i]), seed=int(i)) for i in order[: len(order) // 3]]
    st = open_store(str(tmp_path_factory.mktemp("skewed") / "site.sqlite"))
    st.save_election(prev)
    st.save_election(cur)
    Ingestor(st, cur.id).submit(counted, origin="test", submitted_by="test")
    app = create_app(Settings(sse_min_interval=0.05), store=st)
    with ServerThread(app) as srv:
        yield {"url": srv.url, "election": cur}
    st.close()


@pytest.fixture
def page(browser, skewed_site):  # noqa: F811
    with checked_page(browser, skewed_site["url"], timeout_ms=60_000) as pg:
        yield pg


def test_projection_says_when_the_counted_boxes_are_unlike_the_rest(page, skewed_site):
    page.goto(f"{skewed_site['url']}/#/race/{RACE}")
    why = page.locator("section.projection p.proj-why")
    why.wait_for()
    # the case this test is about: a model projection (not the prior), far from random arrival
    # (asked after the page has its projection: the server answers 503 until its worker has made it)
    url = f"{skewed_site['url']}/api/elections/{skewed_site['election'].info.id}/races/{RACE}/projection"
    with urllib.request.urlopen(url, timeout=60) as r:
        p = json.load(r)["projection"]
    assert p["mode"] == "model" and p["model"]["imbalance_z"] > ModelParams().box_interval_shrink_from
    assert why.get_attribute("data-why") == "projWhySkewed"
    assert "henüz sayılmayanlara benzemiyor" in why.inner_text()
    page.get_by_role("button", name="English").click()
    page.wait_for_function("() => { const w = document.querySelector('section.projection p.proj-why'); return w && w.innerText.includes('unlike those still out'); }")
