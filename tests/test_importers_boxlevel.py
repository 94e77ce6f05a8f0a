"""The box-level importers (İstanbul 2019 district mayors, Turkey 2014 municipal mayors) on the real files."""

from __future__ import annotations

import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from sandik.core.model import Election
from sandik.core.sheet import TallySheet
from sandik.datasets.istanbul2019 import load_istanbul_2019
from sandik.datasets.turkey2014 import load_turkey_2014
from sandik.errors import FormatError
from sandik.formats import election_file

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
IST_FILE = DATA / "istanbul-2019-ballot-boxes" / "istanbul_2019_belediye_baskanligi_sandik_wide.csv"
TR14_FILE = DATA / "tr-local-2014-ballot-boxes" / "yerel2014.csv.zip"

needs_ist = pytest.mark.skipif(not IST_FILE.exists(), reason=f"shared data not found: {IST_FILE}")
needs_tr14 = pytest.mark.skipif(not TR14_FILE.exists(), reason=f"shared data not found: {TR14_FILE}")


# --- helpers ----------------------------------------------------------------------------
def _arithmetic(sheets: list[TallySheet]) -> Counter[str]:
    """How many sheets break each arithmetic rule a tally sheet must keep."""
    c: Counter[str] = Counter()
    for s in sheets:
        if sum(s.votes.values()) != s.valid:
            c["votes != valid"] += 1
        if s.ballots_used != s.valid + s.invalid:
            c["cast != valid + invalid"] += 1
        if s.valid != s.valid_unchallenged + s.valid_challenged:
            c["valid != unchallenged + challenged"] += 1
        if s.total_voters > s.registered:
            c["cast > registered"] += 1
        if s.total_voters != s.voted_listed + s.voted_by_law or s.voted_listed > s.registered:
            c["voters split"] += 1
    return c


def _structure(e: Election, sheets: list[TallySheet]) -> None:
    """Checks every importer's output must pass."""
    e.check()
    assert len(set(e.box_ids)) == len(e.box_ids) == len(sheets)
    assert [s.box_id for s in sheets] == e.box_ids  # one sheet per box, in box order
    # every box votes in exactly one race, the one its sheet names
    owner = np.full(len(e.box_ids), -1)
    race_ids = list(e.races)
    for k, rid in enumerate(race_ids):
        idx = e.race_boxes[rid]
        assert (owner[idx] == -1).all()
        owner[idx] = k
    assert (owner >= 0).all()
    assert all(race_ids[owner[i]] == s.race_id for i, s in enumerate(sheets))
    for s in sheets:
        race = e.races[s.race_id]
        assert list(s.votes) == [c.id for c in race.candidates]
        assert s.source == "official"
        assert s.registered == e.box_registered[e.box_index[s.box_id]]
    # boxes hang off leaves that exist; ids are hierarchical
    for b, a in zip(e.box_ids, e.box_area_ids):
        assert b.startswith(a + ".")
    assert all(part and part.strip() == part for a in e.areas for part in a.split("."))
    assert all(part for b in e.box_ids for part in b.split("."))


# --- İstanbul 2019 ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def ist() -> tuple[Election, list[TallySheet]]:
    if not IST_FILE.exists():
        pytest.skip(f"shared data not found: {IST_FILE}")
    return load_istanbul_2019(IST_FILE)


@needs_ist
def test_istanbul_totals(ist):
    e, sheets = ist
    assert e.id == "tr-istanbul-2019-district-mayors"
    assert e.info.date.isoformat() == "2019-03-31" and e.info.country == "TR"
    assert len(e.box_ids) == len(sheets) == 31_186
    assert e.total_registered == 10_570_939
    assert sum(s.total_voters for s in sheets) == 8_850_705
    assert sum(s.valid for s in sheets) == 8_569_494
    assert sum(s.invalid for s in sheets) == 281_211


@needs_ist
def test_istanbul_structure(ist):
    e, sheets = ist
    _structure(e, sheets)
    assert len(e.races) == 39
    assert all(r.office == "district_mayor" and r.id == f"{r.area_id}:district_mayor" for r in e.races.values())
    assert e.area("tr").kind == "country"
    assert e.area("tr.34").name == "İstanbul"
    assert e.area("tr.34.kadikoy").name == "Kadıköy"
    assert e.area("tr.34.kadikoy").kind == "district"
    nb = e.area("tr.34.adalar.burgazada-mah")
    assert (nb.kind, nb.name, nb.parent_id) == ("neighbourhood", "Burgazada Mah.", "tr.34.adalar")
    assert {a.kind for a in e.areas.values()} == {"country", "province", "district", "neighbourhood"}
    assert set(e.box_area_ids) == {a.id for a in e.areas.values() if a.kind == "neighbourhood"}


@needs_ist
def test_istanbul_candidates(ist):
    e, _ = ist
    assert set(e.parties) == {"CHP", "AKP", "MHP", "IYI", "SP", "DSP", "BTP", "VATAN", "TKP", "BBP", "DP", "HDP"}
    assert all(p.colour.startswith("#") and len(p.colour) == 7 for p in e.parties.values())
    kadikoy = e.race("tr.34.kadikoy:district_mayor")
    assert [c.id for c in kadikoy.candidates] == ["SP", "BTP", "VATAN", "CHP", "AKP", "DSP", "BBP", "DP", "IYI"]
    assert all(c.party == c.id and c.name == "" for c in kadikoy.candidates)
    uskudar = {c.id: c for c in e.race("tr.34.uskudar:district_mayor").candidates}
    assert uskudar["haci-omer-oncu"].name == "Hacı Ömer Öncü"
    assert uskudar["haci-omer-oncu"].party is None
    assert "CHP" not in {c.id for c in e.race("tr.34.arnavutkoy:district_mayor").candidates}  # CHP backed İYİ there
    indep = [c.id for r in e.races.values() for c in r.candidates if c.party is None]
    assert len(indep) == len(set(indep)) == 36  # 48 columns: 12 parties, 36 independents, each in one district


@needs_ist
def test_istanbul_known_box(ist):
    e, sheets = ist
    i = e.box("tr.34.adalar.burgazada-mah.1001")
    s = sheets[i]
    assert e.box_numbers[i] == "1001" and e.box_area_ids[i] == "tr.34.adalar.burgazada-mah"
    assert (s.registered, s.total_voters, s.ballots_used, s.valid_unchallenged, s.valid_challenged, s.valid, s.invalid) == (
        317, 227, 227, 218, 0, 218, 9,
    )  # fmt: skip
    assert (s.voted_listed, s.voted_by_law) == (227, 0)
    assert s.votes == {"SP": 1, "BTP": 0, "VATAN": 0, "CHP": 131, "AKP": 29, "DSP": 57}
    assert s.race_id == "tr.34.adalar:district_mayor"


@needs_ist
def test_istanbul_arithmetic(ist):
    _, sheets = ist
    # The file keeps every rule; 28 boxes had more voters than listed (legal: officials vote where they serve).
    assert _arithmetic(sheets) == Counter({"cast > registered": 28})
    over = [s for s in sheets if s.total_voters > s.registered]
    assert all(s.voted_by_law == s.total_voters - s.registered and s.voted_listed == s.registered for s in over)
    assert all(s.voted_by_law == 0 for s in sheets if s.total_voters <= s.registered)


@needs_ist
def test_istanbul_round_trips_through_election_file(ist):
    e, _ = ist
    e2 = election_file.loads(election_file.dumps(e))
    assert e2.box_ids == e.box_ids and e2.races == e.races and e2.areas == e.areas
    assert e2.total_registered == e.total_registered


# --- Turkey 2014 ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tr14() -> tuple[Election, list[TallySheet]]:
    if not TR14_FILE.exists():
        pytest.skip(f"shared data not found: {TR14_FILE}")
    e, sheets = load_turkey_2014(TR14_FILE)
    return e, sheets


@needs_tr14
@pytest.mark.slow
def test_turkey2014_totals(tr14):
    e, sheets = tr14
    assert e.id == "tr-2014-local"
    assert e.info.date.isoformat() == "2014-03-30" and e.info.country == "TR"
    assert len(e.box_ids) == len(sheets) == 171_384
    assert e.total_registered == 48_546_962
    assert sum(s.valid for s in sheets) == 41_461_011


@needs_tr14
@pytest.mark.slow
def test_turkey2014_structure(tr14):
    e, sheets = tr14
    _structure(e, sheets)
    assert len(e.races) == 1_345  # 957 districts with their own race + 388 belde
    assert all(r.office == "mayor" and r.id == f"{r.area_id}:mayor" for r in e.races.values())
    kinds = Counter(a.kind for a in e.areas.values())
    assert (kinds["province"], kinds["district"], kinds["belde"]) == (81, 959, 388)
    assert e.area("tr.03").name == "Afyonkarahisar"
    assert e.area("tr.33").name == "Mersin"
    assert e.area("tr.06.cankaya").name == "Çankaya"
    assert e.area("tr.03.merkez").name == "Merkez"
    assert e.race("tr.03.merkez:mayor").name == "Afyonkarahisar Merkez mayor"
    haydarli = e.area("tr.03.dinar.haydarli")
    assert (haydarli.kind, haydarli.name, haydarli.parent_id) == ("belde", "Haydarlı", "tr.03.dinar")
    # belde voters vote for their belde mayor only
    belde_boxes = {i for i, a in enumerate(e.box_area_ids) if a.startswith("tr.03.dinar.haydarli.")}
    assert belde_boxes == set(e.race_boxes["tr.03.dinar.haydarli:mayor"].tolist())
    assert not belde_boxes & set(e.race_boxes["tr.03.dinar:mayor"].tolist())
    # re-run races are not in the file: the districts exist, their own races do not
    for d in ("tr.13.guroymak", "tr.77.merkez"):
        assert e.area(d).kind == "district" and f"{d}:mayor" not in e.races and d in e.info.notes
    assert e.race("tr.77.merkez.kadikoy:mayor")


@needs_tr14
@pytest.mark.slow
def test_turkey2014_candidates(tr14):
    e, sheets = tr14
    assert set(e.parties) == {"AKP", "MHP", "SP", "CHP", "BTP", "BBP", "DP", "DSP", "HDP", "DBP"}
    kadikoy = e.race("tr.34.kadikoy:mayor")
    assert [c.id for c in kadikoy.candidates] == ["AKP", "MHP", "SP", "CHP", "BTP", "BBP", "DP", "DSP", "HDP", "OTHER"]
    other = kadikoy.candidates[-1]
    assert (other.name, other.party) == ("Others (combined)", None)
    # a candidate stands in a race exactly when it has votes there
    totals: dict[str, Counter[str]] = {}
    for s in sheets:
        totals.setdefault(s.race_id, Counter()).update(s.votes)
    for rid, t in totals.items():
        assert all(v > 0 for v in t.values()), rid


@needs_tr14
@pytest.mark.slow
def test_turkey2014_known_box(tr14):
    e, sheets = tr14
    s = sheets[e.box("tr.34.catalca.akalan-mah.1001")]
    assert s.race_id == "tr.34.catalca:mayor"
    assert (s.registered, s.total_voters, s.valid_unchallenged, s.valid_challenged, s.valid, s.invalid) == (295, 272, 253, 0, 253, 19)
    assert s.votes == {"AKP": 54, "MHP": 10, "SP": 1, "CHP": 185, "BTP": 0, "BBP": 0, "DP": 0, "DSP": 0, "HDP": 0, "OTHER": 3}


@needs_tr14
@pytest.mark.slow
def test_turkey2014_rule_breakers_are_kept(tr14):
    e, sheets = tr14
    # Kept as the file says (the ingest quarantines them): 203 boxes whose party columns fall
    # short of the valid votes, all in three races; 1,876 boxes with more voters than listed.
    assert _arithmetic(sheets) == Counter({"votes != valid": 203, "cast > registered": 1876})
    short = Counter(s.race_id for s in sheets if sum(s.votes.values()) != s.valid)
    assert short == {"tr.50.merkez:mayor": 113, "tr.34.kadikoy:mayor": 52, "tr.61.macka:mayor": 38}
    assert all(sum(s.votes.values()) < s.valid for s in sheets if s.race_id in short and sum(s.votes.values()) != s.valid)


# --- other copies of the formats -------------------------------------------------------
def _ist_sample(n: int = 40) -> list[str]:
    return IST_FILE.read_text(encoding="utf-8").splitlines()[: n + 1]


def _tr14_sample(n: int = 300) -> list[str]:
    text = zipfile.ZipFile(TR14_FILE).read("yerel2014.csv").decode("utf-16")
    return text.split("\r\n")[: n + 1]


@needs_tr14
def test_turkey2014_reads_plain_csv_and_zip_alike(tmp_path):
    lines = _tr14_sample()
    plain = tmp_path / "sample.csv"
    plain.write_bytes("\r\n".join(lines).encode("utf-16"))
    zipped = tmp_path / "sample.csv.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        z.write(plain, "sample.csv")
    a, sa = load_turkey_2014(plain)
    b, sb = load_turkey_2014(zipped)
    assert len(sa) == 300 and a.box_ids == b.box_ids and sa == sb
    assert sum(s.valid for s in sa) == sum(int(line.split("\t")[11]) for line in lines[1:])


@needs_tr14
def test_turkey2014_repeated_box_numbers_get_distinct_ids(tmp_path):
    lines = _tr14_sample(3)
    p = tmp_path / "dup.csv"
    p.write_bytes("\r\n".join(lines + [lines[1], lines[1]]).encode("utf-16"))
    e, sheets = load_turkey_2014(p)
    assert e.box_ids[0] == "tr.34.catalca.akalan-mah.1001"
    assert e.box_ids[-2:] == ["tr.34.catalca.akalan-mah.1001-2", "tr.34.catalca.akalan-mah.1001-3"]
    assert e.box_numbers[-1] == "1001" and "repeat" in e.info.notes


# --- malformed files --------------------------------------------------------------------
@needs_ist
def test_istanbul_missing_column(tmp_path):
    lines = _ist_sample(5)
    cells = [line.split(",") for line in lines]
    k = cells[0].index("oy_kullanan")
    p = tmp_path / "missing.csv"
    p.write_text("\n".join(",".join(c[:k] + c[k + 1 :]) for c in cells), encoding="utf-8")
    with pytest.raises(FormatError) as ei:
        load_istanbul_2019(p)
    err = ei.value
    assert (err.source, err.line, err.field) == (str(p), 1, "oy_kullanan")
    assert str(p) in str(err) and "oy_kullanan" in str(err)


@needs_ist
def test_istanbul_bad_number(tmp_path):
    lines = _ist_sample(5)
    cells = lines[2].split(",")
    cells[4] = "31x"
    lines[2] = ",".join(cells)
    p = tmp_path / "badnum.csv"
    p.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(FormatError) as ei:
        load_istanbul_2019(p)
    assert (ei.value.source, ei.value.line, ei.value.field) == (str(p), 3, "kayitli_secmen")
    assert "31x" in str(ei.value)


@needs_ist
def test_istanbul_empty_cell_for_a_standing_candidate(tmp_path):
    lines = _ist_sample(5)
    cells = lines[4].split(",")
    cells[13] = ""  # CHP stands in Adalar: the other boxes have a count
    lines[4] = ",".join(cells)
    p = tmp_path / "blank.csv"
    p.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(FormatError) as ei:
        load_istanbul_2019(p)
    assert (ei.value.line, ei.value.field) == (5, "CHP")


@needs_ist
def test_istanbul_bad_encoding(tmp_path):
    lines = _ist_sample(5)
    data = "\n".join(lines).encode("utf-8").split(b"\n")
    data[3] = data[3].replace(b"BURGAZADA", b"BURGAZ\xff\xfeADA")
    p = tmp_path / "latin.csv"
    p.write_bytes(b"\n".join(data))
    with pytest.raises(FormatError) as ei:
        load_istanbul_2019(p)
    assert (ei.value.source, ei.value.line) == (str(p), 4)
    assert "UTF-8" in str(ei.value)


@needs_ist
def test_istanbul_short_row(tmp_path):
    lines = _ist_sample(5)
    lines[3] = lines[3].rsplit(",", 3)[0]
    p = tmp_path / "short.csv"
    p.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(FormatError) as ei:
        load_istanbul_2019(p)
    assert ei.value.line == 4 and "cells" in str(ei.value)


@needs_tr14
def test_turkey2014_missing_column(tmp_path):
    lines = _tr14_sample(5)
    cells = [line.split("\t") for line in lines]
    k = cells[0].index("Sandık No")
    p = tmp_path / "missing.csv"
    p.write_bytes("\r\n".join("\t".join(c[:k] + c[k + 1 :]) for c in cells).encode("utf-16"))
    with pytest.raises(FormatError) as ei:
        load_turkey_2014(p)
    assert (ei.value.source, ei.value.line, ei.value.field) == (str(p), 1, "Sandık No")


@needs_tr14
def test_turkey2014_bad_number_names_line_and_field(tmp_path):
    lines = _tr14_sample(5)
    cells = lines[4].split("\t")
    cells[16] = "18.5"  # CHP
    lines[4] = "\t".join(cells)
    p = tmp_path / "badnum.csv.zip"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("yerel2014.csv", "\r\n".join(lines).encode("utf-16"))
    with pytest.raises(FormatError) as ei:
        load_turkey_2014(p)
    assert (ei.value.line, ei.value.field) == (5, "CHP")
    assert ei.value.source == f"{p}!yerel2014.csv"


@needs_tr14
def test_turkey2014_bad_encoding(tmp_path):
    lines = _tr14_sample(5)
    lines[3] = lines[3].replace("AKALAN", "AKA\ud800LAN")  # a lone surrogate cannot be UTF-16
    p = tmp_path / "bad16.csv"
    p.write_bytes("\r\n".join(lines).encode("utf-16", "surrogatepass"))
    with pytest.raises(FormatError) as ei:
        load_turkey_2014(p)
    assert (ei.value.source, ei.value.line) == (str(p), 4)


def test_zip_with_two_csvs_and_missing_file(tmp_path):
    p = tmp_path / "two.zip"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("a.csv", "x")
        z.writestr("b.csv", "y")
    with pytest.raises(FormatError, match="one CSV"):
        load_turkey_2014(p)
    with pytest.raises(FormatError) as ei:
        load_istanbul_2019(tmp_path / "nope.csv")
    assert ei.value.source == str(tmp_path / "nope.csv")


def test_empty_files(tmp_path):
    p = tmp_path / "empty.csv"
    p.write_bytes(b"")
    for loader in (load_istanbul_2019, load_turkey_2014):
        with pytest.raises(FormatError) as ei:
            loader(p)
        assert ei.value.line == 1


@needs_tr14
def test_turkey2014_counts_off_the_fast_path(tmp_path):
    lines = _tr14_sample(5)
    cells = lines[1].split("\t")
    cells[13] = " 54 "  # AK PARTİ, padded: still a count
    lines[1] = "\t".join(cells)
    p = tmp_path / "padded.csv"
    p.write_bytes("\r\n".join(lines).encode("utf-16"))
    _, sheets = load_turkey_2014(p)
    assert sheets[0].votes["AKP"] == 54
    cells[13] = "9" * 20
    lines[1] = "\t".join(cells)
    p.write_bytes("\r\n".join(lines).encode("utf-16"))
    with pytest.raises(FormatError) as ei:
        load_turkey_2014(p)
    assert (ei.value.line, ei.value.field) == (2, "AK PARTİ")
