"""Projections and race calls from partial results (pure: no I/O).

    frame.py      what a race's projection knows before the night (units, baseline, expected vote)
    model.py      the unit swing model with a stratified bootstrap -> RaceProjection
    conformal.py  weighted conformal interval of the margin (the cross-check)
    calls.py      mathematical lock and statistical call with guards -> CallDecision
    pool.py       many races at once, with a prior pooled across races
    seats.py      D'Hondt with a threshold, for council seat projections
    baseline.py   mapping previous-election party votes to this race's candidates
    election.py   the glue from an Election + LiveTally + previous election (project_election)
"""

from sandik.core.projection.calls import CallDecision, CallRule, decide, lock_winner
from sandik.core.projection.frame import RaceFrame, RaceState
from sandik.core.projection.model import LEVELS, ModelParams, RaceProjection, SwingPrior, project
from sandik.core.projection.pool import RaceOutcome, project_many
from sandik.core.projection.seats import dhondt, fraction_threshold, seat_intervals

__all__ = [
    "LEVELS",
    "CallDecision",
    "CallRule",
    "ModelParams",
    "RaceFrame",
    "RaceOutcome",
    "RaceProjection",
    "RaceState",
    "SwingPrior",
    "decide",
    "dhondt",
    "fraction_threshold",
    "lock_winner",
    "project",
    "project_many",
    "seat_intervals",
]
