"""The server's GC steward, in a process of its own (it changes the whole interpreter's collector)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = r"""
import gc, time, weakref
from sandik.live.gc_steward import GcSteward

class Node:
    pass

GcSteward.start_once(interval=0.05, full_every=0.6)
kept = [[i] for i in range(10_000)]   # long-lived containers: frozen by the steward
time.sleep(0.2)
frozen_after_start = gc.get_freeze_count()
a = Node(); b = Node(); a.other = b; b.other = a   # a reference cycle ...
time.sleep(0.2)                                   # ... frozen while still alive
probe = weakref.ref(a)
del a, b                                          # now cyclic garbage in the permanent generation
gc.collect()
still_there = probe() is not None                 # a normal collection does not see frozen objects
time.sleep(1.0)                                   # the full clean-up (unfreeze + collect) runs
print(frozen_after_start >= 10_000, still_there, probe() is None)
"""


def test_steward_freezes_survivors_and_the_full_cleanup_frees_frozen_cycles():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True).stdout.split()
    assert out == ["True", "True", "True"], out
