"""The election file: sandik's own, versioned format for an election definition.

A gzip-compressed JSON document (``*.election.json.gz``), described in
``docs/election-format.md``. Boxes are written column-wise and races list their
boxes by index, which keeps a 200,000-box election at a few megabytes.

    {"format": "sandik.election", "version": 1,
     "election": {"id", "name", "date", "country", "previous_id", "top_offices", "top_area_kind", "notes"},
     "parties": [{"code", "name", "short_name", "colour"}],
     "areas":   [[id, kind, name, parent_id], ...],
     "boxes":   {"id": [...], "area_id": [...], "number": [...], "registered": [...]},
     "races":   [{"id", "office", "area_id", "name", "seats",
                  "candidates": [{"id", "name", "party"}], "boxes": [box index, ...]}],
     "results": {race_id: {"registered", "total_voters", "valid", "invalid", "votes": [...]}}}
"""

from __future__ import annotations

import gzip
import io
import json
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from sandik.core.model import Area, Candidate, Election, ElectionInfo, Party, Race, RaceTotals
from sandik.errors import FormatError

FORMAT = "sandik.election"
VERSION = 1


def to_document(e: Election) -> dict[str, Any]:
    i = e.info
    return {
        "format": FORMAT,
        "version": VERSION,
        "election": {
            "id": i.id,
            "name": i.name,
            "date": i.date.isoformat(),
            "country": i.country,
            "previous_id": i.previous_id,
            "top_offices": list(i.top_offices),
            "top_area_kind": i.top_area_kind,
            "notes": i.notes,
        },
        "parties": [{"code": p.code, "name": p.name, "short_name": p.short_name, "colour": p.colour} for p in e.parties.values()],
        "areas": [[a.id, a.kind, a.name, a.parent_id] for a in e.areas.values()],
        "boxes": {
            "id": e.box_ids,
            "area_id": e.box_area_ids,
            "number": e.box_numbers,
            "registered": e.box_registered.tolist(),
        },
        "races": [
            {
                "id": r.id,
                "office": r.office,
                "area_id": r.area_id,
                "name": r.name,
                "seats": r.seats,
                "candidates": [{"id": c.id, "name": c.name, "party": c.party} for c in r.candidates],
                "boxes": e.race_boxes[r.id].tolist(),
            }
            for r in e.races.values()
        ],
        "results": {
            rid: {"registered": t.registered, "total_voters": t.total_voters, "valid": t.valid, "invalid": t.invalid, "votes": list(t.votes)}
            for rid, t in e.aggregate_results.items()
        },
    }


def from_document(doc: dict[str, Any], *, source: str = "<document>") -> Election:
    if doc.get("format") != FORMAT:
        raise FormatError(f"not a sandik election file (format={doc.get('format')!r})", source=source)
    if doc.get("version") != VERSION:
        raise FormatError(f"election file version {doc.get('version')!r} is not supported (this sandik reads version {VERSION})", source=source)
    try:
        ei = doc["election"]
        info = ElectionInfo(
            id=ei["id"],
            name=ei["name"],
            date=date.fromisoformat(ei["date"]),
            country=ei["country"],
            previous_id=ei.get("previous_id"),
            top_offices=tuple(ei.get("top_offices", ())),
            top_area_kind=ei.get("top_area_kind", ""),
            notes=ei.get("notes", ""),
        )
        parties = {p["code"]: Party(p["code"], p["name"], p["short_name"], p["colour"]) for p in doc["parties"]}
        areas = {a[0]: Area(a[0], a[1], a[2], a[3]) for a in doc["areas"]}
        b = doc["boxes"]
        races = {}
        race_boxes = {}
        for r in doc["races"]:
            cands = tuple(Candidate(c["id"], c.get("name", ""), c.get("party")) for c in r["candidates"])
            races[r["id"]] = Race(r["id"], r["office"], r["area_id"], r["name"], cands, int(r.get("seats", 1)))
            race_boxes[r["id"]] = np.asarray(r.get("boxes", []), dtype=np.int32)
        results = {
            rid: RaceTotals(int(t["registered"]), int(t["total_voters"]), int(t["valid"]), int(t["invalid"]), tuple(int(v) for v in t["votes"]))
            for rid, t in doc.get("results", {}).items()
        }
        return Election(
            info=info,
            parties=parties,
            areas=areas,
            races=races,
            box_ids=list(b["id"]),
            box_area_ids=list(b["area_id"]),
            box_numbers=[str(x) for x in b["number"]],
            box_registered=np.asarray(b["registered"], dtype=np.int64),
            race_boxes=race_boxes,
            aggregate_results=results,
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise FormatError(f"malformed election file: {exc!r}", source=source) from exc


def dumps(e: Election) -> bytes:
    buf = io.BytesIO()
    # mtime=0 keeps the output byte-identical for identical input (reproducible builds).
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=9) as gz:
        gz.write(json.dumps(to_document(e), ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    return buf.getvalue()


def loads(data: bytes, *, source: str = "<bytes>") -> Election:
    try:
        raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
        doc = json.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"cannot read election file: {exc}", source=source) from exc
    return from_document(doc, source=source)


def write(e: Election, path: str | Path) -> None:
    Path(path).write_bytes(dumps(e))


def read(path: str | Path) -> Election:
    p = Path(path)
    return loads(p.read_bytes(), source=str(p))
