"""Digests of every race's projection and call at three points of the simulated 2024 night.

    .venv/bin/python bench/projection_digests.py OUT.pkl     # first run: writes the digests
    .venv/bin/python bench/projection_digests.py OUT.pkl     # later runs: compares with them

How a change to the projection code is shown not to change its results: run it
once with the code before the change (``PYTHONPATH=<copy of the old src>``),
once after. Each digest covers the point, all bootstrap draws, P(win), the
intervals at every level, the model state and the call, byte for byte, at 5%,
33% and 90% of the night's sheets (seed 2024).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the sandik CLI sets it

import numpy as np  # noqa: E402

from sandik.backtest.data import ALLIANCES_TR  # noqa: E402
from sandik.core.projection.election import build_frames, project_election  # noqa: E402
from sandik.core.tally import LiveTally, sheet_vector  # noqa: E402
from sandik.datasets import registry  # noqa: E402

FRACTIONS = (0.05, 0.33, 0.9)


def digest(oc) -> str:
    h = hashlib.sha256()
    p = oc.projection
    for a in (p.votes, p.draws, p.p_win, p.share):
        h.update(np.ascontiguousarray(a).tobytes() if a is not None else b"none")
    for lv in sorted(p.intervals):
        for a in (*p.intervals[lv], *p.share_intervals[lv]):
            h.update(np.ascontiguousarray(a).tobytes())
        h.update(repr((p.margin_intervals[lv], p.margin_points_intervals[lv])).encode())
    h.update(repr(sorted((k, repr(v)) for k, v in p.state.items())).encode())
    h.update(repr(oc.call.to_dict()).encode())
    h.update(repr(oc.seats).encode())
    return h.hexdigest()


def main() -> None:
    out_path = sys.argv[1]
    ds = registry.get("tr-2024")
    prev, e = ds.elections()
    frames = build_frames(e, prev, alliances=ALLIANCES_TR)
    night = ds.night(e, 2024)
    tally = LiveTally(e)
    done = 0
    res: dict[float, dict[str, str]] = {}
    for frac in FRACTIONS:
        cut = int(len(night) * frac)
        for tm in night[done:cut]:
            s = tm.sheet
            b = e.box_index[s.box_id]
            tally.apply(s.race_id, b, sheet_vector(s, e.races[s.race_id], int(e.box_registered[b])))
        done = cut
        res[frac] = {rid: digest(oc) for rid, oc in project_election(e, tally, prev, frames=frames).items()}
    if os.path.exists(out_path):
        with open(out_path, "rb") as f:
            ref = pickle.load(f)
        for frac in FRACTIONS:
            differ = sorted(r for r in res[frac] if res[frac][r] != ref[frac].get(r))
            print(f"{frac:.0%} of the sheets: {len(differ)} of {len(res[frac]):,} races differ from {out_path}", differ[:10])
    else:
        with open(out_path, "wb") as f:
            pickle.dump(res, f)
        print(f"digests of {', '.join(f'{len(v):,}' for v in res.values())} races written to {out_path}")


if __name__ == "__main__":
    main()
