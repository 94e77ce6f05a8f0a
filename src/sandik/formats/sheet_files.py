"""Tally-sheet files: CSV, JSON and NDJSON, documented in ``docs/sheet-format.md``.

Every reader is a generator that yields, per input row, either a
``TallySheet`` or a ``BadRow`` (a row that could not be read, with the line
and field at fault). One bad row never stops the others; a file whose header
lacks a required column is refused as a whole (``FormatError``), since no row
of it could be read.

CSV: one row per sheet. Required columns are ``box_id``, ``race_id`` and the
counts (see ``REQUIRED``); candidates' votes are columns named ``votes:<id>``;
an empty vote cell means "this candidate is not on this row's ballot", so one
file can carry several races. JSON: a sheet object or a list of them, with
``"votes": {"<candidate id>": n}``; NDJSON: one such object per line.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Any

from sandik.core.sheet import COUNT_FIELDS, OFFICIAL, OPTIONAL_COUNT_FIELDS, TallySheet
from sandik.errors import FormatError
from sandik.ingest.pipeline import BadRow, Item

REQUIRED = ("box_id", "race_id", *COUNT_FIELDS)
TEXT_FIELDS = ("source", "submitted_by", "reason", "image_ref", "image_sha256")
VOTE_PREFIX = "votes:"


def _int(value: Any, field: str, source: str, line: int) -> int:
    if isinstance(value, bool):
        raise FormatError(f"expected a whole number, got {value!r}", source=source, line=line, field=field)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        t = value.strip()
        if t.lstrip("-").isdigit():
            return int(t)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise FormatError(f"expected a whole number, got {value!r}", source=source, line=line, field=field)


def _time(value: Any, source: str, line: int) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise FormatError(f"expected an ISO 8601 time, got {value!r}", source=source, line=line, field="submitted_at") from None


def sheet_from_mapping(d: dict[str, Any], *, source: str = "<input>", line: int = 0, default_source: str = OFFICIAL) -> TallySheet:
    """Build a sheet from a JSON-like mapping; raises FormatError naming the field at fault."""
    if not isinstance(d, dict):
        raise FormatError(f"expected an object, got {type(d).__name__}", source=source, line=line)
    missing = [f for f in REQUIRED if f not in d or d[f] in (None, "")]
    if missing:
        raise FormatError(f"missing {', '.join(missing)}", source=source, line=line, field=missing[0])
    votes_in = d.get("votes")
    if not isinstance(votes_in, dict) or not votes_in:
        raise FormatError("expected 'votes' as an object of candidate id -> votes", source=source, line=line, field="votes")
    votes = {str(k): _int(v, f"votes[{k}]", source, line) for k, v in votes_in.items()}
    counts = {f: _int(d[f], f, source, line) for f in COUNT_FIELDS}
    optional = {f: (_int(d[f], f, source, line) if d.get(f) not in (None, "") else None) for f in OPTIONAL_COUNT_FIELDS}
    texts = {f: str(d.get(f) or "") for f in TEXT_FIELDS}
    return TallySheet(
        box_id=str(d["box_id"]).strip(),
        race_id=str(d["race_id"]).strip(),
        votes=votes,
        source=texts["source"].strip() or default_source,
        submitted_by=texts["submitted_by"],
        submitted_at=_time(d.get("submitted_at"), source, line),
        reason=texts["reason"],
        image_ref=texts["image_ref"],
        image_sha256=texts["image_sha256"],
        **counts,
        **optional,
    )


def _decode_lines(data: bytes, source: str) -> Iterator[tuple[int, str | None, bytes]]:
    """Lines of a UTF-8 file (BOM allowed); a line that is not UTF-8 comes back as None."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise FormatError("file is UTF-16; save it as UTF-8", source=source, line=1)
    for n, raw in enumerate(data.splitlines(), start=1):
        try:
            yield n, raw.decode("utf-8"), raw
        except UnicodeDecodeError:
            yield n, None, raw


def read_csv(data: bytes, *, source: str = "<csv>", default_source: str = OFFICIAL) -> Iterator[Item]:
    lines = _decode_lines(data, source)
    try:
        n0, header_line, _ = next(lines)
    except StopIteration:
        raise FormatError("empty file", source=source, line=1) from None
    if header_line is None:
        raise FormatError("header is not valid UTF-8 text", source=source, line=n0)
    header = [h.strip() for h in next(csv.reader([header_line]))]
    missing = [f for f in REQUIRED if f not in header]
    if missing:
        raise FormatError(f"missing column(s) {', '.join(missing)}; the header has {', '.join(header)}", source=source, line=n0)
    vote_cols = [(i, h[len(VOTE_PREFIX) :]) for i, h in enumerate(header) if h.startswith(VOTE_PREFIX)]
    if not vote_cols:
        raise FormatError(f"no candidate columns (named '{VOTE_PREFIX}<candidate id>')", source=source, line=n0)
    pos = {h: i for i, h in enumerate(header)}
    for n, text, raw in lines:
        where = f"{source}:{n}"
        if text is None:
            yield BadRow(where, raw.decode("utf-8", "replace"), FormatError("line is not valid UTF-8 text (wrong encoding?)", source=source, line=n))
            continue
        if not text.strip():
            continue
        try:
            cells = next(csv.reader([text]))
        except csv.Error as exc:
            yield BadRow(where, text, FormatError(f"unreadable CSV: {exc}", source=source, line=n))
            continue
        if len(cells) != len(header):
            yield BadRow(where, text, FormatError(f"expected {len(header)} fields, found {len(cells)} (truncated or extra commas?)", source=source, line=n), *_ids(cells, pos))
            continue
        d: dict[str, Any] = {h: cells[i] for h, i in pos.items() if not h.startswith(VOTE_PREFIX)}
        d["votes"] = {cid: cells[i] for i, cid in vote_cols if cells[i].strip() != ""}
        try:
            yield sheet_from_mapping(d, source=source, line=n, default_source=default_source)
        except FormatError as exc:
            yield BadRow(where, text, exc, *_ids(cells, pos))


def _json_ids(obj: object) -> tuple[str | None, str | None]:
    """The box and race ids of an unreadable JSON sheet, for the quarantine: text or nothing
    (a list or object where an id should be must not reach the store as is; found by fuzzing)."""
    if not isinstance(obj, dict):
        return None, None
    b, r = obj.get("box_id"), obj.get("race_id")
    return (b if isinstance(b, str) else None), (r if isinstance(r, str) else None)


def _ids(cells: list[str], pos: dict[str, int]) -> tuple[str | None, str | None]:
    def get(k: str) -> str | None:
        i = pos.get(k)
        return cells[i] if i is not None and i < len(cells) else None

    return get("box_id"), get("race_id")


def read_ndjson(data: bytes, *, source: str = "<ndjson>", default_source: str = OFFICIAL) -> Iterator[Item]:
    for n, text, raw in _decode_lines(data, source):
        where = f"{source}:{n}"
        if text is None:
            yield BadRow(where, raw.decode("utf-8", "replace"), FormatError("line is not valid UTF-8 text (wrong encoding?)", source=source, line=n))
            continue
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            yield BadRow(where, text, FormatError(f"not valid JSON: {exc.msg} at column {exc.colno}", source=source, line=n))
            continue
        try:
            yield sheet_from_mapping(obj, source=source, line=n, default_source=default_source)
        except FormatError as exc:
            ids = _json_ids(obj)
            yield BadRow(where, text, exc, *ids)


def read_json(data: bytes, *, source: str = "<json>", default_source: str = OFFICIAL) -> Iterator[Item]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(f"not UTF-8 text: {exc}", source=source) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(f"not valid JSON: {exc.msg}", source=source, line=exc.lineno) from None
    objs = doc if isinstance(doc, list) else doc.get("sheets", [doc]) if isinstance(doc, dict) else None
    if objs is None:
        raise FormatError("expected a sheet object, a list of them, or {\"sheets\": [...]}", source=source)
    for n, obj in enumerate(objs, start=1):
        where = f"{source}[{n}]"
        try:
            yield sheet_from_mapping(obj, source=source, line=n, default_source=default_source)
        except FormatError as exc:
            ids = _json_ids(obj)
            yield BadRow(where, json.dumps(obj, ensure_ascii=False), exc, *ids)


def detect_format(name: str, data: bytes) -> str:
    low = name.lower()
    for ext, fmt in ((".ndjson", "ndjson"), (".jsonl", "ndjson"), (".json", "json"), (".csv", "csv")):
        if low.endswith(ext):
            return fmt
    head = data.lstrip()[:1]
    if head == b"[":
        return "json"
    if head == b"{":
        first = data.lstrip().split(b"\n", 1)[0].strip()
        try:
            json.loads(first)
            return "ndjson"
        except ValueError:
            return "json"
    return "csv"


def read_sheets(data: bytes, *, name: str = "<input>", fmt: str | None = None, default_source: str = OFFICIAL) -> Iterator[Item]:
    fmt = fmt or detect_format(name, data)
    reader = {"csv": read_csv, "json": read_json, "ndjson": read_ndjson}.get(fmt)
    if reader is None:
        raise FormatError(f"unknown sheet format {fmt!r} (csv, json, ndjson)", source=name)
    return reader(data, source=name, default_source=default_source)


def sheet_to_mapping(s: TallySheet) -> dict[str, Any]:
    d: dict[str, Any] = {"box_id": s.box_id, "race_id": s.race_id, "source": s.source}
    d.update({f: getattr(s, f) for f in COUNT_FIELDS})
    d.update({f: getattr(s, f) for f in OPTIONAL_COUNT_FIELDS if getattr(s, f) is not None})
    d["votes"] = dict(s.votes)
    for f in ("submitted_by", "reason", "image_ref", "image_sha256"):
        if getattr(s, f):
            d[f] = getattr(s, f)
    if s.submitted_at:
        d["submitted_at"] = s.submitted_at.isoformat()
    return d


def write_ndjson(sheets: list[TallySheet], out: IO[str]) -> None:
    for s in sheets:
        out.write(json.dumps(sheet_to_mapping(s), ensure_ascii=False) + "\n")


def write_csv(sheets: list[TallySheet], out: IO[str]) -> None:
    cands: list[str] = []
    seen: set[str] = set()
    for s in sheets:
        for k in s.votes:
            if k not in seen:
                seen.add(k)
                cands.append(k)
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["box_id", "race_id", "source", *COUNT_FIELDS, *[VOTE_PREFIX + c for c in cands]])
    for s in sheets:
        w.writerow([s.box_id, s.race_id, s.source, *[getattr(s, f) for f in COUNT_FIELDS], *[s.votes.get(c, "") for c in cands]])
