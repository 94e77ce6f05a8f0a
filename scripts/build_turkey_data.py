#!/usr/bin/env python
"""Build the bundled Turkish local elections (2024 and 2019) from the shared data.

    python scripts/build_turkey_data.py [--data DIR] [--out DIR] [--seed N] [--check]

Reads the public compilations in DIR (default: ../shared/data relative to the
repository) and writes src/sandik/data/tr-2024-local.election.json.gz and
tr-2019-local.election.json.gz. The output is deterministic: rerunning with the
same data and seed gives byte-identical files. --check builds in memory and
fails if the shipped files differ.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from sandik.datasets.turkey_local import DEFAULT_SEED, build_elections  # noqa: E402
from sandik.formats import election_file  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data", help="shared data folder (default: ../shared/data)")
    ap.add_argument("--out", type=Path, default=REPO / "src" / "sandik" / "data", help="output folder")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the simulated box sizes")
    ap.add_argument("--check", action="store_true", help="do not write; fail if the shipped files are not what a build gives")
    ap.add_argument("-q", "--quiet", action="store_true", help="do not list the data warnings")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        ap.error(f"data folder {args.data} not found (use --data)")

    t0 = time.perf_counter()
    e2024, e2019, warnings = build_elections(args.data, seed=args.seed)
    t1 = time.perf_counter()
    status = 0
    for e in (e2024, e2019):
        blob = election_file.dumps(e)
        path = args.out / f"{e.id}.election.json.gz"
        if args.check:
            same = path.exists() and path.read_bytes() == blob
            print(f"{path}: {'up to date' if same else 'DIFFERS from a fresh build'}")
            status |= not same
        else:
            path.write_bytes(blob)
            print(f"wrote {path} ({len(blob) / 1e6:.2f} MB)")
        offices: dict[str, int] = {}
        for r in e.races.values():
            offices[r.office] = offices.get(r.office, 0) + 1
        print(
            f"  {e.id}: {len(e.areas)} areas, {len(e.races)} races {offices}, "
            f"{len(e.box_ids)} boxes, {len(e.parties)} parties"
        )
    print(f"built in {t1 - t0:.1f} s, total {time.perf_counter() - t0:.1f} s")
    if warnings and not args.quiet:
        print(f"{len(warnings)} data notes:")
        for w in warnings:
            print("  -", w)
    return status


if __name__ == "__main__":
    sys.exit(main())
