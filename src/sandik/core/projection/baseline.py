"""Mapping a previous election's party votes onto this race's candidates.

Candidates are matched to baseline columns by party code (independents by
candidate id). A baseline party with no candidate here gives its votes to an
allied party's candidate when one runs (alliances are data, supplied by the
dataset: Turkey's 2019 Cumhur and Millet alliances fielded one candidate for
several parties). Whatever stays unmapped is left out: the model's
"unmapped share" covariate learns where those voters went.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def candidate_map(candidate_keys: Sequence[str], baseline_columns: Sequence[str], alliances: Iterable[Iterable[str]] = ()) -> np.ndarray:
    """(P x K) 0/1 matrix: baseline column p counts for candidate k."""
    col = {c: i for i, c in enumerate(baseline_columns)}
    cand = {c: k for k, c in enumerate(candidate_keys)}
    M = np.zeros((len(baseline_columns), len(candidate_keys)))
    for c, k in cand.items():
        if c in col:
            M[col[c], k] = 1.0
    for group in alliances:
        group = list(group)
        running = [g for g in group if g in cand]
        if not running:
            continue
        target = cand[running[0]]
        for g in group:
            if g in col and g not in cand:
                M[col[g], target] = 1.0
    return M
