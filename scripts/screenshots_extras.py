"""Screenshots of the projection, discrepancy, box comparison, fingerprint and fact-check pages (docs/screenshots/).

    .venv/bin/python scripts/screenshots_extras.py [--fraction 0.3]

The real 2024 election with ``fraction`` of its simulated night counted, one observers'
copy that differs from its official sheet (entered by three volunteers), a real server
and real Chromium. Nothing is fetched from the internet.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import httpx
from playwright import sync_api as playwright_sync

from sandik.api import Settings, create_app
from sandik.datasets import registry
from sandik.ingest.pipeline import Ingestor
from sandik.observers import service
from sandik.store.repository import open_store

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
RACE = "tr.34:metropolitan_mayor"


def main() -> None:
    import sys

    sys.path.insert(0, str(ROOT))
    from tests.web_support import ServerThread

    ap = argparse.ArgumentParser()
    ap.add_argument("--fraction", type=float, default=0.3)
    args = ap.parse_args()
    ds = registry.get("tr-2024")
    prev, e = ds.elections()
    with tempfile.TemporaryDirectory() as d:
        st = open_store(str(Path(d) / "shots.sqlite"))
        st.save_election(prev)
        st.save_election(e)
        night = ds.night(e, 2024)
        sheets = [tm.sheet for tm in night[: int(len(night) * args.fraction)]]
        Ingestor(st, e.id).submit(sheets, origin="screenshots", submitted_by="screenshots")
        s = next(x for x in sheets if x.race_id == RACE and sorted(x.votes.values())[-1] > sorted(x.votes.values())[-2] > 0)
        top = sorted(s.votes, key=lambda c: -s.votes[c])
        votes = dict(s.votes)
        votes[top[0]], votes[top[1]] = votes[top[1]], votes[top[0]]
        for who in ("v1", "v2", "v3"):
            service.add_entries(st, e.id, "oyveotesi", who, [replace(s, source="oyveotesi", votes=votes)], k=3)
        app = create_app(Settings(), store=st)
        with ServerThread(app) as srv, playwright_sync.sync_playwright() as p:
            deadline = time.monotonic() + 300
            while httpx.get(f"{srv.url}/api/elections/current/races/{RACE}/projection", timeout=30).status_code != 200:
                if time.monotonic() > deadline:
                    raise SystemExit("no projection after 300 s")
                time.sleep(1)
            b = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            pg = b.new_page(viewport={"width": 1280, "height": 900}, locale="tr-TR")
            pg.set_default_timeout(120_000)
            pg.goto(f"{srv.url}/#/race/{RACE}")
            pg.locator("section.projection table.proj").wait_for()
            pg.locator("section.projection").screenshot(path=str(OUT / "projection.png"))
            pg.goto(f"{srv.url}/#/discrepancies")
            pg.locator("table.disc").wait_for()
            pg.screenshot(path=str(OUT / "discrepancies.png"))
            pg.goto(f"{srv.url}/#/observe/{s.box_id}")
            pg.locator("table.side-by-side").first.wait_for()
            pg.screenshot(path=str(OUT / "box-compare.png"))
            pg.goto(f"{srv.url}/#/fingerprint")
            pg.locator("figure.fingerprint img").wait_for()
            pg.wait_for_function("() => { const i = document.querySelector('figure.fingerprint img'); return i && i.complete && i.naturalWidth > 0; }")
            pg.screenshot(path=str(OUT / "fingerprint.png"))
            pg.goto(f"{srv.url}/#/check")
            res = httpx.get(f"{srv.url}/api/elections/current/races/{RACE}/results", timeout=30).json()["result"]
            lead = next(c for c in res["candidates"] if c["id"] == res["leader"])
            wrong = int(round((100 * lead["share"] + 10) / 10) * 10)  # a round figure ten points off: "yüzde 60'ını"
            text = (
                f"{lead['name']} İstanbul'da önde. {lead['name']} İstanbul'da oyların yüzde {wrong}'ını aldı. "
                f"Ekrem İmamoğlu ile Murat Kurum arasındaki yarışta seçmenler sabahın erken saatlerinden itibaren sandık başına gitti."
            )
            pg.get_by_label("Haber metni").fill(text)
            pg.get_by_role("button", name="Doğrula").click()
            pg.locator("article.checked mark").first.wait_for()
            pg.screenshot(path=str(OUT / "fact-check.png"))
            b.close()
        st.close()
    print("written:", ", ".join(x.name for x in sorted(OUT.glob("*.png"))))


if __name__ == "__main__":
    main()
