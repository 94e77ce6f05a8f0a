"""Importer: the 31 March 2019 İstanbul district-mayor races, box by box.

Reads a YSK box-level export in the shape of
``istanbul-2019-ballot-boxes/istanbul_2019_belediye_baskanligi_sandik_wide.csv``
(UTF-8 CSV, one row per ballot box)::

    il, ilce, mahalle_koy, sandik_no, kayitli_secmen, oy_kullanan,
    itirazsiz_gecerli_oy, itirazli_gecerli_oy, toplam_gecerli_oy, toplam_gecersiz_oy,
    <one column per party or independent candidate>

The candidate columns are the union over all districts: an empty cell means
"not on this district's ballot", ``0`` means "on the ballot, no votes". A
column is a candidate of a district's race when it is non-empty somewhere in
that district; an empty cell for such a candidate in another box of the
district is a format error (the file does not say what the box counted).

The election built (id ``tr-istanbul-2019-district-mayors``):

* areas ``tr`` -> ``tr.34`` (İstanbul) -> ``tr.34.<district>`` ->
  ``tr.34.<district>.<neighbourhood>`` (kind ``neighbourhood``; the prison
  polling places the export lists as "mahalle" are kept as such);
* boxes ``<neighbourhood id>.<sandik_no>`` with registered = ``kayitli_secmen``;
* one race per district, ``tr.34.<district>:district_mayor``; party columns
  become candidates whose id is the party code (``CHP``, ``AKP``, ``SP``, ...),
  person-name columns independents (party None, id = slug of the name);
* one official sheet per box; the export has one "voted" figure and no split
  between listed voters and voters by law, see :mod:`sandik.datasets.boxlevel`.

The sheets are returned exactly as the file gives them; the ingest applies
the tally rules (the shared file breaks none of the arithmetic rules).
"""

from __future__ import annotations

import csv
import functools
import io
import operator
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np

from sandik.core.model import Candidate, Election, ElectionInfo, Party, Race
from sandik.core.sheet import TallySheet
from sandik.datasets.boxlevel import (
    PARTIES,
    AreaBuilder,
    BoxIds,
    official_sheet,
    parse_count,
    parse_counts,
    party_code,
    province_plate,
    read_text,
    unknown_party,
)
from sandik.datasets.turkish_names import fold, slug, title_tr
from sandik.errors import FormatError
from sandik.gc_pause import paused_gc

__all__ = ["ELECTION_ID", "OFFICE", "load_istanbul_2019"]

ELECTION_ID = "tr-istanbul-2019-district-mayors"
OFFICE = "district_mayor"

_PLACE_COLUMNS = ("il", "ilce", "mahalle_koy", "sandik_no")
_COUNT_COLUMNS = (
    "kayitli_secmen",
    "oy_kullanan",
    "itirazsiz_gecerli_oy",
    "itirazli_gecerli_oy",
    "toplam_gecerli_oy",
    "toplam_gecersiz_oy",
)
_FIXED = _PLACE_COLUMNS + _COUNT_COLUMNS

NOTES = (
    "Source: YSK box-level export of the 31 March 2019 İstanbul district-mayor races "
    "(one row per ballot box). The export has a single 'voted' figure (oy_kullanan): "
    "sheets carry it as total voters (3) and ballots used, with voters by law (2) = "
    "max(0, voted - registered) and listed voters who voted (1) = (3) - (2); boxes where "
    "more people voted than were listed (legal: officials vote where they serve) are the "
    "only ones with voters by law."
)


def _candidate_for(label: str, source: str, col: int) -> tuple[Candidate, Party | None]:
    code = party_code(label)
    if code is not None:
        return Candidate(code, "", code), PARTIES[code]
    f = fold(label)
    if f.endswith((" parti", " partisi")) or f == "parti":
        p = unknown_party(title_tr(label))
        return Candidate(p.code, "", p.code), p
    cid = slug(label)
    if not cid:
        raise FormatError(f"column {col + 1} has no usable candidate name", source=source, line=1, field=label)
    return Candidate(cid, title_tr(label), None), None


def _place(il: str, ilce: str, mahalle: str, tree: AreaBuilder, fold_: Callable[[str], str], source: str, line: int) -> tuple[str, str]:
    """Ids of a row's neighbourhood and district race, creating the areas on first sight."""
    plate = province_plate(il)
    if plate is None:
        raise FormatError(f"unknown province {il!r}", source=source, line=line, field="il")
    prov_id = tree.add(f"tr.{plate:02d}", "province", title_tr(il), "tr")
    dist_id = tree.child(prov_id, fold_(ilce), "district", title_tr(ilce))
    nb_id = tree.child(dist_id, fold_(mahalle), "neighbourhood", title_tr(mahalle))
    return nb_id, f"{dist_id}:{OFFICE}"


def _vote_cell(value: str, label: str, district: str, source: str, line: int) -> int:
    if not value:
        raise FormatError(
            f"empty cell, but {label!r} stands in {district} (other boxes of the district have a count)",
            source=source,
            line=line,
            field=label,
        )
    return parse_count(value, source=source, line=line, field=label)


def load_istanbul_2019(path: str | Path) -> tuple[Election, list[TallySheet]]:
    """The İstanbul 2019 district-mayor election and one official tally sheet per box."""
    with paused_gc():
        return _load(path)


def _load(path: str | Path) -> tuple[Election, list[TallySheet]]:
    text, source = read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header or not any(h.strip() for h in header):
        raise FormatError("the file is empty (no header line)", source=source, line=1)
    header = [h.strip() for h in header]
    width = len(header)
    col: dict[str, int] = {}
    for i, h in enumerate(header):
        if h in col:
            raise FormatError(f"column {h!r} appears twice", source=source, line=1, field=h)
        col[h] = i
    for name in _FIXED:
        if name not in col:
            raise FormatError(f"missing column {name!r}", source=source, line=1, field=name)
    place_idx = [col[c] for c in _PLACE_COLUMNS]
    count_idx = [col[c] for c in _COUNT_COLUMNS]
    cand_cols = [i for i, h in enumerate(header) if h not in _FIXED]
    if not cand_cols:
        raise FormatError("no candidate columns after the fixed columns", source=source, line=1)

    candidates: list[Candidate] = []
    parties: dict[str, Party] = {}
    for i in cand_cols:
        cand, party = _candidate_for(header[i], source, i)
        if any(c.id == cand.id for c in candidates):
            raise FormatError(f"two columns give the same candidate id {cand.id!r}", source=source, line=1, field=header[i])
        candidates.append(cand)
        if party is not None:
            parties[party.code] = party
    cand_labels = [header[i] for i in cand_cols]

    # Pass 1: read and convert every row; note which candidates stand in each district.
    rows: list[tuple[int, list[str], list[int], tuple[str, ...]]] = []
    standing: dict[tuple[str, str], set[tuple[bool, ...]]] = {}
    get_cands = operator.itemgetter(*cand_cols) if len(cand_cols) > 1 else (lambda row: (row[cand_cols[0]],))
    fold_ = functools.cache(fold)  # a cache for this file only
    for row in reader:
        line = reader.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != width:
            raise FormatError(f"expected {width} cells, found {len(row)}", source=source, line=line)
        place = [row[i].strip() for i in place_idx]
        for value, name in zip(place, _PLACE_COLUMNS):
            if not value:
                raise FormatError("empty cell", source=source, line=line, field=name)
        counts = parse_counts([row[i] for i in count_idx], _COUNT_COLUMNS, source=source, line=line)
        cells = tuple(map(str.strip, get_cands(row)))
        dkey = (fold_(place[0]), fold_(place[1]))
        patterns = standing.get(dkey)
        if patterns is None:
            patterns = standing[dkey] = set()
        patterns.add(tuple(map(bool, cells)))  # few distinct patterns per district
        rows.append((line, place, counts, cells))
    if not rows:
        raise FormatError("no ballot-box rows", source=source, line=2)

    # Pass 2: areas, races, boxes, sheets.
    tree = AreaBuilder("tr", "Türkiye")
    box_ids = BoxIds()
    races: dict[str, Race] = {}
    race_cols: dict[str, tuple[list[int], tuple[str, ...]]] = {}
    race_box_lists: dict[str, list[int]] = {}
    b_ids: list[str] = []
    b_areas: list[str] = []
    b_numbers: list[str] = []
    b_registered: list[int] = []
    sheets: list[TallySheet] = []
    places: dict[tuple[str, str, str], tuple[str, str]] = {}  # (il, ilce, mahalle) -> (neighbourhood id, race id)
    for line, (il, ilce, mahalle, number), counts, cells in rows:
        place = places.get((il, ilce, mahalle))
        if place is None:
            place = places[(il, ilce, mahalle)] = _place(il, ilce, mahalle, tree, fold_, source, line)
        nb_id, race_id = place
        if race_id not in races:
            dist_id = race_id.removesuffix(f":{OFFICE}")
            seen = standing[(fold_(il), fold_(ilce))]
            cols = [j for j in range(len(cand_cols)) if any(p[j] for p in seen)]
            ids = tuple(candidates[j].id for j in cols)
            races[race_id] = Race(
                id=race_id,
                office=OFFICE,
                area_id=dist_id,
                name=f"{tree.areas[dist_id].name} district mayor",
                candidates=tuple(candidates[j] for j in cols),
            )
            race_cols[race_id] = (cols, ids)
            race_box_lists[race_id] = []
        cols, ids = race_cols[race_id]
        try:
            values = [int(cells[j]) for j in cols]
            if values and (min(values) < 0 or max(values) >= 10**15):
                raise ValueError
        except ValueError:
            values = [_vote_cell(cells[j], cand_labels[j], ilce, source, line) for j in cols]
        votes = dict(zip(ids, values))
        box_id = box_ids.make(nb_id, number)
        race_box_lists[race_id].append(len(b_ids))
        b_ids.append(box_id)
        b_areas.append(nb_id)
        b_numbers.append(number)
        b_registered.append(counts[0])
        sheets.append(official_sheet(box_id, race_id, counts, votes))

    used_parties = {c.party for r in races.values() for c in r.candidates if c.party is not None}
    notes = NOTES
    if box_ids.repeats:
        notes += (
            f" {box_ids.repeats} box number(s) repeat within a neighbourhood; repeats get ids "
            "ending -2, -3, ... in file order."
        )
    election = Election(
        info=ElectionInfo(
            id=ELECTION_ID,
            name="31 March 2019 local elections: İstanbul district mayors",
            date=date(2019, 3, 31),
            country="TR",
            notes=notes,
        ),
        parties={code: parties[code] for code in sorted(used_parties)},
        areas=tree.areas,
        races=races,
        box_ids=b_ids,
        box_area_ids=b_areas,
        box_numbers=b_numbers,
        box_registered=np.asarray(b_registered, dtype=np.int64),
        race_boxes={rid: np.asarray(v, dtype=np.int32) for rid, v in race_box_lists.items()},
    )
    return election, sheets
