"""sandik: an election-night results system.

The package is laid out as a pure core (``sandik.core``: model, validation,
tallies, results; no I/O) inside thin shells (``formats``, ``store``,
``ingest``, ``datasets``, ``simulation``, ``cli``).
"""

__version__ = "0.1.0"
