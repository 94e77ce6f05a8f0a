"""In real Chromium: an article pasted on the fact-check page comes back with a contradicted claim highlighted,
marked in words and symbol (not only colour), with the real figure on keyboard focus."""

from __future__ import annotations

from tests.browser_extras import PARTIAL, browser, page, site  # noqa: F401  (fixtures)


def test_article_page_highlights_a_contradicted_claim(page, site):
    import httpx

    res = httpx.get(f"{site['url']}/api/elections/current/races/{PARTIAL}/results").json()["result"]
    lead = next(c for c in res["candidates"] if c["id"] == res["leader"])
    wrong = min(99, round(100 * lead["share"]) + 20)
    page.goto(f"{site['url']}/#/check")
    page.get_by_label("Haber metni").fill(f"{lead['name']} İstanbul'da önde. {lead['name']} won İstanbul with {wrong}% of the vote.")
    page.get_by_role("button", name="Doğrula").click()
    mark = page.locator("article.checked mark.v-contradicted").first
    mark.wait_for()
    assert f"{wrong}%" in "".join(page.locator("article.checked mark.v-contradicted").all_inner_texts())
    # not colour only: a symbol in the text, the verdict in words in the list
    assert "✗" in page.locator("article.checked").inner_text()
    item = page.locator("ol.claims li.v-contradicted").first
    assert "yanlış" in item.inner_text() and f"({lead['votes']} of {res['valid']})" in item.inner_text()
    # the figure on keyboard focus
    mark.focus()
    tip = page.locator("#tip")
    tip.wait_for(state="visible")
    assert f"{lead['votes']} of {res['valid']}" in tip.inner_text()
    # A live event re-renders the page it is on: the checked article must stay.
    page.evaluate("route(true)")
    page.wait_for_timeout(300)
    assert page.locator("article.checked mark.v-contradicted").count() >= 1
