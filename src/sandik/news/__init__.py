"""Checking news articles against the election data, and writing factual summaries.

    facts = sandik.news.service.facts_from_store(store, election_id)   # or Facts.build(...)
    Checker(facts).check(text).to_dict()      # claims, verdicts, unlinked names, foreign places
    summarize(facts, area_id, "en").to_dict()  # sentences, each with the figures behind it

See docs/news.md.
"""

from sandik.news.claims import ArticleCheck, Checker, Claim, check_article
from sandik.news.facts import Facts
from sandik.news.summary import Summary, SummarySentence, summarize

__all__ = ["ArticleCheck", "Checker", "Claim", "Facts", "Summary", "SummarySentence", "check_article", "summarize"]
