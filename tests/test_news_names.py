"""Turkish-aware name keys and fuzzy linking (sandik.core.names)."""

from __future__ import annotations

import pytest

from sandik.core.names import NameIndex, fold, sound_key


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("İmamoğlu", "Imamoglu"),
        ("İZMİR", "Izmir"),
        ("KIRIKKALE", "Kırıkkale"),
        ("Şanlıurfa", "Sanliurfa"),
        ("Diyarbakır", "DIYARBAKIR"),
    ],
)
def test_fold_forgets_diacritics_and_dotted_i(a: str, b: str) -> None:
    assert fold(a) == fold(b)


@pytest.mark.parametrize(
    ("variant", "name"),
    [
        ("Mansour Yabas", "Mansur Yavaş"),  # Arabic-script transliteration: ou for u, b for v
        ("Imamolu", "İmamoğlu"),  # silent ğ dropped
        ("Erdoan", "Erdoğan"),
        ("Jemil Tugay", "Cemil Tugay"),  # English j for Turkish c
        ("Shanliurfa", "Şanlıurfa"),  # English sh for ş
    ],
)
def test_sound_key_merges_transliterations(variant: str, name: str) -> None:
    assert sound_key(variant) == sound_key(name)


def test_sound_key_keeps_different_names_apart() -> None:
    assert sound_key("Kurum") != sound_key("Karum")
    assert sound_key("Yavaş") != sound_key("Yılmaz")


def _index() -> NameIndex[str]:
    idx: NameIndex[str] = NameIndex()
    for name in ("Ekrem İmamoğlu", "İmamoğlu", "Mansur Yavaş", "Yavaş", "Murat Kurum", "Kurum", "Turgay Urgan", "Urgan"):
        idx.add(name, name.split()[-1])
    return idx


def test_lookup_methods_and_confidence_order() -> None:
    idx = _index()
    exact = idx.lookup("Ekrem İmamoğlu")[0]
    assert (exact.value, exact.method, exact.confidence) == ("İmamoğlu", "exact", 1.0)
    folded = idx.lookup("Ekrem Imamoglu")[0]
    assert (folded.value, folded.method) == ("İmamoğlu", "folded")
    translit = idx.lookup("Mansour Yabas")[0]
    assert (translit.value, translit.method) == ("Yavaş", "transliterated")
    garbled = idx.lookup("immamol")[0]
    assert garbled.value == "İmamoğlu" and garbled.method == "fuzzy"
    assert exact.confidence > folded.confidence > translit.confidence > garbled.confidence > 0.6


def test_unrelated_names_do_not_match() -> None:
    idx = _index()
    assert idx.lookup("Sinan Ülgen") == []
    assert idx.lookup("Japan") == []
    # fuzzy matching is off for short keys: "Kuru" must not become Kurum by accident
    assert all(m.method != "fuzzy" for m in idx.lookup("Kuru"))
