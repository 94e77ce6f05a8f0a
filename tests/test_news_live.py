"""Claims and summaries against a live state of the night (a partly counted tally)."""

from __future__ import annotations

import pytest

from sandik.core.tally import LiveTally, sheet_vector
from sandik.news.claims import Checker
from sandik.news.facts import Facts
from sandik.news.summary import summarize
from sandik.simulation.night import simulate_night
from tests.news_support import elections

IST = "tr.34:metropolitan_mayor"


@pytest.fixture(scope="module")
def live() -> Facts:
    """The 2024 night with 62% of Istanbul's metropolitan-mayor boxes counted (and nothing else)."""
    prev, e = elections()
    sheets = [s for s in simulate_night(e, seed=7) if s.race_id == IST]
    race = e.race(IST)
    tally = LiveTally(e)
    k = round(0.62 * len(sheets))
    for s in sheets[:k]:
        b = e.box(s.box_id)
        tally.apply(IST, b, sheet_vector(s, race, int(e.box_registered[b])))
    return Facts.build(e, tally, prev)


def test_boxes_opened_is_checkable_live(live: Facts) -> None:
    res = live.results[IST]
    assert res.status == "counting"
    share = 100 * res.boxes_opened / res.boxes_total
    text = f"More than 95% of ballot boxes were opened in Istanbul. More than {int(share) - 2}% of ballot boxes were opened in Istanbul."
    claims = [c for c in Checker(live).check(text).claims if c.kind == "boxes_opened"]
    assert [c.verdict for c in claims] == ["contradicted", "supported"]
    assert claims[0].figures["opened"] == res.boxes_opened


def test_won_while_counting_is_not_a_verdict_yet(live: Facts) -> None:
    res = live.results[IST]
    leader = next(c for c in res.candidates if c.id == res.leader)
    trailing = next(c for c in res.candidates if c.id == res.runner_up)
    text = f"{leader.name} won Istanbul. {trailing.name} won Istanbul. {leader.name} leads in Istanbul."
    claims = Checker(live).check(text).claims
    got = [(c.kind, c.verdict) for c in claims]
    assert got == [("won", "not_checkable"), ("won", "contradicted"), ("leads", "supported")]
    assert "still counting" in (claims[0].reason or "")


def test_live_summary_sentence_and_its_figures(live: Facts) -> None:
    s = summarize(live, "tr.34", "en")
    first = s.sentences[0]
    res = live.results[IST]
    pct = round(100 * res.boxes_opened / res.boxes_total)
    assert first.text.startswith(f"With {pct}% of ballot boxes opened in İstanbul, ")
    assert f"leads {res.candidates[1].name} ({res.candidates[1].party}) by {res.margin_votes:,} votes" in first.text
    assert first.facts["boxes_opened"] == res.boxes_opened and first.facts["margin_votes"] == res.margin_votes
    assert first.facts["status"] == "counting"
    tr = summarize(live, "tr.34", "tr").sentences[0].text
    assert tr.startswith(f"İstanbul'da açılan sandık oranı %{pct}")


def test_counts_while_counting(live: Facts) -> None:
    """Only Istanbul is being counted: 35 provinces won is still possible, 82 is not."""
    claims = Checker(live).check("The CHP won 35 of Turkey's 81 provinces. The CHP won 82 provinces.").claims
    assert [(c.kind, c.verdict) for c in claims] == [("count_won", "not_checkable"), ("count_won", "contradicted")]
    assert claims[0].figures["won"] == 0 and claims[0].figures["leading"] == 1
    assert "still counting" in (claims[0].reason or "")
