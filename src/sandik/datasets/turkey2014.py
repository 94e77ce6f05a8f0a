"""Importer: the 30 March 2014 municipal-mayor races of all Turkey, box by box.

Reads a YSK box-level export in the shape of ``tr-local-2014-ballot-boxes/
yerel2014.csv.zip``: a zip holding one UTF-16, tab-separated CSV (the CSV
itself is accepted too, as is UTF-8 with the same columns), one row per box::

    IL_ID (plate), ILCE_ID, MUHTARLIK_ID, İl, Seçim Çevresi, Mahalle / Köy, Sandık No,
    registered, voted, valid unchallenged, valid challenged, valid, invalid,
    AK PARTİ, MHP, SAADET, CHP, BTP, BBP, DP, DSP, HDP, DBP, Diger

Each ``Seçim Çevresi`` (electoral area) is one mayor race. It is either a
district (``DİNAR``; the provincial centre of a non-metropolitan province is
``<PROVINCE> MERKEZ``) or a belde, a small municipality inside a district,
written ``<DISTRICT>-<BELDE>`` (``DİNAR-HAYDARLI``). Belde voters vote for
their belde mayor and not for the district mayor, so:

* areas: ``tr`` -> ``tr.NN`` (plate, name from the file title-cased:
  "Afyonkarahisar", "Mersin") -> ``tr.NN.<district>`` (kind ``district``;
  ``<PROVINCE> MERKEZ`` becomes ``tr.NN.merkez`` "Merkez") -> optionally
  ``tr.NN.<district>.<belde>`` (kind ``belde``) -> ``....<neighbourhood>``
  (kind ``neighbourhood``, or ``village`` for a "KÖYÜ") -> boxes
  ``<neighbourhood id>.<box number>``;
* races: ``<district or belde id>:mayor`` (office ``mayor``), voted in by the
  boxes of that electoral area only. A district whose own race is missing
  from the file (re-run elections) still gets its area, and no race;
* candidates of a race: the parties with any votes in it, and ``OTHER``
  ("Others (combined)", party None) for the ``Diger`` column when it has
  votes: the export lumps all other parties and independents together;
* one official sheet per box, as the file gives it (see
  :mod:`sandik.datasets.boxlevel` for voters by law). Rows that break the tally
  rules are kept, not fixed: the ingest quarantines them with reasons.

Box numbers are unique within an electoral area in the shared file; a repeat
of (area, neighbourhood, box number) would get an id ending ``-2``, ``-3``, ...
in file order (counted in the election notes).
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
    OTHER_ID,
    OTHER_NAME,
    PARTIES,
    AreaBuilder,
    BoxIds,
    is_other_label,
    official_sheet,
    parse_count,
    parse_count_rows,
    party_code,
    read_text,
    unknown_party,
)
from sandik.datasets.turkish_names import fold, slug, title_tr
from sandik.errors import FormatError
from sandik.gc_pause import paused_gc

__all__ = ["ELECTION_ID", "OFFICE", "load_turkey_2014"]

ELECTION_ID = "tr-2014-local"
OFFICE = "mayor"

# internal name -> (column header as YSK writes it, ...); headers are matched on fold().
_COLUMNS: dict[str, str] = {
    "plate": "IL_ID",
    "ilce_id": "ILCE_ID",
    "muhtarlik_id": "MUHTARLIK_ID",
    "province": "İl",
    "area": "Seçim Çevresi",
    "neighbourhood": "Mahalle / Köy",
    "number": "Sandık No",
    "registered": "Sandık Seçmen Listesinde Yazılı Seçmenlerin Sayısı",
    "cast": "Oy Kullanan Seçmen Sayısı",
    "valid_unchallenged": "İtiraz Edilmeksizin Geçerli Sayılan Oy Pusulalarının Sayısı",
    "valid_challenged": "İtiraz Üzerine Geçerli Sayılan veya Hesaba Katılan Oy Pusulalarının Sayısı",
    "valid": "Geçerli Oy Pusulalarının Toplamı",
    "invalid": "Geçersiz Sayılan veya Hesaba Katılmayan Oy Pusulalarının Toplamı",
}
_PLACE = ("plate", "ilce_id", "muhtarlik_id", "province", "area", "neighbourhood", "number")
_COUNTS = ("registered", "cast", "valid_unchallenged", "valid_challenged", "valid", "invalid")

NOTES = (
    "Source: YSK box-level export of the 30 March 2014 municipal-mayor races (one row per "
    "ballot box). Each electoral area (Seçim Çevresi) is a race: a district, or a belde "
    "(small municipality, 'DISTRICT-BELDE') whose voters vote for the belde mayor only. The "
    "export lumps minor parties and independents into one 'Diger' column: candidate OTHER. "
    "It has a single 'voted' figure: sheets carry it as total voters (3) and ballots used, "
    "with voters by law (2) = max(0, voted - registered) and (1) = (3) - (2). Sheets are "
    "kept as the file gives them, including those that break the tally rules."
)


def _header_map(header: list[str], source: str) -> tuple[dict[str, int], list[int]]:
    folded = [fold(h) for h in header]
    col: dict[str, int] = {}
    for name, label in _COLUMNS.items():
        key = fold(label)
        hits = [i for i, f in enumerate(folded) if f == key]
        if not hits:
            raise FormatError(f"missing column {label!r}", source=source, line=1, field=label)
        if len(hits) > 1:
            raise FormatError(f"column {label!r} appears {len(hits)} times", source=source, line=1, field=label)
        col[name] = hits[0]
    fixed = set(col.values())
    party_cols = [i for i in range(len(header)) if i not in fixed]
    if not party_cols:
        raise FormatError("no party columns", source=source, line=1)
    return col, party_cols


def _district_bases(names: set[str]) -> dict[str, tuple[str, str | None]]:
    """Electoral-area names of one district -> (district name, belde name or None).

    ``{"DİNAR", "DİNAR-HAYDARLI"}`` -> DİNAR is the district, HAYDARLI a belde of it.
    When the district's own race is absent (``{"GÜROYMAK-GÖLBAŞI", "GÜROYMAK-GÜNKIRI"}``,
    ``{"YALOVA MERKEZ-KADIKÖY"}``) the district is the common part before the first ``-``. Names that share no
    district each stand as a district of their own.
    """
    for base in sorted(names, key=len):
        if "-" not in base and all(n == base or n.startswith(base + "-") for n in names):
            return {n: (base, None if n == base else n[len(base) + 1 :]) for n in names}
    prefixes = {n.split("-", 1)[0] for n in names}
    if len(prefixes) == 1 and all("-" in n for n in names):
        base = prefixes.pop()
        return {n: (base, n[len(base) + 1 :]) for n in names}
    return {n: (n, None) for n in names}


def load_turkey_2014(path: str | Path) -> tuple[Election, list[TallySheet]]:
    """The 2014 municipal-mayor election of all Turkey and one official tally sheet per box."""
    with paused_gc():
        return _load(path)


def _load(path: str | Path) -> tuple[Election, list[TallySheet]]:
    text, source = read_text(path, utf16=True)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t")
    header = next(reader, None)
    if not header or not any(h.strip() for h in header):
        raise FormatError("the file is empty (no header line)", source=source, line=1)
    header = [h.strip() for h in header]
    width = len(header)
    col, party_cols = _header_map(header, source)

    # Party columns -> candidates.
    party_cands: list[Candidate] = []
    parties: dict[str, Party] = {}
    for i in party_cols:
        label = header[i]
        if is_other_label(label):
            cand = Candidate(OTHER_ID, OTHER_NAME, None)
        else:
            code = party_code(label)
            party = PARTIES[code] if code else unknown_party(title_tr(label))
            parties[party.code] = party
            cand = Candidate(party.code, "", party.code)
        if any(c.id == cand.id for c in party_cands):
            raise FormatError(f"two columns give the same candidate {cand.id!r}", source=source, line=1, field=label)
        party_cands.append(cand)

    count_idx = [col[c] for c in _COUNTS] + party_cols
    count_fields = [header[i] for i in count_idx]
    get_counts = operator.itemgetter(*count_idx)
    get_place = operator.itemgetter(*(col[c] for c in _PLACE))
    n_fixed = len(_COUNTS)

    # Pass 1: read every row (counts are converted all at once below).
    places: list[tuple[str, ...]] = []
    lines: list[int] = []
    count_cells: list[str] = []
    row_area: list[int] = []  # row -> index of its electoral area in area_index
    area_index: dict[tuple[str, str, str], int] = {}
    area_first_row: list[int] = []  # electoral area -> its first row
    join = "\t".join
    for row in reader:
        if len(row) != width:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            raise FormatError(f"expected {width} cells, found {len(row)}", source=source, line=reader.line_num)
        place = tuple(map(str.strip, get_place(row)))
        if not all(place):
            name = _PLACE[place.index("")]
            raise FormatError("empty cell", source=source, line=reader.line_num, field=_COLUMNS[name])
        places.append(place)
        lines.append(reader.line_num)
        count_cells.append(join(get_counts(row)))
        key = (place[0], place[1], place[4])
        k = area_index.get(key)
        if k is None:
            k = area_index[key] = len(area_index)
            area_first_row.append(len(places) - 1)
        row_area.append(k)
    if not places:
        raise FormatError("no ballot-box rows", source=source, line=2)
    counts, matrix = parse_count_rows(count_cells, count_fields, lines, source=source)
    del count_cells

    # Which parties have votes in each electoral area.
    n_areas = len(area_index)
    votes_matrix = matrix[:, n_fixed:]
    ra = np.asarray(row_area, dtype=np.intp)
    has_votes = np.stack(
        [np.bincount(ra, weights=votes_matrix[:, j], minlength=n_areas) > 0 for j in range(len(party_cols))], axis=1
    )

    # Areas and races, in file order.
    area_names: dict[tuple[str, str], set[str]] = {}
    for plate_s, ilce_id, area in area_index:
        area_names.setdefault((plate_s, ilce_id), set()).add(area)
    bases = {k: _district_bases(v) for k, v in area_names.items()}
    tree = AreaBuilder("tr", "Türkiye")
    fold_: Callable[[str], str] = functools.cache(fold)
    title_: Callable[[str], str] = functools.cache(title_tr)
    slug_: Callable[[str], str] = functools.cache(slug)
    races: dict[str, Race] = {}
    area_race: list[tuple[str, str, tuple[str, ...], Callable[[list[int]], tuple[int, ...]]]] = []
    race_box_lists: dict[str, list[int]] = {}
    used_parties: set[str] = set()
    for key, k in area_index.items():
        plate_s, ilce_id, area = key
        line = lines[area_first_row[k]]
        province = places[area_first_row[k]][3]
        plate = parse_count(plate_s, source=source, line=line, field=_COLUMNS["plate"])
        if not 1 <= plate <= 99:
            raise FormatError(f"plate {plate} is not a province plate code", source=source, line=line, field=_COLUMNS["plate"])
        prov_id = tree.add(f"tr.{plate:02d}", "province", title_tr(province), "tr")
        district, belde = bases[(plate_s, ilce_id)][area]
        if fold_(district) == fold_(province) + " merkez":
            dist_id = tree.child(prov_id, ("ilce", ilce_id), "district", "Merkez")
        else:
            dist_id = tree.child(prov_id, ("ilce", ilce_id), "district", title_tr(district))
        area_id = dist_id if belde is None else tree.child(dist_id, ("belde", fold_(belde)), "belde", title_tr(belde))
        race_id = f"{area_id}:{OFFICE}"
        if race_id in races:
            raise FormatError(f"electoral area {area!r} repeats race {race_id}", source=source, line=line, field=_COLUMNS["area"])
        cols = [j for j in range(len(party_cands)) if has_votes[k, j]]
        cands = tuple(party_cands[j] for j in cols)
        used_parties.update(c.party for c in cands if c.party is not None)
        races[race_id] = Race(race_id, OFFICE, area_id, f"{title_tr(area)} mayor", cands)
        race_box_lists[race_id] = []
        area_race.append((race_id, area_id, tuple(c.id for c in cands), _getter([n_fixed + j for j in cols])))

    # Pass 2: neighbourhoods, boxes, sheets.
    box_ids = BoxIds()
    nb_of: dict[tuple[str, str, str], str] = {}
    b_ids: list[str] = []
    b_areas: list[str] = []
    b_numbers: list[str] = []
    b_registered: list[int] = []
    sheets: list[TallySheet] = []
    for place, c, k in zip(places, counts, row_area):
        race_id, area_id, ids, getter = area_race[k]
        nkey = (area_id, place[2], place[5])
        nb_id = nb_of.get(nkey)
        if nb_id is None:
            f = fold_(place[5])
            kind = "village" if f.endswith((" koyu", " koy")) else "neighbourhood"
            nb_id = nb_of[nkey] = tree.child(area_id, (place[2], f), kind, title_(place[5]), id_part=slug_(place[5]))
        number = place[6]
        box_id = box_ids.make(nb_id, number)
        race_box_lists[race_id].append(len(b_ids))
        b_ids.append(box_id)
        b_areas.append(nb_id)
        b_numbers.append(number)
        b_registered.append(c[0])
        sheets.append(official_sheet(box_id, race_id, c, dict(zip(ids, getter(c)))))

    notes = NOTES
    raceless = sorted(a.id for a in tree.areas.values() if a.kind == "district" and f"{a.id}:{OFFICE}" not in races)
    if raceless:
        notes += f" Districts whose own mayor race is not in the file (only their belde races are): {', '.join(raceless)}."
    if box_ids.repeats:
        notes += f" {box_ids.repeats} box(es) repeat (area, neighbourhood, box number); repeats get ids ending -2, -3, ... in file order."
    election = Election(
        info=ElectionInfo(
            id=ELECTION_ID,
            name="30 March 2014 local elections: municipal mayors",
            date=date(2014, 3, 30),
            country="TR",
            notes=notes,
        ),
        parties={code: p for code, p in parties.items() if code in used_parties},
        areas=tree.areas,
        races=races,
        box_ids=b_ids,
        box_area_ids=b_areas,
        box_numbers=b_numbers,
        box_registered=np.asarray(b_registered, dtype=np.int64),
        race_boxes={rid: np.asarray(v, dtype=np.int32) for rid, v in race_box_lists.items()},
    )
    return election, sheets


def _getter(idx: list[int]) -> Callable[[list[int]], tuple[int, ...]]:
    """A fast picker of the given positions of a list, always returning a tuple."""
    if len(idx) > 1:
        return operator.itemgetter(*idx)
    if len(idx) == 1:
        j = idx[0]
        return lambda c: (c[j],)
    return lambda c: ()
