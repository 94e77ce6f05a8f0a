"""Data shipped with sandik: built elections (see NOTICE.md for sources and licences)."""
