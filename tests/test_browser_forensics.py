"""In real Chromium: the discrepancy page lists an injected discrepancy, the box page shows the official sheet
and the observers' copy side by side with the differing fields marked, and the fingerprint page says a flag
is not an accusation."""

from __future__ import annotations

from tests.browser_extras import ORG, browser, page, site  # noqa: F401  (fixtures)


def test_discrepancy_page_lists_the_injected_discrepancy(page, site):
    s = site["discrepant"]
    page.goto(f"{site['url']}/#/discrepancies")
    row = page.locator(f"table.disc tbody tr[data-box='{s.box_id}']")
    row.wait_for()
    assert page.locator("table.disc tbody tr").count() == 1
    txt = row.inner_text()
    assert ORG in txt and s.race_id in txt and "açık" in txt
    assert "hile yaptığı anlamına gelmez" in page.locator("p.note").inner_text()
    # on to the box: official and the organisation's copy side by side, the swapped candidates marked
    row.get_by_role("link", name="Karşılaştır →").click()
    table = page.locator("table.side-by-side").first
    table.wait_for()
    heads = table.locator("thead th").all_inner_texts()
    assert any("resmî" in h for h in heads) and any(ORG in h for h in heads)
    diffs = table.locator("td.diff")
    changed = [c for c in s.votes if site["copy"].votes[c] != s.votes[c]]
    assert diffs.count() == len(changed) == 2
    assert all("farklı" in d for d in diffs.all_inner_texts())  # said in words, not only in red


def test_fingerprint_page(page, site):
    page.goto(f"{site['url']}/#/fingerprint")
    img = page.locator("figure.fingerprint img")
    img.wait_for()
    page.wait_for_function("() => { const i = document.querySelector('figure.fingerprint img'); return i && i.complete && i.naturalWidth > 0; }")
    assert "Suçlama değildir" in page.locator("p.note").inner_text()
