"""The website in real Chromium against a real server on SQLite, with the real 2024 election definition.

Sheets are generated here (valid by every hard rule) for some boxes of every
province's top race, so that the map has leaders, some hatched (counting) and
one province complete.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import httpx
import pytest

from sandik.api import Settings, create_app
from sandik.auth.tokens import TokenStore
from sandik.datasets import registry
from sandik.ingest.pipeline import Ingestor
from sandik.store.repository import open_store as _open_store
from tests.factories import make_sheet
from tests.web_support import ServerThread, as_json, checked_page, chromium, elections

COMPLETE = "tr.69:provincial_mayor"  # Bayburt's provincial mayor: every box counted here


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[dict]:
    st = _open_store(str(tmp_path_factory.mktemp("site") / "site.sqlite"))
    elections = registry.get("tr-2024").elections()
    for e in elections:
        st.save_election(e)
    e = elections[-1]
    rng = random.Random(1)
    top = [r for r in e.races.values() if r.office in e.info.top_offices]
    sheets = []
    for race in top:
        boxes = e.race_boxes[race.id].tolist()
        take = boxes if race.id.startswith("tr.69.") else boxes[:5]
        sheets += [make_sheet(e, race.id, b, rng) for b in take]
    Ingestor(st, e.id).submit(sheets, origin="test", submitted_by="test")
    _t, secret = TokenStore(st).create(name="ankara clerk", role="clerk", areas=["tr.06"])
    app = create_app(Settings(sse_min_interval=0.05), store=st)
    with ServerThread(app) as srv:
        yield {"url": srv.url, "secret": secret, "election": e, "store": st}
    st.close()


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser, site):
    with checked_page(browser, site["url"]) as pg:
        yield pg


def test_map_renders_81_provinces_with_a_table_twin(page, site):
    page.goto(site["url"] + "/")
    page.wait_for_selector("#map path.prov")
    assert page.locator("#map path.prov").count() == 81
    assert page.locator("details.maptable tbody tr").count() == 81
    # Leaders are coloured, counting provinces hatched, the complete one solid; each says so in words.
    bayburt = page.locator('#map path[data-area="tr.69"]')
    assert bayburt.get_attribute("data-status") == "complete" and "url(#hatch" not in (bayburt.get_attribute("style") or "")
    ankara = page.locator('#map path[data-area="tr.06"]')
    assert ankara.get_attribute("data-status") == "counting" and "url(#hatch-" in ankara.get_attribute("style")
    assert "Ankara" in ankara.get_attribute("aria-label") and "Sayılıyor" in ankara.get_attribute("aria-label")
    page.wait_for_selector("#live[data-state=live]")
    assert page.locator("#live").inner_text().strip().upper() == "CANLI"


def test_click_and_keyboard_drill_down(page, site):
    page.goto(site["url"] + "/")
    page.wait_for_selector("#map path.prov")
    page.locator('#map path[data-area="tr.06"]').click()
    page.wait_for_function("location.hash === '#/area/tr.06'")
    page.wait_for_selector("h1.page-title:has-text('Ankara')")
    # The province page: its metropolitan race with candidates, and a row per district race.
    assert page.locator(".race .cand").count() >= 6
    assert page.locator("table.list tbody tr").count() >= 25
    page.locator("table.list tbody tr a", has_text="Çankaya").first.click()
    page.wait_for_function("location.hash.startsWith('#/race/tr.06.cankaya:')")
    page.wait_for_selector("h1.page-title:has-text('Çankaya')")
    # Keyboard only: back home, Tab to a province, Enter.
    page.goto(site["url"] + "/#/")
    page.wait_for_selector("#live[data-state=live]")
    page.wait_for_selector("#map path.prov")
    page.locator('#map path[data-area="tr.34"]').focus()
    page.keyboard.press("Enter")
    page.wait_for_function("() => location.hash === '#/area/tr.34'")
    page.wait_for_selector("h1.page-title:has-text('İstanbul')")


def test_a_sheet_submitted_through_the_api_appears_without_reload(page, site):
    e = site["election"]
    race = "tr.06:metropolitan_mayor"
    page.goto(site["url"] + f"/#/race/{race}")
    page.wait_for_selector(".race .figs")
    page.wait_for_selector("#live[data-state=live]")
    page.evaluate("window.__noReload = 42")
    before = httpx.get(f"{site['url']}/api/elections/current/races/{race}/results").json()["result"]
    opened = before["boxes_opened"]
    assert f"{opened} / " in page.locator(".race .figs").inner_text().replace(".", "")
    # A box of Ankara not yet counted, entered by Ankara's clerk.
    counted = {b["box_id"] for b in httpx.get(f"{site['url']}/api/elections/current/races/{race}/boxes?limit=5000").json()["boxes"] if b["opened"]}
    box = next(b for b in e.race_boxes[race].tolist() if e.box_ids[b] not in counted)
    s = make_sheet(e, race, box, random.Random(5))
    r = httpx.post(f"{site['url']}/api/elections/current/sheets", json=as_json(s), headers={"Authorization": f"Bearer {site['secret']}"})
    assert r.status_code == 200, r.text
    want = f"{opened + 1:,}".replace(",", ".") + " / "
    page.wait_for_function("w => document.querySelector('.race .figs').innerText.includes(w)", arg=want, timeout=45_000)
    assert page.evaluate("window.__noReload") == 42
    total = before["valid"] + s.valid
    assert f"{total:,}".replace(",", ".") in page.locator(".race .figs").inner_text()


def _post_sheet(site, race, seed):
    e = site["election"]
    counted = {b["box_id"] for b in httpx.get(f"{site['url']}/api/elections/current/races/{race}/boxes?limit=5000").json()["boxes"] if b["opened"]}
    box = next(b for b in e.race_boxes[race].tolist() if e.box_ids[b] not in counted)
    r = httpx.post(f"{site['url']}/api/elections/current/sheets", json=as_json(make_sheet(e, race, box, random.Random(seed))), headers={"Authorization": f"Bearer {site['secret']}"})
    assert r.status_code == 200, r.text
    return r.json()["version"]


def test_keyboard_focus_survives_a_live_redraw_and_requests_carry_the_seen_version(page, site):
    sent = []
    page.on("request", lambda req: sent.append((req.url, req.headers.get("x-sandik-min-version"))) if "/api/elections/" in req.url else None)
    page.goto(site["url"] + "/#/")
    page.wait_for_selector("#live[data-state=live]")
    page.wait_for_selector("#map path.prov")
    page.locator('#map path[data-area="tr.34"]').focus()
    page.evaluate("a => { document.querySelector(`#map path[data-area='${a}']`).__old = true; }", "tr.34")
    version = _post_sheet(site, "tr.06:metropolitan_mayor", 7)
    # The live frame redraws the map: the focused path is replaced by a new element ...
    page.wait_for_function("a => !document.querySelector(`#map path[data-area='${a}']`).__old", arg="tr.34", timeout=45_000)
    # ... and the keyboard focus is on its successor, so Enter still drills down.
    assert page.evaluate("document.activeElement && document.activeElement.dataset.area") == "tr.34"
    page.keyboard.press("Enter")
    page.wait_for_function("() => location.hash === '#/area/tr.34'")
    page.wait_for_selector("h1.page-title:has-text('İstanbul')")
    # Every API request after the first answer says which version the page has seen
    # (not the SSE stream: an EventSource cannot send headers, and its frames carry versions).
    later = [v for url, v in sent[1:] if not url.endswith("/events")]
    assert later and all(v is not None and int(v) >= 1 for v in later), sent[:5]
    assert max(int(v) for v in later) >= version


def test_language_switch_and_number_formats(page, site):
    page.goto(site["url"] + "/#/race/tr.34:metropolitan_mayor")
    page.wait_for_selector(".race .figs")
    assert page.evaluate("document.documentElement.lang") == "tr"
    tr_text = page.locator(".race .figs").inner_text()
    assert "Katılım" in tr_text and "%" in tr_text
    # Turkish: %51,2 and 4.438.727 style.
    share_tr = page.locator(".cand .share").first.inner_text()
    assert share_tr.startswith("%") and "," in share_tr
    page.get_by_role("button", name="English").click()
    page.wait_for_function("document.documentElement.lang === 'en'")
    page.wait_for_selector(".race .figs dt:has-text('Turnout')")
    share_en = page.locator(".cand .share").first.inner_text()
    assert share_en.endswith("%") and "." in share_en
    assert page.get_by_role("button", name="English").get_attribute("aria-pressed") == "true"
    votes_en = page.locator(".cand .votes").first
    n = int(votes_en.get_attribute("data-votes"))
    if n >= 1000:
        assert f"{n:,}" in votes_en.inner_text()
    # The choice is remembered.
    page.reload()
    page.wait_for_selector(".race .figs dt:has-text('Turnout')")
    page.get_by_role("button", name="Türkçe").click()
    page.wait_for_selector(".race .figs dt:has-text('Katılım')")
    if n >= 1000:
        assert f"{n:,}".replace(",", ".") in page.locator(".cand .votes").first.inner_text()


def test_phone_layout_has_no_horizontal_scroll(browser, site):
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    pg = ctx.new_page()
    try:
        for path in ("/", "/#/area/tr.06", "/#/race/tr.06:metropolitan_mayor"):
            pg.goto(site["url"] + path)
            pg.wait_for_selector("h1.page-title")
            time.sleep(0.2)
            assert pg.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), path
    finally:
        ctx.close()


def test_live_indicator_says_reconnecting_when_the_server_goes_away(browser, tmp_path):
    st = _open_store(str(tmp_path / "small.sqlite"))
    for e in elections():
        st.save_election(e)
    srv = ServerThread(create_app(Settings(), store=st)).__enter__()
    ctx = browser.new_context()
    pg = ctx.new_page()
    try:
        pg.goto(srv.url + "/#/area/x.01")
        pg.wait_for_selector("#live[data-state=live]")
        assert pg.locator("#live").inner_text().strip().upper() == "CANLI"
        srv.__exit__(None, None, None)
        pg.wait_for_selector("#live[data-state=reconnecting]", timeout=20_000)
        assert pg.locator("#live .txt").text_content() == "Yeniden bağlanıyor…"
    finally:
        ctx.close()
        srv.__exit__(None, None, None)
        st.close()
