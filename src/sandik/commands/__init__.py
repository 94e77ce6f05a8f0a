"""Command groups of the CLI beyond the core ones, one module per area (web, projections, forensics, news)."""
