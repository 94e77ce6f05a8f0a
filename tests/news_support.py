"""Shared, cached set-up for the news tests: the built-in 2024 election's final facts and a checker."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from sandik.datasets.registry import packaged, shared_data_dir
from sandik.news.claims import Checker
from sandik.news.facts import Facts

ARTICLES = Path(__file__).parent / "articles"
SHARED_ARTICLES = shared_data_dir().parent / "articles"


@lru_cache(maxsize=1)
def elections() -> tuple[Any, Any]:
    return packaged("tr-2019-local.election.json.gz"), packaged("tr-2024-local.election.json.gz")


@lru_cache(maxsize=1)
def final_facts() -> Facts:
    prev, e = elections()
    return Facts.build(e, None, prev)


@lru_cache(maxsize=1)
def checker() -> Checker:
    return Checker(final_facts())


def own_articles() -> list[tuple[str, str, dict[str, Any]]]:
    """(name, text, expected) of every article written for the tests."""
    out = []
    for exp_path in sorted(ARTICLES.glob("*.expected.json")):
        exp = json.loads(exp_path.read_text(encoding="utf-8"))
        if "article" in exp:
            continue  # the shared article, tested on its own
        txt = exp_path.with_name(exp_path.name.replace(".expected.json", ".txt"))
        out.append((txt.name, txt.read_text(encoding="utf-8"), exp))
    return out
