"""The thin shell of sandik.news: where ``Facts`` come from (a store or a built-in dataset).

Kept apart from the pure modules so that the CLI, the API and the website build
facts the same way: live from a store's tally while sheets are arriving, the
official final results when nothing has been counted or ``final`` is asked for.
"""

from __future__ import annotations

from sandik.core.model import Election
from sandik.datasets import registry
from sandik.errors import NotFound
from sandik.news.facts import Facts
from sandik.store.repository import Store


def facts_from_store(store: Store, election_id: str | None = None, *, final: bool = False) -> Facts:
    """Facts of an election in a store: its live tally, or its final results if no sheet is stored (or ``final``)."""
    from sandik.ingest.pipeline import build_tally

    eid = election_id or store.default_election_id()
    e = store.election(eid)
    previous = _previous(e, store)
    if final or store.count_sheets(eid) == 0:
        if not e.aggregate_results:
            raise NotFound("final results", eid, election_id=eid)
        return Facts.build(e, None, previous)
    tally, last_seq = build_tally(store, e)
    return Facts.build(e, tally, previous, source=f"{eid}: live tally (sheet log up to seq {last_seq:,})")


def facts_from_dataset(dataset: str = "tr-2024", election_id: str | None = None) -> Facts:
    """Final results of a built-in dataset's election (default: its main election)."""
    elections = registry.get(dataset).elections()
    by_id = {e.id: e for e in elections}
    e = by_id.get(election_id) if election_id else elections[-1]
    if e is None:
        raise NotFound("election", election_id or "", election_id=None)
    previous = by_id.get(e.info.previous_id or "")
    return Facts.build(e, None, previous)


def _previous(e: Election, store: Store) -> Election | None:
    if not e.info.previous_id:
        return None
    try:
        return store.election(e.info.previous_id)
    except NotFound:
        return None
