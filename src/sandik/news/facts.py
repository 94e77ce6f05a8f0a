"""What the election data says, in the shape claim checking and summaries need.

``Facts`` bundles an election with its results (live from a tally, or final
from the aggregate results), the previous election's final results, the whole
electorate where the election file does not hold it, and the country's news
lexicon. It is pure: the shells (CLI, API) build the pieces and pass them in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from typing import Any, Literal

from sandik.core.model import Election, Race
from sandik.core.names import slug
from sandik.core.results import RaceComparison, RaceResult, Scoreboard, compare, final_results, scoreboards
from sandik.core.tally import LiveTally
from sandik.errors import NotFound

Mode = Literal["final", "live"]

# Offices by how much a place's "race" means that office: a province's race is
# its metropolitan or provincial mayor, a district's its district mayor.
_OFFICE_RANK = ("metropolitan_mayor", "provincial_mayor", "district_mayor", "belde_mayor")


@dataclass(frozen=True)
class Turnout:
    registered: int
    voters: int
    valid: int
    source: str


@dataclass(frozen=True)
class Lexicon:
    """A country's news vocabulary (see data/tr.lexicon.json); empty for countries without one."""

    country_names: tuple[str, ...] = ()
    party_aliases: dict[str, list[str]] = field(default_factory=dict)
    people: tuple[dict[str, Any], ...] = ()
    organisations: tuple[str, ...] = ()
    area_aliases: dict[str, list[str]] = field(default_factory=dict)
    previous_candidates: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    race_notes: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def for_country(cls, country: str) -> Lexicon:
        ref = resources.files("sandik.news.data").joinpath(f"{country.lower()}.lexicon.json")
        if not ref.is_file():
            return cls()
        d = json.loads(ref.read_text(encoding="utf-8"))
        return cls(
            country_names=tuple(d.get("country_names", ())),
            party_aliases=d.get("party_aliases", {}),
            people=tuple(d.get("people", ())),
            organisations=tuple(d.get("organisations", ())),
            area_aliases=d.get("area_aliases", {}),
            previous_candidates=d.get("previous_candidates", {}),
            race_notes=d.get("race_notes", {}),
        )


def load_countries() -> dict[str, list[str]]:
    ref = resources.files("sandik.news.data").joinpath("countries.json")
    return json.loads(ref.read_text(encoding="utf-8"))["countries"]


def load_electorate(election: Election) -> tuple[Turnout | None, dict[str, Turnout]]:
    """The whole electorate (national and per top-level area) when the package ships it for this election."""
    ref = resources.files("sandik.news.data").joinpath(f"{election.id}.electorate.json")
    if not ref.is_file():
        return None, {}
    d = json.loads(ref.read_text(encoding="utf-8"))
    src = d["source"]
    n = d["national"]
    national = Turnout(n["registered"], n["voters"], n["valid"], src)
    kind = election.info.top_area_kind or "province"
    by_slug = {slug(a.name): a.id for a in election.areas.values() if a.kind == kind}
    per = {}
    for key, v in d["provinces"].items():
        aid = by_slug.get(key)
        if aid is None:
            raise NotFound("area", key, election_id=election.id)
        per[aid] = Turnout(v["registered"], v["voters"], v["valid"], f"{src}: {v['race']} race")
    return national, per


@dataclass(eq=False)
class Facts:
    election: Election
    results: dict[str, RaceResult]
    mode: Mode
    source: str  # where the figures come from, shown with every verdict
    previous: Election | None = None
    previous_results: dict[str, RaceResult] = field(default_factory=dict)
    electorate: Turnout | None = None
    electorate_by_area: dict[str, Turnout] = field(default_factory=dict)
    lexicon: Lexicon = field(default_factory=Lexicon)

    @classmethod
    def build(cls, election: Election, tally: LiveTally | None = None, previous: Election | None = None, *, source: str | None = None) -> Facts:
        """Live facts when a tally is given (the state of the night), else the final aggregate results."""
        mode: Mode = "live" if tally is not None else "final"
        results = final_results(election, tally)
        if not results:
            raise NotFound("results", election.id, election_id=election.id)
        national, per = load_electorate(election)
        src = source or (f"{election.id}: live tally ({tally.sheets_applied:,} sheets)" if tally is not None else f"{election.id}: official final results")
        return cls(
            election=election,
            results=results,
            mode=mode,
            source=src,
            previous=previous,
            previous_results=final_results(previous, None) if previous is not None else {},
            electorate=national,
            electorate_by_area=per,
            lexicon=Lexicon.for_country(election.info.country),
        )

    # --- lookups ------------------------------------------------------------------
    @cached_property
    def _races_by_area(self) -> dict[str, list[Race]]:
        out: dict[str, list[Race]] = {}
        for r in self.election.races.values():
            out.setdefault(r.area_id, []).append(r)
        for v in out.values():
            v.sort(key=lambda r: (_OFFICE_RANK.index(r.office) if r.office in _OFFICE_RANK else 99, r.id))
        return out

    def main_race(self, area_id: str, *, previous: bool = False) -> Race | None:
        """The race that stands for a place: its metropolitan/provincial mayor, district mayor, ..."""
        if previous:
            if self.previous is None:
                return None
            prev = self.previous
            races = sorted(
                (r for r in prev.races.values() if r.area_id == area_id), key=lambda r: (_OFFICE_RANK.index(r.office) if r.office in _OFFICE_RANK else 99, r.id)
            )
            if not races:
                races = sorted(
                    (
                        r
                        for r in prev.races.values()
                        if r.office in prev.info.top_offices and r.area_id in prev.areas and prev.areas[r.area_id].parent_id == area_id
                    ),
                    key=lambda r: r.id,
                )
            return races[0] if races else None
        races = self._races_by_area.get(area_id)
        if not races:
            # A non-metropolitan province elects its provincial mayor in its central
            # district: the province's race is the top-office race of a child area.
            top = self.election.info.top_offices
            races = sorted(
                (r for r in self.election.races.values() if r.office in top and self.election.areas[r.area_id].parent_id == area_id), key=lambda r: r.id
            )
        return races[0] if races else None

    def result(self, race_id: str, *, previous: bool = False) -> RaceResult:
        res = (self.previous_results if previous else self.results).get(race_id)
        if res is None:
            raise NotFound("race result", race_id, election_id=(self.previous.id if previous and self.previous else self.election.id))
        return res

    def boxes(self, race_id: str) -> tuple[int, int]:
        """(opened, total) ballot boxes of a race. Aggregate-only final results count every box as opened."""
        res = self.results[race_id]
        total = len(self.election.race_boxes[race_id])
        if self.mode == "live" and total:
            return res.boxes_opened, res.boxes_total
        return total, total

    @cached_property
    def scoreboards(self) -> dict[str, Scoreboard]:
        return {b.group: b for b in scoreboards(self.election, self.results)}

    @cached_property
    def previous_scoreboards(self) -> dict[str, Scoreboard]:
        if self.previous is None:
            return {}
        return {b.group: b for b in scoreboards(self.previous, self.previous_results)}

    @cached_property
    def comparisons(self) -> list[RaceComparison]:
        """Race-by-race comparison with the previous election (flips, strongholds)."""
        return compare(self.results, self.previous_results) if self.previous is not None else []

    @property
    def top_group(self) -> str:
        return f"top:{self.election.info.top_area_kind or 'area'}"

    def party_name(self, code: str | None) -> str:
        if code is None or code == "IND":
            return "independents"
        p = self.election.parties.get(code) or (self.previous.parties.get(code) if self.previous else None)
        return p.short_name if p else code

    def area_name(self, area_id: str) -> str:
        return self.election.area(area_id).name

    def counting(self, race_id: str) -> bool:
        """True while a live race is still being counted (not every box opened)."""
        if self.mode != "live":
            return False
        return self.results[race_id].status != "complete"
