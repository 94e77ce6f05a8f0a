"""Named datasets the CLI can load and replay.

    tr-2024        31 March 2024 Turkish local elections (built in; 2019 as the previous
                   election). Results are real at district level; the ballot-box level
                   of the night is simulated so that every official total is reproduced.
    istanbul-2019  31 March 2019 Istanbul district-mayor races, real ballot-box results.
    turkey-2014    30 March 2014 Turkish municipal-mayor races, real ballot-box results.
    <file>         an election file (*.election.json.gz) of sandik's own format.

The box-level importers read a file in the same format as the shared copy;
``--path`` points them at another copy.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from sandik.core.model import Election
from sandik.core.sheet import TallySheet
from sandik.errors import NotFound
from sandik.formats import election_file

ENV_SHARED = "SANDIK_SHARED_DATA"


def shared_data_dir() -> Path:
    """Where the real source files live: $SANDIK_SHARED_DATA, else ../shared/data beside the checkout."""
    if os.environ.get(ENV_SHARED):
        return Path(os.environ[ENV_SHARED])
    for base in (Path.cwd(), Path(__file__).resolve().parents[3]):
        cand = base.parent / "shared" / "data"
        if cand.is_dir():
            return cand
    return Path.cwd().parent / "shared" / "data"


def packaged(name: str) -> Election:
    ref = resources.files("sandik.data").joinpath(name)
    return election_file.loads(ref.read_bytes(), source=f"sandik.data/{name}")


@dataclass(frozen=True)
class Timed:
    minutes: float  # after polls close
    sheet: TallySheet


@dataclass
class Dataset:
    name: str
    description: str
    elections: Callable[[], list[Election]]  # previous first, the main election last
    night: Callable[[Election, int], list[Timed]]  # the main election's sheets in arrival order


def _tr2024_elections() -> list[Election]:
    return [packaged("tr-2019-local.election.json.gz"), packaged("tr-2024-local.election.json.gz")]


def _tr2024_night(e: Election, seed: int) -> list[Timed]:
    from sandik.simulation.night import arrival_order, simulate_night

    sheets = simulate_night(e, seed=seed)
    return [Timed(m, s) for m, s in arrival_order(e, sheets, seed=seed)]


def _boxlevel(loader: Callable[[Path], tuple[Election, list[TallySheet]]], path: Path) -> tuple[Callable[[], list[Election]], Callable[[Election, int], list[Timed]]]:
    cache: dict[str, tuple[Election, list[TallySheet]]] = {}

    def load() -> tuple[Election, list[TallySheet]]:
        if "x" not in cache:
            cache["x"] = loader(path)
        return cache["x"]

    def elections() -> list[Election]:
        return [load()[0]]

    def night(e: Election, seed: int) -> list[Timed]:
        from sandik.simulation.arrival import random_order

        sheets = load()[1]
        return [Timed(m, s) for m, s in random_order(sheets, seed=seed)]

    return elections, night


def get(name: str, path: str | None = None) -> Dataset:
    if name == "tr-2024":
        return Dataset(name, "Turkey, 31 March 2024 local elections (boxes simulated from real district totals)", _tr2024_elections, _tr2024_night)
    if name == "istanbul-2019":
        from sandik.datasets.istanbul2019 import load_istanbul_2019

        p = Path(path) if path else shared_data_dir() / "istanbul-2019-ballot-boxes" / "istanbul_2019_belediye_baskanligi_sandik_wide.csv"
        el, night = _boxlevel(load_istanbul_2019, p)
        return Dataset(name, "Istanbul, 31 March 2019 district-mayor races (real ballot boxes)", el, night)
    if name == "turkey-2014":
        from sandik.datasets.turkey2014 import load_turkey_2014

        p = Path(path) if path else shared_data_dir() / "tr-local-2014-ballot-boxes" / "yerel2014.csv.zip"
        el, night = _boxlevel(load_turkey_2014, p)
        return Dataset(name, "Turkey, 30 March 2014 municipal-mayor races (real ballot boxes)", el, night)
    if name.endswith((".json.gz", ".json")) and Path(name).exists():
        e = election_file.read(name)
        return Dataset(name, e.info.name, lambda: [e], lambda _e, _s: [])
    raise NotFound("dataset", name)


NAMES = ("tr-2024", "istanbul-2019", "turkey-2014")
