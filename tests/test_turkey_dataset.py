"""The bundled Turkish local elections (2024 and 2019): structure, official figures, simulated boxes."""

from __future__ import annotations

import collections
import re
from pathlib import Path

import numpy as np
import pytest

from sandik.datasets import turkey_local
from sandik.datasets.turkish_names import fold, slug, title_tr
from sandik.formats import election_file

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"


@pytest.fixture(scope="module")
def e2024():
    return election_file.read(turkey_local.data_file("tr-2024-local"))


@pytest.fixture(scope="module")
def e2019():
    return election_file.read(turkey_local.data_file("tr-2019-local"))


def winner(e, race_id):
    t = e.aggregate_results[race_id]
    return e.races[race_id].candidates[int(np.argmax(t.votes))]


def votes_of(e, race_id):
    r = e.races[race_id]
    return dict(zip((c.id for c in r.candidates), e.aggregate_results[race_id].votes))


# --- Turkish names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw,key",
    [
        ("İSTANBUL", "istanbul"),
        ("Kırıkkale", "kirikkale"),
        ("KIRIKKALE", "kirikkale"),
        ("AFYONKARAHISAR", "afyonkarahisar"),
        ("Şehitkamil", "sehitkamil"),
        ("  Çağlayancerit ", "caglayancerit"),
        ("Kâhta", "kahta"),
        ("BESNİ - ÇAKIRHÜYÜK", "besni cakirhuyuk"),
        ("Iğdır", "igdir"),
    ],
)
def test_fold(raw, key):
    assert fold(raw) == key


def test_slug_and_title():
    assert slug("19 Mayıs") == "19-mayis"
    assert slug("Yeni  Şehir") == "yeni-sehir"
    assert title_tr("EKREM İMAMOĞLU") == "Ekrem İmamoğlu"
    assert title_tr("KIRIKKALE") == "Kırıkkale"
    assert title_tr("IĞDIR") == "Iğdır"
    assert title_tr("İZMİR") == "İzmir"
    assert title_tr("MERAL DANIŞ BEŞTAŞ") == "Meral Danış Beştaş"
    assert title_tr("ali-veli") == "Ali-Veli"


# --- structure -----------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["e2024", "e2019"])
def test_area_tree(which, request):
    e = request.getfixturevalue(which)
    kinds = collections.Counter(a.kind for a in e.areas.values())
    assert kinds["country"] == 1 and e.areas["tr"].name == "Türkiye"
    assert kinds["province"] == 81
    assert kinds["district"] == 973
    assert kinds["belde"] == (390 if which == "e2024" else 386)
    for a in e.areas.values():
        if a.kind == "province":
            assert re.fullmatch(r"tr\.\d\d", a.id)
            assert 1 <= int(a.id[3:]) <= 81
        if a.kind == "district":
            assert e.areas[a.parent_id].kind == "province"
        if a.kind == "belde":
            assert e.areas[a.parent_id].kind == "district"
    assert e.areas["tr.34"].name == "İstanbul"
    assert e.areas["tr.03"].name == "Afyonkarahisar"
    assert e.areas["tr.71"].name == "Kırıkkale"
    assert e.areas["tr.76"].name == "Iğdır"
    assert e.areas["tr.34.kadikoy"].name == "Kadıköy"
    assert e.areas["tr.03.merkez"].name == "Merkez"
    assert e.areas["tr.02.besni.cakirhuyuk"].name == "Çakırhüyük"
    assert e.areas["tr.55.19-mayis"].name == "19 Mayıs"
    assert e.areas["tr.56.tillo"].name == "Tillo"


@pytest.mark.parametrize("which", ["e2024", "e2019"])
def test_races(which, request):
    e = request.getfixturevalue(which)
    offices = collections.Counter(r.office for r in e.races.values())
    assert offices["metropolitan_mayor"] == 30
    assert offices["provincial_mayor"] == 51
    assert offices["district_mayor"] == 922
    assert offices["belde_mayor"] == (390 if which == "e2024" else 386)
    assert len(e.races) == sum(offices.values())
    assert e.info.country == "TR"
    assert e.info.top_offices == ("metropolitan_mayor", "provincial_mayor")
    assert e.info.top_area_kind == "province"
    top_areas = set()
    for r in e.races.values():
        area = e.areas[r.area_id]
        assert r.id == f"{r.area_id}:{r.office}"
        if r.office == "metropolitan_mayor":
            assert area.kind == "province"
            assert r.name == f"{area.name} metropolitan mayor"
        elif r.office == "provincial_mayor":
            assert area.kind == "district" and r.area_id.endswith(".merkez")
            assert r.name == f"{e.areas[area.parent_id].name} mayor"
        elif r.office == "district_mayor":
            assert area.kind == "district" and not r.area_id.endswith(".merkez")
        else:
            assert area.kind == "belde"
        if r.office in e.info.top_offices:
            top_areas.add(r.area_id.split(".")[1])
        ids = [c.id for c in r.candidates]
        assert len(set(ids)) == len(ids) and ids
        for c in r.candidates:
            assert (c.party is None) == (c.id == "IND")
            if c.party is not None:
                assert c.id == c.party
            else:
                assert c.name == "Independents (combined)"
    assert len(top_areas) == 81


def test_ids(e2024, e2019):
    assert e2024.id == "tr-2024-local" and e2024.info.previous_id == "tr-2019-local"
    assert e2019.id == "tr-2019-local" and e2019.info.previous_id is None
    assert str(e2024.info.date) == "2024-03-31" and str(e2019.info.date) == "2019-03-31"


def test_parties(e2024, e2019):
    for e in (e2024, e2019):
        for p in e.parties.values():
            assert re.fullmatch(r"#[0-9a-f]{6}", p.colour), p
            assert p.name and p.short_name
        used = {c.party for r in e.races.values() for c in r.candidates if c.party}
        assert used <= set(e.parties)
    for code in ("AKP", "CHP", "MHP", "DEM", "IYI", "YRP", "BBP"):
        assert code in e2024.parties
    assert len(e2024.parties) == 34 and len(e2019.parties) == 12
    assert e2024.parties["CHP"].name == "Cumhuriyet Halk Partisi"
    assert e2024.parties["DEM"].short_name == "DEM"
    assert e2019.parties["DEM"].short_name == "HDP"
    assert e2019.parties["DEM"].name == "Halkların Demokratik Partisi"


# --- official figures ------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["e2024", "e2019"])
def test_every_race_has_consistent_official_totals(which, request):
    e = request.getfixturevalue(which)
    assert set(e.aggregate_results) == set(e.races)
    for rid, t in e.aggregate_results.items():
        assert len(t.votes) == len(e.races[rid].candidates)
        assert all(v > 0 for v in t.votes)
        assert list(t.votes) == sorted(t.votes, reverse=True)
        assert sum(t.votes) == t.valid, rid
        assert t.invalid == t.total_voters - t.valid >= 0, rid
        assert 0 < t.total_voters <= t.registered, rid


def test_2024_winners(e2024):
    wins = collections.Counter(winner(e2024, r.id).id for r in e2024.races.values() if r.office in e2024.info.top_offices)
    assert wins == {"CHP": 35, "AKP": 24, "DEM": 10, "MHP": 8, "YRP": 2, "IYI": 1, "BBP": 1}


def test_istanbul_and_ankara_2024(e2024):
    rid = "tr.34:metropolitan_mayor"
    v = votes_of(e2024, rid)
    assert v["CHP"] == 4_438_727 and v["AKP"] == 3_431_871
    names = {c.id: c.name for c in e2024.races[rid].candidates}
    assert names["CHP"] == "Ekrem İmamoğlu"
    assert names["AKP"] == "Murat Kurum"
    assert e2024.races[rid].name == "İstanbul metropolitan mayor"
    ankara = {c.id: c.name for c in e2024.races["tr.06:metropolitan_mayor"].candidates}
    assert ankara["CHP"] == "Mansur Yavaş"
    # District winners are named too.
    kadikoy = e2024.races["tr.34.kadikoy:district_mayor"]
    assert kadikoy.name == "Kadıköy mayor"
    assert kadikoy.candidates[0].name


def test_istanbul_2019(e2019):
    rid = "tr.34:metropolitan_mayor"
    v = votes_of(e2019, rid)
    assert v["CHP"] == 4_169_765 and v["AKP"] == 4_156_036
    assert e2019.aggregate_results[rid].registered == 10_570_939


def test_metro_registered_is_sum_of_districts(e2024, e2019):
    for e in (e2024, e2019):
        for r in e.races.values():
            if r.office != "metropolitan_mayor":
                continue
            districts = [x for x in e.races.values() if x.office == "district_mayor" and e.areas[x.area_id].parent_id == r.area_id]
            assert sum(e.aggregate_results[x.id].registered for x in districts) == e.aggregate_results[r.id].registered


def test_2019_and_2024_race_ids_match(e2024, e2019):
    not_belde = lambda e: {rid for rid, r in e.races.items() if r.office != "belde_mayor"}  # noqa: E731
    assert not_belde(e2024) == not_belde(e2019)
    beldes19 = set(e2019.races) - not_belde(e2019)
    beldes24 = set(e2024.races) - not_belde(e2024)
    assert beldes19 <= beldes24 and len(beldes24 - beldes19) == 4
    for rid in e2019.races:
        assert e2019.races[rid].office == e2024.races[rid].office
        assert e2019.races[rid].area_id == e2024.races[rid].area_id
    for aid, a in e2019.areas.items():
        assert e2024.areas[aid].name == a.name


# --- boxes ----------------------------------------------------------------------------------------------


def test_2019_is_aggregate_only(e2019):
    assert len(e2019.box_ids) == 0
    assert all(len(e2019.race_boxes[rid]) == 0 for rid in e2019.races)


def test_box_counts(e2024):
    counts = collections.Counter(aid.split(".")[1] for aid in e2024.box_area_ids)
    assert counts["34"] == 33_273
    assert len(e2024.race_boxes["tr.34:metropolitan_mayor"]) == 33_273
    # The district file's 184,766 boxes (districts with their beldes) plus Tillo, which it lacks.
    tillo = len(e2024.race_boxes["tr.56.tillo:district_mayor"])
    assert tillo == round(e2024.aggregate_results["tr.56.tillo:district_mayor"].registered / 310)
    assert len(e2024.box_ids) == 184_766 + tillo


def test_box_sizes(e2024):
    reg = e2024.box_registered
    assert reg.min() >= 1
    assert reg.max() <= 400
    assert 280 <= np.median(reg) <= 350
    assert 300 <= reg.mean() <= 330
    assert (reg < 150).mean() > 0.03  # a tail of small (village, remainder) boxes


def test_box_ids(e2024):
    for i in range(0, len(e2024.box_ids), 997):
        b, a, n = e2024.box_ids[i], e2024.box_area_ids[i], e2024.box_numbers[i]
        assert b == f"{a}.{n}" and int(n) >= 1001
        assert e2024.areas[a].kind in ("district", "belde")


def test_every_race_boxes_hold_its_registered_voters(e2024):
    for rid, r in e2024.races.items():
        idx = e2024.race_boxes[rid]
        assert len(idx), rid
        assert int(e2024.box_registered[idx].sum()) == e2024.aggregate_results[rid].registered, rid
        if r.office == "metropolitan_mayor":
            assert all(e2024.box_area_ids[b].startswith(r.area_id + ".") for b in idx.tolist())
        else:
            assert all(e2024.box_area_ids[b] == r.area_id for b in idx.tolist())


def test_metro_boxes_are_its_district_boxes_and_beldes_stand_apart(e2024):
    e = e2024
    for r in e.races.values():
        if r.office == "metropolitan_mayor":
            districts = [x.id for x in e.races.values() if x.office == "district_mayor" and e.areas[x.area_id].parent_id == r.area_id]
            union = np.sort(np.concatenate([e.race_boxes[d] for d in districts]))
            assert np.array_equal(np.sort(e.race_boxes[r.id]), union)
    # Each box votes in one local race (district, provincial or belde), plus the metropolitan one.
    local = collections.Counter()
    for r in e.races.values():
        if r.office != "metropolitan_mayor":
            local.update(e.race_boxes[r.id].tolist())
    assert len(local) == len(e.box_ids) and max(local.values()) == 1
    belde_boxes = e.race_boxes["tr.02.besni.cakirhuyuk:belde_mayor"]
    assert not set(belde_boxes.tolist()) & set(e.race_boxes["tr.02.besni:district_mayor"].tolist())


def test_split_registered_is_exact():
    rng = np.random.default_rng(1)
    for total, n in [(1000, 3), (345_000, 1000), (3510, 45), (411, 2), (7, 1)]:
        s = turkey_local.split_registered(total, n, rng)
        assert len(s) == n and s.sum() == total and s.min() >= 1 and s.max() <= 400


# --- rebuild ----------------------------------------------------------------------------------------------


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/data")
def test_shipped_files_are_a_fresh_deterministic_build():
    a24, a19, _ = turkey_local.build_elections(SHARED)
    b24, b19, _ = turkey_local.build_elections(SHARED)
    assert election_file.dumps(a24) == election_file.dumps(b24)
    assert election_file.dumps(a19) == election_file.dumps(b19)
    assert election_file.dumps(a24) == turkey_local.data_file("tr-2024-local").read_bytes()
    assert election_file.dumps(a19) == turkey_local.data_file("tr-2019-local").read_bytes()


def test_shipped_files_are_small():
    total = sum(turkey_local.data_file(i).stat().st_size for i in turkey_local.ELECTION_IDS)
    assert total < 4_000_000
