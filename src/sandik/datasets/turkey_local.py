"""The Turkish local elections of 31 March 2024 and 31 March 2019 as sandik elections.

Built from the public compilations in ``../shared/data`` (see
``src/sandik/data/NOTICE.md`` for sources and licences) by
``scripts/build_turkey_data.py``; the results ship as
``src/sandik/data/tr-2024-local.election.json.gz`` and
``tr-2019-local.election.json.gz`` and are read back with :func:`load`.

What is real and what is simulated
----------------------------------
* REAL (official YSK figures, as compiled): every race's registered voters,
  votes cast, valid and invalid votes and votes per party at the level the race
  is decided: province (30 metropolitan mayors), district (51 provincial and
  922 district mayors) and belde. They are the ``aggregate_results`` of both
  elections. The real number of ballot boxes per district (2024).
* SIMULATED (2024 only): the ballot boxes themselves. No box-level 2024 data is
  public here, so each district's (belde's) official registered voters are split
  over its real number of boxes with a realistic size distribution (seeded,
  deterministic). :mod:`sandik.simulation.night` then fills those boxes with
  votes that add up exactly to the official totals.

Race layout
-----------
``tr`` (country) -> ``tr.NN`` (province, NN = plate code) -> ``tr.NN.<district>``
-> ``tr.NN.<district>.<belde>``. Races: ``tr.NN:metropolitan_mayor`` (30),
``tr.NN.merkez:provincial_mayor`` (51: the central district of a
non-metropolitan province elects the provincial-capital mayor),
``<district id>:district_mayor`` (922) and ``<belde id>:belde_mayor``. A belde's
voters vote for their belde mayor, not for the district mayor. Candidates are
one per party with votes (id = party code) plus ``IND``, all independents of the
race lumped together, as the source data does.
"""

from __future__ import annotations

import csv
import json
import math
import unicodedata
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path

import numpy as np

from sandik.core.model import Area, Candidate, Election, ElectionInfo, Party, Race, RaceTotals
from sandik.datasets.turkish_names import fold, slug, title_tr
from sandik.errors import FormatError

__all__ = [
    "ELECTION_IDS",
    "INDEPENDENT_ID",
    "PARTIES",
    "build_elections",
    "data_file",
    "load",
    "split_registered",
]

ELECTION_IDS = ("tr-2024-local", "tr-2019-local")
INDEPENDENT_ID = "IND"
INDEPENDENT_NAME = "Independents (combined)"
TOP_OFFICES = ("metropolitan_mayor", "provincial_mayor")
# Median ballot-box size used where the district file gives no box count.
TYPICAL_BOX = 310
DEFAULT_SEED = 20240331

_METRO = "metropolitan_mayor"
_PROVINCIAL = "provincial_mayor"
_DISTRICT = "district_mayor"
_BELDE = "belde_mayor"


@dataclass(frozen=True)
class PartyDef:
    code: str
    name: str
    short_name: str
    palette_key: str | None  # key in partiler.json, None: not there (grey)


# Column label in the MIT files -> party. Full names are the parties' official
# names (YSK list of parties eligible for 31 March 2024).
PARTIES: dict[str, PartyDef] = {
    "ak parti": PartyDef("AKP", "Adalet ve Kalkınma Partisi", "AKP", "AK Parti"),
    "chp": PartyDef("CHP", "Cumhuriyet Halk Partisi", "CHP", "CHP"),
    "mhp": PartyDef("MHP", "Milliyetçi Hareket Partisi", "MHP", "MHP"),
    "dem parti": PartyDef("DEM", "Halkların Eşitlik ve Demokrasi Partisi", "DEM", "DEM Parti"),
    "yeniden refah": PartyDef("YRP", "Yeniden Refah Partisi", "YRP", "YENİDEN REFAH"),
    "iyi parti": PartyDef("IYI", "İYİ Parti", "İYİ", "İYİ Parti"),
    "buyuk birlik": PartyDef("BBP", "Büyük Birlik Partisi", "BBP", "BBP"),
    "saadet": PartyDef("SP", "Saadet Partisi", "Saadet", "SP"),
    "zafer partisi": PartyDef("ZP", "Zafer Partisi", "Zafer", "ZP"),
    "deva partisi": PartyDef("DEVA", "Demokrasi ve Atılım Partisi", "DEVA", "DEVA"),
    "gelecek partisi": PartyDef("GP", "Gelecek Partisi", "Gelecek", "Gelecek Partisi"),
    "huda par": PartyDef("HUDAPAR", "Hür Dava Partisi", "HÜDA PAR", "HÜDAPAR"),
    "tip": PartyDef("TIP", "Türkiye İşçi Partisi", "TİP", "TİP"),
    "dsp": PartyDef("DSP", "Demokratik Sol Parti", "DSP", "DSP"),
    "dp": PartyDef("DP", "Demokrat Parti", "DP", "DP"),
    "btp": PartyDef("BTP", "Bağımsız Türkiye Partisi", "BTP", "BTP"),
    "tkp": PartyDef("TKP", "Türkiye Komünist Partisi", "TKP", "TKP"),
    "tkh": PartyDef("TKH", "Türkiye Komünist Hareketi", "TKH", "TKH"),
    "vatan partisi": PartyDef("VATAN", "Vatan Partisi", "Vatan", "VATAN"),
    "memleket": PartyDef("MEMLEKET", "Memleket Partisi", "Memleket", "MEMLEKET"),
    "anap": PartyDef("ANAP", "Anavatan Partisi", "ANAP", "ANAP"),
    "sol parti": PartyDef("SOL", "Sol Parti", "Sol Parti", "SOL PARTİ"),
    "emep": PartyDef("EMEP", "Emek Partisi", "EMEP", "EMEP"),
    "hkp": PartyDef("HKP", "Halkın Kurtuluş Partisi", "HKP", "HKP"),
    "hak-par": PartyDef("HAKPAR", "Hak ve Özgürlükler Partisi", "HAK-PAR", "HAK-PAR"),
    "ytp": PartyDef("YTP", "Yeni Türkiye Partisi", "YTP", None),
    "millet": PartyDef("MILLET", "Millet Partisi", "Millet", None),
    "milli yol": PartyDef("MILLIYOL", "Milli Yol Partisi", "Milli Yol", "MİLLİYOL"),
    "ap": PartyDef("AP", "Adalet Partisi", "AP", None),
    "ab parti": PartyDef("AB", "Adalet Birlik Partisi", "AB Parti", "AB"),
    "abp": PartyDef("ABP", "Anadolu Birliği Partisi", "ABP", None),
    "adp": PartyDef("ADP", "Aydınlık Demokrasi Partisi", "ADP", None),
    "gbp": PartyDef("GBP", "Güç Birliği Partisi", "GBP", None),
    # Labelled "ocak" in the source (and "OCAK" in the candidate list); its
    # official full name is not in our sources, so the label is kept.
    "ocak": PartyDef("OCAK", "Ocak", "Ocak", None),
}
# 2019: the MIT files relabel HDP as "dem parti" for comparability. The code
# stays DEM (so 2019 and 2024 compare), the name is the 2019 party's.
PARTIES_2019_OVERRIDES = {
    "dem parti": PartyDef("DEM", "Halkların Demokratik Partisi", "HDP", "HDP"),
}
# Neutral greys for parties without a colour in partiler.json.
_GREYS = ("#9ca3af", "#8b8f98", "#a8a29e", "#7c8591", "#b0b4ba", "#94908a")

# Source-name aliases: MIT fold(name) -> hamiKumbasae fold(name).
_DISTRICT_ALIASES = {(55, "19 mayis"): "ondokuzmayis"}
# Beldes new in 2024 (not in the 2019 YSK export), whose ASCII source name
# loses a letter: proper spelling.
_BELDE_NAME_FIXES = {(3, "sinanpasa", "guney"): "Güney"}

_FILES = {
    "districts": "tr-local-2019-2024-districts/baskanlik_summary_df_{year}__baskanlik_ilceler_summary_df_{year}.csv",
    "metros": "tr-local-2019-2024-districts/baskanlik_summary_df_{year}__baskanlik_iller_summary_df_{year}.csv",
    "boxes": "tr-local-2019-2024-district-boxes/{year}yerel.json",
    "palette": "tr-local-2019-2024-district-boxes/partiler.json",
    "municipalities_2019": "tr-local-2019-municipalities/local_2019.csv",
    "candidates_2024": "tr-local-2024-candidates/secim_data.csv",
}
_NON_PARTY_COLUMNS_AFTER = "bagimsiz toplam oy"
_DATA_DIR = Path(__file__).resolve().parent.parent / "data"


def _nfc(s: str) -> str:
    return unicodedata.normalize("NFC", s).strip()


def _stable_seed(seed: int, key: str) -> np.random.Generator:
    """A generator for one area that does not depend on the order areas are visited in."""
    return np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])


# --- box sizes -------------------------------------------------------------------------


def round_to_total(x: np.ndarray, total: int, lo: np.ndarray | int, hi: np.ndarray) -> np.ndarray:
    """Integers near ``x`` with ``lo <= v <= hi`` summing exactly to ``total``."""
    v = np.clip(np.floor(x), lo, hi).astype(np.int64)
    rem = int(total - v.sum())
    while rem:
        if rem > 0:
            room = np.flatnonzero(v < hi)
            pri = (x - v)[room]
        else:
            room = np.flatnonzero(v > lo)
            pri = (v - x)[room]
        if not len(room):
            raise ValueError("no integer allocation within bounds")
        k = min(abs(rem), len(room))
        pick = room[np.argsort(-pri, kind="stable")[:k]]
        v[pick] += 1 if rem > 0 else -1
        rem += -k if rem > 0 else k
    return v


def split_registered(total: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Split ``total`` registered voters over ``n`` boxes, summing exactly.

    Mimics real Turkish box lists (2014 all-Turkey and 2019 Istanbul box data):
    most boxes close to a cap of about 350 voters, with the remainder boxes of
    neighbourhoods and the village boxes forming a tail of small boxes. The
    lower the district's mean box size, the more small boxes.
    """
    if n < 1:
        raise ValueError("a race needs at least one box")
    if n == 1:
        return np.array([total], dtype=np.int64)
    mean = total / n
    cap = max(350, math.ceil(mean * 1.04))
    # Full boxes: a few voters short of the cap (real lists: quartiles at 95-98% of it).
    full = cap - 5.0 - rng.gamma(2.0, cap * 0.0125, n)
    full_mean = cap - 5.0 - 2.0 * cap * 0.0125
    p_small = min(1.0, max(0.0, 2.0 * (1.0 - mean / full_mean)))
    small = full_mean * rng.beta(1.3, 1.6, n)
    w = np.where(rng.random(n) < p_small, small, full)
    w = np.maximum(w, 3.0)
    x = w * (total / w.sum())
    lo = np.full(n, min(1, total // n), dtype=np.int64)
    hi = np.full(n, cap, dtype=np.int64)
    return round_to_total(np.minimum(x, cap), total, lo, hi)


# --- reading the sources ---------------------------------------------------------------


@dataclass
class _Row:
    """One race's official figures from the MIT files."""

    province: str  # ASCII-folded, as in the source
    district: str | None  # ASCII; None for a metropolitan race
    belde: str | None
    votes: dict[str, int]  # MIT party column -> votes (> 0 only)
    independents: int
    registered: int
    cast: int
    valid: int


@dataclass
class _Sources:
    plates: dict[str, int]  # fold(province) -> plate
    province_names: dict[int, str]
    palette: dict[str, dict[str, str]]
    district_names: dict[tuple[int, str], str]  # (plate, fold) -> proper name
    belde_names: dict[tuple[int, str, str], str]
    box_groups: dict[tuple[int, str], dict]  # (plate, fold) -> 2024yerel record (district + its beldes)
    candidates_2024: dict[tuple[int, str | None, str], str] = field(default_factory=dict)  # (plate, district|None, party col) -> name
    warnings: list[str] = field(default_factory=list)


def _read_csv(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f))
    except OSError as exc:
        raise FormatError(f"cannot read {path}: {exc}", source=str(path)) from exc


def _int(s: str) -> int:
    return int(s.replace(".", "").strip() or 0)


def _read_rows(data: Path, year: int) -> tuple[list[_Row], list[_Row]]:
    """(metropolitan rows, district and belde rows in source order)."""
    out = []
    for kind in ("metros", "districts"):
        path = data / _FILES[kind].format(year=year)
        rows = _read_csv(path)
        header = list(rows[0].keys())
        parties = header[3 : header.index(_NON_PARTY_COLUMNS_AFTER)]
        unknown = [p for p in parties if p not in PARTIES]
        if unknown:
            raise FormatError(f"party columns without a party definition: {unknown}", source=str(path))
        parsed = []
        district = None
        for r in rows:
            county, town = r["County"].strip(), r["Town"].strip()
            if county == "(ilceler toplami)":
                continue  # provincial aggregate rows: not a race
            if kind == "metros":
                d, b = None, None
            elif town == "-":
                d, b = county, None
                district = county
            else:
                # Belde rows follow their district's row and leave County empty.
                if district is None:
                    raise FormatError(f"belde {town!r} before any district", source=str(path))
                d, b = district, town
            parsed.append(
                _Row(
                    province=r["Province"].strip(),
                    district=d,
                    belde=b,
                    votes={p: _int(r[p]) for p in parties if _int(r[p]) > 0},
                    independents=_int(r["bagimsiz toplam oy"]),
                    registered=_int(r["kayitli secmen sayisi"]),
                    cast=_int(r["oy kullanan secmen sayisi"]),
                    valid=_int(r["gecerli oy toplami"]),
                )
            )
        out.append(parsed)
    return out[0], out[1]


def _read_sources(data: Path) -> _Sources:
    boxes24 = json.loads((data / _FILES["boxes"].format(year=2024)).read_text(encoding="utf-8"))
    plates = {fold(p["ad"]): int(p["plaka"]) for p in boxes24["iller"]}
    province_names = {int(p["plaka"]): _nfc(p["ad"]) for p in boxes24["iller"]}
    if len(plates) != 81:
        raise FormatError(f"expected 81 provinces, found {len(plates)}", source="2024yerel.json")
    palette = json.loads((data / _FILES["palette"]).read_text(encoding="utf-8"))
    district_names: dict[tuple[int, str], str] = {}
    box_groups: dict[tuple[int, str], dict] = {}
    for d in boxes24["ilceler"]:
        key = (int(d["plaka"]), fold(d["ad"]))
        box_groups[key] = d
        district_names[key] = _nfc(d["ad"])
    src = _Sources(plates, province_names, palette, district_names, {}, box_groups)

    # 2019 YSK export: proper names of every district ("ADANA MERKEZ"?) and belde ("BESNİ - ÇAKIRHÜYÜK").
    for r in _read_csv(data / _FILES["municipalities_2019"]):
        plate = plates[fold(r["İl_Adı"])]
        name = _nfc(r["İlçe_Adı"])
        if " - " in name:
            d, b = name.split(" - ", 1)
            dk = fold(d)
            if dk == fold(r["İl_Adı"]) + " merkez":
                dk = "merkez"
            src.belde_names[(plate, dk, fold(b))] = title_tr(b)
        else:
            dk = fold(name)
            if dk == fold(r["İl_Adı"]) + " merkez":
                continue  # named "Merkez" below
            src.district_names.setdefault((plate, dk), title_tr(name))

    # 2024 candidate names (election-night compilation).
    for r in _read_csv(data / _FILES["candidates_2024"]):
        kind = r["veri"].strip()
        if kind not in ("belediye başkanlığı", "ilce") or not r["aday"].strip():
            continue
        city = _nfc(r["sehir"])
        for suffix in (" BÜYÜKŞEHİR BELEDİYESİ", " BELEDİYESİ"):
            if city.endswith(suffix):
                city = city[: -len(suffix)]
                break
        plate = plates.get(fold(city))
        if plate is None:
            src.warnings.append(f"candidate list: unknown city {r['sehir']!r}")
            continue
        party = fold(r["parti"])
        if party not in PARTIES:
            party = INDEPENDENT_ID  # the source puts an independent's own name in the party column
        district = None if kind == "belediye başkanlığı" else fold(r["ilce"])
        src.candidates_2024[(plate, district, party)] = title_tr(_nfc(r["aday"]))
    return src


# --- building ----------------------------------------------------------------------------


def _parties(src: _Sources, columns: Iterable[str], year: int) -> tuple[dict[str, Party], dict[str, str]]:
    """(code -> Party, MIT column -> code), parties in first-seen column order."""
    parties: dict[str, Party] = {}
    code_of: dict[str, str] = {}
    greys = 0
    for col in columns:
        p = PARTIES_2019_OVERRIDES.get(col, PARTIES[col]) if year == 2019 else PARTIES[col]
        code_of[col] = p.code
        if p.code in parties:
            continue
        pal = src.palette.get(p.palette_key or "")
        if pal:
            colour = pal["light"].lower()
        else:
            colour = _GREYS[greys % len(_GREYS)]
            greys += 1
        parties[p.code] = Party(p.code, p.name, p.short_name, colour)
    return parties, code_of


def _sorted_columns(rows: list[_Row]) -> list[str]:
    """MIT party columns that have votes anywhere, biggest national total first."""
    tot: dict[str, int] = {}
    for r in rows:
        for p, v in r.votes.items():
            tot[p] = tot.get(p, 0) + v
    return sorted(tot, key=lambda p: (-tot[p], PARTIES[p].code))


def _candidates(row: _Row, code_of: dict[str, str], names: dict[str, str]) -> tuple[tuple[Candidate, ...], tuple[int, ...]]:
    items = [(code_of[p], v) for p, v in row.votes.items()]
    if row.independents > 0:
        items.append((INDEPENDENT_ID, row.independents))
    items.sort(key=lambda t: (-t[1], t[0]))
    cands = tuple(
        Candidate(cid, names.get(cid, INDEPENDENT_NAME if cid == INDEPENDENT_ID else ""), None if cid == INDEPENDENT_ID else cid)
        for cid, _ in items
    )
    return cands, tuple(v for _, v in items)


def _box_counts(src: _Sources, plate: int, district: str, members: list[tuple[str, int]], warnings: list[str]) -> list[int]:
    """Boxes of a district race and of its beldes: ``members`` = [(area id, registered)], district first.

    The district file counts the boxes of a district together with its beldes'
    (its registered voters are their sum). Beldes get boxes of the group's mean
    size, the district race the rest, so the group keeps its real box count.
    """
    rec = src.box_groups.get((plate, _DISTRICT_ALIASES.get((plate, district), district)))
    regs = [r for _, r in members]
    if rec is None:
        warnings.append(f"no box count for district {members[0][0]}: using registered/{TYPICAL_BOX}")
        return [max(1, round(r / TYPICAL_BOX)) for r in regs]
    if int(rec["secmen"]) != sum(regs):
        warnings.append(f"{members[0][0]}: district file registered {rec['secmen']} != {sum(regs)} (box count kept)")
    total = int(rec["sandik"])
    size = sum(regs) / total
    counts = [0] + [max(1, math.ceil(r / 340), round(r / size)) for r in regs[1:]]
    counts[0] = total - sum(counts)
    if counts[0] < max(1, math.ceil(regs[0] / 350)):
        raise FormatError(f"{members[0][0]}: cannot fit the district's voters in {total} boxes")
    return counts


def _build(src: _Sources, data: Path, year: int, seed: int) -> Election:
    metros, rows = _read_rows(data, year)
    all_rows = metros + rows
    parties, code_of = _parties(src, _sorted_columns(all_rows), year)
    metro_plates = {src.plates[r.province] for r in metros}
    with_boxes = year == 2024
    warnings = src.warnings

    areas: dict[str, Area] = {"tr": Area("tr", "country", "Türkiye", None)}
    for plate in sorted(src.province_names):
        pid = f"tr.{plate:02d}"
        areas[pid] = Area(pid, "province", src.province_names[plate], "tr")

    races: dict[str, Race] = {}
    results: dict[str, RaceTotals] = {}
    box_ids: list[str] = []
    box_area: list[str] = []
    box_num: list[str] = []
    box_reg: list[int] = []
    race_boxes: dict[str, np.ndarray] = {}

    named: dict[tuple[int, str | None], dict[str, str]] = {}
    if year == 2024:
        for (p, d, col), name in src.candidates_2024.items():
            if col != INDEPENDENT_ID:  # IND stays "Independents (combined)"
                named.setdefault((p, d), {})[PARTIES[col].code] = name

    used: set[tuple[int, str | None]] = set()

    def names_for(plate: int, district: str | None) -> dict[str, str]:
        used.add((plate, district))
        return named.get((plate, district), {})

    def add_race(rid: str, office: str, area_id: str, name: str, row: _Row, cand_names: dict[str, str]) -> None:
        cands, votes = _candidates(row, code_of, cand_names)
        for cid in cand_names:
            if cid not in {c.id for c in cands}:
                warnings.append(f"{rid}: named candidate of {cid} has no votes in the results")
        if office in (_DISTRICT, _PROVINCIAL) and len(cand_names) == 1 and cands[0].id not in cand_names:
            top = "independents (combined) ahead" if cands[0].id == INDEPENDENT_ID else f"{cands[0].id} ahead"
            warnings.append(f"{rid}: the candidate list names a {next(iter(cand_names))} winner, the final results have {top}")
        races[rid] = Race(rid, office, area_id, name, cands)
        results[rid] = RaceTotals(row.registered, row.cast, row.valid, row.cast - row.valid, votes)
        race_boxes[rid] = np.zeros(0, dtype=np.int32)

    for r in metros:
        plate = src.plates[r.province]
        pid = f"tr.{plate:02d}"
        add_race(f"{pid}:{_METRO}", _METRO, pid, f"{areas[pid].name} metropolitan mayor", r, names_for(plate, None))

    # Group district rows with their belde rows.
    groups: list[list[_Row]] = []
    for r in rows:
        if r.belde is None:
            groups.append([r])
        else:
            groups[-1].append(r)

    province_district_boxes: dict[int, list[np.ndarray]] = {}
    for group in groups:
        d = group[0]
        plate = src.plates[d.province]
        pid = f"tr.{plate:02d}"
        dkey = fold(d.district or "")
        did = f"{pid}.{slug(dkey)}"
        if dkey == "merkez":
            dname = "Merkez"
        else:
            dname = src.district_names.get((plate, dkey))
            if dname is None:
                dname = title_tr(dkey)
                warnings.append(f"{did}: no proper name found, using {dname!r}")
        areas[did] = Area(did, "district", dname, pid)
        members = [(did, d.registered)]
        if plate in metro_plates:
            if dkey == "merkez":
                raise FormatError(f"metropolitan province {pid} has a merkez district row")
            add_race(f"{did}:{_DISTRICT}", _DISTRICT, did, f"{dname} mayor", d, names_for(plate, dkey))
        elif dkey == "merkez":
            pname = areas[pid].name
            cn = {**names_for(plate, "merkez"), **names_for(plate, None)}
            add_race(f"{did}:{_PROVINCIAL}", _PROVINCIAL, did, f"{pname} mayor", d, cn)
        else:
            add_race(f"{did}:{_DISTRICT}", _DISTRICT, did, f"{dname} mayor", d, names_for(plate, dkey))
        district_race = next(rid for rid in (f"{did}:{_DISTRICT}", f"{did}:{_PROVINCIAL}") if rid in races)
        member_races = [district_race]
        for b in group[1:]:
            bkey = fold(b.belde or "")
            bid = f"{did}.{slug(bkey)}"
            bname = src.belde_names.get((plate, dkey, bkey)) or _BELDE_NAME_FIXES.get((plate, dkey, bkey))
            if bname is None:
                bname = title_tr(bkey)
                warnings.append(f"{bid}: belde not in the 2019 export, name {bname!r} from its ASCII form")
            areas[bid] = Area(bid, "belde", bname, did)
            add_race(f"{bid}:{_BELDE}", _BELDE, bid, f"{bname} mayor", b, {})
            members.append((bid, b.registered))
            member_races.append(f"{bid}:{_BELDE}")

        if not with_boxes:
            continue
        counts = _box_counts(src, plate, dkey, members, warnings)
        number = 1001
        for (aid, reg), n, rid in zip(members, counts, member_races):
            sizes = split_registered(reg, n, _stable_seed(seed, aid))
            start = len(box_ids)
            for s in sizes.tolist():
                box_ids.append(f"{aid}.{number}")
                box_area.append(aid)
                box_num.append(str(number))
                box_reg.append(s)
                number += 1
            race_boxes[rid] = np.arange(start, len(box_ids), dtype=np.int32)
        province_district_boxes.setdefault(plate, []).append(race_boxes[district_race])

    for key in sorted(set(named) - used, key=str):
        warnings.append(f"candidate list: no race for {key} ({', '.join(named[key])})")

    if with_boxes:
        for r in metros:
            plate = src.plates[r.province]
            rid = f"tr.{plate:02d}:{_METRO}"
            race_boxes[rid] = np.concatenate(province_district_boxes[plate]).astype(np.int32)

    info = ElectionInfo(
        id=f"tr-{year}-local",
        name=f"Türkiye local elections, 31 March {year}",
        date=date(year, 3, 31),
        country="TR",
        previous_id="tr-2019-local" if year == 2024 else None,
        top_offices=TOP_OFFICES,
        top_area_kind="province",
        notes=(
            "Official YSK results per race (province, district and belde totals) are real. "
            + (
                "Ballot boxes are SIMULATED: the real number of boxes per district with the official "
                "registered voters split over them; box-level votes come from sandik.simulation.night."
                if with_boxes
                else "Aggregate only: no ballot boxes."
            )
            + " Independents are lumped into one candidate per race (IND). See NOTICE.md for sources."
        ),
    )
    return Election(
        info=info,
        parties=parties,
        areas=areas,
        races=races,
        box_ids=box_ids,
        box_area_ids=box_area,
        box_numbers=box_num,
        box_registered=np.asarray(box_reg, dtype=np.int64),
        race_boxes=race_boxes,
        aggregate_results=results,
    )


def build_elections(data_dir: str | Path, seed: int = DEFAULT_SEED) -> tuple[Election, Election, list[str]]:
    """Build (2024 election, 2019 election, warnings) from the shared data folder."""
    data = Path(data_dir)
    src = _read_sources(data)
    e2024 = _build(src, data, 2024, seed)
    e2019 = _build(src, data, 2019, seed)
    return e2024, e2019, list(src.warnings)


# --- the shipped files ---------------------------------------------------------------------


def data_file(election_id: str) -> Path:
    """Path of a shipped election file."""
    if election_id not in ELECTION_IDS:
        raise ValueError(f"unknown bundled election {election_id!r} (have {', '.join(ELECTION_IDS)})")
    return _DATA_DIR / f"{election_id}.election.json.gz"


@lru_cache(maxsize=4)
def load(election_id: str = "tr-2024-local") -> Election:
    """Read a shipped election (cached: treat the result as read-only)."""
    from sandik.formats import election_file

    return election_file.read(data_file(election_id))
