"""Where bulk ingest spends its time, per sheet: checking and building rows, the durable insert, counting.

Run: .venv/bin/python bench/bench_ingest_phases.py   (the whole simulated 2024 night into a new SQLite file)

Then the check alone (``Ingestor._prepare`` on every batch, nothing written), in CPU time per
sheet, with and without the C check (``core/_fastcheck.c``) and the paused cyclic GC
(``sandik/gc_pause.py``): what each of the two is worth.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path

from sandik.core import validation
from sandik.datasets import registry
from sandik.gc_pause import paused_gc
from sandik.ingest.pipeline import Ingestor
from sandik.store.repository import open_store


def main() -> None:
    ds = registry.get("tr-2024")
    _, e = ds.elections()
    sheets = [t.sheet for t in ds.night(e, 2024)]
    st = open_store(str(Path(tempfile.mkdtemp(prefix="sandik-phases-")) / "x.sqlite"))
    st.save_election(e)
    ing = Ingestor(st, e.id)
    spent = {"prepare": 0.0, "write": 0.0, "apply": 0.0}
    for name in spent:
        inner = getattr(ing, "_" + name)

        def timed(*a, _inner=inner, _name=name, **k):
            t = time.perf_counter()
            try:
                return _inner(*a, **k)
            finally:
                spent[_name] += time.perf_counter() - t

        setattr(ing, "_" + name, timed)
    t0 = time.perf_counter()
    ing.submit(sheets, batch_size=20000, pipeline=False)  # one after the other, so that each phase can be timed
    total = time.perf_counter() - t0
    n = len(sheets)
    print(f"{n:,} sheets in {total:.2f} s = {n / total:,.0f} sheets/s (limit 50,000/s: ratio {50000 / (n / total):.2f})")
    for name, s in spent.items():
        print(f"  {name:<8} {s / n * 1e6:6.2f} us/sheet ({100 * s / total:4.1f}%)")

    check = ing.__class__._prepare.__get__(ing)  # the untimed method
    ing.heads = {}  # as before the night: every sheet is new, none a duplicate
    c_check = validation._c_check_clean
    print("the check alone, CPU time per sheet (best of 2):")
    variants = (("Python check, GC on", False, False), ("C check, GC on", True, False), ("Python check, GC paused", False, True), ("C check, GC paused", True, True))
    for label, use_c, pause in variants:
        validation._c_check_clean = c_check if use_c else None
        best = float("inf")
        for _ in range(2):
            t = time.process_time()
            with paused_gc() if pause else contextlib.nullcontext():
                for i in range(0, n, 20000):
                    check(sheets[i : i + 20000], "", "", i)
            best = min(best, time.process_time() - t)
        print(f"  {label:<24} {best / n * 1e6:6.2f} us/sheet")
    validation._c_check_clean = c_check


if __name__ == "__main__":
    main()
