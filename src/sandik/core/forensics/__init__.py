"""Ballot-box forensics: per-box review flags and per-election tests (methods.md §2).

Pure: NumPy over a :class:`~sandik.core.forensics.table.SheetTable`, no I/O.
Flags rank sheets for a second look; they are never findings of fraud.
"""

from sandik.core.forensics.boxchecks import METHOD_VERSION, NOT_AN_ACCUSATION, BoxChecks, Flag, Signal, Thresholds, race_summary, run_checks
from sandik.core.forensics.table import SheetTable, from_rows, from_sheets

__all__ = [
    "METHOD_VERSION",
    "NOT_AN_ACCUSATION",
    "BoxChecks",
    "Flag",
    "Signal",
    "SheetTable",
    "Thresholds",
    "from_rows",
    "from_sheets",
    "race_summary",
    "run_checks",
]
