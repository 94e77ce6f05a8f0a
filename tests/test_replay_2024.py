"""End to end: the whole simulated 2024 night through the real ingest path into SQLite.

After the replay every race's tally must equal the official totals exactly, and the
headline facts must come out: İmamoğlu 4,438,727 vs Kurum 3,431,871; CHP 35 of 81 provinces.
"""

import numpy as np
import pytest

from sandik.cli import run_replay
from sandik.core.results import final_results, scoreboards
from sandik.core.tally import I_INVALID, I_TOTAL_VOTERS, I_VALID, NB
from sandik.ingest.pipeline import build_tally
from sandik.store.repository import open_store


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    st = open_store(str(tmp_path_factory.mktemp("night") / "night.sqlite"))
    rep = run_replay(st, "tr-2024", speed="max", quiet=True)
    e = st.election("tr-2024-local")
    yield st, e, rep
    st.close()


@pytest.mark.slow
def test_every_race_equals_the_official_totals(replayed):
    st, e, rep = replayed
    assert rep.quarantined == 0 and rep.accepted == rep.received
    tally, _ = build_tally(st, e)  # as a restarted process would see it
    for rid, t in e.aggregate_results.items():
        row = tally.row(rid, e.races[rid].area_id)
        assert row[I_TOTAL_VOTERS] == t.total_voters, rid
        assert row[I_VALID] == t.valid and row[I_INVALID] == t.invalid, rid
        assert np.array_equal(row[NB:], np.array(t.votes)), rid


@pytest.mark.slow
def test_headline_results(replayed):
    st, e, _ = replayed
    tally, _ = build_tally(st, e)
    res = final_results(e, tally)
    ist = res["tr.34:metropolitan_mayor"]
    assert ist.status == "complete"
    assert [(c.name, c.votes) for c in ist.candidates[:2]] == [("Ekrem İmamoğlu", 4_438_727), ("Murat Kurum", 3_431_871)]
    top = next(b for b in scoreboards(e, res) if b.group == "top:province")
    won = {line.party: line.won for line in top.lines}
    assert top.races == 81
    assert won == {"CHP": 35, "AKP": 24, "DEM": 10, "MHP": 8, "YRP": 2, "IYI": 1, "BBP": 1}
