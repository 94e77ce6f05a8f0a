"""The shells: facts from a store (SQLite and PostgreSQL), the CLI commands, final summaries."""

from __future__ import annotations

import json
import random

import pytest
from click.testing import CliRunner

from sandik.cli import main
from sandik.errors import NotFound
from sandik.ingest.pipeline import Ingestor
from sandik.news.claims import Checker
from sandik.news.service import facts_from_store
from sandik.news.summary import summarize
from tests.factories import make_election, make_sheet
from tests.news_support import SHARED_ARTICLES, final_facts


def _fill(store, e, race_id: str, share: float) -> None:
    rng = random.Random(3)
    idx = e.race_boxes[race_id].tolist()
    k = max(1, round(share * len(idx)))
    sheets = [make_sheet(e, r.id, b, rng) for b in idx[:k] for r in e.races.values() if b in e.race_box_set[r.id]]
    rep = Ingestor(store, e.id).submit(sheets, origin="test", submitted_by="test")
    assert rep.quarantined == 0


def test_facts_from_store_live(store) -> None:
    e = make_election(seed=5, provinces=2, districts=3, boxes=4)
    store.save_election(e)
    with pytest.raises(NotFound):
        facts_from_store(store, e.id)  # nothing counted and no final results: a typed error, not empty facts
    _fill(store, e, "x.01:metro", 1.0)
    facts = facts_from_store(store, e.id)
    assert facts.mode == "live"
    res = facts.results["x.01:metro"]
    assert res.status == "complete"
    leader = next(c for c in res.candidates if c.id == res.leader)
    name = leader.name or leader.party
    # An election without a news lexicon: names come from the election file alone.
    text = f"{name} won Province 1 by {res.margin_votes:,} votes. Party C won Province 1."
    claims = Checker(facts).check(text).claims
    assert [(c.kind, c.verdict) for c in claims][:1] == [("margin", "supported")]
    s = summarize(facts, "x.01", "en")
    assert s.sentences[0].facts["margin_votes"] == res.margin_votes
    assert s.sentences[0].text.startswith("In Province 1, ")


def test_cli_reads_a_store(tmp_path, monkeypatch) -> None:
    """--db: the live tally of a SQLite file, with the figures of what was ingested."""
    from sandik.store.repository import open_store

    monkeypatch.delenv("SANDIK_DB", raising=False)
    db = str(tmp_path / "n.sqlite")
    st = open_store(db)
    e = make_election(seed=9, provinces=1, districts=2, boxes=3)
    st.save_election(e)
    _fill(st, e, "x.01:metro", 0.5)
    res = facts_from_store(st, e.id).results["x.01:metro"]
    st.close()
    r = CliRunner().invoke(main, ["summary", "--db", db, "--area", "x.01", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["mode"] == "live"
    first = d["sentences"][0]
    assert first["facts"]["boxes_opened"] == res.boxes_opened and first["facts"]["margin_votes"] == res.margin_votes
    expected_status = "counting" if res.status != "complete" else "complete"
    assert first["facts"]["status"] == expected_status


def test_check_article_cli_json(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./sandik.sqlite: the built-in dataset's final results
    monkeypatch.delenv("SANDIK_DB", raising=False)
    article = SHARED_ARTICLES / "000_7ba77b244dcf2825.txt"
    r = CliRunner().invoke(main, ["check-article", str(article), "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    count = next(c for c in d["claims"] if c["kind"] == "count_won")
    assert count["verdict"] == "contradicted" and "35 of 81" in count["actual"]
    assert d["foreign_places"] == ["Japan"] and "Sinan Urgen" in d["unlinked_names"]
    r = CliRunner().invoke(main, ["check-article", str(article)])
    assert r.exit_code == 0 and "contradicted" in r.output and "Mansur Yavaş" in r.output


def test_summary_cli(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SANDIK_DB", raising=False)
    r = CliRunner().invoke(main, ["summary", "--lang", "tr"])
    assert r.exit_code == 0, r.output
    assert r.output.startswith("CHP 35 ilde, AKP 24 ilde")
    r = CliRunner().invoke(main, ["summary", "--area", "tr.34", "--json"])
    d = json.loads(r.output)
    assert d["sentences"][0]["facts"]["margin_votes"] == 1_006_856
    r = CliRunner().invoke(main, ["summary", "--area", "tr.999"])
    assert r.exit_code != 0 and "unknown area" in r.output


def test_final_summary_sentences_match_the_data() -> None:
    f = final_facts()
    s = summarize(f, None, "en")
    board = f.scoreboards[f.top_group]
    first = s.sentences[0]
    assert first.facts["parties"]["CHP"]["won"] == 35 == board.lines[0].won
    assert first.text.startswith("The CHP won 35 of 81 provinces, the AKP 24")
    ist = next(x for x in s.sentences if "İstanbul" in x.text)
    assert ist.facts["leader"]["votes"] == 4_438_727 and ist.facts["margin_votes"] == 1_006_856
    assert "1,006,856 votes ahead of Murat Kurum (AKP)" in ist.text
    turnout = next(x for x in s.sentences if x.text.startswith("Turnout"))
    assert turnout.facts == {"registered": 61_466_110, "voters": 48_257_311, "turnout": round(48_257_311 / 61_466_110, 6)}
    for sent in s.sentences:
        assert sent.source
