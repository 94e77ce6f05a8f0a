"""Linking names in articles to the 2024 election's candidates, parties, places and countries."""

from __future__ import annotations

from sandik.news.text import language, quotes
from tests.news_support import checker


def _link(text: str) -> dict[str, tuple[str, str, str]]:
    linker = checker().linker
    res = linker.link(text, language(text), quotes(text))
    return {m.text: (m.ref.kind, m.ref.id, m.method) for m in res.mentions}


def test_party_before_a_name_is_its_own_mention() -> None:
    got = _link("In Kayseri, the AKP's Memduh Buyukkilic was re-elected. CHP'li Muhittin Böcek kazandı.")
    assert got["AKP"][:2] == ("party", "AKP")
    assert got["Memduh Buyukkilic"][:2] == ("candidate", "tr.38:metropolitan_mayor:AKP")
    assert got["CHP"][:2] == ("party", "CHP")
    assert got["Muhittin Böcek"][:2] == ("candidate", "tr.07:metropolitan_mayor:CHP")


def test_common_words_are_not_names() -> None:
    got = _link("All ballot boxes were opened. Results were published on Sunday.")
    assert not any(kind == "candidate" for kind, _, _ in got.values())


def test_places_with_turkish_suffixes_and_exonyms() -> None:
    got = _link("Ankara'da ve İzmir'de CHP kazandı. Turkey voted, and Turkey's capital too. Sanliurfa went to the YRP.")
    assert got["Ankara"][:2] == ("area", "tr.06")
    assert got["İzmir"][:2] == ("area", "tr.35")
    assert got["Turkey"][:2] == ("area", "tr")
    assert got["Turkey's capital"][:2] == ("area", "tr.06")
    assert got["Sanliurfa"][:2] == ("area", "tr.63")
    assert got["YRP"][:2] == ("party", "YRP")


def test_surname_shared_with_a_district_needs_context() -> None:
    # "İmamoğlu" is also a district of Adana: after the full name it is the candidate,
    # with a locative suffix it is the place.
    got = _link("Ekrem İmamoğlu spoke. Later İmamoğlu left. İmamoğlu'nda seçim sakin geçti.")
    assert got["İmamoğlu"][:2] == ("candidate", "tr.34:metropolitan_mayor:CHP")


def test_foreign_places_and_unlinked_names() -> None:
    res = checker().check("Sinan Urgen told reporters that Japan and Germany were watching. Turkish voters were not.")
    assert res.foreign_places == ["Japan", "Germany"]
    assert res.unlinked_names == ["Sinan Urgen"]
