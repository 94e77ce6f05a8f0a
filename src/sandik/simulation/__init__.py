"""Simulated election nights: box-level sheets that reproduce official totals exactly."""
