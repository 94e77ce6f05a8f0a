"""Ingest: parse, validate, store durably, then update live tallies."""
