"""Arrival orders for replaying real box-level results whose real timing is unknown."""

from __future__ import annotations

import random
from collections import defaultdict

from sandik.core.sheet import TallySheet

NIGHT_MINUTES = 360.0  # sheets spread over six hours after the polls close


def random_order(sheets: list[TallySheet], *, seed: int = 0, minutes: float = NIGHT_MINUTES) -> list[tuple[float, TallySheet]]:
    """Boxes in a uniformly random order, evenly spread over the night; a box's sheets arrive together."""
    by_box: dict[str, list[TallySheet]] = defaultdict(list)
    for s in sheets:
        by_box[s.box_id].append(s)
    boxes = sorted(by_box)
    random.Random(seed).shuffle(boxes)
    n = max(len(boxes), 1)
    return [(minutes * i / n, s) for i, b in enumerate(boxes) for s in by_box[b]]
