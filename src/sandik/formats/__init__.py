"""Readers and writers of sandik's own file formats (election file, tally-sheet files)."""
