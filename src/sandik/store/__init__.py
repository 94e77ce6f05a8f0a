"""Persistence: one schema on SQLite (default) or PostgreSQL, with migrations."""
