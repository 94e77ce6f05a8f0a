"""Shared by the API and browser tests: a small Turkish-named election with a previous one, and a real server."""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import numpy as np

from sandik.core.model import Area, Election, RaceTotals
from sandik.core.sheet import TallySheet
from sandik.formats.sheet_files import sheet_to_mapping
from tests.factories import make_election, make_sheet

# Province 1 is İstanbul (Kadıköy, Üsküdar, Beşiktaş), province 2 is Kırıkkale.
NAMES = {
    "x": "Türkiye",
    "x.01": "İstanbul",
    "x.01.d1": "Kadıköy",
    "x.01.d2": "Üsküdar",
    "x.01.d3": "Beşiktaş",
    "x.02": "Kırıkkale",
    "x.02.d1": "Keskin",
    "x.02.d2": "Yahşihan",
    "x.02.d3": "Delice",
}


def _renamed(e: Election, **info: Any) -> Election:
    areas = {k: Area(a.id, a.kind, NAMES.get(k, a.name), a.parent_id) for k, a in e.areas.items()}
    return Election(
        info=replace(e.info, **info),
        parties=e.parties,
        areas=areas,
        races=e.races,
        box_ids=e.box_ids,
        box_area_ids=e.box_area_ids,
        box_numbers=e.box_numbers,
        box_registered=e.box_registered,
        race_boxes=e.race_boxes,
        aggregate_results=e.aggregate_results,
    )


def elections(seed: int = 3, *, provinces: int = 2, districts: int = 3, boxes: int = 4) -> tuple[Election, Election]:
    """(previous, current): the previous one is aggregate-only, like the real 2019 election."""
    cur = _renamed(make_election(seed, provinces=provinces, districts=districts, boxes=boxes, eid="t-2024"), previous_id="t-2019")
    rng = random.Random(seed)
    agg = {}
    for rid, race in cur.races.items():
        reg = int(cur.box_registered[cur.race_boxes[rid]].sum())
        valid = reg // 2
        votes = [rng.randint(0, valid) for _ in race.candidates[:-1]]
        rest = valid - sum(votes)
        if rest < 0:
            votes = [valid] + [0] * (len(race.candidates) - 1)
        else:
            votes.append(rest)
        agg[rid] = RaceTotals(reg, valid + 10, valid, 10, tuple(votes))
    prev = Election(
        info=replace(cur.info, id="t-2019", previous_id=None),
        parties=cur.parties,
        areas=cur.areas,
        races=cur.races,
        box_ids=[],
        box_area_ids=[],
        box_numbers=[],
        box_registered=np.zeros(0, dtype=np.int64),
        race_boxes={rid: np.zeros(0, dtype=np.int32) for rid in cur.races},
        aggregate_results=agg,
    )
    return prev, cur


def sheet(e: Election, race_id: str, box_index: int, seed: int = 0, **over: Any) -> TallySheet:
    s = make_sheet(e, race_id, box_index, random.Random(seed))
    return replace(s, **over) if over else s


def as_json(s: TallySheet) -> dict[str, Any]:
    return sheet_to_mapping(s)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    """A real uvicorn server on a free port, in a thread of the test process."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", timeout_graceful_shutdown=1))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 120
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(15)


CHROMIUM = "/usr/bin/chromium"  # Debian's chromium: Playwright cannot download its own browser here
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright import sync_api

    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@contextmanager
def checked_page(browser: Any, site_url: str, *, timeout_ms: int | None = None) -> Iterator[Any]:
    """A Turkish-locale page that fails the test on any script error or any request that leaves our server."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="tr-TR")
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    # Nothing may come from the internet: every request must go to our server.
    pg.route("**/*", lambda route: route.continue_() if route.request.url.startswith(site_url) or route.request.url.startswith("data:") else (errors.append("external: " + route.request.url), route.abort()))
    if timeout_ms is not None:
        pg.set_default_timeout(timeout_ms)
    yield pg
    ctx.close()
    assert not errors, errors
