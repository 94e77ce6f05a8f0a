"""Numbers, qualifiers and sentence plumbing of sandik.news.text."""

from __future__ import annotations

import pytest

from sandik.news.text import compare, language, numbers, quotes, sentences


@pytest.mark.parametrize(
    ("text", "value", "precision", "percent", "qualifier"),
    [
        ("by more than 1 million votes", 1_000_000, 1_000_000, False, "more"),
        ("around 61 million people", 61_000_000, 1_000_000, False, "about"),
        ("4,438,727 votes", 4_438_727, 1, False, ""),
        ("4.438.727 oy", 4_438_727, 1, False, ""),
        ("4.4 million votes", 4_400_000, 100_000, False, ""),
        ("1,5 milyon oy", 1_500_000, 100_000, False, ""),
        ("812,000 votes", 812_000, 1_000, False, ""),
        ("More than 95% of ballot boxes", 95, 1, True, "more"),
        ("yüzde 51,2 oy", 51.2, 0.1, True, ""),
        ("%95'i açıldı", 95, 1, True, ""),
        ("1 milyondan fazla oy", 1_000_000, 1_000_000, False, "more"),
        ("1 milyona yakın oy", 1_000_000, 1_000_000, False, "nearly"),
        ("won 40 provinces", 40, 1, False, ""),
        ("nearly a million votes", 1_000_000, 1_000_000, False, "nearly"),
    ],
)
def test_numbers(text: str, value: float, precision: float, percent: bool, qualifier: str) -> None:
    (n,) = numbers(text)
    assert (n.value, n.precision, n.percent, n.qualifier) == (pytest.approx(value), pytest.approx(precision), percent, qualifier)


def test_years_are_not_figures() -> None:
    assert numbers("In 2019, the AKP won") == []


@pytest.mark.parametrize(
    ("text", "actual", "ok"),
    [
        ("more than 1 million", 1_006_856, True),
        ("more than 1 million", 953_611, False),
        ("nearly 1 million", 953_611, True),
        ("nearly 1 million", 1_006_856, False),
        ("around 61 million", 61_466_110, True),
        ("around 61 million", 57_801_470, False),
        ("35", 35, True),
        ("36", 35, False),
        ("40", 35, False),  # a count is exact: no rounding to tens
        ("4.4 million", 4_438_727, True),
        ("3.9 million", 3_431_871, False),
        ("51%", 51.21, True),
        ("45%", 39.59, False),
        ("78.5%", 78.51, True),
        ("about 12 points", 11.62, True),
        ("about 11 points", 11.62, False),
    ],
)
def test_compare(text: str, actual: float, ok: bool) -> None:
    (n,) = numbers(text)
    assert compare(n, actual) is ok


def test_sentences_and_quotes_keep_offsets() -> None:
    t = "He said: “We won.” Then he left.\nCHP 81 ilin 35'ini kazandı."
    spans = [t[s.start : s.end] for s in sentences(t)]
    assert spans == ["He said: “We won.”", "Then he left.", "CHP 81 ilin 35'ini kazandı."]
    (q,) = quotes(t)
    assert t[q.start : q.end] == "“We won.”"


def test_language() -> None:
    assert language("The CHP won 35 of the 81 provinces in the election.") == "en"
    assert language("CHP 81 ilin 35'inde seçimi kazandı ve birinci parti oldu.") == "tr"
