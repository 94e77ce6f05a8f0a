"""Shared helpers of the box-level importers (``istanbul2019``, ``turkey2014``).

Reading a source file (plain, or the single CSV inside a zip; UTF-8 or UTF-16)
into text, turning count cells into integers, and building the area tree, all
raising :class:`~sandik.errors.FormatError` that names the file, the line and
the field of the first problem. Also the Turkish parties these files use,
the plate codes of the 81 provinces, and how one box's figures become an
official :class:`~sandik.core.sheet.TallySheet`.

The box-level exports carry one "votes cast" figure (``oy kullanan``) and no
split between listed voters (1) and voters by law (2), so sheets derive it:
``voted_by_law = max(0, cast - registered)`` and ``voted_listed = cast -
voted_by_law``. A box where more people voted than were listed (legal in
Turkey: box officials and others vote where they serve) thus shows the
surplus as voters by law, and every other box shows none.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from sandik.core.model import Area, Party
from sandik.core.sheet import TallySheet
from sandik.datasets.turkish_names import fold, slug
from sandik.errors import FormatError

__all__ = [
    "PARTIES",
    "OTHER_ID",
    "OTHER_NAME",
    "PROVINCE_PLATES",
    "party_code",
    "is_other_label",
    "province_plate",
    "read_text",
    "parse_count",
    "parse_counts",
    "parse_count_rows",
    "official_sheet",
    "AreaBuilder",
    "BoxIds",
    "unknown_party",
]

# --- parties -------------------------------------------------------------------------
# Colours are sandik's own picks for telling the parties apart on a map.
PARTIES: dict[str, Party] = {
    p.code: p
    for p in (
        Party("AKP", "Adalet ve Kalkınma Partisi", "AK Parti", "#f39200"),
        Party("CHP", "Cumhuriyet Halk Partisi", "CHP", "#d7141a"),
        Party("MHP", "Milliyetçi Hareket Partisi", "MHP", "#1f4e9c"),
        Party("IYI", "İYİ Parti", "İYİ", "#23a6d9"),
        Party("SP", "Saadet Partisi", "Saadet", "#a3195b"),
        Party("HDP", "Halkların Demokratik Partisi", "HDP", "#7b2a8c"),
        Party("DBP", "Demokratik Bölgeler Partisi", "DBP", "#4f8a3c"),
        Party("DSP", "Demokratik Sol Parti", "DSP", "#5b6fc2"),
        Party("BTP", "Bağımsız Türkiye Partisi", "BTP", "#8a5a2b"),
        Party("VATAN", "Vatan Partisi", "Vatan", "#9e1b1b"),
        Party("TKP", "Türkiye Komünist Partisi", "TKP", "#c0392b"),
        Party("BBP", "Büyük Birlik Partisi", "BBP", "#6b2d2d"),
        Party("DP", "Demokrat Parti", "DP", "#1a9bb0"),
    )
}
UNKNOWN_PARTY_COLOUR = "#8c8c8c"

# fold(column label) -> party code
_PARTY_LABELS: dict[str, str] = {
    "ak parti": "AKP",
    "akp": "AKP",
    "ak partisi": "AKP",
    "chp": "CHP",
    "mhp": "MHP",
    "iyi parti": "IYI",
    "iyi": "IYI",
    "saadet": "SP",
    "saadet partisi": "SP",
    "sp": "SP",
    "hdp": "HDP",
    "dbp": "DBP",
    "dsp": "DSP",
    "btp": "BTP",
    "vatan": "VATAN",
    "vatan partisi": "VATAN",
    "tkp": "TKP",
    "bbp": "BBP",
    "dp": "DP",
    "demokrat parti": "DP",
}
_OTHER_LABELS = {"diger", "digerleri", "diger partiler"}

# The pseudo-candidate that stands for everyone a source lumps together.
OTHER_ID = "OTHER"
OTHER_NAME = "Others (combined)"


def party_code(label: str) -> str | None:
    """Party code of a known party column label ("AK PARTİ" -> "AKP"), else None."""
    return _PARTY_LABELS.get(fold(label))


def is_other_label(label: str) -> bool:
    """True for a column that lumps minor candidates together ("Diger")."""
    return fold(label) in _OTHER_LABELS


def unknown_party(label: str) -> Party:
    """A party sandik has no entry for: code from the label, grey."""
    code = slug(label).upper().replace("-", "_") or "PARTY"
    return Party(code, label, label, UNKNOWN_PARTY_COLOUR)


# --- provinces -----------------------------------------------------------------------
PROVINCE_PLATES: dict[str, int] = {
    fold(name): plate
    for plate, name in enumerate(
        (
            "Adana", "Adıyaman", "Afyonkarahisar", "Ağrı", "Amasya", "Ankara", "Antalya", "Artvin",
            "Aydın", "Balıkesir", "Bilecik", "Bingöl", "Bitlis", "Bolu", "Burdur", "Bursa",
            "Çanakkale", "Çankırı", "Çorum", "Denizli", "Diyarbakır", "Edirne", "Elazığ", "Erzincan",
            "Erzurum", "Eskişehir", "Gaziantep", "Giresun", "Gümüşhane", "Hakkari", "Hatay", "Isparta",
            "Mersin", "İstanbul", "İzmir", "Kars", "Kastamonu", "Kayseri", "Kırklareli", "Kırşehir",
            "Kocaeli", "Konya", "Kütahya", "Malatya", "Manisa", "Kahramanmaraş", "Mardin", "Muğla",
            "Muş", "Nevşehir", "Niğde", "Ordu", "Rize", "Sakarya", "Samsun", "Siirt",
            "Sinop", "Sivas", "Tekirdağ", "Tokat", "Trabzon", "Tunceli", "Şanlıurfa", "Uşak",
            "Van", "Yozgat", "Zonguldak", "Aksaray", "Bayburt", "Karaman", "Kırıkkale", "Batman",
            "Şırnak", "Bartın", "Ardahan", "Iğdır", "Yalova", "Karabük", "Kilis", "Osmaniye",
            "Düzce",
        ),  # fmt: skip
        start=1,
    )
}
PROVINCE_PLATES.update({"afyon": 3, "icel": 33, "k maras": 46, "urfa": 63})


def province_plate(name: str) -> int | None:
    return PROVINCE_PLATES.get(fold(name))


# --- reading -------------------------------------------------------------------------
def read_text(path: str | Path, *, utf16: bool = False) -> tuple[str, str]:
    """The text of ``path`` and a source label for errors.

    A zip archive is read through: it must hold exactly one ``.csv`` (or one
    file). UTF-16 is recognised by its byte-order mark; otherwise the file is
    UTF-8 (an optional BOM is dropped). ``utf16=True`` decodes BOM-less data as
    UTF-16 (little-endian) instead.
    """
    p = Path(path)
    source = str(p)
    try:
        if zipfile.is_zipfile(p):
            with zipfile.ZipFile(p) as z:
                names = [n for n in z.namelist() if not n.endswith("/")]
                csvs = [n for n in names if n.lower().endswith((".csv", ".tsv", ".txt"))] or names
                if len(csvs) != 1:
                    raise FormatError(f"expected one CSV file in the archive, found {len(csvs)}: {csvs[:5]}", source=source)
                source = f"{p}!{csvs[0]}"
                data = z.read(csvs[0])
        else:
            data = p.read_bytes()
    except FormatError:
        raise
    except (OSError, zipfile.BadZipFile) as exc:
        raise FormatError(f"cannot read file: {exc}", source=source) from exc

    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        encoding = "utf-16"
    elif utf16:
        encoding = "utf-16-le"
    else:
        encoding = "utf-8-sig"
    try:
        return data.decode(encoding), source
    except UnicodeDecodeError as exc:
        raise FormatError(
            f"not valid {encoding.upper().removesuffix('-SIG')} text at byte {exc.start} ({exc.reason})",
            source=source,
            line=_line_of_byte(data, exc.start, encoding),
        ) from exc


def _line_of_byte(data: bytes, offset: int, encoding: str) -> int:
    """1-based line of the byte at ``offset`` (of a file that failed to decode there)."""
    if encoding.startswith("utf-16"):
        head = data[: offset - offset % 2]
        return head.decode(encoding, errors="replace").count("\n") + 1
    return data[:offset].count(b"\n") + 1


_INT64_MAX = int(np.iinfo(np.int64).max)


def parse_count(value: str, *, source: str, line: int, field: str) -> int:
    """A whole number >= 0 from a cell, or FormatError naming where."""
    v = value.strip()
    if not v.isdigit() or not v.isascii():
        what = "is empty" if not v else f"{value!r} is not a whole number >= 0"
        raise FormatError(f"count {what}", source=source, line=line, field=field)
    if len(v) > 15:
        raise FormatError(f"count {value!r} is implausibly large", source=source, line=line, field=field)
    return int(v)


def parse_counts(cells: list[str], fields: Iterable[str], *, source: str, line: int) -> list[int]:
    """Integers from count cells (fast path; a bad cell is then located and named)."""
    try:
        out = list(map(int, cells))
        if min(out, default=0) >= 0 and max(out, default=0) < 10**15:
            return out
    except ValueError:
        pass
    return [parse_count(c, source=source, line=line, field=f) for c, f in zip(cells, fields, strict=True)]


def parse_count_rows(cells: list[str], fields: list[str], lines: list[int], *, source: str) -> tuple[list[list[int]], np.ndarray]:
    """Many rows of count cells at once: ``cells[i]`` is row i's count cells joined by tabs.

    Returns the rows as lists of ints and as an int64 matrix. The fast path
    parses everything in one NumPy call when every cell is plain digits;
    otherwise each row is read on its own, and the first bad cell raises a
    FormatError naming its line and field.
    """
    n = len(fields)
    if not cells or not n:
        return [[] for _ in cells], np.zeros((len(cells), n), dtype=np.int64)
    big = "\t".join(cells)
    digits = big.replace("\t", "")
    plain = digits.isascii() and digits.isdigit() and "\t\t" not in big and big[0] != "\t" and big[-1] != "\t"
    if plain:
        arr = np.fromstring(big, dtype=np.int64, sep="\t")  # text mode; every cell is known to be digits
        if arr.size == n * len(cells) and (arr.size == 0 or arr.max() < _INT64_MAX):  # it saturates on overflow
            arr = arr.reshape(len(cells), n)
            return arr.tolist(), arr
    rows = [parse_counts(c.split("\t"), fields, source=source, line=line) for c, line in zip(cells, lines, strict=True)]
    return rows, np.asarray(rows, dtype=np.int64)


# --- sheets --------------------------------------------------------------------------
def official_sheet(box_id: str, race_id: str, counts: list[int], votes: dict[str, int]) -> TallySheet:
    """The official sheet of a box from the fields a YSK box-level export has (see module doc).

    ``counts``: registered, voted, valid unchallenged, valid challenged, valid, invalid.
    """
    registered, cast, v_unch, v_ch, valid, invalid = counts[:6]
    by_law = cast - registered if cast > registered else 0
    return TallySheet(
        box_id=box_id,
        race_id=race_id,
        registered=registered,
        voted_listed=cast - by_law,
        voted_by_law=by_law,
        total_voters=cast,
        ballots_used=cast,
        valid_unchallenged=v_unch,
        valid_challenged=v_ch,
        valid=valid,
        invalid=invalid,
        votes=votes,
    )


# --- the area tree -------------------------------------------------------------------
class AreaBuilder:
    """Builds the area tree with slug ids unique among siblings.

    ``child(parent_id, key, kind, name)`` returns the id of the child of
    ``parent_id`` known by ``key`` (any hashable that tells siblings apart),
    creating it the first time: ``<parent_id>.<slug(name)>``. Two different
    siblings whose names give the same slug get ``-2``, ``-3``, ... in the
    order they are first seen, so ids are stable for the same input.
    """

    def __init__(self, root_id: str, root_name: str, root_kind: str = "country") -> None:
        self.areas: dict[str, Area] = {root_id: Area(root_id, root_kind, root_name, None)}
        self._by_key: dict[tuple[str, object], str] = {}

    def add(self, area_id: str, kind: str, name: str, parent_id: str) -> str:
        """Add an area with a chosen id (e.g. a province's plate) if not there yet."""
        if area_id not in self.areas:
            self.areas[area_id] = Area(area_id, kind, name, parent_id)
        return area_id

    def child(self, parent_id: str, key: object, kind: str, name: str, *, id_part: str | None = None) -> str:
        k = (parent_id, key)
        found = self._by_key.get(k)
        if found is not None:
            return found
        base = f"{parent_id}.{id_part or slug(name) or 'x'}"
        area_id = base
        n = 2
        while area_id in self.areas:
            area_id = f"{base}-{n}"
            n += 1
        self.areas[area_id] = Area(area_id, kind, name, parent_id)
        self._by_key[k] = area_id
        return area_id


class BoxIds:
    """Unique box ids ``<area id>.<number>``; a repeat gets ``-2``, ``-3``, ... in file order."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.repeats = 0

    def make(self, area_id: str, number: str) -> str:
        part = number if number.isascii() and number.isdigit() else (slug(number) or "x")
        base = f"{area_id}.{part}"
        box_id = base
        n = 2
        while box_id in self.seen:
            box_id = f"{base}-{n}"
            n += 1
        if n > 2:
            self.repeats += 1
        self.seen.add(box_id)
        return box_id
