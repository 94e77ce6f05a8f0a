"""Checking articles against the built-in 2024 results: the shared article and our own (English and Turkish)."""

from __future__ import annotations

import json

import pytest

from sandik.news.evaluate import Score, score
from tests.news_support import ARTICLES, SHARED_ARTICLES, checker, own_articles

SHARED_EXPECTED = json.loads((ARTICLES / "shared_000.expected.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def shared() -> tuple[str, object]:
    path = SHARED_ARTICLES / SHARED_EXPECTED["article"]
    if not path.exists():
        pytest.fail(f"the shared article is missing: {path} (set SANDIK_SHARED_DATA to ../shared/data)")
    text = path.read_text(encoding="utf-8")
    return text, checker().check(text)


def test_shared_article_every_claim_classified(shared) -> None:
    text, res = shared
    sc = score(text, res, SHARED_EXPECTED, name="shared")
    assert sc.errors == []
    assert sc.correct == sc.expected == len(SHARED_EXPECTED["claims"])


def test_shared_article_names_and_places(shared) -> None:
    text, res = shared
    linked = {m.text: m.ref for m in res.mentions}
    assert linked["Mansour Yabas"].id == "tr.06:metropolitan_mayor:CHP"
    assert linked["Mansour Yabas"].name == "Mansur Yavaş"
    assert linked["immamol"].name == "Ekrem İmamoğlu"
    assert linked["Imamoglu"].name == linked["Ekrem İmamoğlu"].name == "Ekrem İmamoğlu"
    # Erdoğan is linked as a known person, never as a candidate who shares his surname
    assert {linked[k].kind for k in ("Erdogan", "Erdoğan", "Recep Tayyip Erdoğan")} == {"person"}
    assert res.unlinked_names == SHARED_EXPECTED["unlinked_names"]
    assert res.foreign_places == ["Japan"]


def test_shared_article_facts(shared) -> None:
    """The figures behind the verdicts are the data's, not the article's."""
    _, res = shared
    by_kind = {c.kind: c for c in res.claims}
    assert by_kind["count_won"].figures["won"] == 35 and by_kind["count_won"].figures["of"] == 81
    assert by_kind["margin"].figures["margin_votes"] == 1_006_856
    assert by_kind["registered"].figures["value"] == 61_466_110
    prev = next(c for c in res.claims if c.kind == "won" and "2019" in c.text)
    assert prev.source.startswith("tr-2019-local")
    assert any("23 June 2019" in n for n in prev.notes)


def test_json_shape(shared) -> None:
    _, res = shared
    d = json.loads(json.dumps(res.to_dict(), ensure_ascii=False))
    assert set(d) >= {"claims", "unlinked_names", "foreign_places"}
    for c in d["claims"]:
        assert set(c) >= {"text", "verdict", "actual", "entities", "source"}
        assert c["verdict"] in ("supported", "contradicted", "not_checkable")
        if c["verdict"] != "not_checkable":
            assert c["actual"] and c["source"]


def test_claim_text_is_exact_span(shared) -> None:
    text, res = shared
    for c in res.claims:
        assert text[c.start : c.end] == c.text


@pytest.mark.parametrize(("name", "text", "expected"), own_articles(), ids=[a[0] for a in own_articles()])
def test_own_article(name: str, text: str, expected: dict) -> None:
    sc = score(text, checker().check(text), expected, name=name)
    assert sc.accuracy >= 0.9, sc.errors
    assert not [e for e in sc.errors if "entity" in e or "foreign" in e], sc.errors


def test_own_articles_reach_95_percent() -> None:
    total = Score()
    for name, text, expected in own_articles():
        total.merge(score(text, checker().check(text), expected, name=name))
    assert total.expected >= 50
    assert total.accuracy >= 0.95, total.errors


def test_a_wrong_expectation_is_caught() -> None:
    """The scorer can fail: flip one expected verdict and the score drops."""
    name, text, expected = own_articles()[0]
    bad = json.loads(json.dumps(expected))
    first = bad["claims"][0]
    first["verdict"] = "contradicted" if first["verdict"] == "supported" else "supported"
    sc = score(text, checker().check(text), bad, name=name)
    assert sc.correct == sc.expected - 1


def test_turkish_article_is_read_as_turkish() -> None:
    text = next(t for n, t, _ in own_articles() if n.startswith("tr_"))
    assert checker().check(text).language == "tr"
